/// A per-feature (or global) affine map applied to every input before the first layer:
/// `x' = (x - offset) * scale`. It belongs to the network and travels in its model file, so a model
/// trained on raw values (pixels 0...255, say) predicts on raw values everywhere it is loaded.
public struct InputNormalization: Sendable, Equatable {
    /// How ``Network/fitNormalization(_:kind:)`` and training (``TrainingOptions/normalization``)
    /// choose offset and scale.
    public enum Kind: Sendable, CaseIterable {
        /// No normalisation (as a training option: leave the network's as it is).
        case none
        /// One mean and standard deviation over every value of every feature: suits images.
        case global
        /// A mean and standard deviation per feature (a constant feature is only centred): suits tables.
        case perFeature

        /// A stable lower-case name, such as `"per_feature"`.
        public var name: String {
            switch self {
            case .none: "none"
            case .global: "global"
            case .perFeature: "per_feature"
            }
        }
    }

    /// The offsets, then the scales, ``count`` of each, in one buffer from the checked allocator
    /// (an input size of 2^24 makes them 128 MiB); never changed once made, so copies share it.
    let values: FloatBuffer

    /// The number of offsets (and of scales): 1 (global) or one per input feature.
    public var count: Int { values.count / 2 }
    package var offsets: UnsafePointer<Float> { UnsafePointer(values.pointer) }
    package var scales: UnsafePointer<Float> { UnsafePointer(values.pointer + count) }

    /// What is subtracted from each input: one value (global) or one per input feature, copied.
    public var offset: [Float] { Array(UnsafeBufferPointer(start: offsets, count: count)) }
    /// What each centred input is multiplied by, as many as ``offset``, copied.
    public var scale: [Float] { Array(UnsafeBufferPointer(start: scales, count: count)) }

    /// A normalisation from explicit values: `offset` and `scale` have the same length (1, or the
    /// network's input size, which ``Network/setNormalization(_:)`` checks), and all are finite.
    ///
    /// - Throws: `shape` (empty, or lengths differ), `notFinite`, `outOfMemory`.
    public init(offset: [Float], scale: [Float]) throws(NudgeError) {
        let made = try offset.withUnsafeBufferPointer { (o) throws(NudgeError) in
            try scale.withUnsafeBufferPointer { (s) throws(NudgeError) in try InputNormalization(offset: o, scale: s) }
        }
        self = made
    }

    /// A normalisation copied from a caller's buffers, with the checks of the array form.
    ///
    /// - Throws: `shape`, `notFinite`, `outOfMemory`.
    public init(offset: UnsafeBufferPointer<Float>, scale: UnsafeBufferPointer<Float>) throws(NudgeError) {
        guard !offset.isEmpty, offset.count == scale.count else {
            throw .shape("normalisation offset has \(offset.count) values and scale \(scale.count); they need the same count, at least 1")
        }
        try InputNormalization.checkFinite(offset.baseAddress!, scale.baseAddress!, offset.count)
        let values = try FloatBuffer(count: try checkedProduct(offset.count, 2, "normalisation values"), zeroed: false)
        values.pointer.update(from: offset.baseAddress!, count: offset.count)
        (values.pointer + offset.count).update(from: scale.baseAddress!, count: offset.count)
        self.values = values
    }

    /// Takes `values` (offsets then scales, an even count of at least 2) after checking them.
    init(adopting values: FloatBuffer) throws(NudgeError) {
        precondition(values.count >= 2 && values.count % 2 == 0, "InputNormalization: odd value count")
        try InputNormalization.checkFinite(values.pointer, values.pointer + values.count / 2, values.count / 2)
        self.values = values
    }

    private static func checkFinite(_ offset: UnsafePointer<Float>, _ scale: UnsafePointer<Float>, _ count: Int) throws(NudgeError) {
        for i in 0..<count where !offset[i].isFinite {
            throw NudgeError(.notFinite, "normalisation offset[\(i)] is \(offset[i]); it must be finite")
        }
        for i in 0..<count where !scale[i].isFinite {
            throw NudgeError(.notFinite, "normalisation scale[\(i)] is \(scale[i]); it must be finite")
        }
    }

    public static func == (a: InputNormalization, b: InputNormalization) -> Bool {
        a.values.count == b.values.count && (0..<a.values.count).allSatisfy { a.values.pointer[$0] == b.values.pointer[$0] }
    }

