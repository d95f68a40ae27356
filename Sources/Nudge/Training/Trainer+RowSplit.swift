/// A training step split by batch rows between the pool's threads: each thread runs its share of
/// the batch forward and backward on its own workspace, into its own gradient buffer, in one parallel
/// region; a second region sums the buffers (in a fixed order, so the same thread count always gives
/// the same sums) and takes the optimiser step, each thread on its own units, reading the two
/// gradients and the weights in one pass and clearing the gradients as it reads them: the backward
/// pass adds into zeros (BLAS with beta 1), which costs less than having BLAS overwrite them (with
/// beta 0, OpenBLAS first clears the whole output in a pass of its own).
///
/// Two regions a step instead of one per layer and direction, and every pass (gathering rows, bias and
/// activation, softmax and loss, the small products of a narrow output layer) runs on all threads.
/// The price is a gradient buffer and a workspace per thread, and a pass over each thread's gradient
/// every step, which pays while each thread has at least ``RowSplit/minimumRows`` rows; below that, or alone, a step splits
/// each layer's product by output units instead (`Network.backward`).
final class RowSplit {
    /// The fewest rows a thread takes; a smaller batch splits each product by units instead.
    static let minimumRows = 16

    let parts: Int
    let workspaces: [Workspace]
    /// Each part's gradient over its rows; all zeros between steps.
    let gradients: [FloatBuffer]
    /// Per part: the summed loss, the samples (or weight) classified correctly, the largest exponent
    /// field of the updated parameters.
    let losses: UnsafeMutablePointer<Double>
    let correct: UnsafeMutablePointer<Double>
    let exponents: UnsafeMutablePointer<UInt32>

    /// The step being taken, set before its regions run and read by every thread.
    unowned let network: Network
    var job: Job?

    struct Job {
        let inputs: UnsafePointer<Float>
        let targets: Targets
        let weights: UnsafePointer<Float>?
        let rows: Rows
        /// What each sample's dC/dz is multiplied by: 1 / the batch's count, or its summed weight.
        let scale: Float
        let loss: Loss
        let dropout: Dropout?
        let labelSmoothing: Float
        let gradient: UnsafeMutablePointer<Float>
        let state: Unmanaged<OptimizerState>
        /// Set after region 1: the step region 2 takes (nil with clipping, which needs the whole sum first).
        var step: OptimizerState.Step?
    }

    init(network: Network, parts: Int, rowsPerPart: Int, dropout: [Float]) throws(NudgeError) {
        self.network = network
        self.parts = parts
        var spaces: [Workspace] = []
        var buffers: [FloatBuffer] = []
        for _ in 0..<parts {
            let ws = try Workspace(for: network, capacity: rowsPerPart)
            try ws.prepareDropout(dropout, for: network)
            spaces.append(ws)
            buffers.append(try FloatBuffer(count: network.parameterCount))
        }
        workspaces = spaces
        gradients = buffers
        losses = .allocate(capacity: parts)
        correct = .allocate(capacity: parts)
        exponents = .allocate(capacity: parts)
    }

    deinit {
        losses.deallocate()
        correct.deallocate()
        exponents.deallocate()
    }

    /// Whether this split fits a batch of `rows` with `options`' dropout.
    func fits(rows: Int, parts: Int, options: TrainingOptions) throws(NudgeError) -> Bool {
        guard parts == self.parts, (rows + parts - 1) / parts <= workspaces[0].capacity else { return false }
        for ws in workspaces { try ws.prepareDropout(options.dropout, for: network) }
        return true
    }

    /// The rows of `all` that part `part` takes, and where they sit in the batch.
    func share(of all: Rows, part: Int) -> (rows: Rows, first: Int) {
        let range = piece(of: all.count, part: part, parts: parts, align: 1)
        switch all {
        case .range(let start, _): return (.range(start: start + range.lowerBound, count: range.count), range.lowerBound)
        case .indices(let index, _): return (.indices(index + range.lowerBound, count: range.count), range.lowerBound)
        }
    }

    /// Region 1: part `part`'s rows forward, loss and backward into its gradient buffer.
    static let forwardBackward: WorkerPool.Region = { context, part, parts in
        let split = context.load(as: Unmanaged<RowSplit>.self).takeUnretainedValue()
        guard let job = split.job else { return }
        // A pool that has fewer threads than the split (its count lowered since) runs several parts here.
        for share in stride(from: part, to: split.parts, by: parts) { split.run(job, part: share) }
    }

    /// Part `part`'s rows forward, loss and backward into its gradient buffer.
    private func run(_ job: Job, part: Int) {
        let network = self.network, ws = workspaces[part]
        let (rows, first) = share(of: job.rows, part: part)
        losses[part] = 0
        correct[part] = 0
        // Many threads and a batch that does not divide evenly can leave a part without rows: its
        // gradient stays all zeros.
        guard rows.count > 0 else { return }
        var dropout = job.dropout
        dropout?.rows = Dropout.RowPlaces(first: first)
        let (x, total) = network.forwardWithLoss(job.inputs, targets: job.targets, weights: job.weights, rows: rows,
                                                 loss: job.loss, scale: job.scale, in: ws, dropout: dropout,
                                                 labelSmoothing: job.labelSmoothing, parallel: false)
        losses[part] = total
        correct[part] = network.tallyCorrect(ws.outputs[network.weightLayerCount - 1].pointer, ws,
                                             weighted: job.weights != nil, rows: rows.count).correct
        network.backward(x, rows: rows.count, in: ws, into: gradients[part].pointer, accumulate: true, parallel: false)
    }

