// The public training entry points, on Swift arrays or buffers: one step, or whole epochs. They
// check every count, then call the pointer-based `package` methods of Trainer.swift, which the C ABI
// calls directly with counts it has checked itself.

extension Trainer {
    // MARK: One step

    /// One gradient step on one batch of samples with class labels (0 to ``Network/outputSize`` - 1;
    /// 0 or 1 for a single output), with the trainer's optimiser and options. Returns the batch's mean
    /// loss before the step.
    ///
    /// ```swift
    /// for (x, y) in batches {
    ///     let loss = try trainer.step(x, labels: y)
    /// }
    /// ```
    ///
    /// - Parameter inputs: The batch: samples of ``Network/inputSize`` values, row-major; at least 1
    ///   and at most ``TrainingOptions/maxBatchSize`` of them.
    /// - Throws: `shape` (counts disagree), `invalidArgument` (no samples, too many, a label out of
    ///   range), `notFinite` (NaN or infinite inputs; or a loss, gradient or step that is not finite:
    ///   the weights are then as they were and the optimiser's state restarts), `outOfMemory`.
    public func step(_ inputs: [Float], labels: [Int32]) throws(NudgeError) -> Double {
        try withBuffers(inputs, labels) { (x, y) throws(NudgeError) in try checkedStep(x, y) }
    }