    /// Fits offsets (means) and scales (1 / standard deviation) on `rows` samples of `width` features.
    /// Returns nil for ``Kind/none``. Statistics are accumulated in double precision, in two passes,
    /// in buffers from the checked allocator.
    ///
    /// For samples spread over processes, `total` is the samples of all of them, and `combine` sums
    /// each pass's per-feature sums across them, so every process fits what one process would on all.
    static func fit(_ inputs: UnsafePointer<Float>, rows: Rows, width: Int, kind: Kind, total: Int? = nil,
                    combine: ((UnsafeMutableBufferPointer<Double>) throws(NudgeError) -> Void)? = nil) throws(NudgeError) -> InputNormalization? {
        guard kind != .none else { return nil }
        guard (total ?? rows.count) > 0 else { throw .invalid("normalisation needs at least one sample to fit on") }
        let features = kind == .global ? 1 : width
        let sums = try HeapBuffer<Double>(count: width), squares = try HeapBuffer<Double>(count: width)
        let values = try FloatBuffer(count: 2 * features, zeroed: false)
        func forEachRow(_ body: (UnsafePointer<Float>) -> Void) {
            switch rows {
            case .range(let start, let count):
                for r in start..<(start + count) { body(inputs + r * width) }
            case .indices(let index, let count):
                for r in 0..<count { body(inputs + index[r] * width) }
            }
        }
        let s = sums.pointer, q = squares.pointer
        forEachRow { row in for j in 0..<width { s[j] += Double(row[j]) } }
        try combine?(sums.buffer)
        let n = Double(total ?? rows.count)
        // The means, kept in double precision in `sums` (global: its first entry).
        if kind == .global {
            s[0] = sums.buffer.reduce(0, +) / (n * Double(width))
        } else {
            for j in 0..<width { s[j] /= n }
        }
        forEachRow { row in
            for j in 0..<width {
                let d = Double(row[j]) - s[kind == .global ? 0 : j]
                q[j] += d * d
            }
        }
        try combine?(squares.buffer)
        if kind == .global { q[0] = squares.buffer.reduce(0, +) / (n * Double(width)) } else { for j in 0..<width { q[j] /= n } }
        for j in 0..<features {
            let std = q[j].squareRoot()
            values.pointer[j] = Float(s[j])
            // A constant feature is only centred: dividing by a zero (or rounding-noise) spread would
            // blow up any other value it takes later.
            values.pointer[features + j] = std > 1e-7 * max(abs(s[j]), 1) ? Float(1 / std) : 1
        }
        return try InputNormalization(adopting: values)
    }
}

extension Network {
    /// Sets the input normalisation (nil removes it). Its length must be 1 or ``inputSize``.
    ///
    /// ```swift
    /// // Pixels 0...255 in, values around 0 for the first layer.
    /// try net.setNormalization(InputNormalization(offset: [127.5], scale: [1 / 127.5]))
    /// ```
    ///
    /// - Throws: `shape` for another length; the network is then unchanged.
    public func setNormalization(_ normalization: InputNormalization?) throws(NudgeError) {
        guard let normalization else {
            self.normalization = nil
            inputOffset = nil
            inputScale = nil
            return
        }
        let count = normalization.count
        guard count == 1 || count == inputSize else {
            throw .shape("normalisation has \(count) values; this network needs 1 (global) or \(inputSize) (one per input)")
        }
        let offset = try FloatBuffer(count: inputSize, zeroed: false)
        let scale = try FloatBuffer(count: inputSize, zeroed: false)
        for j in 0..<inputSize {
            offset.pointer[j] = normalization.offsets[count == 1 ? 0 : j]
            scale.pointer[j] = normalization.scales[count == 1 ? 0 : j]
        }
        self.normalization = normalization
        inputOffset = offset
        inputScale = scale
    }

    /// Fits the input normalisation on `rows` samples and sets it (``InputNormalization/Kind/none`` removes it).
    /// The C ABI's form: its caller's count is already checked against the pointer's size.
    package func fitNormalization(_ inputs: UnsafePointer<Float>, rows: Int, kind: InputNormalization.Kind) throws(NudgeError) {
        try validate(inputs: inputs, targets: nil, rows: rows)
        try setNormalization(InputNormalization.fit(inputs, rows: .range(start: 0, count: rows), width: inputSize, kind: kind))
    }

    /// Fits the input normalisation on samples (`inputs.count` a multiple of ``inputSize``) and sets
    /// it: offset = mean, scale = 1 / standard deviation, over all values (``InputNormalization/Kind/global``)
    /// or per input (``InputNormalization/Kind/perFeature``; a constant input is only centred).
    /// ``InputNormalization/Kind/none`` removes it. Training can do this itself: see
    /// ``TrainingOptions/normalization``.
    ///
    /// ```swift
    /// try net.fitNormalization(trainImages, kind: .global)
    /// net.normalization?.offset   // [the mean pixel]
    /// ```
    ///
    /// - Throws: `shape` (not whole samples), `invalidArgument` (no samples), `notFinite` (NaN or
    ///   infinite inputs), `outOfMemory`; the network is then unchanged.
    public func fitNormalization(_ inputs: [Float], kind: InputNormalization.Kind) throws(NudgeError) {
        try inputs.withUnsafeBufferPointer { (x) throws(NudgeError) in try fitNormalization(x, kind: kind) }
    }

    /// ``fitNormalization(_:kind:)`` on a buffer of samples, without copying it.
    public func fitNormalization(_ inputs: UnsafeBufferPointer<Float>, kind: InputNormalization.Kind) throws(NudgeError) {
        try fitNormalization(start(inputs), rows: sampleCount(inputs.count), kind: kind)
    }

    /// Writes `rows` normalised rows into `out` (both `rows x inputSize`); copies when there is no normalisation.
    func normalize(_ rows: Int, from input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let width = inputSize
        guard let offset = inputOffset?.pointer, let scale = inputScale?.pointer else {
            out.update(from: input, count: rows * width)
            return
        }
        for r in 0..<rows { normalizeRow(input + r * width, into: out + r * width, offset, scale, width) }
    }
}

/// One row of inputs through the normalisation: y = (x - offset) * scale, element by element.
@inline(__always)
func normalizeRow(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ offset: UnsafePointer<Float>,
                  _ scale: UnsafePointer<Float>, _ width: Int) {
    for j in 0..<width { y[j] = (x[j] - offset[j]) * scale[j] }
}
