import Glibc

extension ONNX {
    /// Reads an ONNX model of a plain multilayer perceptron into a network (docs/ONNX.md, "Import").
    ///
    /// The graph is followed back from its first float output to its one input. On that path it may
    /// hold: an input normalisation first (`Sub` of a constant, then `Mul` or `Div` by a constant);
    /// per layer, `Gemm` (`transA = 0`, `alpha = beta = 1`) or `MatMul` then optionally `Add` of a
    /// bias, with constant weights; after each, optionally one activation: `Relu`, `Sigmoid`, `Tanh`,
    /// `LeakyRelu` with alpha 0.01, or `Softmax` on the last axis (output layer only); and nodes that
    /// change nothing on a float matrix (`Identity`, `Dropout`, `Cast` to float, `Flatten` on axis 1).
    /// Nodes off that path (a label output made by `ArgMax`, say) are ignored. Anything else is
    /// refused with a message naming the first unsupported node. Metadata comes from `metadata_props`.
    ///
    /// - Throws: `invalidArgument` (an empty path), `io`, `format` (not an ONNX model, damaged, or
    ///   not a supported network), `notFinite`, `outOfMemory`.
    public static func load(from path: String) throws(NudgeError) -> Network {
        let file = try OpenFile(path, what: "ONNX file")
        guard file.size <= maxFileSize else {
            throw .format("\(path) is \(file.size) bytes, larger than an ONNX file without external data may be (\(maxFileSize))")
        }
        let bytes = try HeapBuffer<UInt8>(count: file.size, zeroed: false)
        try file.read(into: bytes.pointer, count: file.size, at: 0)
        return try decode(UnsafeRawBufferPointer(bytes.buffer), source: path)
    }

    /// Builds a network from ONNX model bytes (as ``load(from:)``); `source` names them in messages.
    public static func decode(_ bytes: UnsafeRawBufferPointer, source: String = "buffer") throws(NudgeError) -> Network {
        guard bytes.count <= maxFileSize else { throw .format("\(source) is \(bytes.count) bytes, larger than an ONNX model may be (\(maxFileSize))") }
        let file = try ONNXFile(bytes, source: source)
        return try ONNXImport(file: file, bytes: bytes, source: source).network()
    }

    /// Builds a network from ONNX model bytes in an array.
    public static func decode(_ bytes: [UInt8], source: String = "buffer") throws(NudgeError) -> Network {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(NudgeError) in try decode(raw, source: source) }
        }.get()
    }
}

/// Turns a parsed ONNX graph into a network: finds the path of nodes from the input to the output,
/// then reads it as layers.
private struct ONNXImport {
    let file: ONNXFile
    let bytes: UnsafeRawBufferPointer
    let source: String

    /// A weight layer being read: its weights, whether they are stored `fanIn x fanOut` (MatMul,
    /// Gemm without transB), its bias and its activation when seen.
    struct Layer {
        var weights: ONNXFile.Tensor
        var fanIn: Int
        var fanOut: Int
        var transposed: Bool
        var bias: ONNXFile.Tensor?
        var activation: Activation?
    }

    func failure(_ message: String) -> NudgeError { .format("\(source): \(message)") }

