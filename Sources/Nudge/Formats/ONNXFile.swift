import Glibc

/// The parts of an ONNX model that import reads, parsed from the bytes with ``ProtoReader``. Tensor
/// values are not copied here: a tensor keeps the byte range of its message, and its values are read
/// straight into the network when they are needed. Every other field is skipped.
struct ONNXFile {
    struct Tensor {
        var name = ""
        var dims: [Int64] = []
        var dataType: Int64 = 0
        /// The TensorProto's bytes, read again for the values.
        var message: Range<Int> = 0..<0
        var external = false
    }

    struct Attribute {
        var name = ""
        var float: Float?
        var int: Int64?
        var tensor: Tensor?
    }

    struct Node {
        var name = ""
        var op = ""
        var domain = ""
        var inputs: [String] = []
        var outputs: [String] = []
        var attributes: [Attribute] = []

        func attribute(_ name: String) -> Attribute? { attributes.first { $0.name == name } }
        /// The node as messages name it: `"gemm_1" (Gemm)`, or `node 3 (Gemm)` without a name.
        func described(_ index: Int) -> String { name.isEmpty ? "node \(index) (\(op))" : "node \"\(name)\" (\(op))" }
    }

    struct Value {
        var name = ""
        /// TensorProto.DataType of a tensor value; nil when the type is missing or not a tensor.
        var elementType: Int64?
        var isTensor = false
        /// Dimensions when the shape is given; nil entries are symbolic (the batch).
        var dims: [Int64?]?
    }

    var opsets: [(domain: String, version: Int64)] = []
    /// metadata_props as byte ranges of the file (values may be large: they are copied once, into the network).
    var metadata: [(key: Range<Int>, value: Range<Int>)] = []
    var nodes: [Node] = []
    var initializers: [Tensor] = []
    var inputs: [Value] = []
    var outputs: [Value] = []
    var sawGraph = false

    /// The most nodes, and the most initializers, a graph may have: far more than an MLP needs
    /// (two to four per layer, up to ``Network/maxLayers`` layers), and few enough that the lists
    /// of a hostile file stay small.
    static let maxNodes = 1 << 16
    /// The most list entries (node inputs, outputs and attributes, dimensions) a whole graph may
    /// have, so that a hostile file of small empty entries cannot expand into much more memory.
    static let maxEntries = 1 << 18
    private var entries = 0

    /// Counts one more list entry of the graph against ``maxEntries``.
    private mutating func entry(_ r: ProtoReader) throws(NudgeError) {
        entries += 1
        guard entries <= Self.maxEntries else { throw r.failure("the graph has more than \(Self.maxEntries) inputs, outputs, attributes and dimensions in all") }
    }

    /// Parses a ModelProto.
    init(_ bytes: UnsafeRawBufferPointer, source: String) throws(NudgeError) {
        if bytes.count >= 8 && (0..<8).allSatisfy({ bytes[$0] == ModelFile.magic[$0] }) {
            throw .format("\(source) is a Nudge model file, not an ONNX model (load it as a model file: nudge_load, Network.load)")
        }
        var r = ProtoReader(bytes, source: source)
        while let (field, wire) = try r.next() {
            switch field {
            case 7:
                try r.expect(.delimited, wire, "ModelProto.graph")
                try readGraph(ProtoReader(bytes, source: source, range: r.delimited()))
                sawGraph = true
            case 8:
                try r.expect(.delimited, wire, "ModelProto.opset_import")
                var o = try ProtoReader(bytes, source: source, range: r.delimited())
                var opset = (domain: "", version: Int64(0))
                while let (f, w) = try o.next() {
                    if f == 1 && w == .delimited { opset.domain = try o.string() } else if f == 2 && w == .varint { opset.version = try o.int() } else { try o.skip(w) }
                }
                opsets.append(opset)
            case 14:
                try r.expect(.delimited, wire, "ModelProto.metadata_props")
                var e = try ProtoReader(bytes, source: source, range: r.delimited())
                var entry = (key: 0..<0, value: 0..<0)
                while let (f, w) = try e.next() {
                    if f == 1 && w == .delimited { entry.key = try e.delimited() } else if f == 2 && w == .delimited { entry.value = try e.delimited() } else { try e.skip(w) }
                }
                guard metadata.count < Network.maxMetadataEntries else {
                    throw r.failure("more than \(Network.maxMetadataEntries) metadata entries, the most a network keeps")
                }
                metadata.append(entry)
            default:
                try r.skip(wire)
            }
        }
        guard sawGraph else { throw .format("\(source) is not an ONNX model: it has no graph") }
    }

