import Glibc
import CZlib

/// Samples in memory: features as a row-major `count x featureCount` Float32 matrix, and optionally
/// one class label per sample. Load one with ``IDX/load(images:labels:)`` or ``CSV/load(path:options:)``.
///
/// A data set never changes after loading, which is why it is `@unchecked Sendable`: its buffers
/// are only read, so any number of threads may read it at once.
///
/// ```swift
/// let train = try IDX.load(images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz")
/// let trainer = try Trainer(network: net)
/// let summary = try train.withUnsafeFeatures { x in
///     try train.withUnsafeLabels { y in try trainer.fit(x, labels: y!) }
/// }
/// ```
public final class Dataset: @unchecked Sendable {
    /// The number of samples.
    public let count: Int
    /// Values per sample (784 for MNIST).
    public let featureCount: Int
    let storage: FloatBuffer
    private let labelStorage: HeapBuffer<Int32>?

    init(count: Int, featureCount: Int, storage: FloatBuffer, labels: HeapBuffer<Int32>?) {
        self.count = count
        self.featureCount = featureCount
        self.storage = storage
        labelStorage = labels
    }

    /// The features, row-major, copied into an array (see ``withUnsafeFeatures(_:)`` for no copy).
    public var features: [Float] { Array(storage.buffer) }

    /// Class labels, one per sample, copied into an array; nil for unlabelled data (see
    /// ``withUnsafeLabels(_:)`` for no copy).
    public var labels: [Int32]? { labelStorage.map { Array($0.buffer) } }

    /// Calls `body` with the features in place (``count`` x ``featureCount`` values, row-major), to
    /// train or predict on a large data set without copying it. The buffer is valid only during the call.
    public func withUnsafeFeatures<Result, Failure: Error>(
        _ body: (UnsafeBufferPointer<Float>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        defer { withExtendedLifetime(self) {} }
        return try body(UnsafeBufferPointer(storage.buffer))
    }

    /// Calls `body` with the labels in place (``count`` values), or nil for unlabelled data. The
    /// buffer is valid only during the call.
    public func withUnsafeLabels<Result, Failure: Error>(
        _ body: (UnsafeBufferPointer<Int32>?) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        defer { withExtendedLifetime(self) {} }
        return try body(labelStorage.map { UnsafeBufferPointer($0.buffer) })
    }

    package var featurePointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }
    package var labelPointer: UnsafePointer<Int32>? { labelStorage.map { UnsafePointer($0.pointer) } }

    /// One more than the largest label (0 without labels).
    public var classCount: Int { Int(labelStorage?.buffer.max() ?? -1) + 1 }
}

/// Reader for IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
public enum IDX {
    /// The most elements an IDX file may declare (16 GiB of features).
    public static let maxElements = 1 << 32
    /// Gzip cannot compress more than about 1032:1, so a file that claims more data than that
    /// could hold is rejected before anything is allocated for it.
    static let maxCompressionRatio = 1100

    /// Loads images (any IDX file of unsigned bytes whose first dimension counts samples; the other
    /// dimensions are flattened into features, scaled to [0, 1]) and, if `labelsPath` is given, a
    /// one-dimensional IDX file of unsigned byte labels with the same count.
    ///
    /// ```swift
    /// let test = try IDX.load(images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz")
    /// test.featureCount   // 784
    /// ```
    ///
    /// - Throws: `io` (a file cannot be opened or read), `format` (not an IDX file of unsigned bytes,
    ///   truncated, corrupt gzip data, or data after the declared elements), `shape` (the label count
    ///   differs from the sample count), `outOfMemory`.
    public static func load(images imagesPath: String, labels labelsPath: String?) throws(NudgeError) -> Dataset {
        var images = try IDXFile(path: imagesPath)
        defer { images.close() }
        guard images.dimensions.count >= 1 else { throw .format("\(imagesPath): an IDX file of samples needs at least 1 dimension") }
        let count = images.dimensions[0]
        // The header check bounded the product of all dimensions, so this one cannot overflow.
        let features = images.dimensions.dropFirst().reduce(1, *)
        let storage = try FloatBuffer(count: count * features, zeroed: false)
        try images.read(count * features) { chunk, offset in
            let p = storage.pointer + offset
            for i in 0..<chunk.count { p[i] = Float(chunk[i]) * (1 / 255) }
        }
        var labels: HeapBuffer<Int32>?
        if let labelsPath {
            var file = try IDXFile(path: labelsPath)
            defer { file.close() }
            guard file.dimensions.count == 1 else {
                throw .format("\(labelsPath): a labels file has 1 dimension, this one has \(file.dimensions.count) (\(file.dimensions))")
            }
            guard file.dimensions[0] == count else {
                throw .shape("\(labelsPath) has \(file.dimensions[0]) labels but \(imagesPath) has \(count) samples")
            }
            let values = try HeapBuffer<Int32>(count: count, zeroed: false)
            try file.read(count) { chunk, offset in
                for i in 0..<chunk.count { values.pointer[offset + i] = Int32(chunk[i]) }
            }
            labels = values
        }
        return Dataset(count: count, featureCount: features, storage: storage, labels: labels)
    }
}

