import Foundation
import Nudge
import Testing

/// Builds IDX files: 00 00 <type> <rank>, big-endian u32 dimensions, then the data.
func idxBytes(dimensions: [UInt32], data: [UInt8], type: UInt8 = 0x08) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
    for d in dimensions { out += [UInt8(d >> 24), UInt8((d >> 16) & 0xFF), UInt8((d >> 8) & 0xFF), UInt8(d & 0xFF)] }
    return out + data
}

/// Writes `bytes` to `path`, gzip-compressed with /usr/bin/gzip when `compressed` (the path gains ".gz").
@discardableResult
func writeIDX(_ bytes: [UInt8], to path: String, compressed: Bool) throws -> String {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    guard compressed else { return path }
    let gzip = Process()
    gzip.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
    gzip.arguments = ["-f", "-n", path]
    try gzip.run()
    gzip.waitUntilExit()
    #expect(gzip.terminationStatus == 0, "gzip failed")
    return path + ".gz"
}

let gzipAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/gzip")
let fashionMNISTFolder = "/usr/share/datasets/fashion-mnist"
let fashionMNISTPresent = FileManager.default.fileExists(atPath: fashionMNISTFolder + "/t10k-images-idx3-ubyte.gz")

@Suite("IDX reader")
struct IDXTests {
    static let images: [UInt8] = idxBytes(dimensions: [3, 2, 2], data: [0, 255, 128, 1, 2, 3, 4, 5, 250, 251, 252, 253])
    static let labels: [UInt8] = idxBytes(dimensions: [3], data: [7, 0, 9])

    @Test("plain and gzip-compressed files load with values scaled to [0, 1] and labels", .enabled(if: gzipAvailable),
          arguments: [false, true])
    func load(_ compressed: Bool) throws {
        let folder = try TemporaryFolder()
        let imagesPath = try writeIDX(Self.images, to: folder.file("images-idx3-ubyte"), compressed: compressed)
        let labelsPath = try writeIDX(Self.labels, to: folder.file("labels-idx1-ubyte"), compressed: compressed)
        if compressed {
            // Really compressed: gzip's magic number.
            let head = try Data(contentsOf: URL(fileURLWithPath: imagesPath)).prefix(2)
            #expect(Array(head) == [0x1F, 0x8B])
        }
        let set = try IDX.load(images: imagesPath, labels: labelsPath)
        #expect(set.count == 3)
        #expect(set.featureCount == 4)
        let raw: [UInt8] = [0, 255, 128, 1, 2, 3, 4, 5, 250, 251, 252, 253]
        #expect(set.features.count == 12)
        for (f, b) in zip(set.features, raw) {
            #expect(abs(f - Float(b) / 255) <= 1e-7, "\(f) for byte \(b)")
            #expect(f >= 0 && f <= 1)
        }
        #expect(set.features[0] == 0 && set.features[1] == 1)
        #expect(set.labels == [7, 0, 9])
        #expect(set.classCount == 10)

        let unlabelled = try IDX.load(images: imagesPath, labels: nil)
        #expect(unlabelled.labels == nil)
        #expect(unlabelled.classCount == 0)
        #expect(unlabelled.features == set.features)
    }

    @Test("a one-dimensional file of samples has one feature per sample")
    func rankOne() throws {
        let folder = try TemporaryFolder()
        let path = try writeIDX(idxBytes(dimensions: [4], data: [0, 51, 102, 255]), to: folder.file("x"), compressed: false)
        let set = try IDX.load(images: path, labels: nil)
        #expect(set.count == 4 && set.featureCount == 1)
        #expect(zip(set.features, [0, 0.2, 0.4, 1] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    struct BadFile: Sendable, CustomTestStringConvertible {
        var name: String
        var images: [UInt8]
        var labels: [UInt8]?
        var status: NudgeError.Kind
        var fragment: String
        var testDescription: String { name }
    }

    static let badFiles: [BadFile] = [
        BadFile(name: "bad magic", images: [1, 0] + Array(images.dropFirst(2)), labels: nil, status: .format, fragment: "not an IDX file"),
        BadFile(name: "wrong element type (float)", images: idxBytes(dimensions: [3, 2, 2], data: Array(repeating: 0, count: 48), type: 0x0D),
                labels: nil, status: .format, fragment: "0xd"),
        BadFile(name: "rank 0", images: [0, 0, 8, 0], labels: nil, status: .format, fragment: "rank"),
        BadFile(name: "rank 9", images: idxBytes(dimensions: Array(repeating: 1, count: 9), data: [0]), labels: nil,
                status: .format, fragment: "rank"),
        BadFile(name: "truncated header", images: [0, 0, 8, 3, 0, 0], labels: nil, status: .format, fragment: "ends early"),
        BadFile(name: "truncated data", images: Array(images.dropLast(3)), labels: nil, status: .format, fragment: "ends early"),
        BadFile(name: "trailing data", images: images + [9], labels: nil, status: .format, fragment: "after"),
        BadFile(name: "empty file", images: [], labels: nil, status: .format, fragment: "header"),
        BadFile(name: "zero samples", images: idxBytes(dimensions: [0, 2, 2], data: []), labels: nil, status: .format, fragment: "dimension 0 is 0"),
        BadFile(name: "count mismatch", images: images, labels: idxBytes(dimensions: [4], data: [1, 2, 3, 4]),
                status: .shape, fragment: "4 labels"),
        BadFile(name: "labels with 2 dimensions", images: images, labels: idxBytes(dimensions: [3, 1], data: [1, 2, 3]),
                status: .format, fragment: "1 dimension"),
        BadFile(name: "truncated labels", images: images, labels: idxBytes(dimensions: [3], data: [1, 2]),
                status: .format, fragment: "ends early"),
        BadFile(name: "trailing labels", images: images, labels: idxBytes(dimensions: [3], data: [1, 2, 3, 4]),
                status: .format, fragment: "after"),
        BadFile(name: "huge claim in a tiny file", images: idxBytes(dimensions: [0x7FFF_FFFF, 28, 28], data: [1, 2, 3]),
                labels: nil, status: .format, fragment: "claim"),
        BadFile(name: "huge label count in a tiny file", images: images, labels: idxBytes(dimensions: [0xFFFF_FFFF], data: [1]),
                status: .format, fragment: "claim"),
        BadFile(name: "overflowing dimensions", images: idxBytes(dimensions: Array(repeating: 0xFFFF_FFFF, count: 8), data: [1]),
                labels: nil, status: .format, fragment: "claim"),
    ]