    func network() throws(NudgeError) -> Network {
        let opset = try defaultOpset()
        let constants = try constantTensors()
        let inputs = file.inputs.filter { constants[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw failure("the graph has \(inputs.count) inputs (\(inputs.map { "\"\($0.name)\"" }.joined(separator: ", "))); Nudge imports networks with one input")
        }
        if input.isTensor, let type = input.elementType, type != 1 {
            throw failure("the input \"\(input.name)\" holds \(ONNXFile.dataTypeName(type)) values; Nudge networks take float32")
        }
        guard let output = file.outputs.first(where: { !$0.isTensor || $0.elementType == nil || $0.elementType == 1 }) else {
            throw failure("the graph has no float output (outputs: \(file.outputs.map { "\"\($0.name)\"" }.joined(separator: ", ")))")
        }
        let path = try pathOfNodes(from: input.name, to: output.name, constants: constants)
        var reader = LayerReader(importer: self, constants: constants, opset: opset, current: input.name)
        for index in path { try reader.read(file.nodes[index], index) }
        return try build(reader, input: input)
    }

    /// The initializers and the outputs of `Constant` nodes, by name; each name once.
    private func constantTensors() throws(NudgeError) -> [String: ONNXFile.Tensor] {
        var constants: [String: ONNXFile.Tensor] = [:]
        var named = file.initializers
        for node in file.nodes where node.op == "Constant" && node.domain.isEmpty && node.outputs.count == 1 {
            if var t = node.attribute("value")?.tensor {
                t.name = node.outputs[0]
                named.append(t)
            }
        }
        for t in named {
            guard !t.name.isEmpty else { throw failure("an initializer has no name") }
            guard constants.updateValue(t, forKey: t.name) == nil else { throw failure("two constants are named \"\(t.name)\"") }
        }
        return constants
    }

    /// The default domain's operator set version.
    private func defaultOpset() throws(NudgeError) -> Int64 {
        guard let opset = file.opsets.first(where: { $0.domain.isEmpty || $0.domain == "ai.onnx" }) else {
            throw failure("the model declares no operator set for the default ONNX domain")
        }
        return opset.version
    }

    /// The nodes from the input to the output, in order: the output's producer, the producer of that
    /// node's one computed input, and so on back to the input. A node with two computed inputs (a
    /// residual sum, a concatenation) ends the search with its name; a cycle is refused.
    private func pathOfNodes(from input: String, to output: String, constants: [String: ONNXFile.Tensor]) throws(NudgeError) -> [Int] {
        var producer: [String: Int] = [:]
        for (i, node) in file.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty {
                guard producer[o] == nil else { throw failure("\"\(o)\" is the output of two nodes (\(file.nodes[producer[o]!].described(producer[o]!)) and \(node.described(i))), which ONNX forbids") }
                producer[o] = i
            }
        }
        if let index = producer[input] {
            throw failure("\"\(input)\" is both the graph's input and the output of \(file.nodes[index].described(index))")
        }
        var path: [Int] = [], seen = Set<Int>(), name = output
        while name != input {
            guard let index = producer[name] else {
                throw failure(constants[name] != nil ? "the output \"\(output)\" is a constant: it does not depend on the input"
                                                    : "\"\(name)\" is neither the input nor the output of any node")
            }
            guard seen.insert(index).inserted else { throw failure("the graph has a cycle through \(file.nodes[index].described(index))") }
            path.append(index)
            let node = file.nodes[index]
            guard node.outputs.first == name else {
                throw failure("\(node.described(index)) gives \"\(name)\" as its output \(node.outputs.firstIndex(of: name) ?? 0); only a node's first output is a layer's value (not supported)")
            }
            let computed = node.inputs.filter { !$0.isEmpty && constants[$0] == nil }
            guard computed.count == 1 else {
                throw failure(computed.isEmpty
                    ? "\(node.described(index)) takes only constants; Nudge imports a chain of layers from the input"
                    : "\(node.described(index)) combines \(computed.count) computed values, which a chain of layers does not (not supported)")
            }
            name = computed[0]
        }
        guard !path.isEmpty else { throw failure("the output \"\(output)\" is the input itself: the graph computes nothing") }
        return path.reversed()
    }

    /// Creates the network from the layers read, then fills in its parameters and normalisation.
    /// Everything the file claims is checked first (the architecture, each tensor's count of values
    /// against the bytes that hold them), so memory is allocated only for what the file really has.
    private func build(_ reader: LayerReader, input: ONNXFile.Value) throws(NudgeError) -> Network {
        var layers = reader.layers
        guard !layers.isEmpty else { throw failure("the graph has no Gemm or MatMul node: nothing to import as a layer") }
        try checkInput(input, width: layers[0].fanIn, flattened: reader.flattened)
        for l in layers.indices where layers[l].activation == nil { layers[l].activation = .identity }
        let sizes = [layers[0].fanIn] + layers.map(\.fanOut), activations = layers.map { $0.activation! }
        do {
            _ = try Network.validate(layerSizes: sizes, activations: activations)
        } catch {
            throw failure(error.kind == .outOfMemory ? "the network would have more than \(Network.maxParameters) parameters" : error.message)
        }
        for layer in layers {
            try ONNXFile.expectFloats(layer.weights, count: layer.fanIn * layer.fanOut, bytes: bytes, source: source)
            if let bias = layer.bias { try ONNXFile.expectFloats(bias, count: Self.count(bias.dims), bytes: bytes, source: source) }
        }
        let width = layers[0].fanIn
        try reader.normalization?.check(self, width: width)
        let network = try Network(layerSizes: sizes, activations: activations, parameters: nil)
        for (l, layer) in layers.enumerated() {
            let w = network.storage.pointer + network.weightOffsets[l], b = network.storage.pointer + network.biasOffsets[l]
            let fanIn = layer.fanIn, fanOut = layer.fanOut
            try readFloats(layer.weights, count: fanIn * fanOut) { i, v in
                // Nudge keeps fanOut x fanIn; MatMul's B is fanIn x fanOut.
                w[layer.transposed ? (i % fanOut) * fanIn + i / fanOut : i] = v
            }
            if let bias = layer.bias {
                let n = Self.count(bias.dims)
                try readFloats(bias, count: n) { i, v in
                    if n == 1 { for j in 0..<fanOut { b[j] = v } } else { b[i] = v }
                }
            }
        }
        if let n = reader.normalization {
            let normalization = try n.build(self, width: width)
            try asFormat("the input normalisation") { () throws(NudgeError) in try network.setNormalization(normalization) }
        }
        for (i, entry) in file.metadata.enumerated() {
            try asFormat("metadata_props[\(i)]") { () throws(NudgeError) in try network.setMetadata(bytes(entry.value), forKey: bytes(entry.key)) }
        }
        return network
    }

    /// The input's declared shape against the first layer: `[N, width]`, or with a Flatten first,
    /// any shape whose known dimensions after the batch multiply to `width`.
    private func checkInput(_ input: ONNXFile.Value, width: Int, flattened: Bool) throws(NudgeError) {
        guard let dims = input.dims else { return }
        let features = dims.dropFirst()
        guard dims.count == 2 || (flattened && dims.count > 2) else {
            throw failure("the input \"\(input.name)\" has \(dims.count) dimensions; Nudge reads [N, features]\(dims.count > 2 ? " (or any shape with a Flatten on axis 1 first)" : "")")
        }
        if features.allSatisfy({ $0 != nil }) {
            let known = features.reduce(1.0) { $0 * Double($1!) }
            guard known == Double(width) else {
                throw failure("the input \"\(input.name)\" has \(features.map { String($0!) }.joined(separator: " x ")) features, but the first layer's weights take \(width)")
            }
        }
    }

    /// Runs `body`, reporting what it refuses as the file's fault (`format`, naming `what`); only a
    /// real shortage of memory stays `outOfMemory`.
    private func asFormat(_ what: String, _ body: () throws(NudgeError) -> Void) throws(NudgeError) {
        do { try body() } catch {
            throw error.kind == .outOfMemory ? error : failure("\(what): \(error.message)")
        }
    }

    /// Bytes of the file, in place.
    private func bytes(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + range.lowerBound }, count: range.count)
    }

    func readFloats(_ t: ONNXFile.Tensor, count: Int, _ store: (Int, Float) throws(NudgeError) -> Void) throws(NudgeError) {
        let what = t.name.isEmpty ? "a tensor" : "tensor \"\(t.name)\""
        try ONNXFile.readFloats(t, count: count, bytes: bytes, source: source) { (i, v) throws(NudgeError) in
            guard v.isFinite else { throw NudgeError(.notFinite, "\(source): \(what) holds \(v) at index \(i); every weight must be finite") }
            try store(i, v)
        }
    }

    /// The number of values of a tensor with dimensions checked by the caller.
    static func count(_ dims: [Int64]) -> Int { dims.reduce(1) { $0 * Int($1) } }
}

