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
    var state: OptimizerState
    /// Sized for the largest batch seen so far, and allocated when first needed.
    private var workspace: Workspace?
    /// The buffers of steps split by rows between threads (Trainer+RowSplit.swift), when they pay.
    var splitSpace: RowSplit?
    /// The gradient, then ``Trainer/extraSlots`` more floats that a group's step sums with it.
    let gradient: FloatBuffer
    var rng: SeededGenerator
    /// The group this trainer trains with; nil alone.
    public var collective: Collective?
    /// Where and how often the training calls write checkpoints; nil for none.
    public var checkpoint: CheckpointPlan?
    /// A run loaded from a checkpoint, which the next training call continues (or reports, if it ended).
    var pending: SavedRun?
    /// The weights before a single `step`, allocated on the first one.
    private var snapshot: FloatBuffer?
    /// Set during a call that changes the trainer (see ``exclusively(_:)``).
    private var busy = false

    /// Runs `body` as the only trainer call on this trainer and its network. A training callback that
    /// calls back into the same trainer, or into any trainer of the same network (and another thread
    /// doing so at the same time), gets `invalidArgument` instead of changing the buffers and weights
    /// the running call is using.
    func exclusively<T>(_ body: () throws(NudgeError) -> T) throws(NudgeError) -> T {
        guard !busy else {
            throw .invalid("the trainer is already training (this call came from its own callback, or from another thread during a training call); call it again after that call returns")
        }
        guard network.inTraining.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw .invalid("the network is already being trained by another call (from a training callback, or from another thread); train it again after that call returns")
        }
        busy = true
        defer {
            busy = false
            network.inTraining.store(false, ordering: .releasing)
        }
        return try body()
    }

    func stepSnapshot() throws(NudgeError) -> FloatBuffer {
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
        gradient = try FloatBuffer(count: network.parameterCount + Trainer.extraSlots)
        rng = SeededGenerator(seed: options.seed)
    }

    /// Floats a group sums after the gradient: in a step, the loss (two), the samples classified
    /// correctly, flags for a loss that is not finite, a stop request and a failure; after an epoch,
    /// the validation sums, the two flags and rank 0's time for the epoch.
    static let extraSlots = 10

    /// Changes the options for later calls. The optimiser's state is kept unless the optimiser changes;
    /// a new ``TrainingOptions/seed`` restarts the shuffling and dropout draws.
    /// All or nothing: when this fails, the trainer is as it was.
    ///
    /// - Throws: As ``init(network:options:)``.
    public func setOptions(_ newOptions: TrainingOptions) throws(NudgeError) {
        try exclusively { () throws(NudgeError) in try replaceOptions(newOptions) }
    }

    /// ``setOptions(_:)`` from within a call that already holds the trainer.
    func replaceOptions(_ newOptions: TrainingOptions) throws(NudgeError) {
        try newOptions.validate(for: network)
        let newState = newOptions.optimizer == state.kind ? state
            : try OptimizerState(kind: newOptions.optimizer, parameterCount: network.parameterCount)
        state = newState
        if newOptions.seed != options.seed { rng = SeededGenerator(seed: newOptions.seed) }
        options = newOptions
    }

    /// A workspace for batches of up to `rows` samples, with the dropout buffers `options` need.
    func workspace(for rows: Int, options: TrainingOptions) throws(NudgeError) -> Workspace {
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
    func nextDropout() -> Dropout? {
        guard options.dropout.contains(where: { $0 > 0 }) else { return nil }
        return Dropout(rates: options.dropout, key: rng.next())
    }

    var resolvedLoss: Loss {
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
    /// With `weights` (one per sample, checked), the batch's weighted mean loss, and a step on it.
    package func step(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil,
                      rows: Int) throws(NudgeError) -> Double {
        try exclusively { () throws(NudgeError) in try uncheckedStep(inputs, targets: targets, weights: weights, rows: rows) }
    }

    private func uncheckedStep(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>?,
                               rows: Int) throws(NudgeError) -> Double {
        guard rows > 0 else { throw .invalid("there are no samples; a step needs at least one") }
        try network.validate(inputs: inputs, targets: targets, rows: rows, loss: resolvedLoss)
        if let weights { try network.validate(weights: weights, rows: rows, what: "weights") }
        let ws = try workspace(for: rows, options: options)
        // A step that fails part-way leaves the weights as they were, so keep them until it succeeds.
        let before = try stepSnapshot()
        before.copy(from: network.storage)
        do {
            let tally = try step(inputs, targets: targets, weights: weights, rows: .range(start: 0, count: rows),
                                 loss: resolvedLoss, learningRate: options.learningRate, in: ws)
            return tally.loss / tally.weight
        } catch {
            network.storage.copy(from: before)
            state.reset()
            throw error
        }
    }

    /// A step over a selection of validated rows; returns their summed loss, the number (or weight)
    /// classified correctly and their count (or weight).
    ///
    /// With `weights`, each sample's loss and gradient are multiplied by its weight, and the batch's
    /// gradient is divided by the sum of its weights instead of its count: the weighted mean, as
    /// scikit-learn's MLP takes it. Weights of 1 give the unweighted step bit for bit; a batch whose
    /// weights are all 0 teaches nothing, and is skipped (no step, no dropout draw).
    func step(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil, rows: Rows, loss: Loss,
              learningRate: Float, in workspace: Workspace) throws(NudgeError) -> Tally {
        var scale = 1 / Float(rows.count), batchWeight = Double(rows.count)
        if let weights {
            batchWeight = weightSum(weights, rows)
            guard batchWeight > 0 else { return Tally() }
            scale = 1 / Float(batchWeight)
        }
        if let split = try rowSplit(for: rows.count) {
            return try splitStep(split, inputs, targets: targets, weights: weights, rows: rows, scale: scale, loss: loss,
                                 learningRate: learningRate)
        }
        let (x, total) = network.forwardWithLoss(inputs, targets: targets, weights: weights, rows: rows, loss: loss,
                                                 scale: scale, in: workspace, dropout: nextDropout(),
                                                 labelSmoothing: options.labelSmoothing)
        let output = workspace.outputs[network.weightLayerCount - 1].pointer
        guard total.isFinite else {
            throw NudgeError(.notFinite, "the loss became \(total / batchWeight); try a smaller learning rate")
        }
        var tally = network.tallyCorrect(output, workspace, weighted: weights != nil, rows: rows.count)
        tally.loss = total
        if options.clipNorm > 0 {
            try clippedStep(x, rows: rows.count, learningRate: learningRate, in: workspace)
            return tally
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
        return tally
    }

    /// A step whose gradient is scaled down to ``TrainingOptions/clipNorm`` when longer: the whole
    /// gradient must be known before any weight moves, so the update is not fused into the backward pass.
    private func clippedStep(_ x: UnsafePointer<Float>, rows: Int, learningRate: Float, in workspace: Workspace) throws(NudgeError) {
        network.backward(x, rows: rows, in: workspace, into: gradient.pointer, accumulate: true)
        try applyGradient(learningRate: learningRate)
    }

    /// One optimiser step with the gradient in `gradient` (clipped first when ``TrainingOptions/clipNorm``
    /// is set), which it clears. Fails with `notFinite` when the gradient or a new weight is not
    /// finite; the caller then puts the weights back.
    func applyGradient(learningRate: Float) throws(NudgeError) {
        let g = gradient.pointer, count = network.parameterCount
        if options.clipNorm > 0 {
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
}

/// Seconds from an arbitrary fixed point, for durations.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

// MARK: - Steps by hand, and where a loaded run stands

extension Trainer {
    /// The mean gradient of the trainer's loss over `rows` samples (with its label smoothing, and
    /// dropout masks drawn from its generator), written to `out` in parameter order; returns the
    /// samples' mean loss. The network is not changed; `out` is untouched on failure.
    package func gradient(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int,
                          into out: UnsafeMutablePointer<Float>) throws(NudgeError) -> Double {
        try exclusively { () throws(NudgeError) in try uncheckedGradient(inputs, targets: targets, rows: rows, into: out) }
    }

    private func uncheckedGradient(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int,
                                   into out: UnsafeMutablePointer<Float>) throws(NudgeError) -> Double {
        guard rows > 0 else { throw .invalid("there are no samples; a gradient needs at least one") }
        try network.validate(inputs: inputs, targets: targets, rows: rows, loss: resolvedLoss)
        let ws = try workspace(for: rows, options: options)
        let (x, total) = network.forwardWithLoss(inputs, targets: targets, rows: .range(start: 0, count: rows), loss: resolvedLoss,
                                                 scale: 1 / Float(rows), in: ws, dropout: nextDropout(),
                                                 labelSmoothing: options.labelSmoothing)
        guard total.isFinite else {
            throw NudgeError(.notFinite, "the loss is \(total / Double(rows)): the network's outputs overflow on these inputs")
        }
        network.backward(x, rows: rows, in: ws, into: gradient.pointer, accumulate: true)
        defer { gradient.zero() }
        guard isFinite(gradient.pointer, count: network.parameterCount) else {
            throw NudgeError(.notFinite, "the gradient has NaN or infinite entries: the network's outputs overflow on these inputs")
        }
        out.update(from: gradient.pointer, count: network.parameterCount)
        return total / Double(rows)
    }

    /// One optimiser step with `given` (a gradient in parameter order): the trainer's optimiser and
    /// state, ``TrainingOptions/learningRate`` (no schedule), weight decay and clipping. A gradient or
    /// step that is not finite fails with `notFinite`, leaves the weights as they were and restarts
    /// the optimiser's state.
    package func apply(gradient given: UnsafePointer<Float>) throws(NudgeError) {
        try exclusively { () throws(NudgeError) in try uncheckedApply(gradient: given) }
    }

    private func uncheckedApply(gradient given: UnsafePointer<Float>) throws(NudgeError) {
        guard isFinite(given, count: network.parameterCount) else {
            throw NudgeError(.notFinite, "the gradient has NaN or infinite entries")
        }
        let before = try stepSnapshot()
        before.copy(from: network.storage)
        gradient.pointer.update(from: given, count: network.parameterCount)
        do { try applyGradient(learningRate: options.learningRate) } catch {
            network.storage.copy(from: before)
            state.reset()
            gradient.zero()
            throw error
        }
    }

    /// The run this trainer holds from a checkpoint, which its next training call continues: nil when none.
    public var position: (finished: Bool, epochsDone: Int, steps: Int)? {
        pending.map { ($0.finished, $0.history.count, $0.steps) }
    }
}
