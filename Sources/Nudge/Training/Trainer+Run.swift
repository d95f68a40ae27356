// The training loop: shuffled mini-batches, validation, early stopping, reports, checkpoints, and
// the same run spread over a group of processes (Collective.swift). A run is a sequence of named
// steps sharing one `Run`: `checkFit`, `agree`, `prepareRun`, `begin`, then `runEpoch` for each epoch
// (`trainBatches`, `measure`, `track`, the report), and `finish`.

/// Where and how often training calls write checkpoints (``Trainer/save(to:)``).
public struct CheckpointPlan: Sendable, Equatable {
    /// The checkpoint file, replaced atomically at each write.
    public var path: String
    /// Steps between checkpoints; 0 writes one at the end of each epoch only.
    public var everySteps: Int

    /// - Throws: `invalidArgument` for an empty path or a negative step count.
    public init(path: String, everySteps: Int = 0) throws(NudgeError) {
        guard !path.isEmpty else { throw .invalid("the checkpoint path is empty") }
        guard everySteps >= 0 else { throw .invalid("every_steps is \(everySteps); it must be 0 (each epoch) or more") }
        self.path = path
        self.everySteps = everySteps
    }
}

extension Trainer {
    /// Held-out data, measured after each epoch; with `weights` (one per sample), by its weighted
    /// mean loss and weighted accuracy.
    package struct ValidationSet {
        package var inputs: UnsafePointer<Float>
        package var targets: Targets
        package var rows: Int
        package var weights: UnsafePointer<Float>?
        package init(inputs: UnsafePointer<Float>, targets: Targets, rows: Int, weights: UnsafePointer<Float>? = nil) {
            self.inputs = inputs
            self.targets = targets
            self.rows = rows
            self.weights = weights
        }
    }

