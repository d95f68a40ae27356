import Glibc

/// Trains one network by mini-batch gradient descent and keeps the optimiser's state between calls,
/// so training can go on later (or be streamed batch by batch) without losing momentum or Adam's moments.
///
/// A trainer changes its network's parameters: nothing else may use that network while a trainer
/// method runs.
///
/// ```swift
/// var options = TrainingOptions()
/// options.epochs = 3
/// let trainer = try Trainer(network: net, options: options)
/// let summary = try trainer.fit(images, labels: labels)
/// ```
public final class Trainer {
    public let network: Network
    public private(set) var options: TrainingOptions
    private var state: OptimizerState
    /// Sized for the largest batch seen so far, and allocated when first needed.
    private var workspace: Workspace?
    private let gradient: FloatBuffer
    private var rng: SeededGenerator
    /// The weights before a single `step`, allocated on the first one.
    private var snapshot: FloatBuffer?

    private func stepSnapshot() throws(NudgeError) -> FloatBuffer {
        if let snapshot { return snapshot }
        let buffer = try FloatBuffer(count: network.parameterCount, zeroed: false)
        snapshot = buffer
        return buffer
    }

    public init(network: Network, options: TrainingOptions = TrainingOptions()) throws(NudgeError) {
        try options.validate(for: network)
        self.network = network
        self.options = options
        state = try OptimizerState(kind: options.optimizer, parameterCount: network.parameterCount)
        gradient = try FloatBuffer(count: network.parameterCount)
        rng = SeededGenerator(seed: options.seed)
    }

    /// Changes the options for later calls. The optimiser's state is kept unless the optimiser changes.
    /// All or nothing: when this fails, the trainer is as it was.
    public func setOptions(_ newOptions: TrainingOptions) throws(NudgeError) {
        try newOptions.validate(for: network)
        let newState = newOptions.optimizer == state.kind ? state
            : try OptimizerState(kind: newOptions.optimizer, parameterCount: network.parameterCount)
        state = newState
        if newOptions.seed != options.seed { rng = SeededGenerator(seed: newOptions.seed) }
        options = newOptions
    }

    /// A workspace for batches of up to `rows` samples, with the dropout buffers `options` need.
    private func workspace(for rows: Int, options: TrainingOptions) throws(NudgeError) -> Workspace {
        if let workspace, workspace.capacity >= rows {
            try workspace.prepareDropout(options.dropout, for: network)
            return workspace
        }
        let fresh = try Workspace(for: network, capacity: rows)
        try fresh.prepareDropout(options.dropout, for: network)
        workspace = fresh
        return fresh
    }

    /// This step's dropout masks, drawn from the trainer's seeded generator; nil without dropout.
    private func nextDropout() -> Dropout? {
        guard options.dropout.contains(where: { $0 > 0 }) else { return nil }
        return Dropout(rates: options.dropout, key: rng.next())
    }

    private var resolvedLoss: Loss {
        // Checked in init and setOptions.
        (try? options.loss.resolved(for: network.activations[network.weightLayerCount - 1])) ?? .meanSquaredError
    }

    // MARK: One step

    /// One gradient step on `rows` samples; returns the batch's mean loss (before the step).
    /// A non-finite loss, gradient or step fails with `not_finite`, leaves the network's weights as they
    /// were and restarts the optimiser's state (its momentum or moments would carry the divergence on).
    package func step(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int) throws(NudgeError) -> Double {
        guard rows > 0 else { throw .invalid("there are no samples; a step needs at least one") }
        try network.validate(inputs: inputs, targets: targets, rows: rows)
        let ws = try workspace(for: rows, options: options)
        // A step that fails part-way leaves the weights as they were, so keep them until it succeeds.
        let before = try stepSnapshot()
        before.copy(from: network.storage)
        do {
            let (loss, _) = try step(inputs, targets: targets, rows: .range(start: 0, count: rows), loss: resolvedLoss,
                                     learningRate: options.learningRate, in: ws)
            return loss / Double(rows)
        } catch {
            network.storage.copy(from: before)
            state.reset()
            throw error
        }
    }

