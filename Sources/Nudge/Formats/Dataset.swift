import Glibc

/// Samples in memory: features as a row-major `count x featureCount` Float32 matrix, and optionally
/// one class label and one weight per sample (weights come from a CSV weight column). Load one with ``IDX/load(images:labels:maxBytes:)`` or ``CSV/load(path:options:)``.
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
    private let weightStorage: HeapBuffer<Float>?

    init(count: Int, featureCount: Int, storage: FloatBuffer, labels: HeapBuffer<Int32>?, weights: HeapBuffer<Float>? = nil) {
        self.count = count
        self.featureCount = featureCount
        self.storage = storage
        labelStorage = labels
        weightStorage = weights
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

    /// Per-sample weights, one per sample (finite, 0 or more), copied into an array; nil when the
    /// data set has none, as an IDX data set or a CSV file read without a weight column (see
    /// ``withUnsafeWeights(_:)`` for no copy).
    public var weights: [Float]? { weightStorage.map { Array($0.buffer) } }

    /// Whether the data set has per-sample weights.
    public var hasWeights: Bool { weightStorage != nil }

    /// Calls `body` with the weights in place (``count`` values), or nil when there are none. The
    /// buffer is valid only during the call.
    public func withUnsafeWeights<Result, Failure: Error>(
        _ body: (UnsafeBufferPointer<Float>?) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        defer { withExtendedLifetime(self) {} }
        return try body(weightStorage.map { UnsafeBufferPointer($0.buffer) })
    }

    package var featurePointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }
    package var labelPointer: UnsafePointer<Int32>? { labelStorage.map { UnsafePointer($0.pointer) } }
    package var weightPointer: UnsafePointer<Float>? { weightStorage.map { UnsafePointer($0.pointer) } }

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
    /// Both headers are checked before any data is read: the magic, the element type, the rank,
    /// the dimensions against each other and against the file (a plain file must hold exactly what
    /// its header declares; a gzip file cannot hold more than 1100 bytes per byte of it), and the
    /// size of the data set against `maxBytes`. Memory for the values then grows with the bytes
    /// actually read, never ahead of them, and reading stops at the size the header declares.
    ///
    /// ```swift
    /// let test = try IDX.load(images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz")
    /// test.featureCount   // 784
    /// ```
    ///
    /// - Parameter maxBytes: The most bytes the data set may take (4 per pixel, 4 per label); 0,
    ///   the default, leaves only the machine's memory as the bound.
    /// - Throws: `io` (a file cannot be opened or read), `format` (not an IDX file of unsigned bytes,
    ///   truncated, corrupt gzip data, data after the declared elements or after the gzip stream),
    ///   `shape` (the label count differs from the sample count), `outOfMemory` (more than
    ///   `maxBytes`, or than the machine has), `invalidArgument` (a negative `maxBytes`).
    public static func load(images imagesPath: String, labels labelsPath: String?,
                            maxBytes: Int = 0) throws(NudgeError) -> Dataset {
        guard maxBytes >= 0 else { throw .invalid("maxBytes is \(maxBytes); it must be 0 (no limit) or positive") }
        let images = try IDXFile(path: imagesPath)
        let count = images.dimensions[0]
        // The header check bounded the product of all dimensions, so this one cannot overflow.
        let features = images.dimensions.dropFirst().reduce(1, *)
        var labelFile: IDXFile?
        if let labelsPath {
            let file = try IDXFile(path: labelsPath)
            guard file.dimensions.count == 1 else {
                throw .format("\(labelsPath): a labels file has 1 dimension, this one has \(file.dimensions.count) (\(file.dimensions))")
            }
            guard file.dimensions[0] == count else {
                throw .shape("\(labelsPath) has \(file.dimensions[0]) labels but \(imagesPath) has \(count) samples")
            }
            labelFile = file
        }
        try checkSize(count: count, features: features, labelled: labelFile != nil, maxBytes: maxBytes, path: imagesPath)
        let storage = try images.read(count * features, as: Float.self) { bytes, values in
            for i in 0..<bytes.count { values[i] = Float(bytes[i]) * (1 / 255) }
        }
        let labels = try labelFile?.read(count, as: Int32.self) { bytes, values in
            for i in 0..<bytes.count { values[i] = Int32(bytes[i]) }
        }
        return Dataset(count: count, featureCount: features, storage: storage, labels: labels)
    }

    /// Refuses a data set larger than the caller's limit or the machine's memory, from the headers.
    private static func checkSize(count: Int, features: Int, labelled: Bool, maxBytes: Int, path: String) throws(NudgeError) {
        // At most 2^32 elements each, so no overflow.
        let bytes = 4 * count * features + (labelled ? 4 * count : 0)
        let what = "\(path): \(count) samples of \(features) features\(labelled ? " with labels" : "") take \(bytes) bytes"
        if maxBytes > 0 && bytes > maxBytes {
            throw NudgeError(.outOfMemory, "\(what), more than the limit of \(maxBytes) bytes (max_bytes)")
        }
        guard bytes <= physicalMemoryBytes else {
            throw NudgeError(.outOfMemory, "\(what), more than the \(physicalMemoryBytes) bytes of memory of this machine")
        }
    }
}

/// An open IDX file with its header read and checked.
private final class IDXFile {
    let path: String
    private let source: ByteSource
    private(set) var dimensions: [Int] = []

