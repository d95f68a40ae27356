import Foundation
import Nudge
import Testing

@Suite("Model file")
struct ModelFileTests {
    static let classes = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"

    static func sample() throws -> Network {
        let net = try Network.random([5, 7, 4, 3], [.relu, .leakyRelu, .softmax], seed: 100)
        try net.setMetadata(classes, forKey: "classes")
        try net.setMetadata("Größe ≥ 3 — 学習 🧥👟", forKey: "beschreibung-説明")
        try net.setMetadata("", forKey: "empty value")
        return net
    }

    static func small() throws -> Network {
        let net = try Network.random([2, 3, 2], [.tanh, .softmax], seed: 7)
        try net.setMetadata("v", forKey: "k")
        return net
    }

    static func expectSame(_ a: Network, _ b: Network, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.layerSizes == b.layerSizes, sourceLocation: sourceLocation)
        #expect(a.activations == b.activations, sourceLocation: sourceLocation)
        #expect(a.parameterBits == b.parameterBits, sourceLocation: sourceLocation)
        #expect(a.metadata.map(\.key) == b.metadata.map(\.key), sourceLocation: sourceLocation)
        #expect(a.metadata.map(\.value) == b.metadata.map(\.value), sourceLocation: sourceLocation)
    }

    @Test("encode -> decode gives identical architecture, parameters and UTF-8 metadata")
    func roundTrip() throws {
        let net = try Self.sample()
        // Include values whose bit patterns must survive exactly.
        var p = net.parameters
        p[0] = -0.0
        p[1] = .leastNonzeroMagnitude
        p[2] = -.greatestFiniteMagnitude
        try net.setParameters(p)
        let bytes = try ModelFile.encode(net)
        let back = try ModelFile.decode(bytes)
        Self.expectSame(net, back)
        #expect(back.metadataValue(forKey: "classes") == Self.classes)
        #expect(back.metadataValue(forKey: "beschreibung-説明") == "Größe ≥ 3 — 学習 🧥👟")
        #expect(back.metadataValue(forKey: "empty value") == "")
        #expect(back.parameters[0].sign == .minus && back.parameters[0] == 0)
        // Same predictions.
        var rng = TestRandom(seed: 1)
        let x = rng.floats(4 * 5, in: -1...1)
        #expect(try back.outputs(x) == net.outputs(x))
        // Encoding is deterministic, and re-encoding the decoded network gives the same bytes.
        #expect(try ModelFile.encode(back) == bytes)
        // The pointer-based decoder agrees.
        let viaPointer = try bytes.withUnsafeBytes { try ModelFile.decode($0, source: "memory") }
        Self.expectSame(net, viaPointer)
    }

    @Test("the encoded layout follows the documented format")
    func layout() throws {
        let net = try Self.small()
        let bytes = try ModelFile.encode(net)
        #expect(Array(bytes[0..<8]) == ModelFile.magic)
        #expect(ModelFile.magic == [0x89, 0x4E, 0x44, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(bytes.u32(at: 8) == 1, "a network without normalisation is written as format version 1")
        #expect(bytes.u32(at: 12) == 0)
        #expect(bytes.u64(at: 16) == UInt64(bytes.count))
        #expect(bytes.u32(at: 24) == 3)
        #expect(bytes.u32(at: 28) == 1)
        #expect(bytes.u64(at: 32) == UInt64(net.parameterCount))
        #expect([bytes.u32(at: 40), bytes.u32(at: 44), bytes.u32(at: 48)] == [2, 3, 2])
        #expect([bytes.u32(at: 52), bytes.u32(at: 56)] == [2, 5 /* the file's codes of tanh and softmax */])
        #expect(bytes.u32(at: 60) == 1 && bytes[64] == UInt8(ascii: "k") && bytes.u32(at: 65) == 1 && bytes[69] == UInt8(ascii: "v"))
        let params = (0..<net.parameterCount).map { bytes.u32(at: 70 + 4 * $0) }
        #expect(params == net.parameterBits)
        #expect(bytes.count == 70 + 4 * net.parameterCount + 4)
        // The trailing CRC-32 is the standard one (checked against an independent implementation).
        #expect(bytes.u32(at: bytes.count - 4) == CRC32.checksum(bytes.dropLast(4)))
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test("every single-byte corruption is rejected with format or version", arguments: [UInt8(0xFF), 0x01, 0x80])
    func byteFlips(_ mask: UInt8) throws {
        let good = try ModelFile.encode(try Self.small())
        #expect(good.count == 70 + 4 * 17 + 4)
        for i in good.indices {
            var bad = good
            bad[i] ^= mask
            do {
                _ = try ModelFile.decode(bad)
                Issue.record("byte \(i) ^ 0x\(String(mask, radix: 16)) was accepted")
            } catch {
                #expect(error.kind == .format || error.kind == .version, "byte \(i): \(error)")
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test("every truncation, and trailing bytes, are rejected with format")
    func truncations() throws {
        let good = try ModelFile.encode(try Self.small())
        for length in 0..<good.count {
            let error = expectNudgeError(.format) { try ModelFile.decode(Array(good[0..<length])) }
            if length >= 12, let error {
                #expect(error.message.contains("bytes") || error.message.contains("truncated"), "length \(length): \(error.message)")
            }
        }
        expectNudgeError(.format) { try ModelFile.decode(good + [0]) }
        expectNudgeError(.format, "not a Nudge model file") { try ModelFile.decode(Array(repeating: 0, count: 200)) }
    }

    @Test("a future format version gives version, even with a valid CRC")
    func futureVersion() throws {
        var bytes = try ModelFile.encode(try Self.small())
        bytes.setU32(ModelFile.formatVersion + 1, at: 8)
        bytes.fixCRC()
        expectNudgeError(.version, "version \(ModelFile.formatVersion + 1)") { try ModelFile.decode(bytes) }
        bytes.setU32(0xFFFF_FFFF, at: 8)
        bytes.fixCRC()
        expectNudgeError(.version) { try ModelFile.decode(bytes) }
        bytes.setU32(0, at: 8)
        bytes.fixCRC()
        expectNudgeError(.format, "version 0") { try ModelFile.decode(bytes) }
    }

    /// A patch of the small model's bytes that keeps the CRC valid.
    struct Patch: Sendable, CustomTestStringConvertible {
        var name: String
        var apply: @Sendable (inout [UInt8]) -> Void
        var testDescription: String { name }
    }

    static let inconsistent: [Patch] = [
        Patch(name: "parameter count + 1") { $0.setU64($0.u64(at: 32) + 1, at: 32) },
        Patch(name: "parameter count huge") { $0.setU64(UInt64.max, at: 32) },
        Patch(name: "a layer size changed") { $0.setU32(4, at: 44) },
        Patch(name: "layer size 0") { $0.setU32(0, at: 44) },
        Patch(name: "layer size huge") { $0.setU32(0xFFFF_FFFF, at: 40) },
        Patch(name: "layer count 1") { $0.setU32(1, at: 24) },
        Patch(name: "layer count 4") { $0.setU32(4, at: 24) },
        Patch(name: "layer count huge") { $0.setU32(0xFFFF_FFFF, at: 24) },
        Patch(name: "metadata count + 1") { $0.setU32(2, at: 28) },
        Patch(name: "metadata count huge") { $0.setU32(0xFFFF_FFFF, at: 28) },
        Patch(name: "metadata count 0") { $0.setU32(0, at: 28) },
        Patch(name: "key length huge") { $0.setU32(0xFFFF_FFFF, at: 60) },
        Patch(name: "key length beyond the file") { $0.setU32(200, at: 60) },
        Patch(name: "empty key") { $0.setU32(0, at: 60) },
        Patch(name: "key not UTF-8") { $0[64] = 0xC3 },
        Patch(name: "unknown activation") { $0.setU32(99, at: 52) },
        Patch(name: "negative activation") { $0.setU32(0xFFFF_FFFF, at: 52) },
        Patch(name: "softmax in the hidden layer") { $0.setU32(5 /* softmax */, at: 52) },
        Patch(name: "NaN parameter") { $0.setU32(Float.nan.bitPattern, at: 70) },
        Patch(name: "infinite parameter") { $0.setU32(Float.infinity.bitPattern, at: 70 + 4 * 16) },
        Patch(name: "unknown flags") { $0.setU32(1, at: 12) },
        Patch(name: "magic first byte") { $0[0] = 0x88 },
        Patch(name: "magic last byte") { $0[7] = 0x0B },
        Patch(name: "file size field") { $0.setU64($0.u64(at: 16) - 1, at: 16) },
    ]

    @Test("a valid CRC with inconsistent contents gives format", arguments: inconsistent)
    func inconsistentContents(_ patch: Patch) throws {
        var bytes = try ModelFile.encode(try Self.small())
        patch.apply(&bytes)
        bytes.fixCRC()
        expectNudgeError(.format) { try ModelFile.decode(bytes, source: "patched") }
    }

    @Test("duplicate metadata keys in a file give format")
    func duplicateKeys() throws {
        let net = try Network.random([2, 2], [.identity], seed: 1)
        try net.setMetadata("1", forKey: "a")
        try net.setMetadata("2", forKey: "b")
        var bytes = try ModelFile.encode(net)
        // Entries start at 52: (u32 1, "a", u32 1, "1") then (u32 1, "b", u32 1, "2").
        #expect(bytes[56] == UInt8(ascii: "a") && bytes[66] == UInt8(ascii: "b"))
        bytes[66] = UInt8(ascii: "a")
        bytes.fixCRC()
        expectNudgeError(.format, "metadata") { try ModelFile.decode(bytes) }
    }

    @Test("save and load through a file; saving over a file replaces it and leaves no temporary files")
    func saveAndLoad() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("model.nudge")
        let first = try Self.sample()
        try ModelFile.save(first, to: path)
        Self.expectSame(first, try ModelFile.load(from: path))
        #expect(try folder.contents() == ["model.nudge"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(try ModelFile.encode(first)))

        let second = try Network.random([3, 2], [.sigmoid], seed: 2)
        try ModelFile.save(second, to: path)
        Self.expectSame(second, try ModelFile.load(from: path))
        #expect(try folder.contents() == ["model.nudge"])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o644)
    }

    @Test("saving into a missing folder gives io and creates nothing")
    func saveIntoMissingFolder() throws {
        let folder = try TemporaryFolder()
        let missing = folder.file("does-not-exist")
        expectNudgeError(.io, "does-not-exist") { try ModelFile.save(try Self.small(), to: missing + "/model.nudge") }
        #expect(!FileManager.default.fileExists(atPath: missing))
        #expect(try folder.contents().isEmpty)
        expectNudgeError(.invalidArgument, "empty") { try ModelFile.save(try Self.small(), to: "") }
    }

    @Test("a failed save leaves what was there intact and no temporary files")
    func failedSave() throws {
        let folder = try TemporaryFolder()
        // The target path is a directory holding a file: the rename fails.
        let target = folder.file("model.nudge")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        let inside = target + "/keep.txt"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: inside))
        expectNudgeError(.io, "model.nudge") { try ModelFile.save(try Self.small(), to: target) }
        #expect(try folder.contents() == ["model.nudge"])
        #expect(try String(contentsOfFile: inside, encoding: .utf8) == "keep")

        // A model file whose folder path goes through a regular file: the old file is untouched.
        let old = folder.file("old.nudge")
        let original = try Self.sample()
        try ModelFile.save(original, to: old)
        let oldBytes = try Data(contentsOf: URL(fileURLWithPath: old))
        expectNudgeError(.io) { try ModelFile.save(try Self.small(), to: old + "/inner.nudge") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: old)) == oldBytes)
        #expect(try folder.contents() == ["model.nudge", "old.nudge"])
        Self.expectSame(original, try ModelFile.load(from: old))
    }

    @Test("loading: missing file and directory give io, other files give format")
    func loadErrors() throws {
        let folder = try TemporaryFolder()
        expectNudgeError(.io, "missing.nudge") { try ModelFile.load(from: folder.file("missing.nudge")) }
        expectNudgeError(.io, "directory") { try ModelFile.load(from: folder.path) }
        expectNudgeError(.invalidArgument, "empty") { try ModelFile.load(from: "") }
        let text = folder.file("text.nudge")
        try Data("this is not a model file, just some text that is long enough".utf8).write(to: URL(fileURLWithPath: text))
        expectNudgeError(.format, "text.nudge") { try ModelFile.load(from: text) }
        let empty = folder.file("empty.nudge")
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        expectNudgeError(.format) { try ModelFile.load(from: empty) }
        // A corrupted file on disk names its path.
        let corrupt = folder.file("corrupt.nudge")
        var bytes = try ModelFile.encode(try Self.small())
        bytes[80] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt))
        expectNudgeError(.format, "corrupt.nudge", "CRC") { try ModelFile.load(from: corrupt) }
    }
}