    /// The training loop: shuffled mini-batches, validation, early stopping with the best weights
    /// restored, reports and checkpoints. Callbacks return `true` to stop. `newOptions`, when given,
    /// replace the trainer's options once everything has been checked. Bad data or options are
    /// reported before any change; a run stopped by a callback or a non-finite loss still returns a
    /// summary that says so. A run loaded from a checkpoint is continued where it was (or, if it had
    /// ended, its summary returned at once); its earlier epochs are reported first.
    ///
    /// With `weights` (one per sample; `weightsName` names them in messages), each sample's loss and
    /// gradient count its weight times: see ``step(_:targets:weights:rows:loss:learningRate:in:)``.
    /// The training loss and accuracy reported are then weighted means, as are the validation ones
    /// when the validation data has weights (held-out samples keep their own weights).
    ///
    /// This raw-pointer form stays `package` for the C ABI, which already holds bare pointers whose
    /// counts it has checked against the network, picks dense or label targets at run time, and
    /// needs `newOptions` for `nudge_trainer_train`. Swift callers use the public overloads
    /// (`fit(_:labels:...)`, `fit(_:targets:...)`), which check their arrays or buffers and call this.
    package func fit(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil, rows: Int,
                     validation: ValidationSet?, applying newOptions: TrainingOptions? = nil,
                     weightsName: (training: String, validation: String) = ("weights", "validation weights"),
                     progress: ((EpochReport) -> Bool)?, batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> TrainingSummary {
        try exclusively { () throws(NudgeError) in
            try run(Data(inputs: inputs, targets: targets, weights: weights, rows: rows, weightsName: weightsName),
                    validation: validation, applying: newOptions, progress: progress, batchProgress: batchProgress)
        }
    }

    /// A training call's samples.
    struct Data {
        let inputs: UnsafePointer<Float>
        let targets: Targets
        let weights: UnsafePointer<Float>?
        let rows: Int
        let weightsName: (training: String, validation: String)
    }

    /// ``fit(_:targets:weights:rows:validation:applying:weightsName:progress:batchProgress:)`` once it holds the trainer.
    private func run(_ data: Data, validation: ValidationSet?, applying newOptions: TrainingOptions?,
                     progress: ((EpochReport) -> Bool)?, batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> TrainingSummary {
        let started = monotonicSeconds()
        let plan = newOptions ?? options
        let (inputs, targets) = (data.inputs, data.targets)
        var loss = Loss.meanSquaredError
        var failure: NudgeError?
        do { loss = try checkFit(data, validation: validation, plan: plan) } catch { failure = error }
        let partition = try agree(failure, rows: data.rows, validationRows: validation?.rows ?? 0,
                                  weighted: (data.weights != nil, validation?.weights != nil), plan: plan)
        // Every process reaches this sum: nothing between `agree` and here can fail on one only.
        let fingerprint = try dataFingerprint(inputs, targets: targets, weights: data.weights, partition: partition)
        if let saved = pending, saved.finished {
            try saved.check(partition: partition, targets: targets, validation: validation != nil, weights: data.weights != nil,
                            fingerprint: fingerprint)
            pending = nil
            saved.history.forEach { _ = progress?($0) }
            return saved.summary
        }
        let (prepared, fitted) = try together { () throws(NudgeError) in
            try prepareRun(data, validation: validation, loss: loss, started: started,
                           partition: partition, fingerprint: fingerprint, plan: plan)
        }
        var run = prepared
        try begin(&run, fitted: fitted, applying: newOptions)
        run.history.forEach { _ = progress?($0) }
        for epoch in stride(from: run.epoch, through: options.epochs, by: 1) {
            if let reason = try runEpoch(epoch, &run, progress: progress, batchProgress: batchProgress) {
                return try finish(&run, reason)
            }
        }
        return try finish(&run, .completed)
    }

    // MARK: The steps of a run

    /// What one run of the training loop works with: its data, how the samples are split, the weights
    /// it can fall back on, where it is, and the summary so far. Passed `inout` from step to step.
    struct Run {
        let inputs: UnsafePointer<Float>
        let targets: Targets
        /// The samples' weights; nil when every sample weighs 1.
        let weights: UnsafePointer<Float>?
        let validation: ValidationSet?
        /// The options' loss, resolved for the network's output layer.
        let loss: Loss
        /// When this call began, for ``TrainingSummary/seconds``.
        let started: Double
        /// Which samples this process computes, alone or in a group.
        let partition: Partition
        /// The training samples (global indices), reshuffled before every epoch when ``TrainingOptions/shuffle`` is set.
        let order: HeapBuffer<Int>
        let trainCount: Int
        /// The samples held out by ``TrainingOptions/validationFraction``, in their original order.
        let heldOut: HeapBuffer<Int>
        let batchCount: Int
        let workspace: Workspace
        /// This process's rows of a batch or of the held-out samples, in a group with sharded data.
        let scratch: HeapBuffer<Int>
        /// Where those rows sit in their batch, for the dropout draws.
        let places: HeapBuffer<Int>
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
        /// The epoch in progress, or the next one when `nextBatch` is 0.
        var epoch = 1
        /// The next batch of `epoch` to train; 0 when the epoch has not started.
        var nextBatch = 0
        /// What the epoch's batches so far add up to.
        var partial = EpochTraining(lossSum: 0, correct: 0, weight: 0, rate: 0)
        /// Steps taken in the run, across calls when it was resumed.
        var steps = 0
        /// Every finished epoch's report.
        var history: [EpochReport] = []
        /// Seconds the run took before it was last saved, when it was resumed.
        var secondsBefore = 0.0
        /// A callback asked to stop; a group hears it at its next sum.
        var stopRequested = false
        /// This process's checkpoint could not be written; a group hears it at its next sum.
        var failure: NudgeError?
        /// A hash of the data's first and last samples, the same for every layout and group size.
        var fingerprint: UInt64 = 0

        var hasValidation: Bool { validation != nil || heldOut.count > 0 }
    }

    /// What an epoch's batches add up to: the summed loss, the samples (or their weight) classified
    /// correctly, the samples' count (or weight), and the learning rate of the last step.
    struct EpochTraining {
        var lossSum: Double
        var correct: Double
        var weight: Double
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
    private func checkFit(_ data: Data, validation: ValidationSet?, plan: TrainingOptions) throws(NudgeError) -> Loss {
        try plan.validate(for: network)
        let loss = try plan.loss.resolved(for: network.activations[network.weightLayerCount - 1])
        guard data.rows > 0 else { throw .invalid("there are no samples; training needs at least one") }
        try network.validate(inputs: data.inputs, targets: data.targets, rows: data.rows, loss: loss)
        if let weights = data.weights { try network.validate(weights: weights, rows: data.rows, what: data.weightsName.training) }
        if let validation {
            guard validation.rows > 0 else { throw .invalid("the validation data has no samples") }
            guard plan.validationFraction == 0 else {
                throw .invalid([.text("give either validation data or a "), .subject(.option(.validationFraction)), .text(", not both")])
            }
            try network.validate(inputs: validation.inputs, targets: validation.targets, rows: validation.rows, loss: loss,
                                 what: "validation inputs")
            if let weights = validation.weights {
                try network.validate(weights: weights, rows: validation.rows, what: data.weightsName.validation)
            }
        }
        if let pending, pending.options != plan {
            let differing = zip(pending.options.storedValues, plan.storedValues).first { $0.1 != $1.1 }.map { $0.0.0 }
            let subject: [NudgeError.Part] = differing.map { [.text(": "), .subject(.option($0)), .text(" differs")] } ?? []
            throw .invalid([.text("this trainer continues a run loaded from a checkpoint, with that run's options; these options differ")]
                           + subject + [.text(" (give the run's options, or none)")])
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

    /// Allocates what the run needs and, for a new run, fits the input normalisation on the training
    /// samples (rank 0's in a group) without setting it yet; a resumed run takes its state from the
    /// checkpoint. Everything here can fail on one process only, so a group agrees on it afterwards.
    private func prepareRun(_ data: Data, validation: ValidationSet?, loss: Loss,
                            started: Double, partition: Partition, fingerprint: UInt64,
                            plan: TrainingOptions) throws(NudgeError) -> (Run, InputNormalization?) {
        let (inputs, targets) = (data.inputs, data.targets)
        let samples = try split(partition.globalRows, plan: plan)
        let trainCount = samples.order.count
        // Sharded data's weights are known to their own process only: a group then trains on as it can.
        if let weights = data.weights, partition.group?.layout != .sharded {
            let name = data.weightsName.training
            if weightSum(weights, .indices(samples.order.pointer, count: trainCount)) == 0 {
                throw .invalid("\(name) are zero for every training sample (the samples above zero were all held out by the validation fraction); at least one training sample needs a weight above zero")
            }
            if samples.heldOut.count > 0 && weightSum(weights, .indices(samples.heldOut.pointer, count: samples.heldOut.count)) == 0 {
                throw .invalid("\(name) are zero for every sample held out by the validation fraction; validation needs a weight above zero")
            }
        }
        let earlyStopping = plan.patience > 0
        let lastGood = try FloatBuffer(copying: network.storage)
        let epochStart = try FloatBuffer(copying: network.storage)
        // Zeroed: a checkpoint written before the first epoch ends holds it, and must not carry stale memory.
        let best = try FloatBuffer(count: earlyStopping ? network.parameterCount : 0, zeroed: true)
        let workspace = try workspace(for: min(plan.batchSize, trainCount), options: plan)
        let sharded = partition.group?.layout == .sharded
        let scratch = try HeapBuffer<Int>(count: sharded ? max(min(plan.batchSize, trainCount), samples.heldOut.count) : 0, zeroed: false)
        let places = try HeapBuffer<Int>(count: sharded ? min(plan.batchSize, trainCount) : 0, zeroed: false)
        var run = Run(inputs: inputs, targets: targets, weights: data.weights, validation: validation, loss: loss, started: started,
                      partition: partition, order: samples.order, trainCount: trainCount, heldOut: samples.heldOut,
                      batchCount: (trainCount + plan.batchSize - 1) / plan.batchSize, workspace: workspace,
                      scratch: scratch, places: places, lastGood: lastGood, epochStart: epochStart, best: best, earlyStopping: earlyStopping)
        run.fingerprint = fingerprint
        if let saved = pending {
            try saved.check(partition: partition, targets: targets, validation: validation != nil, weights: data.weights != nil,
                            fingerprint: run.fingerprint)
            try saved.restore(into: &run)
            return (run, nil)
        }
        // With sharded data every process fits on its samples and the sums are combined (`begin`).
        guard partition.group?.rank ?? 0 == 0, !sharded else { return (run, nil) }
        // Fitted on the training samples only (a group's rank 0 fits on its own and gives it to all).
        let rows = Rows.indices(samples.order.pointer, count: trainCount)
        let fitted = try InputNormalization.fit(inputs, rows: rows, width: network.inputSize, kind: plan.normalization)
        return (run, fitted)
    }

    /// The run's changes, once every process could prepare it: the fitted normalisation, the new
    /// options, and in a group rank 0's starting point given to all. A resumed run changes nothing.
    private func begin(_ run: inout Run, fitted: InputNormalization?, applying newOptions: TrainingOptions?) throws(NudgeError) {
        guard pending == nil else {
            pending = nil
            return
        }
        var fitted = fitted
        if let group = collective, group.layout == .sharded {
            fitted = try fitAcross(group, run, kind: (newOptions ?? options).normalization)
        }
        if let fitted { try network.setNormalization(fitted) }
        if let newOptions { try replaceOptions(newOptions) }
        try shareStart()
        run.lastGood.copy(from: network.storage)
        run.epochStart.copy(from: network.storage)
    }

    /// One epoch: shuffle, train on every batch, measure, keep the best weights, report, checkpoint.
    /// Returns why the run ends here, or nil to go on to the next epoch.
    private func runEpoch(_ epoch: Int, _ run: inout Run, progress: ((EpochReport) -> Bool)?,
                          batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> StopReason? {
        let epochStarted = monotonicSeconds()
        if run.nextBatch == 0 {
            if options.shuffle { shuffle(run.order) }
            run.epochStart.copy(from: network.storage)
            run.partial = EpochTraining(lossSum: 0, correct: 0, weight: 0, rate: options.learningRate)
        }
        run.epoch = epoch
        let trained: EpochTraining
        switch try trainBatches(epoch, &run, batchProgress: batchProgress) {
        case .finished(let result): trained = result
        case .cancelled: return .cancelled
        case .failed:
            fallBack(run)
            return .notFinite
        }
        guard var report = try measure(epoch, trained, &run, started: epochStarted) else {
            run.summary.message = "stopped by the batch callback at the end of epoch \(epoch)"
            return .cancelled
        }
        if !network.measuresAccuracy(run.targets) {
            // A regression: as in evaluation, no accuracy rather than a 0.5 threshold that means nothing.
            (report.trainAccuracy, report.validationAccuracy) = (.nan, .nan)
        }
        if let reason = track(&report, &run) { return reason }
        run.summary.epochsRun = epoch
        run.summary.finalTrainLoss = report.trainLoss
        run.summary.finalTrainAccuracy = report.trainAccuracy
        run.summary.finalValidationLoss = report.validationLoss
        run.summary.finalValidationAccuracy = report.validationAccuracy
        run.history.append(report)
        (run.epoch, run.nextBatch) = (epoch + 1, 0)
        let asked = progress?(report) ?? false
        let ending = asked || (run.earlyStopping && run.sinceBest >= options.patience) || epoch == options.epochs
        if !ending { writeCheckpoint(&run, reason: nil) }
        if try agreeToStop(asked, &run) {
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

    /// Trains on the epoch's batches from `run.nextBatch`, in the order of `run.order`. This is the hot
    /// path: it allocates nothing (a batch is a slice of `run.order`, and every buffer is `run`'s). A
    /// failed step or a batch callback asking to stop ends the epoch, with a message saying where.
    private func trainBatches(_ epoch: Int, _ run: inout Run, batchProgress: ((BatchReport) -> Bool)?) throws(NudgeError) -> BatchesOutcome {
        let batchSize = options.batchSize
        for b in run.nextBatch..<run.batchCount {
            let start = b * batchSize, count = min(batchSize, run.trainCount - start)
            let rate = options.learningRate(atStep: (epoch - 1) * run.batchCount + b, stepsPerEpoch: run.batchCount)
            do throws(NudgeError) {
                let tally: Tally
                if collective != nil {
                    guard let result = try groupStep(&run, start: start, count: count, learningRate: rate) else {
                        run.summary.message = "stopped by the batch callback at epoch \(epoch), batch \(b)"
                        return .cancelled
                    }
                    tally = result
                } else {
                    tally = try step(run.inputs, targets: run.targets, weights: run.weights,
                                     rows: .indices(run.order.pointer + start, count: count),
                                     loss: run.loss, learningRate: rate, in: run.workspace)
                }
                run.partial.lossSum += tally.loss
                run.partial.correct += tally.correct
                run.partial.weight += tally.weight
                run.partial.rate = rate
                if b == 0 { swap(&run.lastGood, &run.epochStart) }
            } catch where error.kind == .notFinite {
                run.summary.message = "epoch \(epoch), batch \(b + 1): \(error.message)"
                return .failed
            }
            run.steps += 1
            run.nextBatch = b + 1
            if let batchProgress, batchProgress(BatchReport(epoch: epoch, batch: b + 1, batchCount: run.batchCount,
                                                             loss: run.partial.lossSum / run.partial.weight)) {
                run.summary.message = "stopped by the batch callback at epoch \(epoch), batch \(b + 1)"
                // Alone, stop now; a group stops together at its next sum.
                guard collective != nil else { return .cancelled }
                run.stopRequested = true
            }
            if let plan = checkpoint, plan.everySteps > 0, run.steps % plan.everySteps == 0 {
                writeCheckpoint(&run, reason: nil)
                if collective == nil, let failure = run.failure { throw failure }
            }
        }
        return .finished(run.partial)
    }

    /// The epoch's report: the training loss and accuracy as the batches were trained, and the loss
    /// and accuracy on the validation data (given, or held out) with the weights the epoch ended with.
    /// In a group, the validation sums are summed across it, and the epoch's time is rank 0's, so that
    /// every process reports the same; nil when a process asked to stop.
    private func measure(_ epoch: Int, _ trained: EpochTraining, _ run: inout Run, started: Double) throws(NudgeError) -> EpochReport? {
        var report = EpochReport(epoch: epoch, epochs: options.epochs,
                                 trainLoss: trained.lossSum / trained.weight,
                                 trainAccuracy: trained.correct / trained.weight,
                                 validationLoss: .nan, validationAccuracy: .nan, seconds: 0, improved: false,
                                 learningRate: trained.rate)
        var rows = Rows.range(start: 0, count: 0)
        if let validation = run.validation {
            rows = run.partition.validationRows(validation.rows)
        } else if run.heldOut.count > 0 {
            rows = run.partition.rows(of: run.heldOut.pointer, count: run.heldOut.count, scratch: run.scratch.pointer)
        }
        let inputs = run.validation?.inputs ?? run.inputs, targets = run.validation?.targets ?? run.targets
        let weights = run.validation == nil ? run.weights : run.validation?.weights
        var tally = Tally()
        if rows.count > 0 {
            tally = network.evaluate(inputs, targets: targets, weights: weights, rows: rows, loss: run.loss, in: run.workspace)
        }
        guard let group = collective else {
            if rows.count > 0 { (report.validationLoss, report.validationAccuracy) = (tally.loss / tally.weight, tally.correct / tally.weight) }
            report.seconds = monotonicSeconds() - started
            return report
        }
        let g = gradient.pointer + network.parameterCount
        if rows.count > 0 {
            FloatPieces.put(tally.loss, g)
            FloatPieces.put(tally.correct, g + 2)
            FloatPieces.put(tally.weight, g + 4)
        }
        (g[6], g[7]) = (run.stopRequested ? 1 : 0, run.failure != nil ? 1 : 0)
        if group.rank == 0 { FloatPieces.put(monotonicSeconds() - started, g + 8) }
        try sum(g, Trainer.extraSlots, group)
        let total = FloatPieces.double(g + 4)
        if run.hasValidation {
            report.validationLoss = FloatPieces.double(g) / total
            report.validationAccuracy = FloatPieces.double(g + 2) / total
        }
        report.seconds = FloatPieces.double(g + 8)
        let (stop, failed) = (g[6] > 0, g[7] > 0)
        clearExtras()
        if failed { throw run.failure ?? rankZeroFailure }
        return stop ? nil : report
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

    /// The run's summary, and its last checkpoint. With early stopping and
    /// ``TrainingOptions/restoreBestWeights``, the best epoch's weights are put back first, except
    /// after a callback stopped the run: the caller then gets the weights of the last finished batch,
    /// as documented, and the checkpoint can continue the run from there.
    private func finish(_ run: inout Run, _ reason: StopReason) throws(NudgeError) -> TrainingSummary {
        if run.earlyStopping && options.restoreBestWeights && run.summary.bestEpoch > 0 && reason != .cancelled {
            network.storage.copy(from: run.best)
        }
        run.summary.stopReason = reason
        run.summary.seconds = run.secondsBefore + monotonicSeconds() - run.started
        writeCheckpoint(&run, reason: reason == .cancelled ? nil : reason)
        _ = try agreeToStop(false, &run)
        return run.summary
    }

    // MARK: Checkpoints

    /// Writes the run's checkpoint when there is one to write (rank 0 in a group): the run in
    /// progress, or with `reason`, the run that ended. A failure is kept in `run.failure`, which a
    /// group hears at its next sum; alone, the caller throws it.
    private func writeCheckpoint(_ run: inout Run, reason: StopReason?) {
        guard let plan = checkpoint, collective?.rank ?? 0 == 0, run.failure == nil else { return }
        var summary = run.summary
        // An ended run keeps the summary the call returns (seconds included), which a call that
        // loads the checkpoint returns again; a run in progress counts its seconds so far.
        if reason == nil { summary.seconds = run.secondsBefore + monotonicSeconds() - run.started }
        let saved = SavedRun(run: run, summary: summary, reason: reason)
        do { try saveCheckpoint(saved, to: plan.path) } catch {
            run.failure = NudgeError(error.kind, "cannot write the checkpoint after step \(run.steps): \(error.message)")
        }
    }

    // MARK: In a group

    /// The input normalisation of sharded data: every process fits on its training samples, and the
    /// sums of each pass are summed across the group.
    private func fitAcross(_ group: Collective, _ run: Run, kind: InputNormalization.Kind) throws(NudgeError) -> InputNormalization? {
        guard kind != .none else { return nil }
        let mine = try HeapBuffer<Int>(count: run.trainCount, zeroed: false)
        let rows = run.partition.rows(of: run.order.pointer, count: run.trainCount, scratch: mine.pointer)
        return try InputNormalization.fit(run.inputs, rows: rows, width: network.inputSize, kind: kind, total: run.trainCount) {
            (sums: UnsafeMutableBufferPointer<Double>) throws(NudgeError) in
            let buffer = try FloatBuffer(count: 2 * sums.count)
            for (i, v) in sums.enumerated() { FloatPieces.put(v, buffer.pointer + 2 * i) }
            try group.reduce(buffer.pointer, buffer.count)
            for i in sums.indices { sums[i] = FloatPieces.double(buffer.pointer + 2 * i) }
        }
    }

    /// Rank 0's failure, as the other processes of a group report it.
    private var rankZeroFailure: NudgeError {
        NudgeError(.collective, "the process of rank 0 could not write the checkpoint; its own error says why")
    }

    /// Sums `count` floats across the group; on failure the trainer's sum buffer is cleared.
    private func sum(_ buffer: UnsafeMutablePointer<Float>, _ count: Int, _ group: Collective) throws(NudgeError) {
        do { try group.reduce(buffer, count) } catch {
            gradient.zero()
            throw error
        }
    }

    private func clearExtras() {
        (gradient.pointer + network.parameterCount).update(repeating: 0, count: Trainer.extraSlots)
    }

    /// Whether to stop: alone, `stop`; in a group, whether any process asked to. A checkpoint that
    /// could not be written fails the call, in a group on every process.
    private func agreeToStop(_ stop: Bool, _ run: inout Run) throws(NudgeError) -> Bool {
        guard let group = collective else {
            if let failure = run.failure { throw failure }
            return stop || run.stopRequested
        }
        let g = gradient.pointer + network.parameterCount
        (g[0], g[1]) = (stop || run.stopRequested ? 1 : 0, run.failure != nil ? 1 : 0)
        try sum(g, 2, group)
        let (anyStop, failed) = (g[0] > 0, g[1] > 0)
        clearExtras()
        if failed { throw run.failure ?? rankZeroFailure }
        return anyStop
    }

    /// One step of a group: this process's part of the batch forward and back, then the gradient and
    /// the step's sums summed across the group, then the same update everywhere. Returns the batch's
    /// summed loss and correct count, or nil when a process asked to stop (the step is not taken).
    /// With weights, each process knows only its own samples' weights: the gradient is summed
    /// unscaled with the batch's weight, then divided by the group's total weight.
    private func groupStep(_ run: inout Run, start: Int, count: Int, learningRate: Float) throws(NudgeError) -> Tally? {
        let group = collective!
        let p = network.parameterCount, g = gradient.pointer
        let (rows, places) = run.partition.rows(of: run.order.pointer + start, count: count, scratch: run.scratch.pointer,
                                                places: run.places.pointer)
        // A step that a stop request cancels draws no mask: the generator goes back, so that the run's
        // checkpoint continues as the uninterrupted run (and as one process, which stops before drawing).
        let generator = rng
        var dropout = nextDropout()
        dropout?.rows = places
        let weighted = run.weights != nil
        var mine = Tally(), bad = false
        if rows.count > 0 {
            let (x, loss) = network.forwardWithLoss(run.inputs, targets: run.targets, weights: run.weights, rows: rows,
                                                    loss: run.loss, scale: weighted ? 1 : 1 / Float(count), in: run.workspace,
                                                    dropout: dropout, labelSmoothing: options.labelSmoothing)
            if loss.isFinite {
                let output = run.workspace.outputs[network.weightLayerCount - 1].pointer
                mine = network.tallyCorrect(output, run.workspace, weighted: weighted, rows: rows.count)
                network.backward(x, rows: rows.count, in: run.workspace, into: g, accumulate: true)
                mine.loss = loss
            } else {
                bad = true
            }
        }
        FloatPieces.put(mine.loss, g + p)
        FloatPieces.put(mine.correct, g + p + 6)
        FloatPieces.put(mine.weight, g + p + 8)
        (g[p + 3], g[p + 4], g[p + 5]) = (bad ? 1 : 0, run.stopRequested ? 1 : 0, run.failure != nil ? 1 : 0)
        try sum(g, p + Trainer.extraSlots, group)
        let batch = Tally(loss: FloatPieces.double(g + p), correct: FloatPieces.double(g + p + 6),
                          weight: weighted ? FloatPieces.double(g + p + 8) : Double(count))
        let (anyBad, stop, failed) = (g[p + 3] > 0, g[p + 4] > 0, g[p + 5] > 0)
        clearExtras()
        let empty = weighted && !(batch.weight > 0)
        if failed || stop || anyBad || !batch.loss.isFinite || empty { gradient.zero() }
        if failed { throw run.failure ?? rankZeroFailure }
        if stop || empty {
            // A batch whose weights are all 0 is skipped, as alone: no step and no dropout draw.
            rng = generator
            return stop ? nil : Tally()
        }
        guard !anyBad && batch.loss.isFinite else {
            throw NudgeError(.notFinite, "the loss became \(anyBad ? Double.nan : batch.loss / batch.weight); try a smaller learning rate")
        }
        if weighted {
            let scale = 1 / Float(batch.weight)
            for i in 0..<p { g[i] *= scale }
        }
        try applyGradient(learningRate: learningRate)
        return batch
    }
}