    @Test("bad files are rejected with the right status", arguments: badFiles, [false, true])
    func badFile(_ bad: BadFile, _ compressed: Bool) throws {
        guard !compressed || gzipAvailable else { return }
        let folder = try TemporaryFolder()
        let imagesPath = try writeIDX(bad.images, to: folder.file("images"), compressed: compressed)
        let labelsPath = try bad.labels.map { try writeIDX($0, to: folder.file("labels"), compressed: compressed) }
        expectNudgeError(bad.status, bad.fragment) { try IDX.load(images: imagesPath, labels: labelsPath) }
    }

    @Test("missing files and directories give io")
    func ioErrors() throws {
        let folder = try TemporaryFolder()
        let images = try writeIDX(Self.images, to: folder.file("images"), compressed: false)
        expectNudgeError(.io, "missing-images") { try IDX.load(images: folder.file("missing-images"), labels: nil) }
        expectNudgeError(.io, "missing-labels") { try IDX.load(images: images, labels: folder.file("missing-labels")) }
        expectNudgeError(.io, folder.path) { try IDX.load(images: folder.path, labels: nil) }
        expectNudgeError(.io) { try IDX.load(images: images, labels: folder.path) }
        expectNudgeError(.invalidArgument, "empty") { try IDX.load(images: "", labels: nil) }
    }

    @Test("corrupt gzip data is rejected with format", .enabled(if: gzipAvailable))
    func corruptGzip() throws {
        let folder = try TemporaryFolder()
        // Enough data that the compressed stream is not trivial.
        let big = idxBytes(dimensions: [50, 10, 10], data: (0..<5000).map { UInt8(($0 * 7919) % 251) })
        let path = try writeIDX(big, to: folder.file("images"), compressed: true)
        var gz = try Data(contentsOf: URL(fileURLWithPath: path))
        // A gzip stream cut in half.
        try gz.prefix(gz.count / 2).write(to: URL(fileURLWithPath: path))
        expectNudgeError(.format) { try IDX.load(images: path, labels: nil) }
        // Garbage in the middle of the deflate data.
        for i in (gz.count / 3)..<(gz.count / 3 + 8) { gz[i] ^= 0xA5 }
        try gz.write(to: URL(fileURLWithPath: path))
        expectNudgeError(.format) { try IDX.load(images: path, labels: nil) }
    }

    /// Dimensions whose product overflows Int once a zero dimension hides the overflow from the size check:
    /// the header claims 0 elements, so it passes the "more than the file can hold" test. Loading must fail
    /// cleanly (format) rather than trap; run in a child process so that a trap fails only this test.
    @Test("dimensions with a zero and an overflowing product are rejected without a crash",
          arguments: [[0, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], [1, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0]] as [[UInt32]])
    func zeroDimensionOverflow(_ dimensions: [UInt32]) async throws {
        let folder = try TemporaryFolder()
        let path = try writeIDX(idxBytes(dimensions: dimensions, data: []), to: folder.file("images"), compressed: false)
        // Exit codes: 0 format error (right), 2 success, 3 another status, 4 another error; a trap is a signal.
        await #expect(processExitsWith: .success) { [path = path as String] in
            var code: Int32 = 0
            do {
                _ = try IDX.load(images: path, labels: nil)
                code = 2
            } catch let error as NudgeError {
                code = error.kind == .format ? 0 : 3
            } catch {
                code = 4
            }
            exit(code)
        }
        withExtendedLifetime(folder) {}
    }

    @Test("Fashion-MNIST test set: 10000 x 784, labels 0...9",
          .enabled(if: fashionMNISTPresent, "Fashion-MNIST is not installed at \(fashionMNISTFolder)"))
    func fashionMNIST() throws {
        let set = try IDX.load(images: fashionMNISTFolder + "/t10k-images-idx3-ubyte.gz",
                               labels: fashionMNISTFolder + "/t10k-labels-idx1-ubyte.gz")
        #expect(set.count == 10000)
        #expect(set.featureCount == 784)
        let features = set.features
        #expect(features.count == 10000 * 784)
        #expect(features.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(features.contains(1) && features.contains(0))
        let labels = try #require(set.labels)
        #expect(labels.count == 10000)
        #expect(labels.allSatisfy { (0...9).contains($0) })
        #expect(set.classCount == 10)
        // The test set is balanced: 1000 of each class.
        var counts = [Int](repeating: 0, count: 10)
        for l in labels { counts[Int(l)] += 1 }
        #expect(counts == Array(repeating: 1000, count: 10))
    }
}