    /// One gradient step on one batch of samples with target rows of ``Network/outputSize`` values.
    /// Returns the batch's mean loss before the step.
    ///
    /// - Throws: As `step(_:labels:)`, with `notFinite` for NaN or infinite targets.
    public func step(_ inputs: [Float], targets: [Float]) throws(NudgeError) -> Double {
        try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in try checkedStep(x, y) }
    }

    /// `step(_:labels:)` on buffers, without copying them.
    public func step(_ inputs: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>) throws(NudgeError) -> Double {
        try checkedStep(inputs, labels)
    }

    /// `step(_:targets:)` on buffers, without copying them.
    public func step(_ inputs: UnsafeBufferPointer<Float>, targets: UnsafeBufferPointer<Float>) throws(NudgeError) -> Double {
        try checkedStep(inputs, targets)
    }

    /// One gradient step on one batch of samples with class labels and a weight each (finite, 0 or
    /// more, not all 0), weighed as `fit(_:labels:weights:validation:validationWeights:progress:batchProgress:)`
    /// weighs its batches. Returns the batch's weighted mean loss before the step.
    ///
    /// - Throws: As `step(_:labels:)`; `shape` when `weights` has not one value per sample,
    ///   `invalidArgument` for a negative weight or weights all 0, `notFinite` for a NaN or infinite one.
    public func step(_ inputs: [Float], labels: [Int32], weights: [Float]) throws(NudgeError) -> Double {
        try withBuffers(inputs, labels) { (x, y) throws(NudgeError) in
            try weights.withUnsafeBufferPointer { (w) throws(NudgeError) in try checkedStep(x, y, w) }
        }
    }

    /// One weighted gradient step on one batch of samples with target rows, as `step(_:labels:weights:)`.
    public func step(_ inputs: [Float], targets: [Float], weights: [Float]) throws(NudgeError) -> Double {
        try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in
            try weights.withUnsafeBufferPointer { (w) throws(NudgeError) in try checkedStep(x, y, w) }
        }
    }

    private func checkedStep<Element: TargetElement>(_ inputs: UnsafeBufferPointer<Float>, _ targets: UnsafeBufferPointer<Element>,
                                                     _ weights: UnsafeBufferPointer<Float>? = nil) throws(NudgeError) -> Double {
        let rows = try network.sampleCount(inputs.count)
        guard rows <= TrainingOptions.maxBatchSize else {
            throw .invalid("inputs holds \(rows) samples; one step takes at most \(TrainingOptions.maxBatchSize)")
        }
        let t = try network.targets(targets, rows: rows)
        let w = try weights.map { (b) throws(NudgeError) in try network.weights(b, rows: rows, "weights") }
        return try step(start(inputs), targets: t, weights: w, rows: rows)
    }

    // MARK: Epochs

    /// Trains for ``TrainingOptions/epochs`` epochs on samples with class labels: shuffled
    /// mini-batches of ``TrainingOptions/batchSize``, the learning-rate schedule, and with validation
    /// data (given here, or held out by ``TrainingOptions/validationFraction``) a measurement after
    /// each epoch and early stopping (``TrainingOptions/patience``). The optimiser's state is kept, so
    /// a second call goes on where the first stopped.
    ///
    /// Callbacks run on the calling thread; returning `true` stops training. A run stopped by a
    /// callback or by divergence does not throw: the summary's ``TrainingSummary/stopReason`` says
    /// so (``StopReason/cancelled``: the weights are those after the last finished batch;
    /// ``StopReason/notFinite``: the last weights whose loss was measured finite, and
    /// ``TrainingSummary/message`` says what happened).
    ///
    /// ```swift
    /// var options = TrainingOptions()
    /// options.epochs = 20
    /// options.patience = 3
    /// let trainer = try Trainer(network: net, options: options)
    /// let summary = try trainer.fit(x, labels: y, validation: (inputs: vx, labels: vy)) { report in
    ///     print("epoch \(report.epoch): validation accuracy \(report.validationAccuracy)")
    ///     return false   // true stops
    /// }
    /// ```
    ///
    /// Sample weights: with `weights` (one per sample, finite, 0 or more, not all 0), each sample's
    /// loss and gradient count its weight times, and each batch's gradient is divided by the sum of
    /// its weights (scikit-learn's convention): weights of 1 train exactly as none, scaling every
    /// weight by the same factor changes nothing, and a batch whose weights are all 0 is skipped.
    /// The reported training loss and accuracy are then weighted means; `validationWeights` weigh the
    /// validation data the same way (samples held out by ``TrainingOptions/validationFraction`` keep
    /// their weights from `weights`).
    ///
    /// - Throws: Before any change to the network or the trainer: `shape` (counts disagree),
    ///   `invalidArgument` (no samples, labels out of range, validation data together with a
    ///   validation fraction, or a fraction that leaves no sample on one side, a negative weight or
    ///   weights all 0), `notFinite` (NaN or infinite inputs or weights), `outOfMemory`.
    public func fit(_ inputs: [Float], labels: [Int32], weights: [Float]? = nil,
                    validation: (inputs: [Float], labels: [Int32])? = nil, validationWeights: [Float]? = nil,
                    progress: ((EpochReport) -> Bool)? = nil,
                    batchProgress: ((BatchReport) -> Bool)? = nil) throws(NudgeError) -> TrainingSummary {
        try fitArrays(inputs, labels, weights, validation: validation.map { ($0.inputs, $0.labels) }, validationWeights,
                      progress: progress, batchProgress: batchProgress)
    }

    /// Trains for ``TrainingOptions/epochs`` epochs on samples with target rows of
    /// ``Network/outputSize`` values, as `fit(_:labels:weights:validation:validationWeights:progress:batchProgress:)` does.
    ///
    /// - Throws: As the labels form, with `notFinite` for NaN or infinite targets.
    public func fit(_ inputs: [Float], targets: [Float], weights: [Float]? = nil,
                    validation: (inputs: [Float], targets: [Float])? = nil, validationWeights: [Float]? = nil,
                    progress: ((EpochReport) -> Bool)? = nil,
                    batchProgress: ((BatchReport) -> Bool)? = nil) throws(NudgeError) -> TrainingSummary {
        try fitArrays(inputs, targets, weights, validation: validation.map { ($0.inputs, $0.targets) }, validationWeights,
                      progress: progress, batchProgress: batchProgress)
    }

    /// `fit(_:labels:weights:validation:validationWeights:progress:batchProgress:)` on buffers, without copying them.
    public func fit(_ inputs: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                    weights: UnsafeBufferPointer<Float>? = nil,
                    validation: (inputs: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>)? = nil,
                    validationWeights: UnsafeBufferPointer<Float>? = nil,
                    progress: ((EpochReport) -> Bool)? = nil,
                    batchProgress: ((BatchReport) -> Bool)? = nil) throws(NudgeError) -> TrainingSummary {
        try fitBuffers(inputs, labels, weights, validation: validation.map { ($0.inputs, $0.labels) }, validationWeights,
                       progress: progress, batchProgress: batchProgress)
    }

    /// `fit(_:targets:weights:validation:validationWeights:progress:batchProgress:)` on buffers, without copying them.
    public func fit(_ inputs: UnsafeBufferPointer<Float>, targets: UnsafeBufferPointer<Float>,
                    weights: UnsafeBufferPointer<Float>? = nil,
                    validation: (inputs: UnsafeBufferPointer<Float>, targets: UnsafeBufferPointer<Float>)? = nil,
                    validationWeights: UnsafeBufferPointer<Float>? = nil,
                    progress: ((EpochReport) -> Bool)? = nil,
                    batchProgress: ((BatchReport) -> Bool)? = nil) throws(NudgeError) -> TrainingSummary {
        try fitBuffers(inputs, targets, weights, validation: validation.map { ($0.inputs, $0.targets) }, validationWeights,
                       progress: progress, batchProgress: batchProgress)
    }

    private func fitArrays<Element: TargetElement>(_ inputs: [Float], _ targets: [Element], _ weights: [Float]?,
                                                   validation: ([Float], [Element])?, _ validationWeights: [Float]?,
                                                   progress: ((EpochReport) -> Bool)?,
                                                   batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> TrainingSummary {
        let vx = validation?.0 ?? [], vy = validation?.1 ?? []
        return try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in
            try withBuffers(vx, vy) { (vxb, vyb) throws(NudgeError) in
                try withOptionalBuffers(weights, validationWeights) { (w, vw) throws(NudgeError) in
                    try fitBuffers(x, y, w, validation: validation == nil ? nil : (vxb, vyb), vw,
                                   progress: progress, batchProgress: batchProgress)
                }
            }
        }
    }

    private func fitBuffers<Element: TargetElement>(_ inputs: UnsafeBufferPointer<Float>, _ targets: UnsafeBufferPointer<Element>,
                                                    _ weights: UnsafeBufferPointer<Float>?,
                                                    validation: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Element>)?,
                                                    _ validationWeights: UnsafeBufferPointer<Float>?,
                                                    progress: ((EpochReport) -> Bool)?,
                                                    batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> TrainingSummary {
        let rows = try network.sampleCount(inputs.count)
        let t = try network.targets(targets, rows: rows)
        let w = try weights.map { (b) throws(NudgeError) in try network.weights(b, rows: rows, "weights") }
        var set: ValidationSet?
        if let (vx, vy) = validation {
            let vrows = try network.sampleCount(vx.count, "validation inputs")
            set = ValidationSet(inputs: start(vx), targets: try network.targets(vy, rows: vrows, "validation \(Element.argument)"),
                                rows: vrows,
                                weights: try validationWeights.map { (b) throws(NudgeError) in
                                    try network.weights(b, rows: vrows, "validation weights")
                                })
        } else if validationWeights != nil {
            throw .invalid("validation weights are given without validation data")
        }
        return try fit(start(inputs), targets: t, weights: w, rows: rows, validation: set, progress: progress,
                       batchProgress: batchProgress)
    }
}

