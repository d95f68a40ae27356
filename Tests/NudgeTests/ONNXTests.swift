@testable import Nudge
import Testing

/// The protobuf wire format as the ONNX code writes and reads it, and ONNX round trips through the
/// Swift API. ONNX Runtime's agreement is tested from Python (bindings/python/tests/test_onnx.py).
@Suite("ONNX")
struct ONNXTests {
    static func encoded(_ message: ProtoMessage) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: message.size) { buffer, count in
            let end = message.encode(into: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = end - UnsafeMutableRawPointer(buffer.baseAddress!)
        }
    }

    @Test("varints: sizes and values at every length boundary, negative int64 in ten bytes")
    func varints() throws {
        let values: [UInt64] = [0, 1, 127, 128, 16383, 16384, 1 << 35, UInt64(Int64.max), UInt64.max]
        var message = ProtoMessage()
        for v in values { message.varint(1, v) }
        message.varint(2, -3)
        let bytes = Self.encoded(message)
        #expect(bytes.count == message.size)
        #expect(Array(bytes[0..<4]) == [0x08, 0x00, 0x08, 0x01])
        #expect(Array(bytes[6..<9]) == [0x08, 0x80, 0x01])
        try bytes.withUnsafeBytes { raw in
            var r = ProtoReader(raw, source: "test")
            for v in values {
                let (field, wire) = try #require(try r.next())
                #expect(field == 1 && wire == .varint)
                #expect(try r.varint() == v)
            }
            let (field, _) = try #require(try r.next())
            #expect(field == 2)
            let at = r.position
            #expect(try r.int() == -3)
            #expect(r.position - at == 10)
            #expect(try r.next() == nil)
        }
    }

    @Test("the reader refuses what would read past the end or overflow", arguments: [
        ([0x08], "ends inside a number"),
        ([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "longer than 64 bits"),
        ([0x12, 0x05, 0x61], "claims 5 bytes, but only 1 remain"),
        ([0x0B], "wire type 3"),
        ([0x00], "field number 0"),
        ([0x15, 0x00, 0x00], "ends inside a 32-bit value"),
    ] as [([UInt8], String)])
    func readerRefuses(bytes: [UInt8], message: String) {
        bytes.withUnsafeBytes { raw in
            var r = ProtoReader(raw, source: "test")
            do throws(NudgeError) {
                while let (_, wire) = try r.next() { try r.skip(wire) }
                Issue.record("no error for \(bytes)")
            } catch {
                #expect(error.kind == .format)
                #expect(error.message.contains(message), "\(error.message)")
            }
        }
    }

    @Test("export and import give back the network, its normalisation and metadata, bit for bit")
    func roundTrip() throws {
        let net = try Network(layerSizes: [6, 5, 4, 3], activations: [.leakyRelu, .tanh, .softmax], seed: 9)
        try net.setNormalization(InputNormalization(offset: [1, 2, 3, 4, 5, 6], scale: [0.5, 0.25, 2, 1, 3, 0.125]))
        try net.setMetadata("a\nb\nc", forKey: "class_names")
        try net.setMetadata("Größe ≥ 3 — 学習", forKey: "説明")
        let bytes = try ONNX.encode(net)
        #expect(bytes.count == (try ONNX.encodedSize(net)))
        let back = try ONNX.decode(bytes)
        #expect(back.layerSizes == net.layerSizes && back.activations == net.activations)
        #expect(back.parameters.map(\.bitPattern) == net.parameters.map(\.bitPattern))
        #expect(back.normalization == net.normalization)
        #expect(back.metadata.map(\.key) == net.metadata.map(\.key) && back.metadata.map(\.value) == net.metadata.map(\.value))
        var small = [UInt8](repeating: 0, count: bytes.count - 1)
        #expect(throws: NudgeError.self) {
            try small.withUnsafeMutableBytes { buffer in _ = try ONNX.encode(net, into: buffer) }
        }
    }
}