/// The input normalisation read from the graph's first nodes: `Sub` of offsets, then `Mul` by scales
/// or `Div` by divisors; either may be missing.
private struct NormalizationNodes {
    var offset: ONNXFile.Tensor?
    var factor: ONNXFile.Tensor?
    var divides = false

    /// Each constant has one value or one per input feature, and holds them.
    func check(_ importer: ONNXImport, width: Int) throws(NudgeError) {
        for t in [offset, factor].compactMap({ $0 }) {
            let n = ONNXImport.count(t.dims)
            guard n == 1 || n == width else {
                throw importer.failure("tensor \"\(t.name)\" of the input normalisation has \(n) values; it needs 1 or one per input feature (\(width))")
            }
            try ONNXFile.expectFloats(t, count: n, bytes: importer.bytes, source: importer.source)
        }
    }

    func build(_ importer: ONNXImport, width: Int) throws(NudgeError) -> InputNormalization {
        let count = max(offset.map { ONNXImport.count($0.dims) } ?? 1, factor.map { ONNXImport.count($0.dims) } ?? 1)
        let values = try FloatBuffer(count: 2 * count, zeroed: true)
        let offsets = values.pointer, scales = values.pointer + count
        for j in 0..<count { scales[j] = 1 }
        if let offset {
            let n = ONNXImport.count(offset.dims)
            try importer.readFloats(offset, count: n) { i, v in if n == 1 { for j in 0..<count { offsets[j] = v } } else { offsets[i] = v } }
        }
        if let factor {
            let n = ONNXImport.count(factor.dims), divides = divides
            try importer.readFloats(factor, count: n) { (i, v) throws(NudgeError) in
                let s = divides ? 1 / v : v
                guard s.isFinite && s != 0 else {
                    throw importer.failure("tensor \"\(factor.name)\" \(divides ? "divides" : "multiplies") the input by \(v) at index \(i), which gives the scale \(s); a scale must be finite and not 0")
                }
                if n == 1 { for j in 0..<count { scales[j] = s } } else { scales[i] = s }
            }
        }
        return try InputNormalization(adopting: values)
    }
}

