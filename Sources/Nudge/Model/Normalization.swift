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

    /// What is subtracted from each input: one value (global) or one per input feature.
    public let offset: [Float]
    /// What each centred input is multiplied by, as many as ``offset``.
    public let scale: [Float]

    /// A normalisation from explicit values: `offset` and `scale` have the same length (1, or the
    /// network's input size, which ``Network/setNormalization(_:)`` checks), and all are finite.
    ///
    /// - Throws: `shape` (empty, or lengths differ), `notFinite`.
    public init(offset: [Float], scale: [Float]) throws(NudgeError) {
        guard !offset.isEmpty, offset.count == scale.count else {
            throw .shape("normalisation offset has \(offset.count) values and scale \(scale.count); they need the same count, at least 1")
        }
        for (i, v) in offset.enumerated() where !v.isFinite {
            throw NudgeError(.notFinite, "normalisation offset[\(i)] is \(v); it must be finite")
        }
        for (i, v) in scale.enumerated() where !v.isFinite {
            throw NudgeError(.notFinite, "normalisation scale[\(i)] is \(v); it must be finite")
        }
        self.offset = offset
        self.scale = scale
    }

    /// Fits offsets (means) and scales (1 / standard deviation) on `rows` samples of `width` features.
    /// Returns nil for ``Kind/none``. Statistics are accumulated in double precision, in two passes.
    ///
    /// For samples spread over processes, `total` is the samples of all of them, and `combine` sums
    /// each pass's per-feature sums across them, so every process fits what one process would on all.
    static func fit(_ inputs: UnsafePointer<Float>, rows: Rows, width: Int, kind: Kind, total: Int? = nil,
                    combine: ((inout [Double]) throws(NudgeError) -> Void)? = nil) throws(NudgeError) -> InputNormalization? {
        guard kind != .none else { return nil }
        guard (total ?? rows.count) > 0 else { throw .invalid("normalisation needs at least one sample to fit on") }
        let features = kind == .global ? 1 : width
        var sums = [Double](repeating: 0, count: width)
        func forEachRow(_ body: (UnsafePointer<Float>) -> Void) {
            switch rows {
            case .range(let start, let count):
                for r in start..<(start + count) { body(inputs + r * width) }
            case .indices(let index, let count):
                for r in 0..<count { body(inputs + index[r] * width) }
            }
        }
        forEachRow { row in for j in 0..<width { sums[j] += Double(row[j]) } }
        try combine?(&sums)
        let n = Double(total ?? rows.count)
        var means = [Double](repeating: 0, count: features)
        if kind == .global {
            means[0] = sums.reduce(0, +) / (n * Double(width))
        } else {
            for j in 0..<width { means[j] = sums[j] / n }
        }
        var squares = [Double](repeating: 0, count: width)
        forEachRow { row in
            for j in 0..<width {
                let d = Double(row[j]) - means[kind == .global ? 0 : j]
                squares[j] += d * d
            }
        }
        try combine?(&squares)
        var scale = [Float](repeating: 1, count: features)
        let variances: [Double] = kind == .global ? [squares.reduce(0, +) / (n * Double(width))] : squares.map { $0 / n }
        for j in 0..<features {
            let std = variances[j].squareRoot()
            // A constant feature is only centred: dividing by a zero (or rounding-noise) spread would
            // blow up any other value it takes later.
            if std > 1e-7 * max(abs(means[j]), 1) { scale[j] = Float(1 / std) }
        }
        return try InputNormalization(offset: means.map { Float($0) }, scale: scale)
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
        let count = normalization.offset.count
        guard count == 1 || count == inputSize else {
            throw .shape("normalisation has \(count) values; this network needs 1 (global) or \(inputSize) (one per input)")
        }
        let offset = try FloatBuffer(count: inputSize, zeroed: false)
        let scale = try FloatBuffer(count: inputSize, zeroed: false)
        for j in 0..<inputSize {
            offset.pointer[j] = normalization.offset[count == 1 ? 0 : j]
            scale.pointer[j] = normalization.scale[count == 1 ? 0 : j]
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
