import Glibc

/// Trains one network by mini-batch gradient descent and keeps the optimiser's state between calls,
/// so training can go on later (or be streamed batch by batch) without losing momentum or Adam's moments.
///
/// A trainer changes its network's parameters: nothing else may use that network while a trainer
/// method runs. It is not `Sendable`: its optimiser state changes with every step, so one thread at
/// a time owns it.
///
/// ```swift
/// let net = try Network(layerSizes: [784, 128, 10], activations: [.relu, .softmax], seed: 42)
/// var options = TrainingOptions()
/// options.epochs = 3
/// let trainer = try Trainer(network: net, options: options)
/// let summary = try trainer.fit(images, labels: labels)       // whole epochs
/// let loss = try trainer.step(batchImages, labels: batchLabels)  // or one batch at a time
/// ```
public final class Trainer {
    /// The network this trainer trains (and keeps alive).
    public let network: Network
    /// The hyper-parameters of later calls; change them with ``setOptions(_:)``.
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

    /// A trainer for `network` with `options`, and a fresh optimiser state.
    ///
    /// - Throws: `invalidArgument` for an option out of range, naming it as the ``TrainingOptions``
    ///   property (`batchSize is 0; it must be 1 to 1048576`) or for a loss that does not suit the
    ///   output layer; `shape` for dropout rates that do not match the layers; `outOfMemory`.
    public init(network: Network, options: TrainingOptions = TrainingOptions()) throws(NudgeError) {
        try options.validate(for: network)
        self.network = network
        self.options = options
        state = try OptimizerState(kind: options.optimizer, parameterCount: network.parameterCount)
        gradient = try FloatBuffer(count: network.parameterCount)
        rng = SeededGenerator(seed: options.seed)
    }

