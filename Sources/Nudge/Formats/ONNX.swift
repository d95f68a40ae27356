import Glibc

/// ONNX export and import (docs/ONNX.md): a network as an ONNX model that ONNX Runtime and every
/// other ONNX consumer runs, and plain multilayer perceptrons made elsewhere (PyTorch's
/// `torch.onnx.export` of an `nn.Sequential`, skl2onnx's `MLPClassifier` and `MLPRegressor`) as
/// networks that Nudge predicts with and fine-tunes.
///
/// The file is written and read here from the documented wire format of `onnx.proto`
/// (``ProtoMessage``, ``ProtoReader``): the library depends on no protobuf runtime and no Python.
///
/// An exported model (opset 13, IR version 7) has one input, `input` (float, `[N, inputSize]`), and
/// one output, `output` (float, `[N, outputSize]`), computed by:
/// - the input normalisation, when there is one: `Sub` of the offsets, then `Mul` by the scales,
///   the two operations Nudge itself performs, in the same order and precision;
/// - per layer, `Gemm` (`transB = 1`: the weights are stored `fanOut x fanIn`, as in Nudge) and the
///   activation node: `Sigmoid`, `Tanh`, `Relu`, `LeakyRelu` (`alpha` = ``Activation/leakySlope``),
///   `Softmax` (`axis = -1`), none for identity;
/// - with class names (metadata `class_names`, one per output unit, one per line), a second output
///   `label` (int64, `[N]`): `ArgMax` over the outputs, the index of the class.
/// Every metadata entry goes into `metadata_props`.
///
/// ```swift
/// try ONNX.save(net, to: "model.onnx")
/// let back = try ONNX.load(from: "model.onnx")      // same layers, parameters, normalisation, metadata
/// ```
public enum ONNX {
    /// The operator set exported models declare.
    public static let opsetVersion = 13
    /// The IR version that goes with opset 13.
    public static let irVersion = 7
    /// The largest file written or read: protobuf's limit for one message (2 GiB - 1). Larger models
    /// would need ONNX's external data, which Nudge does not write or read.
    public static let maxFileSize = Int(Int32.max)

    // MARK: Export

    /// The network as ONNX model bytes. Reads the network only.
    ///
    /// - Throws: `capacity` (a model over 2 GiB), `outOfMemory`.
    public static func encode(_ network: Network) throws(NudgeError) -> [UInt8] {
        let model = try ONNXExport(network).model
        return [UInt8](unsafeUninitializedCapacity: model.size) { buffer, count in
            model.encode(into: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = model.size
        }
    }

    /// The size in bytes of the network's ONNX model.
    ///
    /// - Throws: as ``encode(_:)``.
    public static func encodedSize(_ network: Network) throws(NudgeError) -> Int {
        try ONNXExport(network).model.size
    }

    /// Writes the network's ONNX model into `buffer` and returns its size.
    ///
    /// - Throws: `capacity` when `buffer` is too small (nothing is written); as ``encode(_:)``.
    public static func encode(_ network: Network, into buffer: UnsafeMutableRawBufferPointer) throws(NudgeError) -> Int {
        let model = try ONNXExport(network).model
        guard buffer.count >= model.size else {
            throw NudgeError(.capacity, "buffer has room for \(buffer.count) bytes; the ONNX model needs \(model.size)")
        }
        model.encode(into: buffer.baseAddress!)
        return model.size
    }

    /// Writes the network's ONNX model to `path` atomically, as ``ModelFile/save(_:to:)`` writes a
    /// model file: a failed save leaves the old file intact. Reads the network only.
    ///
    /// - Throws: `invalidArgument` (an empty path), `io`, `capacity`, `outOfMemory`.
    public static func save(_ network: Network, to path: String) throws(NudgeError) {
        let target = try SaveTarget(path)
        let model = try ONNXExport(network).model
        let bytes = try HeapBuffer<UInt8>(count: model.size, zeroed: false)
        model.encode(into: UnsafeMutableRawPointer(bytes.pointer))
        try target.write(UnsafeRawBufferPointer(bytes.buffer))
    }
}

/// Builds the ONNX model of one network (see ``ONNX``); tensors point into the network's storage.
private struct ONNXExport {
    let network: Network
    var nodes: [ProtoMessage] = []
    var initializers: [ProtoMessage] = []

    init(_ network: Network) throws(NudgeError) {
        self.network = network
        guard network.parameterCount <= (ONNX.maxFileSize - 65536) / 4 else {
            throw NudgeError(.capacity, "the network's \(network.parameterCount) parameters do not fit in one ONNX file (2 GiB at most without external data)")
        }
    }

    var model: ProtoMessage {
        get throws(NudgeError) {
            var builder = self
            let graph = builder.graph()
            var model = ProtoMessage()
            model.varint(1, ONNX.irVersion)
            model.string(2, "nudge")
            model.string(3, NudgeVersion.string)
            // The metadata before the graph and the operator set, which a reader needs: a file cut
            // short anywhere then lacks one of them, or ends inside a field, and is refused (protobuf
            // itself cannot tell a file cut between two fields from a complete one).
            for entry in network.entries {
                var pair = ProtoMessage()
                pair.borrowedBytes(1, UnsafeRawBufferPointer(entry.key.buffer))
                pair.borrowedBytes(2, UnsafeRawBufferPointer(entry.value.buffer))
                model.message(14, pair)
            }
            model.message(7, graph)
            var opset = ProtoMessage()
            opset.string(1, "")
            opset.varint(2, ONNX.opsetVersion)
            model.message(8, opset)
            guard model.size <= ONNX.maxFileSize else {
                throw NudgeError(.capacity, "the ONNX model would be \(model.size) bytes, more than one file may hold (2 GiB)")
            }
            return model
        }
    }