    init(path: String) throws(NudgeError) {
        self.path = path
        source = try ByteSource(path: path, what: "IDX file")
        let header = try readExactly(4, "the IDX header")
        guard header[0] == 0, header[1] == 0 else {
            throw .format("\(path): not an IDX file (the first two bytes are not zero)")
        }
        guard header[2] == 0x08 else {
            throw .format("\(path): IDX element type 0x\(String(header[2], radix: 16)) is not supported (only 0x08, unsigned byte)")
        }
        let rank = Int(header[3])
        guard (1...8).contains(rank) else {
            throw .format("\(path): IDX rank \(rank) is outside 1...8")
        }
        let dims = try readExactly(4 * rank, "the IDX dimensions")
        for d in 0..<rank {
            let value = Int(dims[4 * d]) << 24 | Int(dims[4 * d + 1]) << 16 | Int(dims[4 * d + 2]) << 8 | Int(dims[4 * d + 3])
            guard value > 0 else {
                throw .format("\(path): IDX dimension \(d) is 0; every dimension must be at least 1")
            }
            dimensions.append(value)
        }
        try checkClaim(rank: rank)
    }

    /// The elements the dimensions declare, against what the file can hold.
    private func checkClaim(rank: Int) throws(NudgeError) {
        // Each dimension is below 2^32 and there are at most 8, so the product saturates instead of trapping.
        let total = dimensions.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let fileSize = source.fileSize
        if !source.isGzip {
            // A plain file must hold exactly what its header declares.
            let payload = fileSize - 4 - 4 * rank
            guard total == payload else {
                throw .format(payload < total
                    ? "\(path): dimensions \(dimensions) claim \(total) elements but the file ends early, after \(max(payload, 0))"
                    : "\(path): dimensions \(dimensions) claim \(total) elements; there is data after them (\(payload) in the file)")
            }
        }
        let (expandable, overflow) = fileSize.multipliedReportingOverflow(by: IDX.maxCompressionRatio)
        guard total <= (overflow ? IDX.maxElements : min(IDX.maxElements, expandable)) else {
            throw .format("\(path): dimensions \(dimensions) claim \(total) elements, more than a \(fileSize)-byte file can hold")
        }
    }

    /// The next `count` bytes of the file.
    private func readExactly(_ count: Int, _ what: String) throws(NudgeError) -> [UInt8] {
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        defer { bytes.deallocate() }
        guard try source.read(into: bytes, count: count) == count else {
            throw .format("\(path): the file ends early while reading \(what)")
        }
        return Array(UnsafeBufferPointer(start: bytes, count: count))
    }

    /// Reads `count` elements, converting each chunk of bytes with `convert(bytes, values)` into
    /// memory that grows with the bytes read (from 1 Mi elements, doubling, up to `count`), so
    /// that a file whose data stops short of its header's claim costs only what it holds. Then
    /// checks that the data ends there.
    func read<Element: BitwiseCopyable>(_ count: Int, as: Element.Type,
                                        _ convert: (UnsafeBufferPointer<UInt8>, UnsafeMutablePointer<Element>) -> Void)
        throws(NudgeError) -> HeapBuffer<Element> {
        var values = GrowingValues<Element>(path: path, count: count)
        let chunkSize = min(count, 1 << 20)
        let chunkBuffer = try HeapBuffer<UInt8>(count: chunkSize, zeroed: false)
        defer { withExtendedLifetime(chunkBuffer) {} }
        let chunk = chunkBuffer.pointer
        var done = 0
        while done < count {
            let want = min(chunkSize, count - done)
            let got = try source.read(into: chunk, count: want)
            guard got == want else {
                throw .format("\(path): the file ends early, after \(done + got) of \(count) elements")
            }
            let destination = try values.room(for: done + want)
            convert(UnsafeBufferPointer(start: chunk, count: want), destination + done)
            done += want
        }
        var extra: UInt8 = 0
        guard try source.read(into: &extra, count: 1) == 0 else {
            throw .format("\(path): there is data after the \(count) elements the header declares")
        }
        return values.finish()
    }
}

/// Values whose memory grows as they arrive (realloc, doubling), up to the `count` a header declared.
private struct GrowingValues<Element: BitwiseCopyable>: ~Copyable {
    let path: String
    let count: Int
    private var pointer: UnsafeMutablePointer<Element>?
    private var capacity = 0

    init(path: String, count: Int) {
        self.path = path
        self.count = count
    }

    deinit { free(pointer) }

    /// The values' memory, with room for at least `needed` of them.
    mutating func room(for needed: Int) throws(NudgeError) -> UnsafeMutablePointer<Element> {
        if needed > capacity {
            let grown = min(count, max(needed, capacity * 2, 1 << 20))
            let bytes = grown * MemoryLayout<Element>.stride
            guard let p = realloc(pointer, bytes) else {
                throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(grown) values of \(path)")
            }
            pointer = p.bindMemory(to: Element.self, capacity: grown)
            capacity = grown
        }
        return pointer.unsafelyUnwrapped
    }

    /// The values, owned by the returned buffer.
    consuming func finish() -> HeapBuffer<Element> {
        let p = pointer.unsafelyUnwrapped
        pointer = nil
        return HeapBuffer(adopting: p, count: count)
    }
}
