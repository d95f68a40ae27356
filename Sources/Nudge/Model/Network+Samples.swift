// The public entry points that take samples as Swift arrays or buffers: prediction, classification,
// evaluation and gradients. They check every count, then call the pointer-based `package` methods
// of Propagation.swift, which the C ABI calls directly with counts it has checked itself.

extension Network {
    // MARK: Prediction

    /// The output layer's values for every sample: `inputs` holds samples of ``inputSize`` values,
    /// row-major, and the result holds as many rows of ``outputSize`` values.
    ///
    /// Reads the network only: any number of threads may predict with one network at once. NaN or
    /// infinite inputs give NaN or infinite outputs; they are not checked, for speed.
    ///
    /// ```swift
    /// let net = try Network(layerSizes: [2, 4, 1], activations: [.tanh, .sigmoid], seed: 1)
    /// let outputs = try net.predict([0, 0, 0, 1])   // 2 samples in, 2 outputs out
    /// ```
    ///
    /// - Throws: `shape` when `inputs` is not a whole number of samples; `outOfMemory`.
    public func predict(_ inputs: [Float]) throws(NudgeError) -> [Float] {
        let rows = try sampleCount(inputs.count)
        var outputs = [Float](repeating: 0, count: try checkedProduct(rows, outputSize, "outputs"))
        try inputs.withUnsafeBufferPointer { (x) throws(NudgeError) in
            try outputs.withUnsafeMutableBufferPointer { (y) throws(NudgeError) in try predict(x, into: y) }
        }
        return outputs
    }

    /// Writes the output layer's values for every sample of `inputs` into `outputs`, without copying
    /// either: the form for large batches and buffers the caller reuses.
    ///
    /// - Parameters:
    ///   - inputs: Samples of ``inputSize`` values, row-major.
    ///   - outputs: Room for at least as many rows of ``outputSize`` values; the first ones are written.
    /// - Throws: `shape` when `inputs` is not a whole number of samples; `capacity` when `outputs`
    ///   is too small; `outOfMemory`.
    public func predict(_ inputs: UnsafeBufferPointer<Float>, into outputs: UnsafeMutableBufferPointer<Float>) throws(NudgeError) {
        let rows = try sampleCount(inputs.count)
        try checkRoom(outputs.count, for: try checkedProduct(rows, outputSize, "outputs"), "outputs")
        guard rows > 0 else { return }
        try predict(inputs.baseAddress!, rows: rows, into: outputs.baseAddress!)
    }

    /// Each sample's class: the index of its largest output (for a single output, 1 if it is at least
    /// 0.5, else 0). Thread safety as `predict(_:)`.
    ///
    /// - Throws: `shape` when `inputs` is not a whole number of samples; `outOfMemory`.
    public func classify(_ inputs: [Float]) throws(NudgeError) -> [Int32] {
        let rows = try sampleCount(inputs.count)
        var labels = [Int32](repeating: 0, count: rows)
        try inputs.withUnsafeBufferPointer { (x) throws(NudgeError) in
            try labels.withUnsafeMutableBufferPointer { (y) throws(NudgeError) in try classify(x, into: y) }
        }
        return labels
    }

    /// Writes each sample's class into `labels` (room for at least one per sample), without copying.
    ///
    /// - Throws: `shape` when `inputs` is not a whole number of samples; `capacity` when `labels` is
    ///   too small; `outOfMemory`.
    public func classify(_ inputs: UnsafeBufferPointer<Float>, into labels: UnsafeMutableBufferPointer<Int32>) throws(NudgeError) {
        let rows = try sampleCount(inputs.count)
        try checkRoom(labels.count, for: rows, "labels")
        guard rows > 0 else { return }
        try classify(inputs.baseAddress!, rows: rows, into: labels.baseAddress!)
    }

    // MARK: Evaluation

    /// The mean loss and the accuracy (the fraction of samples classified as their label) over
    /// samples with class labels: 0 to ``outputSize`` - 1, or 0 and 1 for a single output.
    ///
    /// ```swift
    /// let (loss, accuracy) = try net.evaluate(testImages, labels: testLabels)
    /// ```
    ///
    /// - Parameter loss: ``Loss/auto`` picks it from the output layer, as training does.
    /// - Throws: `shape` (counts disagree), `invalidArgument` (no samples, a label out of range, a
    ///   loss that does not suit the output layer), `notFinite` (NaN or infinite inputs, or a loss that
    ///   overflows), `outOfMemory`.
    public func evaluate(_ inputs: [Float], labels: [Int32], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        try withBuffers(inputs, labels) { (x, y) throws(NudgeError) in try evaluate(x, labels: y, loss: loss) }
    }