/// Reads the path's nodes one by one into layers (see ``ONNX/load(from:)`` for what is accepted).
private struct LayerReader {
    let importer: ONNXImport
    let constants: [String: ONNXFile.Tensor]
    let opset: Int64
    /// The value the next node must take: the output of the node before.
    var current: String
    var layers: [ONNXImport.Layer] = []
    var normalization: NormalizationNodes?
    var flattened = false

    init(importer: ONNXImport, constants: [String: ONNXFile.Tensor], opset: Int64, current: String) {
        self.importer = importer
        self.constants = constants
        self.opset = opset
        self.current = current
    }

    private func unsupported(_ node: ONNXFile.Node, _ index: Int, _ why: String) -> NudgeError {
        importer.failure("\(node.described(index)) is not supported: \(why)")
    }

    mutating func read(_ node: ONNXFile.Node, _ index: Int) throws(NudgeError) {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw unsupported(node, index, "its domain \"\(node.domain)\" is not the default ONNX domain")
        }
        guard node.outputs.count >= 1 else { throw unsupported(node, index, "it has no output") }
        let constant = node.inputs.first { $0 != current && !$0.isEmpty }.flatMap { constants[$0] }
        switch node.op {
        case "Identity":
            break
        case "Dropout":
            guard node.inputs.count < 3 || node.inputs[2].isEmpty else { throw unsupported(node, index, "a Dropout with a training_mode input may drop values; only inference Dropout, which changes nothing, is") }
        case "Cast":
            guard node.attribute("to")?.int == 1 else { throw unsupported(node, index, "it casts to \(ONNXFile.dataTypeName(node.attribute("to")?.int ?? 0)), not float32") }
        case "Flatten":
            guard (node.attribute("axis")?.int ?? 1) == 1, layers.isEmpty else { throw unsupported(node, index, "only Flatten on axis 1 before the first layer is") }
            flattened = true
        case "Reshape":
            // A reshape to [-1, width] (or [0, width]) of a matrix already that wide changes nothing.
            let width = layers.last?.fanOut
            let shape = try constant.flatMap { (t) throws(NudgeError) in try ONNXFile.readInt64s(t, limit: 2, bytes: importer.bytes, source: importer.source) }
            let allowZero = (node.attribute("allowzero")?.int ?? 0) != 0
            guard let width, let shape, shape.count == 2, shape[0] == -1 || (shape[0] == 0 && !allowZero), shape[1] == Int64(width) else {
                throw unsupported(node, index, "only a Reshape to [-1, units] after a layer, which changes nothing, is")
            }
        case "Sub", "Mul", "Div":
            try readNormalization(node, index, constant)
        case "Gemm", "MatMul":
            try readLinear(node, index, constant)
        case "Add":
            guard var layer = layers.last, layer.bias == nil, layer.activation == nil, let bias = constant,
                  node.inputs.count == 2 else {
                throw unsupported(node, index, "Add is read only as the bias of the layer just before it (a MatMul, or a Gemm without C), by a constant")
            }
            try checkVector(bias, length: layer.fanOut, node, index, what: "bias")
            layer.bias = bias
            layers[layers.count - 1] = layer
        case "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Softmax":
            try readActivation(node, index)
        default:
            throw unsupported(node, index, "Nudge imports Gemm, MatMul, Add, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, and Sub/Mul/Div as an input normalisation")
        }
        current = node.outputs[0]
    }

    private mutating func readNormalization(_ node: ONNXFile.Node, _ index: Int, _ constant: ONNXFile.Tensor?) throws(NudgeError) {
        guard layers.isEmpty, let constant, node.inputs.count == 2 else {
            throw unsupported(node, index, "\(node.op) is read only as an input normalisation, by a constant, before the first layer")
        }
        guard node.inputs[0] == current else { throw unsupported(node, index, "the input must come first (x \(node.op == "Sub" ? "-" : node.op == "Mul" ? "*" : "/") constant)") }
        guard constant.dims.count <= 2, constant.dims.dropLast().allSatisfy({ $0 == 1 }), constant.dims.allSatisfy({ $0 >= 1 && $0 <= Int64(Network.maxWidth) }) else {
            throw unsupported(node, index, "its constant has dimensions \(constant.dims); an input normalisation has one value or one per feature")
        }
        var n = normalization ?? NormalizationNodes()
        if node.op == "Sub" {
            guard n.offset == nil, n.factor == nil else { throw unsupported(node, index, "a second offset, or an offset after the scale") }
            n.offset = constant
        } else {
            guard n.factor == nil else { throw unsupported(node, index, "a second scale") }
            n.factor = constant
            n.divides = node.op == "Div"
        }
        normalization = n
    }

    private mutating func readLinear(_ node: ONNXFile.Node, _ index: Int, _ constant: ONNXFile.Tensor?) throws(NudgeError) {
        guard node.inputs.first == current, let weights = node.inputs.count >= 2 ? constants[node.inputs[1]] : nil else {
            throw unsupported(node, index, "its first input must be the layer's input and its second constant weights")
        }
        let gemm = node.op == "Gemm"
        if gemm {
            guard (node.attribute("transA")?.int ?? 0) == 0 else { throw unsupported(node, index, "transA = 1 (the samples must be rows)") }
            guard (node.attribute("alpha")?.float ?? 1) == 1 else { throw unsupported(node, index, "alpha is not 1") }
            if node.inputs.count >= 3 && !node.inputs[2].isEmpty {
                guard (node.attribute("beta")?.float ?? 1) == 1 else { throw unsupported(node, index, "beta is not 1") }
            }
        }
        let transB = gemm && (node.attribute("transB")?.int ?? 0) != 0
        guard weights.dims.count == 2, weights.dims.allSatisfy({ $0 >= 1 && $0 <= Int64(Network.maxWidth) }) else {
            throw unsupported(node, index, "its weights have dimensions \(weights.dims); a layer's weights are a matrix of 1 to \(Network.maxWidth) rows and columns")
        }
        let fanIn = Int(transB ? weights.dims[1] : weights.dims[0]), fanOut = Int(transB ? weights.dims[0] : weights.dims[1])
        if let previous = layers.last, previous.fanOut != fanIn {
            throw unsupported(node, index, "its weights take \(fanIn) values, but the layer before gives \(previous.fanOut)")
        }
        for l in layers.indices where layers[l].activation == nil { layers[l].activation = .identity }
        var layer = ONNXImport.Layer(weights: weights, fanIn: fanIn, fanOut: fanOut, transposed: !transB, bias: nil, activation: nil)
        if gemm, node.inputs.count >= 3, !node.inputs[2].isEmpty {
            guard let bias = constants[node.inputs[2]] else { throw unsupported(node, index, "its bias C is not a constant") }
            try checkVector(bias, length: fanOut, node, index, what: "bias")
            layer.bias = bias
        }
        layers.append(layer)
    }

    private mutating func readActivation(_ node: ONNXFile.Node, _ index: Int) throws(NudgeError) {
        guard var layer = layers.last, layer.activation == nil else {
            throw unsupported(node, index, layers.isEmpty ? "an activation before the first layer" : "a second activation after one layer")
        }
        switch node.op {
        case "Relu": layer.activation = .relu
        case "Sigmoid": layer.activation = .sigmoid
        case "Tanh": layer.activation = .tanh
        case "LeakyRelu":
            let alpha = node.attribute("alpha")?.float ?? 0.01
            guard alpha == Activation.leakySlope else { throw unsupported(node, index, "its alpha is \(alpha); Nudge's leaky ReLU has slope \(Activation.leakySlope)") }
            layer.activation = .leakyRelu
        default:
            let axis = node.attribute("axis")?.int ?? (opset >= 13 ? -1 : 1)
            guard axis == -1 || axis == 1 else { throw unsupported(node, index, "Softmax on axis \(axis); Nudge's softmax is over each sample's outputs (axis -1)") }
            layer.activation = .softmax
        }
        layers[layers.count - 1] = layer
    }

    /// A bias (or other per-unit constant): a scalar, `[length]` or `[1, length]`.
    private func checkVector(_ t: ONNXFile.Tensor, length: Int, _ node: ONNXFile.Node, _ index: Int, what: String) throws(NudgeError) {
        let n = t.dims.allSatisfy({ $0 >= 1 && $0 <= Int64(Network.maxWidth) }) ? ONNXImport.count(t.dims) : -1
        guard t.dims.count <= 2, t.dims.dropLast().allSatisfy({ $0 == 1 }), n == length || n == 1 else {
            throw unsupported(node, index, "its \(what) has dimensions \(t.dims); the layer has \(length) units")
        }
    }
}