    /// A step over a selection of validated rows; returns the summed loss and the number classified correctly.
    private func step(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Rows, loss: Loss, learningRate: Float,
                      in workspace: Workspace) throws(NudgeError) -> (Double, Int) {
        let (x, total) = network.forwardWithLoss(inputs, targets: targets, rows: rows, loss: loss,
                                                 scale: 1 / Float(rows.count), in: workspace, dropout: nextDropout())
        let output = workspace.outputs[network.weightLayerCount - 1].pointer
        guard total.isFinite else {
            throw NudgeError(.notFinite, "the loss became \(total / Double(rows.count)); try a smaller learning rate")
        }
        let correct = countCorrect(outputs: output, targets: workspace.targets.pointer, rows: rows.count, width: network.outputSize)
        if options.clipNorm > 0 {
            try clippedStep(x, rows: rows.count, learningRate: learningRate, in: workspace)
            return (total, correct)
        }
        // The gradient buffer is all zeros here (each update clears what it has read), so BLAS adds into
        // it without first clearing the whole of it; the update happens inside the backward pass.
        let finite = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: WorkerPool.maxThreads) { exponents in
            exponents.initialize(repeating: 0)
            let update = Network.Update(state: .passUnretained(state), step: state.begin(options, learningRate: learningRate),
                                        exponents: exponents.baseAddress!)
            network.backward(x, rows: rows.count, in: workspace, into: gradient.pointer, accumulate: true, update: update)
            return !exponents.contains(exponentMask)
        }
        // A NaN or infinite gradient entry makes its weight NaN or infinite, which the update reports;
        // the callers then put back the weights from before.
        guard finite else {
            throw NudgeError(.notFinite, "the gradient or a step of the \(options.optimizer.name) optimiser is not finite; try a smaller learning rate")
        }
        return (total, correct)
    }

    /// A step whose gradient is scaled down to ``TrainingOptions/clipNorm`` when longer: the whole
    /// gradient must be known before any weight moves, so the update is not fused into the backward pass.
    private func clippedStep(_ x: UnsafePointer<Float>, rows: Int, learningRate: Float, in workspace: Workspace) throws(NudgeError) {
        network.backward(x, rows: rows, in: workspace, into: gradient.pointer, accumulate: true)
        let g = gradient.pointer, count = network.parameterCount
        // Summed in double precision: a gradient can be finite while the sum of its squares overflows
        // a float (entries above about 1.8e19), and that is when clipping matters most.
        var lanes = SIMD4<Double>(repeating: 0)
        var i = 0
        while i + 4 <= count {
            let v = SIMD4<Double>(Double(g[i]), Double(g[i + 1]), Double(g[i + 2]), Double(g[i + 3]))
            lanes += v * v
            i += 4
        }
        var squares = lanes.sum()
        while i < count {
            squares += Double(g[i]) * Double(g[i])
            i += 1
        }
        let norm = squares.squareRoot()
        guard norm.isFinite else {
            gradient.zero()
            throw NudgeError(.notFinite, "the gradient has NaN or infinite entries; try a smaller learning rate")
        }
        if norm > Double(options.clipNorm) {
            let factor = Float(Double(options.clipNorm) / norm)
            for i in 0..<count { g[i] *= factor }
        }
        let step = state.begin(options, learningRate: learningRate)
        struct Update { let state: Unmanaged<OptimizerState>, network: Unmanaged<Network>, gradient: UnsafeMutablePointer<Float>, step: OptimizerState.Step, exponents: UnsafeMutablePointer<UInt32> }
        let finite = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: WorkerPool.maxThreads) { exponents in
            exponents.initialize(repeating: 0)
            let job = Update(state: .passUnretained(state), network: .passUnretained(network), gradient: g, step: step,
                             exponents: exponents.baseAddress!)
            WorkerPool.shared.run(parts: WorkerPool.shared.parts(forWork: count * 64), job) { context, part, parts in
                let a = context.load(as: Update.self)
                let network = a.network.takeUnretainedValue(), state = a.state.takeUnretainedValue()
                var largest: UInt32 = 0
                for l in 0..<network.weightLayerCount {
                    let units = piece(of: network.layerSizes[l + 1], part: part, parts: parts)
                    largest = max(largest, state.update(layer: l, rows: units, of: network, gradient: a.gradient, step: a.step))
                }
                a.exponents[part] = largest
            }
            return !exponents.contains(exponentMask)
        }
        guard finite else {
            throw NudgeError(.notFinite, "a step of the \(options.optimizer.name) optimiser is not finite; try a smaller learning rate")
        }
    }

    // MARK: Epochs

    /// Trains for ``TrainingOptions/epochs`` epochs on `rows` samples with class labels.
    public func fit(_ inputs: [Float], labels: [Int32], validation: (inputs: [Float], labels: [Int32])? = nil,
                    progress: ((EpochReport) -> Bool)? = nil) throws(NudgeError) -> TrainingSummary {
        let rows = labels.count
        guard inputs.count == rows * network.inputSize else {
            throw .shape("inputs has \(inputs.count) values; \(rows) labels need \(rows * network.inputSize)")
        }
        if let validation, validation.inputs.count != validation.labels.count * network.inputSize {
            throw .shape("validation inputs has \(validation.inputs.count) values; \(validation.labels.count) labels need \(validation.labels.count * network.inputSize)")
        }
        return try inputs.withUnsafeBufferPointer { (x) throws(NudgeError) in
            try labels.withUnsafeBufferPointer { (y) throws(NudgeError) in
                let vx = validation?.inputs ?? [], vy = validation?.labels ?? []
                return try vx.withUnsafeBufferPointer { (vxp) throws(NudgeError) in
                    try vy.withUnsafeBufferPointer { (vyp) throws(NudgeError) in
                        let v: ValidationSet? = validation == nil ? nil
                            : ValidationSet(inputs: vxp.baseAddress!, targets: .labels(vyp.baseAddress!), rows: vyp.count)
                        return try fit(x.baseAddress!, targets: .labels(y.baseAddress!), rows: rows,
                                       validation: v, progress: progress, batchProgress: nil)
                    }
                }
            }
        }
    }

    /// Held-out data, measured after each epoch.
    package struct ValidationSet {
        package var inputs: UnsafePointer<Float>
        package var targets: Targets
        package var rows: Int
        package init(inputs: UnsafePointer<Float>, targets: Targets, rows: Int) {
            self.inputs = inputs
            self.targets = targets
            self.rows = rows
        }
    }

    /// The training loop: shuffled mini-batches, validation, early stopping with the best weights
    /// restored, and reports. Callbacks return `true` to stop. `newOptions`, when given, replace the
    /// trainer's options once everything has been checked. Bad data or options are reported before
    /// any change; a run stopped by a callback or a non-finite loss still returns a summary that says so.
    package func fit(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int, validation: ValidationSet?,
                     applying newOptions: TrainingOptions? = nil,
                     progress: ((EpochReport) -> Bool)?, batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> TrainingSummary {
        let started = monotonicSeconds()
        let plan = newOptions ?? options
        try plan.validate(for: network)
        let loss = try plan.loss.resolved(for: network.activations[network.weightLayerCount - 1])
        guard rows > 0 else { throw .invalid("there are no samples; training needs at least one") }
        try network.validate(inputs: inputs, targets: targets, rows: rows)
        if let validation {
            guard validation.rows > 0 else { throw .invalid("the validation data has no samples") }
            guard plan.validationFraction == 0 else {
                throw .invalid([.text("give either validation data or a "), .subject(.option(.validationFraction)), .text(", not both")])
            }
            try network.validate(inputs: validation.inputs, targets: validation.targets, rows: validation.rows,
                                 what: "validation inputs")
        }
        let heldOutCount = Int((Double(rows) * plan.validationFraction).rounded())
        if plan.validationFraction > 0 {
            guard heldOutCount >= 1, heldOutCount < rows else {
                throw .invalid([.subject(.option(.validationFraction)), .text(" \(plan.validationFraction) of \(rows) samples leaves \(heldOutCount) for validation and \(rows - heldOutCount) for training; each needs at least 1")])
            }
        }
        let trainCount = rows - heldOutCount
        let order = try HeapBuffer<Int>(count: trainCount, zeroed: false)
        let heldOut = try HeapBuffer<Int>(count: heldOutCount, zeroed: false)
        // Selection sampling (Knuth's algorithm S) picks exactly heldOutCount samples and keeps both
        // sets in their original order. Its generator is seeded apart from the shuffling, so the split
        // does not depend on earlier calls.
        var splitter = SeededGenerator(seed: plan.seed ^ 0x5EED_5EED_5EED_5EED)
        var (kept, held) = (0, 0)
        for i in 0..<rows {
            if UInt64(held) < UInt64(heldOutCount) && splitter.next(upperBound: UInt64(rows - i)) < UInt64(heldOutCount - held) {
                heldOut.pointer[held] = i
                held += 1
            } else {
                order.pointer[kept] = i
                kept += 1
            }
        }
        let hasValidation = validation != nil || heldOutCount > 0
        let earlyStopping = plan.patience > 0
        // Weights whose loss was measured finite, to fall back on if training diverges: the weights at
        // the start of an epoch become "good" once the epoch's first batch has been measured on them.
        var lastGood = try FloatBuffer(copying: network.storage)
        var epochStart = try FloatBuffer(copying: network.storage)
        let best = try FloatBuffer(count: earlyStopping ? network.parameterCount : 0, zeroed: false)
        let workspace = try workspace(for: min(plan.batchSize, trainCount), options: plan)
        // Fitted on the training samples only; the last change before training starts.
        if let fitted = try InputNormalization.fit(inputs, rows: .indices(order.pointer, count: trainCount),
                                                   width: network.inputSize, kind: plan.normalization) {
            try network.setNormalization(fitted)
        }
        if let newOptions { try setOptions(newOptions) }

        var summary = TrainingSummary()
        var bestLoss = Double.infinity
        var sinceBest = 0
        let batchCount = (trainCount + options.batchSize - 1) / options.batchSize

        func finish(_ reason: StopReason) -> TrainingSummary {
            if earlyStopping && options.restoreBestWeights && summary.bestEpoch > 0 && reason != .cancelled {
                network.storage.copy(from: best)
            }
            summary.stopReason = reason
            summary.seconds = monotonicSeconds() - started
            return summary
        }

        for epoch in stride(from: 1, through: options.epochs, by: 1) {
            let epochStarted = monotonicSeconds()
            if options.shuffle {
                // Fisher-Yates.
                for i in stride(from: trainCount - 1, to: 0, by: -1) {
                    let j = Int(rng.next(upperBound: UInt64(i + 1)))
                    order.buffer.swapAt(i, j)
                }
            }
            epochStart.copy(from: network.storage)
            var lossSum = 0.0, correct = 0
            var rate = options.learningRate
            let stopped: Bool = {
                for b in 0..<batchCount {
                    let start = b * options.batchSize
                    let rowsInBatch = Rows.indices(order.pointer + start, count: min(options.batchSize, trainCount - start))
                    rate = options.learningRate(atStep: (epoch - 1) * batchCount + b, stepsPerEpoch: batchCount)
                    do throws(NudgeError) {
                        let (l, c) = try step(inputs, targets: targets, rows: rowsInBatch, loss: loss, learningRate: rate,
                                              in: workspace)
                        lossSum += l
                        correct += c
                        if b == 0 { swap(&lastGood, &epochStart) }
                    } catch {
                        summary.message = "epoch \(epoch), batch \(b + 1): \(error.message)"
                        return true
                    }
                    if let batchProgress, batchProgress(BatchReport(epoch: epoch, batch: b + 1, batchCount: batchCount,
                                                                     loss: lossSum / Double(start + rowsInBatch.count))) {
                        summary.message = "stopped by the batch callback at epoch \(epoch), batch \(b + 1)"
                        summary.stopReason = .cancelled
                        return true
                    }
                }
                return false
            }()
            if stopped {
                if summary.stopReason == .cancelled { return finish(.cancelled) }
                network.storage.copy(from: lastGood)
                state.reset()
                return finish(.notFinite)
            }

            var report = EpochReport(epoch: epoch, epochs: options.epochs,
                                     trainLoss: lossSum / Double(trainCount),
                                     trainAccuracy: Double(correct) / Double(trainCount),
                                     validationLoss: .nan, validationAccuracy: .nan, seconds: 0, improved: false,
                                     learningRate: rate)
            if let validation {
                (report.validationLoss, report.validationAccuracy) = network.evaluate(
                    validation.inputs, targets: validation.targets, rows: .range(start: 0, count: validation.rows),
                    loss: loss, in: workspace)
            } else if heldOutCount > 0 {
                (report.validationLoss, report.validationAccuracy) = network.evaluate(
                    inputs, targets: targets, rows: .indices(heldOut.pointer, count: heldOutCount), loss: loss, in: workspace)
            }
            let monitored = hasValidation ? report.validationLoss : report.trainLoss
            guard monitored.isFinite else {
                summary.message = "epoch \(epoch): the \(hasValidation ? "validation" : "training") loss became \(monitored); try a smaller learning rate"
                network.storage.copy(from: lastGood)
                state.reset()
                return finish(.notFinite)
            }
            if monitored < bestLoss - options.minDelta {
                bestLoss = monitored
                summary.bestEpoch = epoch
                summary.bestLoss = monitored
                sinceBest = 0
                report.improved = true
                if earlyStopping { best.copy(from: network.storage) }
            } else {
                sinceBest += 1
            }
            report.seconds = monotonicSeconds() - epochStarted
            summary.epochsRun = epoch
            summary.finalTrainLoss = report.trainLoss
            summary.finalTrainAccuracy = report.trainAccuracy
            summary.finalValidationLoss = report.validationLoss
            summary.finalValidationAccuracy = report.validationAccuracy
            if let progress, progress(report) {
                summary.message = "stopped by the progress callback after epoch \(epoch)"
                return finish(.cancelled)
            }
            if earlyStopping && sinceBest >= options.patience { return finish(.earlyStopped) }
        }
        return finish(.completed)
    }
}

/// Seconds from an arbitrary fixed point, for durations.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