    /// The weighted mean loss, sum(w l) / sum(w), and the weighted accuracy (the weight of the samples
    /// classified as their label over the total weight) over samples with class labels and one weight
    /// each (finite, 0 or more, not all 0). Weights of 1 give `evaluate(_:labels:loss:)`'s results.
    ///
    /// - Throws: As `evaluate(_:labels:loss:)`; `shape` when `weights` has not one value per sample,
    ///   `invalidArgument` for a negative weight or weights all 0, `notFinite` for a NaN or infinite one.
    public func evaluate(_ inputs: [Float], labels: [Int32], weights: [Float], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        try withBuffers(inputs, labels) { (x, y) throws(NudgeError) in
            try weights.withUnsafeBufferPointer { (w) throws(NudgeError) in try evaluate(x, labels: y, weights: w, loss: loss) }
        }
    }

    /// The weighted mean loss and weighted accuracy over samples with target rows, as
    /// `evaluate(_:labels:weights:loss:)` weighs them.
    public func evaluate(_ inputs: [Float], targets: [Float], weights: [Float], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in
            try weights.withUnsafeBufferPointer { (w) throws(NudgeError) in try evaluate(x, targets: y, weights: w, loss: loss) }
        }
    }

    /// `evaluate(_:labels:weights:loss:)` on buffers, without copying them.
    public func evaluate(_ inputs: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, weights: UnsafeBufferPointer<Float>,
                         loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        let rows = try sampleCount(inputs.count)
        return try evaluate(start(inputs), targets: targets(labels, rows: rows), weights: self.weights(weights, rows: rows, "weights"),
                            rows: rows, loss: loss)
    }

    /// `evaluate(_:targets:weights:loss:)` on buffers, without copying them.
    public func evaluate(_ inputs: UnsafeBufferPointer<Float>, targets: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>,
                         loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        let rows = try sampleCount(inputs.count)
        return try evaluate(start(inputs), targets: self.targets(targets, rows: rows), weights: self.weights(weights, rows: rows, "weights"),
                            rows: rows, loss: loss)
    }

    /// The mean loss and the accuracy over samples with target rows of ``outputSize`` values (one-hot
    /// rows, probabilities or regression values). Accuracy counts samples whose largest output and
    /// largest target are at the same index (for a single output: on the same side of 0.5); it is NaN
    /// for a regression network (an output layer other than sigmoid or softmax), which
    /// ``regressionMetrics(_:targets:)`` measures instead.
    ///
    /// - Throws: As `evaluate(_:labels:loss:)`, with `notFinite` for NaN or infinite targets.
    public func evaluate(_ inputs: [Float], targets: [Float], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in try evaluate(x, targets: y, loss: loss) }
    }

    /// `evaluate(_:labels:loss:)` on buffers, without copying them.
    public func evaluate(_ inputs: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                         loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        let rows = try sampleCount(inputs.count)
        return try evaluate(start(inputs), targets: targets(labels, rows: rows), rows: rows, loss: loss)
    }

    /// `evaluate(_:targets:loss:)` on buffers, without copying them.
    public func evaluate(_ inputs: UnsafeBufferPointer<Float>, targets: UnsafeBufferPointer<Float>,
                         loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        let rows = try sampleCount(inputs.count)
        return try evaluate(start(inputs), targets: self.targets(targets, rows: rows), rows: rows, loss: loss)
    }

    /// MSE, MAE and R² of the outputs against target rows of ``outputSize`` values (see
    /// ``RegressionMetrics``), for a network that predicts values rather than classes.
    ///
    /// ```swift
    /// let m = try net.regressionMetrics(x, targets: y)
    /// print(m.meanSquaredError, m.meanAbsoluteError, m.r2)
    /// ```
    ///
    /// - Throws: `shape` (counts disagree), `invalidArgument` (no samples), `notFinite` (NaN or
    ///   infinite inputs or targets, or outputs that overflow), `outOfMemory`.
    public func regressionMetrics(_ inputs: [Float], targets: [Float]) throws(NudgeError) -> RegressionMetrics {
        try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in try regressionMetrics(x, targets: y) }
    }

    /// `regressionMetrics(_:targets:)` on buffers, without copying them.
    public func regressionMetrics(_ inputs: UnsafeBufferPointer<Float>,
                                  targets: UnsafeBufferPointer<Float>) throws(NudgeError) -> RegressionMetrics {
        let rows = try sampleCount(inputs.count)
        _ = try self.targets(targets, rows: rows)
        return try regressionMetrics(start(inputs), targets: start(targets), rows: rows)
    }

    // MARK: Gradients

    /// The gradient of the mean loss over samples with target rows, with respect to every parameter
    /// (in the order of ``parameters``): the direction in which a small change of the weights raises
    /// the loss fastest. The network is not changed.
    ///
    /// ```swift
    /// let (loss, g) = try net.gradient(x, targets: y)
    /// try net.setParameters(zip(net.parameters, g).map { $0 - 0.1 * $1 })   // one step downhill
    /// ```
    ///
    /// - Throws: As `evaluate(_:targets:loss:)`; `notFinite` also when the
    ///   gradient overflows.
    public func gradient(_ inputs: [Float], targets: [Float], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, gradient: [Float]) {
        var gradient = [Float](repeating: 0, count: parameterCount)
        let value = try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in
            try gradient.withUnsafeMutableBufferPointer { (g) throws(NudgeError) in
                try self.gradient(x, targets: y, loss: loss, into: g)
            }
        }
        return (value, gradient)
    }

    /// The gradient over samples with class labels (as one-hot target rows; for a single output, the
    /// label itself is the target).
    ///
    /// - Throws: As `evaluate(_:labels:loss:)`; `notFinite` also when the
    ///   gradient overflows.
    public func gradient(_ inputs: [Float], labels: [Int32], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, gradient: [Float]) {
        var gradient = [Float](repeating: 0, count: parameterCount)
        let value = try withBuffers(inputs, labels) { (x, y) throws(NudgeError) in
            try gradient.withUnsafeMutableBufferPointer { (g) throws(NudgeError) in
                try self.gradient(x, labels: y, loss: loss, into: g)
            }
        }
        return (value, gradient)
    }

    /// The gradient of the weighted mean loss, sum(w l) / sum(w), over samples with target rows and
    /// one weight each (finite, 0 or more, not all 0): a sample of weight 0 counts as absent, one of
    /// weight 2 as two copies.
    ///
    /// - Throws: As `gradient(_:targets:loss:)`, and as `evaluate(_:labels:weights:loss:)` for the weights.
    public func gradient(_ inputs: [Float], targets: [Float], weights: [Float], loss: Loss = .auto) throws(NudgeError) -> (loss: Double, gradient: [Float]) {
        var gradient = [Float](repeating: 0, count: parameterCount)
        let value = try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in
            try withBuffers(weights, []) { (w, _: UnsafeBufferPointer<Float>) throws(NudgeError) in
                let rows = try sampleCount(x.count)
                let t = try self.targets(y, rows: rows)
                return try gradient.withUnsafeMutableBufferPointer { (g) throws(NudgeError) in
                    try self.gradient(start(x), targets: t, weights: self.weights(w, rows: rows, "weights"), rows: rows,
                                      loss: loss, into: g.baseAddress!)
                }
            }
        }
        return (value, gradient)
    }

    /// Writes the gradient over samples with target rows into `gradient` (room for at least
    /// ``parameterCount`` values) and returns the mean loss. `gradient` is untouched when this fails.
    ///
    /// - Throws: As `gradient(_:targets:loss:)`, and `capacity` when `gradient` is too small.
    public func gradient(_ inputs: UnsafeBufferPointer<Float>, targets: UnsafeBufferPointer<Float>, loss: Loss = .auto,
                         into gradient: UnsafeMutableBufferPointer<Float>) throws(NudgeError) -> Double {
        let rows = try sampleCount(inputs.count)
        let t = try self.targets(targets, rows: rows)
        try checkRoom(gradient.count, for: parameterCount, "gradient")
        return try self.gradient(start(inputs), targets: t, rows: rows, loss: loss, into: gradient.baseAddress!)
    }

    /// Writes the gradient over samples with class labels into `gradient` (room for at least
    /// ``parameterCount`` values) and returns the mean loss. `gradient` is untouched when this fails.
    ///
    /// - Throws: As `gradient(_:labels:loss:)`, and `capacity` when `gradient` is too small.
    public func gradient(_ inputs: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, loss: Loss = .auto,
                         into gradient: UnsafeMutableBufferPointer<Float>) throws(NudgeError) -> Double {
        let rows = try sampleCount(inputs.count)
        let t = try targets(labels, rows: rows)
        try checkRoom(gradient.count, for: parameterCount, "gradient")
        return try self.gradient(start(inputs), targets: t, rows: rows, loss: loss, into: gradient.baseAddress!)
    }

    // MARK: Checks shared by the array and buffer entry points

    /// The number of samples in `count` input values; fails unless they are whole rows.
    func sampleCount(_ count: Int, _ what: String = "inputs") throws(NudgeError) -> Int {
        guard count % inputSize == 0 else {
            throw .shape("\(what) has \(count) values, not a multiple of the input size \(inputSize)")
        }
        return count / inputSize
    }

    /// The raw targets of `rows` samples, once `buffer` is found to hold exactly theirs.
    func targets<Element: TargetElement>(_ buffer: UnsafeBufferPointer<Element>, rows: Int,
                                         _ what: String = Element.argument) throws(NudgeError) -> Targets {
        let needed = try checkedProduct(rows, Element.valuesPerSample(self), what)
        guard buffer.count == needed else {
            throw .shape("\(what) has \(buffer.count) values; \(rows) samples need \(needed)")
        }
        return Element.targets(start(buffer))
    }

    /// The weights of `rows` samples, once `buffer` is found to hold exactly one per sample.
    func weights(_ buffer: UnsafeBufferPointer<Float>, rows: Int, _ what: String) throws(NudgeError) -> UnsafePointer<Float> {
        guard buffer.count == rows else {
            throw .shape("\(what) has \(buffer.count) values; \(rows) samples need \(rows)")
        }
        return start(buffer)
    }

    /// Fails with `capacity` unless an output buffer of `count` elements holds `needed`.
    func checkRoom(_ count: Int, for needed: Int, _ what: String) throws(NudgeError) {
        guard count >= needed else {
            throw NudgeError(.capacity, "\(what) has room for \(count) values; \(needed) are needed")
        }
    }
}