// MARK: - Steps by hand

extension Trainer {
    /// The mean gradient of the trainer's loss over a batch with class labels (with its label
    /// smoothing, and dropout masks drawn from its generator), in parameter order, and the batch's
    /// mean loss. The network is not changed. With ``apply(gradient:)``, a caller drives steps itself:
    /// sums the gradients of several processes, say, and applies their mean.
    ///
    /// - Throws: As `step(_:labels:)`.
    public func gradient(_ inputs: [Float], labels: [Int32]) throws(NudgeError) -> (loss: Double, gradient: [Float]) {
        try withBuffers(inputs, labels) { (x, y) throws(NudgeError) in try checkedGradient(x, y) }
    }

    /// The mean gradient over a batch with target rows, as `gradient(_:labels:)`.
    public func gradient(_ inputs: [Float], targets: [Float]) throws(NudgeError) -> (loss: Double, gradient: [Float]) {
        try withBuffers(inputs, targets) { (x, y) throws(NudgeError) in try checkedGradient(x, y) }
    }

    private func checkedGradient<Element: TargetElement>(_ inputs: UnsafeBufferPointer<Float>,
                                                         _ targets: UnsafeBufferPointer<Element>) throws(NudgeError) -> (loss: Double, gradient: [Float]) {
        let rows = try network.sampleCount(inputs.count)
        guard rows <= TrainingOptions.maxBatchSize else {
            throw .invalid("inputs holds \(rows) samples; one gradient takes at most \(TrainingOptions.maxBatchSize)")
        }
        let t = try network.targets(targets, rows: rows)
        var result = [Float](repeating: 0, count: network.parameterCount)
        let loss = try result.withUnsafeMutableBufferPointer { (g) throws(NudgeError) in
            try gradient(start(inputs), targets: t, rows: rows, into: g.baseAddress!)
        }
        return (loss, result)
    }

    /// One optimiser step with a given gradient (parameter order, ``Network/parameterCount``
    /// entries): the trainer's optimiser and state, ``TrainingOptions/learningRate`` (no schedule),
    /// weight decay and clipping.
    ///
    /// - Throws: `shape` for a wrong count; `notFinite` for a NaN or infinite entry or a step that is
    ///   not finite (the weights are then as they were and the optimiser's state restarts).
    public func apply(gradient: [Float]) throws(NudgeError) {
        guard gradient.count == network.parameterCount else {
            throw .shape("the gradient has \(gradient.count) entries; the network has \(network.parameterCount) parameters")
        }
        try gradient.withUnsafeBufferPointer { (g) throws(NudgeError) in try apply(gradient: g.baseAddress!) }
    }
}