    /// Changes the options for later calls. The optimiser's state is kept unless the optimiser changes;
    /// a new ``TrainingOptions/seed`` restarts the shuffling and dropout draws.
    /// All or nothing: when this fails, the trainer is as it was.
    ///
    /// - Throws: As ``init(network:options:)``.
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
    ///
    /// `package`, for the C ABI, which passes its callers' pointers with counts it has checked; Swift
    /// callers use the public `step(_:labels:)` and `step(_:targets:)`, which check arrays or buffers
    /// and call this.
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
                                                 scale: 1 / Float(rows.count), in: workspace, dropout: nextDropout(),
                                                 labelSmoothing: options.labelSmoothing)
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
    ///
    /// This raw-pointer form stays `package` for the C ABI, which already holds bare pointers whose
    /// counts it has checked against the network (no buffer to build or check again), picks dense or
    /// label targets at run time (one ``Targets`` value rather than four typed overloads), and needs
    /// `newOptions` for `nudge_trainer_train`. Swift callers use the public overloads
    /// (`fit(_:labels:...)`, `fit(_:targets:...)`), which check their arrays or buffers and call this.
    ///
    /// The run is a sequence of named steps sharing one `Run`: `checkFit`, `split`, `prepareRun`, then
    /// `runEpoch` for each epoch (`shuffle`, `trainBatches`, `measure`, `track`), and `finish`.
    package func fit(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int, validation: ValidationSet?,
                     applying newOptions: TrainingOptions? = nil,
                     progress: ((EpochReport) -> Bool)?, batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> TrainingSummary {
        let started = monotonicSeconds()
        let plan = newOptions ?? options
        let loss = try checkFit(inputs, targets: targets, rows: rows, validation: validation, plan: plan)
        let samples = try split(rows, plan: plan)
        var run = try prepareRun(inputs, targets: targets, validation: validation, loss: loss, started: started,
                                 split: samples, plan: plan, applying: newOptions)
        for epoch in stride(from: 1, through: options.epochs, by: 1) {
            if let reason = runEpoch(epoch, &run, progress: progress, batchProgress: batchProgress) {
                return finish(run, reason)
            }
        }
        return finish(run, .completed)
    }

    // MARK: The steps of a run

    /// What one run of the training loop works with: its data, how the samples are split, the weights
    /// it can fall back on, and the summary so far. Passed `inout` from step to step, so the steps
    /// share it without a heap allocation or captured variables.
    private struct Run {
        let inputs: UnsafePointer<Float>
        let targets: Targets
        let validation: ValidationSet?
        /// The options' loss, resolved for the network's output layer.
        let loss: Loss
        /// When the run began, for ``TrainingSummary/seconds``.
        let started: Double
        /// The training samples, reshuffled before every epoch when ``TrainingOptions/shuffle`` is set.
        let order: HeapBuffer<Int>
        let trainCount: Int
        /// The samples held out by ``TrainingOptions/validationFraction``, in their original order.
        let heldOut: HeapBuffer<Int>
        let batchCount: Int
        let workspace: Workspace
        /// Weights whose loss was measured finite, to fall back on if training diverges: the weights at
        /// the start of an epoch become "good" once the epoch's first batch has been measured on them.
        var lastGood: FloatBuffer
        var epochStart: FloatBuffer
        /// The best epoch's weights; empty without early stopping.
        let best: FloatBuffer
        let earlyStopping: Bool
        var summary = TrainingSummary()
        var bestLoss = Double.infinity
        var sinceBest = 0

        var hasValidation: Bool { validation != nil || heldOut.count > 0 }
    }

    /// What an epoch's batches add up to: the summed loss, the samples classified correctly, and the
    /// learning rate of the last step.
    private struct EpochTraining {
        var lossSum: Double
        var correct: Int
        var rate: Float
    }

    /// How an epoch's batches ended.
    private enum BatchesOutcome {
        case finished(EpochTraining)
        /// The batch callback asked to stop.
        case cancelled
        /// A step failed (a loss, gradient or step that is not finite); the run's message says where.
        case failed
    }

    /// Checks the options, the data and the validation data before anything changes, so that a bad
    /// call leaves the network, the options and the optimiser's state as they were. Returns the loss.
    private func checkFit(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int, validation: ValidationSet?,
                          plan: TrainingOptions) throws(NudgeError) -> Loss {
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
        return loss
    }

    /// Splits the samples into training ones and those held out by ``TrainingOptions/validationFraction``.
    /// Selection sampling (Knuth's algorithm S) picks exactly the held-out count and keeps both sets in
    /// their original order. Its generator is seeded apart from the shuffling, so the split does not
    /// depend on earlier calls and draws nothing from the trainer's generator.
    private func split(_ rows: Int, plan: TrainingOptions) throws(NudgeError) -> (order: HeapBuffer<Int>, heldOut: HeapBuffer<Int>) {
        let heldOutCount = Int((Double(rows) * plan.validationFraction).rounded())
        if plan.validationFraction > 0 {
            guard heldOutCount >= 1, heldOutCount < rows else {
                throw .invalid([.subject(.option(.validationFraction)), .text(" \(plan.validationFraction) of \(rows) samples leaves \(heldOutCount) for validation and \(rows - heldOutCount) for training; each needs at least 1")])
            }
        }
        let trainCount = rows - heldOutCount
        let order = try HeapBuffer<Int>(count: trainCount, zeroed: false)
        let heldOut = try HeapBuffer<Int>(count: heldOutCount, zeroed: false)
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
        return (order, heldOut)
    }

    /// Allocates what the run needs, then makes its changes: the input normalisation fitted on the
    /// training samples, then `newOptions`. Everything that can fail for lack of memory comes first,
    /// so a run that cannot start leaves the network as it was.
    private func prepareRun(_ inputs: UnsafePointer<Float>, targets: Targets, validation: ValidationSet?, loss: Loss,
                            started: Double, split: (order: HeapBuffer<Int>, heldOut: HeapBuffer<Int>),
                            plan: TrainingOptions, applying newOptions: TrainingOptions?) throws(NudgeError) -> Run {
        let trainCount = split.order.count
        let earlyStopping = plan.patience > 0
        let lastGood = try FloatBuffer(copying: network.storage)
        let epochStart = try FloatBuffer(copying: network.storage)
        let best = try FloatBuffer(count: earlyStopping ? network.parameterCount : 0, zeroed: false)
        let workspace = try workspace(for: min(plan.batchSize, trainCount), options: plan)
        // Fitted on the training samples only; the last change before training starts.
        if let fitted = try InputNormalization.fit(inputs, rows: .indices(split.order.pointer, count: trainCount),
                                                   width: network.inputSize, kind: plan.normalization) {
            try network.setNormalization(fitted)
        }
        if let newOptions { try setOptions(newOptions) }
        return Run(inputs: inputs, targets: targets, validation: validation, loss: loss, started: started,
                   order: split.order, trainCount: trainCount, heldOut: split.heldOut,
                   batchCount: (trainCount + options.batchSize - 1) / options.batchSize, workspace: workspace,
                   lastGood: lastGood, epochStart: epochStart, best: best, earlyStopping: earlyStopping)
    }

    /// One epoch: shuffle, train on every batch, measure, keep the best weights, report. Returns why
    /// the run ends here, or nil to go on to the next epoch.
    private func runEpoch(_ epoch: Int, _ run: inout Run, progress: ((EpochReport) -> Bool)?,
                          batchProgress: ((BatchReport) -> Bool)?) -> StopReason? {
        let epochStarted = monotonicSeconds()
        if options.shuffle { shuffle(run.order) }
        run.epochStart.copy(from: network.storage)
        let trained: EpochTraining
        switch trainBatches(epoch, &run, batchProgress: batchProgress) {
        case .finished(let result): trained = result
        case .cancelled: return .cancelled
        case .failed:
            fallBack(run)
            return .notFinite
        }
        var report = measure(epoch, trained, run)
        if let reason = track(&report, &run) { return reason }
        report.seconds = monotonicSeconds() - epochStarted
        run.summary.epochsRun = epoch
        run.summary.finalTrainLoss = report.trainLoss
        run.summary.finalTrainAccuracy = report.trainAccuracy
        run.summary.finalValidationLoss = report.validationLoss
        run.summary.finalValidationAccuracy = report.validationAccuracy
        if let progress, progress(report) {
            run.summary.message = "stopped by the progress callback after epoch \(epoch)"
            return .cancelled
        }
        if run.earlyStopping && run.sinceBest >= options.patience { return .earlyStopped }
        return nil
    }

    /// Fisher-Yates over the training samples, with the trainer's generator: the draws go on from one
    /// call to the next, so every epoch of every call sees a new order.
    private func shuffle(_ order: HeapBuffer<Int>) {
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(rng.next(upperBound: UInt64(i + 1)))
            order.buffer.swapAt(i, j)
        }
    }

    /// Trains on the epoch's batches, in the order of `run.order`. This is the hot path: it allocates
    /// nothing (a batch is a slice of `run.order`, and every buffer is `run.workspace`'s). A failed
    /// step or a batch callback asking to stop ends the epoch, with a message saying where.
    private func trainBatches(_ epoch: Int, _ run: inout Run, batchProgress: ((BatchReport) -> Bool)?) -> BatchesOutcome {
        var lossSum = 0.0, correct = 0
        var rate = options.learningRate
        for b in 0..<run.batchCount {
            let start = b * options.batchSize
            let rows = Rows.indices(run.order.pointer + start, count: min(options.batchSize, run.trainCount - start))
            rate = options.learningRate(atStep: (epoch - 1) * run.batchCount + b, stepsPerEpoch: run.batchCount)
            do throws(NudgeError) {
                let (l, c) = try step(run.inputs, targets: run.targets, rows: rows, loss: run.loss, learningRate: rate,
                                      in: run.workspace)
                lossSum += l
                correct += c
                if b == 0 { swap(&run.lastGood, &run.epochStart) }
            } catch {
                run.summary.message = "epoch \(epoch), batch \(b + 1): \(error.message)"
                return .failed
            }
            if let batchProgress, batchProgress(BatchReport(epoch: epoch, batch: b + 1, batchCount: run.batchCount,
                                                             loss: lossSum / Double(start + rows.count))) {
                run.summary.message = "stopped by the batch callback at epoch \(epoch), batch \(b + 1)"
                return .cancelled
            }
        }
        return .finished(EpochTraining(lossSum: lossSum, correct: correct, rate: rate))
    }

    /// The epoch's report: the training loss and accuracy as the batches were trained, and the loss
    /// and accuracy on the validation data (given, or held out) with the weights the epoch ended with.
    private func measure(_ epoch: Int, _ trained: EpochTraining, _ run: Run) -> EpochReport {
        var report = EpochReport(epoch: epoch, epochs: options.epochs,
                                 trainLoss: trained.lossSum / Double(run.trainCount),
                                 trainAccuracy: Double(trained.correct) / Double(run.trainCount),
                                 validationLoss: .nan, validationAccuracy: .nan, seconds: 0, improved: false,
                                 learningRate: trained.rate)
        if let validation = run.validation {
            (report.validationLoss, report.validationAccuracy) = network.evaluate(
                validation.inputs, targets: validation.targets, rows: .range(start: 0, count: validation.rows),
                loss: run.loss, in: run.workspace)
        } else if run.heldOut.count > 0 {
            (report.validationLoss, report.validationAccuracy) = network.evaluate(
                run.inputs, targets: run.targets, rows: .indices(run.heldOut.pointer, count: run.heldOut.count),
                loss: run.loss, in: run.workspace)
        }
        return report
    }

    /// Follows the monitored loss (the validation loss when there is validation data, else the training
    /// loss): a new best is recorded, and its weights kept for early stopping. A loss that is not
    /// finite ends the run on the last good weights, since going on would only carry the divergence on.
    private func track(_ report: inout EpochReport, _ run: inout Run) -> StopReason? {
        let monitored = run.hasValidation ? report.validationLoss : report.trainLoss
        guard monitored.isFinite else {
            run.summary.message = "epoch \(report.epoch): the \(run.hasValidation ? "validation" : "training") loss became \(monitored); try a smaller learning rate"
            fallBack(run)
            return .notFinite
        }
        if monitored < run.bestLoss - options.minDelta {
            run.bestLoss = monitored
            run.summary.bestEpoch = report.epoch
            run.summary.bestLoss = monitored
            run.sinceBest = 0
            report.improved = true
            if run.earlyStopping { run.best.copy(from: network.storage) }
        } else {
            run.sinceBest += 1
        }
        return nil
    }

    /// After divergence: the last weights whose loss was measured finite, and a fresh optimiser state
    /// (its momentum or moments would carry the divergence on).
    private func fallBack(_ run: Run) {
        network.storage.copy(from: run.lastGood)
        state.reset()
    }

    /// The run's summary. With early stopping and ``TrainingOptions/restoreBestWeights``, the best
    /// epoch's weights are put back first, except after a callback stopped the run: the caller then
    /// gets the weights of the last finished batch, as documented.
    private func finish(_ run: Run, _ reason: StopReason) -> TrainingSummary {
        if run.earlyStopping && options.restoreBestWeights && run.summary.bestEpoch > 0 && reason != .cancelled {
            network.storage.copy(from: run.best)
        }
        var summary = run.summary
        summary.stopReason = reason
        summary.seconds = monotonicSeconds() - run.started
        return summary
    }
}

/// Seconds from an arbitrary fixed point, for durations.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