    private mutating func graph() -> ProtoMessage {
        var current = "input"
        if let n = network.normalization {
            tensor("normalization.offset", dims: [n.count], n.offsets)
            tensor("normalization.scale", dims: [n.count], n.scales)
            node("Sub", "normalization.sub", inputs: [current, "normalization.offset"], output: "centered")
            node("Mul", "normalization.mul", inputs: ["centered", "normalization.scale"], output: "normalized")
            current = "normalized"
        }
        let last = network.activations.count - 1
        let p = UnsafePointer(network.storage.pointer)
        for (l, activation) in network.activations.enumerated() {
            let fanIn = network.layerSizes[l], fanOut = network.layerSizes[l + 1]
            tensor("layer\(l).weight", dims: [fanOut, fanIn], p + network.weightOffsets[l])
            tensor("layer\(l).bias", dims: [fanOut], p + network.biasOffsets[l])
            let sum = l == last && activation == .identity ? "output" : "layer\(l).sum"
            var transB = ProtoMessage()
            transB.string(1, "transB")
            transB.varint(3, 1)
            transB.varint(20, 2)
            node("Gemm", "layer\(l).gemm", inputs: [current, "layer\(l).weight", "layer\(l).bias"], output: sum, attributes: [transB])
            current = sum
            guard let op = Self.onnxOperator(activation) else { continue }
            let out = l == last ? "output" : "layer\(l).out"
            node(op.type, "layer\(l).\(activation.name)", inputs: [current], output: out, attributes: op.attributes)
            current = out
        }
        var graph = ProtoMessage()
        for n in nodes { graph.message(1, n) }
        graph.string(2, "nudge")
        for t in initializers { graph.message(5, t) }
        graph.message(11, Self.valueInfo("input", elementType: 1, dims: [nil, network.inputSize]))
        graph.message(12, Self.valueInfo("output", elementType: 1, dims: [nil, network.outputSize]))
        if network.outputSize >= 2, let text = network.metadataValue(forKey: "class_names"),
           text.split(separator: "\n", omittingEmptySubsequences: false).count == network.outputSize {
            var axis = ProtoMessage(), keep = ProtoMessage()
            axis.string(1, "axis"); axis.varint(3, 1); axis.varint(20, 2)
            keep.string(1, "keepdims"); keep.varint(3, 0); keep.varint(20, 2)
            var argmax = ProtoMessage()
            argmax.string(1, "output"); argmax.string(2, "label"); argmax.string(3, "label.argmax"); argmax.string(4, "ArgMax")
            argmax.message(5, axis); argmax.message(5, keep)
            graph.message(1, argmax)
            graph.message(12, Self.valueInfo("label", elementType: 7, dims: [nil]))
        }
        return graph
    }

    /// The ONNX operator of an activation, and its attributes; nil for identity (no node).
    static func onnxOperator(_ activation: Activation) -> (type: String, attributes: [ProtoMessage])? {
        switch activation {
        case .identity: return nil
        case .sigmoid: return ("Sigmoid", [])
        case .tanh: return ("Tanh", [])
        case .relu: return ("Relu", [])
        case .leakyRelu:
            var alpha = ProtoMessage()
            alpha.string(1, "alpha"); alpha.float(2, Activation.leakySlope); alpha.varint(20, 1)
            return ("LeakyRelu", [alpha])
        case .softmax:
            var axis = ProtoMessage()
            axis.string(1, "axis"); axis.varint(3, -1); axis.varint(20, 2)
            return ("Softmax", [axis])
        }
    }

    private mutating func node(_ type: String, _ name: String, inputs: [String], output: String, attributes: [ProtoMessage] = []) {
        var node = ProtoMessage()
        for i in inputs { node.string(1, i) }
        node.string(2, output)
        node.string(3, name)
        node.string(4, type)
        for a in attributes { node.message(5, a) }
        nodes.append(node)
    }

    /// A float tensor whose values stay where they are (the network's storage) until encoding.
    private mutating func tensor(_ name: String, dims: [Int], _ values: UnsafePointer<Float>) {
        var tensor = ProtoMessage()
        for d in dims { tensor.varint(1, d) }
        tensor.varint(2, 1)
        tensor.string(8, name)
        tensor.borrowedBytes(9, UnsafeRawBufferPointer(start: values, count: dims.reduce(1, *) * 4))
        initializers.append(tensor)
    }

    /// A tensor's name, element type and shape; a nil dimension is the batch, `N`.
    static func valueInfo(_ name: String, elementType: Int, dims: [Int?]) -> ProtoMessage {
        var shape = ProtoMessage()
        for d in dims {
            var dim = ProtoMessage()
            if let d { dim.varint(1, d) } else { dim.string(2, "N") }
            shape.message(1, dim)
        }
        var tensorType = ProtoMessage()
        tensorType.varint(1, elementType)
        tensorType.message(2, shape)
        var type = ProtoMessage()
        type.message(1, tensorType)
        var info = ProtoMessage()
        info.string(1, name)
        info.message(2, type)
        return info
    }
}