/// What the targets of a sample are made of: a row of ``Network/outputSize`` floats (`Float`), or a
/// class label (`Int32`). Lets one checked path serve the `targets:` and `labels:` entry points.
protocol TargetElement: BitwiseCopyable {
    /// The argument's name in messages.
    static var argument: String { get }
    /// Values per sample.
    static func valuesPerSample(_ network: Network) -> Int
    /// The pointer-based form the training and evaluation code reads.
    static func targets(_ pointer: UnsafePointer<Self>) -> Targets
}

extension Float: TargetElement {
    static var argument: String { "targets" }
    static func valuesPerSample(_ network: Network) -> Int { network.outputSize }
    static func targets(_ pointer: UnsafePointer<Float>) -> Targets { .dense(pointer) }
}

extension Int32: TargetElement {
    static var argument: String { "labels" }
    static func valuesPerSample(_ network: Network) -> Int { 1 }
    static func targets(_ pointer: UnsafePointer<Int32>) -> Targets { .labels(pointer) }
}

/// A buffer's first element. An empty buffer may have no address; it then gets an aligned, non-null
/// one that is never read, because every callee reads `rows` rows and `rows` is 0 then.
func start<Element>(_ buffer: UnsafeBufferPointer<Element>) -> UnsafePointer<Element> {
    buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Element>.alignment)!
}

/// Runs `body` on the buffers of two optional arrays (nil for an array that is nil).
func withOptionalBuffers<R>(_ a: [Float]?, _ b: [Float]?,
                            _ body: (UnsafeBufferPointer<Float>?, UnsafeBufferPointer<Float>?) throws(NudgeError) -> R) throws(NudgeError) -> R {
    try withBuffers(a ?? [], b ?? []) { (x, y) throws(NudgeError) in try body(a == nil ? nil : x, b == nil ? nil : y) }
}

/// Runs `body` on the buffers of two arrays.
func withBuffers<A, B, R>(_ a: [A], _ b: [B],
                          _ body: (UnsafeBufferPointer<A>, UnsafeBufferPointer<B>) throws(NudgeError) -> R) throws(NudgeError) -> R {
    try a.withUnsafeBufferPointer { (x) throws(NudgeError) in
        try b.withUnsafeBufferPointer { (y) throws(NudgeError) in try body(x, y) }
    }
}