/// An open IDX file with its header read.
private struct IDXFile {
    let path: String
    private var file: gzFile?
    private(set) var dimensions: [Int] = []

    init(path: String) throws(NudgeError) {
        self.path = path
        let opened = try OpenFile(path, what: "IDX file")
        // zlib takes its own descriptor, so that it can close it.
        let fd = fcntl(opened.fd, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0, let f = gzdopen(fd, "rb") else {
            let error = gzopenError("IDX file", path)
            if fd >= 0 { Glibc.close(fd) }
            throw error
        }
        file = f
        var header = [UInt8](repeating: 0, count: 4)
        try readExactly(&header, "the IDX header")
        guard header[0] == 0, header[1] == 0 else {
            close()
            throw .format("\(path): not an IDX file (the first two bytes are not zero)")
        }
        guard header[2] == 0x08 else {
            close()
            throw .format("\(path): IDX element type 0x\(String(header[2], radix: 16)) is not supported (only 0x08, unsigned byte)")
        }
        let rank = Int(header[3])
        guard (1...8).contains(rank) else {
            close()
            throw .format("\(path): IDX rank \(rank) is outside 1...8")
        }
        var dims = [UInt8](repeating: 0, count: 4 * rank)
        try readExactly(&dims, "the IDX dimensions")
        for d in 0..<rank {
            let value = Int(dims[4 * d]) << 24 | Int(dims[4 * d + 1]) << 16 | Int(dims[4 * d + 2]) << 8 | Int(dims[4 * d + 3])
            guard value > 0 else {
                close()
                throw .format("\(path): IDX dimension \(d) is 0; every dimension must be at least 1")
            }
            dimensions.append(value)
        }
        // Each dimension is below 2^32 and there are at most 8, so the product saturates instead of trapping.
        let total = dimensions.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let fileSize = opened.size
        if gzdirect(file) != 0 {
            // A plain file must hold exactly what its header declares.
            let payload = fileSize - 4 - 4 * rank
            guard total == payload else {
                close()
                throw .format(payload < total
                    ? "\(path): dimensions \(dimensions) claim \(total) elements but the file ends early, after \(max(payload, 0))"
                    : "\(path): dimensions \(dimensions) claim \(total) elements; there is data after them (\(payload) in the file)")
            }
        }
        let (expandable, overflow) = fileSize.multipliedReportingOverflow(by: IDX.maxCompressionRatio)
        guard total <= (overflow ? IDX.maxElements : min(IDX.maxElements, expandable)) else {
            close()
            throw .format("\(path): dimensions \(dimensions) claim \(total) elements, more than a \(fileSize)-byte file can hold")
        }
    }

    mutating func close() {
        if let file { gzclose(file) }
        file = nil
    }

    private mutating func readExactly(_ buffer: inout [UInt8], _ what: String) throws(NudgeError) {
        let want = buffer.count
        let got = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(want)) }
        guard got == want else {
            let reason = got < 0 ? "a read error or corrupt gzip data" : "the file ends early"
            let memory = got < 0 && zlibOutOfMemory(file)
            close()
            if memory { throw zlibMemoryError(path) }
            throw .format("\(path): \(reason) while reading \(what)")
        }
    }

    /// Reads `count` elements in chunks, calling `body(chunk, offsetOfFirstElement)`; then checks the file ends.
    mutating func read(_ count: Int, _ body: (UnsafeBufferPointer<UInt8>, Int) -> Void) throws(NudgeError) {
        let chunk: HeapBuffer<UInt8>
        do { chunk = try HeapBuffer<UInt8>(count: min(count, 1 << 20), zeroed: false) } catch {
            close()
            throw error
        }
        var done = 0
        while done < count {
            let want = min(chunk.count, count - done)
            let got = gzread(file, chunk.pointer, UInt32(want))
            guard got == want else {
                let reason = got < 0 ? "a read error or corrupt gzip data" : "the file ends early"
                let memory = got < 0 && zlibOutOfMemory(file)
                close()
                if memory { throw zlibMemoryError(path) }
                throw .format("\(path): \(reason) after \(done) of \(count) elements")
            }
            body(UnsafeBufferPointer(start: chunk.pointer, count: want), done)
            done += want
        }
        var extra: UInt8 = 0
        guard gzread(file, &extra, 1) == 0 else {
            close()
            throw .format("\(path): there is data after the \(count) elements the header declares")
        }
    }
}