    private mutating func readGraph(_ reader: ProtoReader) throws(NudgeError) {
        var r = reader
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, .delimited):
                guard nodes.count < Self.maxNodes else { throw r.failure("the graph has more than \(Self.maxNodes) nodes") }
                nodes.append(try readNode(ProtoReader(r.bytes, source: r.source, range: r.delimited())))
            case (5, .delimited):
                guard initializers.count < Self.maxNodes else { throw r.failure("the graph has more than \(Self.maxNodes) initializers") }
                initializers.append(try readTensor(ProtoReader(r.bytes, source: r.source, range: r.delimited())))
            case (11, .delimited), (12, .delimited):
                guard inputs.count + outputs.count < Self.maxNodes else { throw r.failure("the graph has more than \(Self.maxNodes) inputs and outputs") }
                let value = try readValue(ProtoReader(r.bytes, source: r.source, range: r.delimited()))
                if field == 11 { inputs.append(value) } else { outputs.append(value) }
            case (1, _), (5, _), (11, _), (12, _): try r.expect(.delimited, wire, "GraphProto field \(field)")
            default: try r.skip(wire)
            }
        }
    }

    private mutating func readNode(_ reader: ProtoReader) throws(NudgeError) -> Node {
        var r = reader, node = Node()
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, .delimited), (2, .delimited):
                try entry(r)
                if field == 1 { node.inputs.append(try r.string()) } else { node.outputs.append(try r.string()) }
            case (3, .delimited): node.name = try r.string()
            case (4, .delimited): node.op = try r.string()
            case (7, .delimited): node.domain = try r.string()
            case (5, .delimited):
                try entry(r)
                node.attributes.append(try readAttribute(ProtoReader(r.bytes, source: r.source, range: r.delimited())))
            case (1, _), (2, _), (3, _), (4, _), (5, _), (7, _): try r.expect(.delimited, wire, "NodeProto field \(field)")
            default: try r.skip(wire)
            }
        }
        return node
    }

    private mutating func readAttribute(_ reader: ProtoReader) throws(NudgeError) -> Attribute {
        var r = reader, a = Attribute()
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, .delimited): a.name = try r.string()
            case (2, .fixed32): a.float = Float(bitPattern: try r.fixed32())
            case (3, .varint): a.int = try r.int()
            case (5, .delimited): a.tensor = try readTensor(ProtoReader(r.bytes, source: r.source, range: r.delimited()))
            case (1, _), (2, _), (3, _), (5, _): try r.expect(field == 2 ? .fixed32 : field == 3 ? .varint : .delimited, wire, "AttributeProto field \(field)")
            default: try r.skip(wire)
            }
        }
        return a
    }

    private mutating func readTensor(_ reader: ProtoReader) throws(NudgeError) -> Tensor {
        var r = reader, t = Tensor()
        t.message = r.position..<r.end
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, .varint):
                try entry(r)
                t.dims.append(try r.int())
            case (1, .delimited):
                var packed = try ProtoReader(r.bytes, source: r.source, range: r.delimited())
                while packed.position < packed.end {
                    guard t.dims.count < 64 else { throw r.failure("a tensor has more than 64 dimensions") }
                    try entry(r)
                    t.dims.append(try packed.int())
                }
            case (2, .varint): t.dataType = try r.int()
            case (8, .delimited): t.name = try r.string()
            case (13, .delimited): t.external = true; try r.skip(wire)
            case (14, .varint): if try r.int() == 1 { t.external = true }
            case (1, _), (2, _), (8, _): try r.expect(field == 8 ? .delimited : .varint, wire, "TensorProto field \(field)")
            default: try r.skip(wire)
            }
            guard t.dims.count <= 64 else { throw r.failure("a tensor has more than 64 dimensions") }
        }
        return t
    }

    private mutating func readValue(_ reader: ProtoReader) throws(NudgeError) -> Value {
        var r = reader, v = Value()
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, .delimited): v.name = try r.string()
            case (2, .delimited):
                // TypeProto: tensor_type = 1 { elem_type = 1, shape = 2 { dim = 1 { dim_value = 1 | dim_param = 2 } } }
                var type = try ProtoReader(r.bytes, source: r.source, range: r.delimited())
                while let (tf, tw) = try type.next() {
                    guard tf == 1, tw == .delimited else { try type.skip(tw); continue }
                    v.isTensor = true
                    var tensor = try ProtoReader(r.bytes, source: r.source, range: type.delimited())
                    while let (f, w) = try tensor.next() {
                        if f == 1 && w == .varint { v.elementType = try tensor.int(); continue }
                        guard f == 2, w == .delimited else { try tensor.skip(w); continue }
                        var shape = try ProtoReader(r.bytes, source: r.source, range: tensor.delimited())
                        var dims: [Int64?] = []
                        while let (sf, sw) = try shape.next() {
                            guard sf == 1, sw == .delimited else { try shape.skip(sw); continue }
                            var dim = try ProtoReader(r.bytes, source: r.source, range: shape.delimited())
                            var value: Int64?
                            while let (df, dw) = try dim.next() {
                                if df == 1 && dw == .varint { value = try dim.int() } else { try dim.skip(dw) }
                            }
                            try entry(r)
                            dims.append(value)
                            guard dims.count <= 64 else { throw r.failure("a value has more than 64 dimensions") }
                        }
                        v.dims = dims
                    }
                }
            default: try r.skip(wire)
            }
        }
        return v
    }

    /// Checks that a tensor holds float32 values in the file itself, and returns how many, counted from
    /// the fields' lengths without reading them: so that a tensor that claims more values than it has
    /// is refused before memory is allocated for them.
    static func floatCount(_ t: Tensor, bytes: UnsafeRawBufferPointer, source: String) throws(NudgeError) -> Int {
        let what = t.name.isEmpty ? "a tensor" : "tensor \"\(t.name)\""
        guard !t.external else { throw .format("\(source): \(what) keeps its values in an external file, which Nudge does not read (save the model with its data inside)") }
        guard t.dataType == 1 else {
            throw .format("\(source): \(what) holds \(dataTypeName(t.dataType)) values; Nudge reads float32 weights (convert the model to float32 first)")
        }
        var r = ProtoReader(bytes, source: source, range: t.message)
        var count = 0
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (9, .delimited), (4, .delimited):
                let length = try r.delimited().count
                guard length % 4 == 0 else { throw .format("\(source): \(what) has \(length) bytes of \(field == 9 ? "raw data" : "float_data"), not a whole number of float32 values") }
                count += length / 4
            case (4, .fixed32):
                _ = try r.fixed32()
                count += 1
            default: try r.skip(wire)
            }
        }
        return count
    }

    /// Refuses a tensor that does not hold exactly `count` float32 values in the file (``floatCount(_:bytes:source:)``).
    static func expectFloats(_ t: Tensor, count: Int, bytes: UnsafeRawBufferPointer, source: String) throws(NudgeError) {
        let available = try floatCount(t, bytes: bytes, source: source)
        guard available == count else {
            throw .format("\(source): \(t.name.isEmpty ? "a tensor" : "tensor \"\(t.name)\"") holds \(available) values; its dimensions give \(count)")
        }
    }

    /// Reads a float tensor's `count` values (raw_data, or float_data packed or not), passing each with
    /// its index to `store`; a tensor with another number of values is refused before any is passed.
    static func readFloats(_ t: Tensor, count: Int, bytes: UnsafeRawBufferPointer, source: String,
                           _ store: (Int, Float) throws(NudgeError) -> Void) throws(NudgeError) {
        try expectFloats(t, count: count, bytes: bytes, source: source)
        var r = ProtoReader(bytes, source: source, range: t.message)
        var got = 0
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (9, .delimited):
                let range = try r.delimited()
                for offset in stride(from: range.lowerBound, to: range.upperBound, by: 4) {
                    try store(got, Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))))
                    got += 1
                }
            case (4, .delimited):
                var packed = try ProtoReader(bytes, source: source, range: r.delimited())
                while packed.position < packed.end {
                    try store(got, Float(bitPattern: try packed.fixed32()))
                    got += 1
                }
            case (4, .fixed32):
                try store(got, Float(bitPattern: try r.fixed32()))
                got += 1
            default: try r.skip(wire)
            }
        }
    }

    /// The values of a small int64 tensor (a shape), at most `limit` of them; nil when it is not one.
    static func readInt64s(_ t: Tensor, limit: Int, bytes: UnsafeRawBufferPointer, source: String) throws(NudgeError) -> [Int64]? {
        guard !t.external, t.dataType == 7, t.dims.count <= 1, (t.dims.first ?? 1) <= Int64(limit) else { return nil }
        var r = ProtoReader(bytes, source: source, range: t.message)
        var values: [Int64] = []
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (9, .delimited):
                let range = try r.delimited()
                guard range.count % 8 == 0, range.count / 8 + values.count <= limit else { return nil }
                for i in stride(from: range.lowerBound, to: range.upperBound, by: 8) {
                    values.append(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: Int64.self)))
                }
            case (7, .delimited):
                var packed = try ProtoReader(bytes, source: source, range: r.delimited())
                while packed.position < packed.end {
                    guard values.count < limit else { return nil }
                    values.append(try packed.int())
                }
            case (7, .varint):
                guard values.count < limit else { return nil }
                values.append(try r.int())
            default: try r.skip(wire)
            }
        }
        return values.count == Int(t.dims.first ?? 1) ? values : nil
    }

    static func dataTypeName(_ type: Int64) -> String {
        let names = [1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
                     9: "bool", 10: "float16", 11: "float64 (double)", 12: "uint32", 13: "uint64", 16: "bfloat16"]
        return names[Int(truncatingIfNeeded: type)] ?? "data type \(type)"
    }
}