    /// Region 2, for part `part`'s units: with a step, the optimiser's update from the sum of the
    /// parts' gradients; without (clipping needs the whole gradient first), the sum written to the
    /// trainer's gradient. The sum is ((g0 + g2) + g3 ...) + g1: parts past the second are added
    /// into the first beforehand, and the update adds the second as it reads.
    static let sumAndUpdate: WorkerPool.Region = { context, part, parts in
        let split = context.load(as: Unmanaged<RowSplit>.self).takeUnretainedValue()
        guard let job = split.job else { return }
        let network = split.network, state = job.state.takeUnretainedValue()
        let first = split.gradients[0].pointer, second = split.gradients[split.parts > 1 ? 1 : 0].pointer
        var largest: UInt32 = 0
        for l in 0..<network.weightLayerCount {
            let units = piece(of: network.layerSizes[l + 1], part: part, parts: parts)
            guard !units.isEmpty else { continue }
            let fanIn = network.layerSizes[l]
            let weights = network.weightOffsets[l] + units.lowerBound * fanIn, biases = network.biasOffsets[l] + units.lowerBound
            split.addRest(weights, units.count * fanIn)
            split.addRest(biases, units.count)
            if let step = job.step {
                largest = max(largest, state.update(layer: l, rows: units, of: network, gradient: first, adding: second, step: step))
            } else {
                split.sum(weights, units.count * fanIn, into: job.gradient)
                split.sum(biases, units.count, into: job.gradient)
            }
        }
        split.exponents[part] = largest
    }

    /// Adds the gradients of parts 2 and up at `start..<start + count` into part 0's, in part order,
    /// and clears them.
    private func addRest(_ start: Int, _ count: Int) {
        guard parts > 2 else { return }
        let g = gradients[0].pointer + start
        for buffer in gradients[2...] {
            let other = buffer.pointer + start
            for i in 0..<count {
                g[i] += other[i]
                other[i] = 0
            }
        }
    }

    /// Writes the sum of parts 0 and 1 at `start..<start + count` to `gradient` and clears them.
    private func sum(_ start: Int, _ count: Int, into gradient: UnsafeMutablePointer<Float>) {
        let a = gradients[0].pointer, b = gradients[parts > 1 ? 1 : 0].pointer
        for i in start..<(start + count) {
            gradient[i] = a[i] + b[i]
            a[i] = 0
            b[i] = 0
        }
    }

    /// Clears every part's gradient after a step that failed before its sums.
    func clear() {
        for buffer in gradients { buffer.zero() }
    }
}

extension Trainer {
    /// The split for a batch of `rows`, when splitting by rows pays (see ``RowSplit``); nil otherwise.
    func rowSplit(for rows: Int) throws(NudgeError) -> RowSplit? {
        let parts = WorkerPool.shared.parts(forWork: rows * network.parameterCount)
        guard parts > 1, rows >= parts * RowSplit.minimumRows, collective == nil else { return nil }
        if let split = splitSpace, try split.fits(rows: rows, parts: parts, options: options) { return split }
        // Sized for the trainer's batch size, so that the last, shorter batch of an epoch fits too.
        let perPart = (max(rows, options.batchSize) + parts - 1) / parts
        splitSpace = nil
        let split = try RowSplit(network: network, parts: parts, rowsPerPart: perPart, dropout: options.dropout)
        splitSpace = split
        return split
    }

    /// ``step(_:targets:weights:rows:loss:learningRate:in:)`` split by rows; the same results, summed in another order.
    func splitStep(_ split: RowSplit, _ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>?,
                   rows: Rows, scale: Float, loss: Loss, learningRate: Float) throws(NudgeError) -> Tally {
        let clipping = options.clipNorm > 0
        split.job = RowSplit.Job(inputs: inputs, targets: targets, weights: weights, rows: rows, scale: scale, loss: loss,
                                 dropout: nextDropout(),
                                 labelSmoothing: options.labelSmoothing, gradient: gradient.pointer,
                                 state: .passUnretained(state), step: nil)
        defer { split.job = nil }
        WorkerPool.shared.run(parts: split.parts, Unmanaged.passUnretained(split), RowSplit.forwardBackward)
        var tally = Tally(loss: 0, correct: 0, weight: weights.map { weightSum($0, rows) } ?? Double(rows.count))
        for part in 0..<split.parts {
            tally.loss += split.losses[part]
            tally.correct += split.correct[part]
        }
        guard tally.loss.isFinite else {
            split.clear()
            throw NudgeError(.notFinite, "the loss became \(tally.loss / tally.weight); try a smaller learning rate")
        }
        let step = clipping ? nil : state.begin(options, learningRate: learningRate)
        split.exponents.update(repeating: 0, count: split.parts)
        split.job?.step = step
        WorkerPool.shared.run(parts: split.parts, Unmanaged.passUnretained(split), RowSplit.sumAndUpdate)
        if clipping {
            try applyGradient(learningRate: learningRate)
            return tally
        }
        guard !UnsafeBufferPointer(start: split.exponents, count: split.parts).contains(exponentMask) else {
            throw NudgeError(.notFinite, "the gradient or a step of the \(options.optimizer.name) optimiser is not finite; try a smaller learning rate")
        }
        return tally
    }
}
