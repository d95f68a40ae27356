import NudgeKernels

/// Where the targets of a set of samples come from: bare pointers, read for as many samples as the
/// caller says. `package`, not public: Swift callers pass `labels:` (`[Int32]`) or `targets:` (`[Float]`)
/// arrays or buffers, whose counts the public entry points check (Network+Samples.swift,
/// Trainer+Samples.swift); the C ABI, whose callers give pointers and counts, uses this form directly.
package enum Targets {
    /// `rows x outputSize` floats: one-hot rows, probabilities or regression values.
    case dense(UnsafePointer<Float>)
    /// One class index per sample. With a single output, the label (0 or 1) is the target itself.
    case labels(UnsafePointer<Int32>)
}

/// What a set of samples adds up to in training or evaluation: the summed loss (each sample's times
/// its weight), the weight of the samples classified correctly, and the samples' total weight. Without
/// weights every sample weighs 1, so `weight` is their count; the means divide by it.
struct Tally {
    var loss = 0.0
    var correct = 0.0
    var weight = 0.0

    static func += (a: inout Tally, b: Tally) {
        a.loss += b.loss
        a.correct += b.correct
        a.weight += b.weight
    }
}

/// Which samples of a data set form a batch.
enum Rows {
    case range(start: Int, count: Int)
    case indices(UnsafePointer<Int>, count: Int)

    var count: Int {
        switch self {
        case .range(_, let count), .indices(_, let count): count
        }
    }
}

/// Buffers for forward and backward passes over up to `capacity` samples, allocated once and reused
/// for every batch so that the training loop does no heap allocation.
final class Workspace {
    let capacity: Int
    let inputs: FloatBuffer
    let targets: FloatBuffer
    /// The batch's sample weights, gathered with its targets when the data has weights.
    let weights: FloatBuffer
    /// The activations of each weight layer, `capacity x width`.
    let outputs: [FloatBuffer]
    /// The output layer's weighted sums, kept for numerically stable losses.
    let sums: FloatBuffer
    let deltaA: FloatBuffer
    let deltaB: FloatBuffer
    /// Dropout, per layer of units feeding a weight layer (0: the inputs, i: hidden layer i): the
    /// values after dropout, and for hidden layers the mask (0 or 1 / (1 - rate)) that made them.
    /// Allocated by ``prepareDropout(_:for:)`` for the layers that use it.
    private(set) var dropped: [FloatBuffer?]
    private(set) var masks: [FloatBuffer?]
    /// Which layers the last forward pass dropped units of.
    var dropoutActive: [Bool]

    init(for network: Network, capacity: Int) throws(NudgeError) {
        self.capacity = capacity
        let sizes = network.layerSizes
        inputs = try FloatBuffer(count: checkedProduct(capacity, sizes[0], "batch inputs"))
        targets = try FloatBuffer(count: checkedProduct(capacity, network.outputSize, "batch targets"))
        weights = try FloatBuffer(count: capacity, zeroed: false)
        var outs: [FloatBuffer] = []
        for l in 1..<sizes.count { outs.append(try FloatBuffer(count: checkedProduct(capacity, sizes[l], "layer \(l) outputs"))) }
        outputs = outs
        sums = try FloatBuffer(count: checkedProduct(capacity, network.outputSize, "output sums"))
        let widest = sizes.dropFirst().max() ?? 1
        deltaA = try FloatBuffer(count: checkedProduct(capacity, widest, "deltas"))
        deltaB = try FloatBuffer(count: checkedProduct(capacity, widest, "deltas"))
        dropped = Array(repeating: nil, count: network.weightLayerCount)
        masks = Array(repeating: nil, count: network.weightLayerCount)
        dropoutActive = Array(repeating: false, count: network.weightLayerCount)
    }

    /// Allocates the dropout buffers that `rates` need (once; later calls find them).
    func prepareDropout(_ rates: [Float], for network: Network) throws(NudgeError) {
        for (i, rate) in rates.enumerated() where rate > 0 && dropped[i] == nil {
            let count = try checkedProduct(capacity, network.layerSizes[i], "dropout buffers")
            dropped[i] = try FloatBuffer(count: count, zeroed: false)
            if i > 0 { masks[i] = try FloatBuffer(count: count, zeroed: false) }
        }
    }

    /// What weight layer `l` reads: the inputs or the previous layer's outputs, after dropout if any.
    func layerInput(_ l: Int, input: UnsafePointer<Float>) -> UnsafePointer<Float> {
        if dropoutActive[l], let d = dropped[l] { return UnsafePointer(d.pointer) }
        return l == 0 ? input : UnsafePointer(outputs[l - 1].pointer)
    }

    /// Points at the batch's inputs and fills `targets` with its target rows (and `weights` with its
    /// weights, when given). Contiguous inputs are used in place; scattered ones are gathered into `inputs`.
    func load(_ rows: Rows, inputs data: UnsafePointer<Float>, targets source: Targets?, weights: UnsafePointer<Float>? = nil,
              network: Network, parallel: Bool = true) -> UnsafePointer<Float> {
        let width = network.inputSize, out = network.outputSize
        let input: UnsafePointer<Float>
        switch rows {
        case .range(let start, let count):
            if network.inputOffset != nil {
                network.normalize(count, from: data + start * width, into: inputs.pointer)
                input = UnsafePointer(inputs.pointer)
            } else {
                input = data + start * width
            }
        case .indices(let index, let count):
            // Rows scattered over a large data set mostly wait on memory; threads copying different
            // rows wait in parallel. Normalisation is applied as the rows are copied.
            struct Gather {
                let into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, index: UnsafePointer<Int>, width, count: Int
                let offset, scale: UnsafePointer<Float>?
            }
            let gather = Gather(into: inputs.pointer, from: data, index: index, width: width, count: count,
                                offset: network.inputOffset.map { UnsafePointer($0.pointer) },
                                scale: network.inputScale.map { UnsafePointer($0.pointer) })
            let parts = parallel ? WorkerPool.shared.parts(forWork: count * width * 16) : 1
            WorkerPool.shared.run(parts: parts, gather) { context, part, parts in
                let g = context.load(as: Gather.self)
                for r in piece(of: g.count, part: part, parts: parts, align: 1) {
                    let to = g.into + r * g.width, from = g.from + g.index[r] * g.width
                    if let offset = g.offset, let scale = g.scale {
                        normalizeRow(from, into: to, offset, scale, g.width)
                    } else {
                        to.update(from: from, count: g.width)
                    }
                }
            }
            input = UnsafePointer(inputs.pointer)
        }
        guard let source else { return input }
        let t = targets.pointer
        for r in 0..<rows.count {
            let sample: Int
            switch rows {
            case .range(let start, _): sample = start + r
            case .indices(let index, _): sample = index[r]
            }
            if let weights { self.weights.pointer[r] = weights[sample] }
            switch source {
            case .dense(let y):
                (t + r * out).update(from: y + sample * out, count: out)
            case .labels(let labels):
                if out == 1 {
                    t[r] = Float(labels[sample])
                } else {
                    (t + r * out).update(repeating: 0, count: out)
                    t[r * out + Int(labels[sample])] = 1
                }
            }
        }
        return input
    }
}

extension Network {
    /// Rows per chunk when a call covers more samples than fit a workspace at once.
    static let chunkRows = 256

    /// Rows per chunk for this network: ``chunkRows``, or fewer when its widest layer is so wide
    /// that a chunk's activations would pass 2^24 floats (64 MiB), so that predicting one sample of
    /// a network with a 2^24-unit layer needs 128 MiB of scratch memory (kept by each thread that
    /// predicted, for its next call), not 32 GiB.
    var rowsPerChunk: Int { max(1, min(Network.chunkRows, (1 << 24) / (layerSizes.max() ?? 1))) }

    /// Runs `rows` samples through every layer into `ws.outputs`, keeping the output layer's sums.
    /// With `dropout` (rates per layer of units, and a key that seeds this pass's masks), units are
    /// dropped as they are computed; `ws.dropoutActive` records which layers were.
    /// `parallel: false` keeps every part on the calling thread (a part of a region already).
    func forward(_ input: UnsafePointer<Float>, rows: Int, in ws: Workspace, dropout: Dropout? = nil, parallel: Bool = true) {
        for l in 0..<weightLayerCount {
            ws.dropoutActive[l] = (dropout?.rates[l] ?? 0) > 0
        }
        if let dropout, ws.dropoutActive[0], let d = ws.dropped[0] {
            // The inputs' mask is not kept: nothing is propagated back into the inputs.
            let rate = dropout.rates[0]
            struct Inputs { let input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count, width: Int, key, threshold: UInt32, scale: Float, rows: Dropout.RowPlaces }
            let job = Inputs(input: input, out: d.pointer, count: rows * inputSize, width: inputSize, key: dropout.key(layer: 0),
                             threshold: Dropout.threshold(rate), scale: 1 / (1 - rate), rows: dropout.rows)
            WorkerPool.shared.run(parts: parallel ? WorkerPool.shared.parts(forWork: job.count * 16) : 1, job) { context, part, parts in
                let a = context.load(as: Inputs.self)
                let moved = a.rows.isMoved
                for i in piece(of: a.count, part: part, parts: parts) {
                    let place = moved ? a.rows.place(i / a.width) * a.width + i % a.width : i
                    a.out[i] = dropoutHash(a.key, UInt32(truncatingIfNeeded: place)) >= a.threshold ? a.input[i] * a.scale : 0
                }
            }
        }
        for l in 0..<weightLayerCount {
            let out = ws.outputs[l].pointer
            var masking: LayerDropout?
            if let dropout, l + 1 < weightLayerCount, ws.dropoutActive[l + 1], let d = ws.dropped[l + 1], let m = ws.masks[l + 1] {
                let rate = dropout.rates[l + 1]
                masking = LayerDropout(dropped: d.pointer, mask: m.pointer, rows: dropout.rows, key: dropout.key(layer: l + 1),
                                       threshold: Dropout.threshold(rate), scale: 1 / (1 - rate))
            }
            forwardLayer(l, ws.layerInput(l, input: input), rows: rows, into: out,
                         sums: l == weightLayerCount - 1 ? ws.sums.pointer : nil, parallel: parallel, dropout: masking)
        }
    }

    /// Where a layer's dropped-out outputs and their mask go, and how to draw the mask.
    struct LayerDropout {
        let dropped, mask: UnsafeMutablePointer<Float>
        let rows: Dropout.RowPlaces
        let key, threshold: UInt32
        let scale: Float
    }

    /// One layer: `out` (rows x fanOut) = activation(input . W^T + b). A large product is split
    /// between threads by output units, each thread also applying bias and activation to its units.
    /// Softmax needs whole rows, so a softmax layer is not split.
    func forwardLayer(_ l: Int, _ input: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>,
                      sums: UnsafeMutablePointer<Float>?, parallel: Bool = true, dropout: LayerDropout? = nil) {
        let fanIn = layerSizes[l], fanOut = layerSizes[l + 1]
        let weights = UnsafePointer(storage.pointer + weightOffsets[l])
        let bias = UnsafePointer(storage.pointer + biasOffsets[l])
        let activation = activations[l]
        let parts = parallel && activation != .softmax ? WorkerPool.shared.parts(forWork: rows * fanIn * fanOut) : 1
        struct Layer {
            let input, weights, bias: UnsafePointer<Float>
            let out: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>?
            let rows, fanIn, fanOut: Int
            let activation: Activation
            let dropout: LayerDropout?
        }
        let layer = Layer(input: input, weights: weights, bias: bias, out: out, sums: sums, rows: rows,
                          fanIn: fanIn, fanOut: fanOut, activation: activation, dropout: dropout)
        WorkerPool.shared.run(parts: parts, layer) { context, part, parts in
            let a = context.load(as: Layer.self)
            let units = piece(of: a.fanOut, part: part, parts: parts)
            guard !units.isEmpty else { return }
            let first = units.lowerBound
            LinearAlgebra.multiply(a.input, lda: a.fanIn, a.weights + first * a.fanIn, ldb: a.fanIn, transposeB: true,
                                   into: a.out + first, ldc: a.fanOut, m: a.rows, n: units.count, k: a.fanIn)
            a.activation.applyWithBias(a.out + first, rows: a.rows, width: units.count, stride: a.fanOut,
                                       bias: a.bias + first, keeping: a.sums.map { $0 + first })
            guard let d = a.dropout else { return }
            // NudgeKernels: dropoutHash's draws, eight or sixteen units at a time where the processor can.
            nk_dropout(a.out, d.mask, d.dropped, a.rows, a.fanOut, first, units.count, d.rows.places, d.rows.first,
                       d.key, d.threshold, d.scale)
        }
    }

    /// An optimiser step to apply during a backward pass.
    struct Update {
        let state: Unmanaged<OptimizerState>
        let step: OptimizerState.Step
        /// One entry per thread: the largest exponent field among the parameters it updated.
        let exponents: UnsafeMutablePointer<UInt32>
    }

    /// Backpropagates the output layer's dC/dz, which `ws.deltaA` holds, into `gradient`
    /// (parameter order). With `accumulate`, adds to `gradient` instead of overwriting it.
    /// Each layer is one parallel region: a thread computes the weight and bias gradients of its
    /// units and the part of the previous layer's delta that belongs to its inputs.
    ///
    /// With `update`, the optimiser step is taken in the same regions, while the gradient is still in
    /// cache: layer l's weights are still needed for the previous layer's delta in its own region, so
    /// they are updated in the next one (layer l - 1's); the first layer's in its own.
    func backward(_ input: UnsafePointer<Float>, rows: Int, in ws: Workspace,
                  into gradient: UnsafeMutablePointer<Float>, accumulate: Bool, update: Update? = nil, parallel: Bool = true) {
        var delta = ws.deltaA.pointer, spare = ws.deltaB.pointer
        for l in stride(from: weightLayerCount - 1, through: 0, by: -1) {
            let fanIn = layerSizes[l], fanOut = layerSizes[l + 1]
            let previous = ws.layerInput(l, input: input)
            let weights = UnsafePointer(storage.pointer + weightOffsets[l])
            struct Layer {
                let delta, previous, weights: UnsafePointer<Float>
                let dW, db, next: UnsafeMutablePointer<Float>
                let previousOutputs: UnsafePointer<Float>?
                let previousMask: UnsafePointer<Float>?
                let previousActivation: Activation?
                let rows, fanIn, fanOut: Int
                let accumulate: Bool
                let layer: Int
                let network: Unmanaged<Network>
                let gradient: UnsafeMutablePointer<Float>
                let update: Update?
            }
            // The input layer has no parameters, so its delta is never needed.
            let layer = Layer(delta: UnsafePointer(delta), previous: previous, weights: weights,
                              dW: gradient + weightOffsets[l], db: gradient + biasOffsets[l], next: spare,
                              previousOutputs: l > 0 ? UnsafePointer(ws.outputs[l - 1].pointer) : nil,
                              previousMask: l > 0 && ws.dropoutActive[l] ? ws.masks[l].map { UnsafePointer($0.pointer) } : nil,
                              previousActivation: l > 0 ? activations[l - 1] : nil,
                              rows: rows, fanIn: fanIn, fanOut: fanOut, accumulate: accumulate,
                              layer: l, network: .passUnretained(self), gradient: gradient, update: update)
            let parts = parallel ? WorkerPool.shared.parts(forWork: rows * fanIn * fanOut) : 1
            WorkerPool.shared.run(parts: parts, layer) { context, part, parts in
                let a = context.load(as: Layer.self)
                let units = piece(of: a.fanOut, part: part, parts: parts)
                if !units.isEmpty {
                    let first = units.lowerBound
                    LinearAlgebra.multiply(a.delta + first, lda: a.fanOut, transposeA: true, a.previous, ldb: a.fanIn,
                                           into: a.dW + first * a.fanIn, ldc: a.fanIn, m: units.count, n: a.fanIn,
                                           k: a.rows, beta: a.accumulate ? 1 : 0)
                    if !a.accumulate { (a.db + first).update(repeating: 0, count: units.count) }
                    for r in 0..<a.rows {
                        let row = a.delta + r * a.fanOut
                        for j in units { a.db[j] += row[j] }
                    }
                }
                if let activation = a.previousActivation, let outputs = a.previousOutputs {
                    let inputs = piece(of: a.fanIn, part: part, parts: parts)
                    if !inputs.isEmpty {
                        let first = inputs.lowerBound
                        LinearAlgebra.multiply(a.delta, lda: a.fanOut, a.weights + first, ldb: a.fanIn, into: a.next + first,
                                               ldc: a.fanIn, m: a.rows, n: inputs.count, k: a.fanOut)
                        activation.backpropagate(a.next + first, outputs: outputs + first, rows: a.rows, width: inputs.count,
                                                 stride: a.fanIn)
                        if let mask = a.previousMask {
                            // A dropped unit passed nothing on, so nothing flows back through it.
                            for r in 0..<a.rows {
                                for j in inputs { a.next[r * a.fanIn + j] *= mask[r * a.fanIn + j] }
                            }
                        }
                    }
                }
                guard let update = a.update else { return }
                let network = a.network.takeUnretainedValue(), state = update.state.takeUnretainedValue()
                var largest = update.exponents[part]
                if a.layer + 1 < network.weightLayerCount {
                    let rows = piece(of: network.layerSizes[a.layer + 2], part: part, parts: parts)
                    largest = max(largest, state.update(layer: a.layer + 1, rows: rows, of: network, gradient: a.gradient, step: update.step))
                }
                if a.layer == 0 {
                    largest = max(largest, state.update(layer: 0, rows: units, of: network, gradient: a.gradient, step: update.step))
                }
                update.exponents[part] = largest
            }
            swap(&delta, &spare)
        }
    }

    /// Checks that inputs and targets are finite, labels are valid classes and, for a cross-entropy
    /// `loss` (resolved), that targets lie in [0, 1]: outside it the loss is negative and training
    /// climbs toward outputs that can never be reached. Names the first bad value.
    package func validate(inputs: UnsafePointer<Float>, targets: Targets?, rows: Int, loss: Loss? = nil,
                          what: String = "inputs") throws(NudgeError) {
        let width = inputSize, out = outputSize
        // The fast check passes for good data; only bad data pays for finding the first bad value.
        if !isFinite(inputs, count: rows * width) {
            for i in 0..<(rows * width) where !inputs[i].isFinite {
                throw NudgeError(.notFinite, "\(what) row \(i / width), column \(i % width) is \(inputs[i]); inputs must be finite")
            }
        }
        let targetsName = what == "inputs" ? "targets" : what.replacing("inputs", with: "targets")
        switch targets {
        case .none:
            break
        case .dense(let y):
            let unit = loss?.needsTargetsFromZeroToOne ?? false
            // Targets in [0, 1] are finite too, so one pass checks both.
            if unit ? !isWithinZeroAndOne(y, count: rows * out) : !isFinite(y, count: rows * out) {
                try reportBadTarget(y, count: rows * out, width: out, unit: unit, name: targetsName)
            }
        case .labels(let labels):
            let classes = out == 1 ? 2 : out
            for r in 0..<rows where labels[r] < 0 || Int(labels[r]) >= classes {
                throw .invalid("labels[\(r)] is \(labels[r]); the network has \(classes) classes (0 to \(classes - 1))")
            }
        }
    }

    /// Throws for the first target that is not finite or, with `unit`, not from 0 to 1.
    private func reportBadTarget(_ y: UnsafePointer<Float>, count: Int, width: Int, unit: Bool, name: String) throws(NudgeError) {
        for i in 0..<count {
            let v = y[i]
            let place = "\(name) row \(i / width), column \(i % width) is \(v)"
            if !v.isFinite { throw NudgeError(.notFinite, "\(place); targets must be finite") }
            if unit && !(v >= 0 && v <= 1) { throw .invalid("\(place); cross-entropy needs targets from 0 to 1") }
        }
    }

    // MARK: Prediction

    /// Writes the output layer's values for `rows` samples (`rows x inputSize`) into `outputs`
    /// (`rows x outputSize`). Reads only the network: safe from many threads at once. A large batch is
    /// split by rows between the pool's threads when the pool is free. Uses per-thread scratch memory
    /// that is kept between calls, so a steady stream of predictions allocates nothing.
    ///
    /// The pointer-based methods here stay `package` for the C ABI, which has checked its callers'
    /// counts; Swift callers use the public array and buffer forms of Network+Samples.swift.
    /// Outputs that overlap the inputs would be written while later rows are still to be read, and
    /// a layer reads its whole input row after the previous one wrote: refused (`invalidArgument`).
    package func predict(_ inputs: UnsafePointer<Float>, rows: Int, into outputs: UnsafeMutablePointer<Float>) throws(NudgeError) {
        guard !overlap(inputs, rows * inputSize, outputs, rows * outputSize) else {
            throw .invalid("outputs overlap inputs; use separate buffers")
        }
        try inRowPieces(RowJob(network: Unmanaged.passUnretained(self), inputs: inputs, rows: rows,
                               outputs: outputs, labels: nil))
    }

    /// Writes the index of the largest output of each sample into `labels`.
    /// As with ``predict(_:rows:into:)``, labels that overlap the inputs are refused.
    package func classify(_ inputs: UnsafePointer<Float>, rows: Int, into labels: UnsafeMutablePointer<Int32>) throws(NudgeError) {
        guard !overlap(inputs, rows * inputSize, labels, rows) else {
            throw .invalid("labels overlap inputs; use separate buffers")
        }
        try inRowPieces(RowJob(network: Unmanaged.passUnretained(self), inputs: inputs, rows: rows,
                               outputs: nil, labels: labels))
    }

    /// The widest hidden layer (0 without hidden layers).
    var hiddenWidth: Int { layerSizes.dropFirst().dropLast().max() ?? 0 }

    /// A prediction (into `outputs`) or a classification (into `labels`) of `rows` samples.
    private struct RowJob {
        let network: Unmanaged<Network>
        let inputs: UnsafePointer<Float>
        let rows: Int
        let outputs: UnsafeMutablePointer<Float>?
        let labels: UnsafeMutablePointer<Int32>?
        /// One flag per part, set when the part's scratch memory could not be had.
        var failed: UnsafeMutablePointer<Bool>? = nil

        /// Scratch floats a thread needs: two chunks of hidden activations, plus a chunk of outputs
        /// when classifying.
        var scratchCount: Int {
            let network = network.takeUnretainedValue()
            let chunk = network.rowsPerChunk
            return 2 * chunk * network.hiddenWidth + (labels == nil ? 0 : chunk * network.outputSize)
                + (network.inputOffset == nil ? 0 : chunk * network.inputSize)
        }

        /// Where a chunk of normalised inputs goes: the end of the scratch memory.
        func normalized(_ scratch: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? {
            let network = network.takeUnretainedValue()
            guard network.inputOffset != nil else { return nil }
            return scratch + scratchCount - network.rowsPerChunk * network.inputSize
        }

        /// Does rows `range` on the calling thread; false if memory was short.
        func run(_ range: Range<Int>) -> Bool {
            let network = network.takeUnretainedValue()
            guard let scratch = ThreadScratch.floats(scratchCount) else { return false }
            if let outputs {
                network.predictRows(inputs + range.lowerBound * network.inputSize, rows: range.count,
                                    into: outputs + range.lowerBound * network.outputSize, scratch: scratch,
                                    normalized: normalized(scratch))
                return true
            }
            guard let labels else { return true }
            let width = network.outputSize
            let chunk = network.rowsPerChunk
            let out = scratch + 2 * chunk * network.hiddenWidth
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(chunk, range.upperBound - start)
                network.predictRows(inputs + start * network.inputSize, rows: n, into: out, scratch: scratch,
                                    normalized: normalized(scratch))
                for r in 0..<n {
                    let row = out + r * width
                    labels[start + r] = Int32(width == 1 ? (row[0] >= 0.5 ? 1 : 0) : argmax(row, width))
                }
                start += n
            }
            return true
        }
    }

    /// Runs a job on the calling thread, or split by rows between the pool's threads when it is large.
    private func inRowPieces(_ job: RowJob) throws(NudgeError) {
        guard job.rows > 0 else { return }
        let work = job.rows * (parameterCount - layerSizes.dropFirst().reduce(0, +))
        let parts = job.rows >= 2 * Network.chunkRows ? WorkerPool.shared.parts(forWork: work) : 1
        let succeeded: Bool
        if parts == 1 {
            succeeded = job.run(0..<job.rows)
        } else {
            succeeded = withUnsafeTemporaryAllocation(of: Bool.self, capacity: parts) { failed in
                failed.initialize(repeating: false)
                var job = job
                job.failed = failed.baseAddress
                WorkerPool.shared.run(parts: parts, job) { context, part, parts in
                    let job = context.load(as: RowJob.self)
                    let range = piece(of: job.rows, part: part, parts: parts, align: 1)
                    if !range.isEmpty && !job.run(range) { job.failed?[part] = true }
                }
                return !failed.contains(true)
            }
        }
        guard succeeded else {
            throw NudgeError(.outOfMemory, "could not allocate \(job.scratchCount * 4) bytes of scratch memory")
        }
    }

    /// Prediction on one thread, in chunks of `rowsPerChunk` rows, with hidden activations in `scratch`.
    /// With a normalisation, each chunk of inputs is first normalised into `normalized`.
    fileprivate func predictRows(_ inputs: UnsafePointer<Float>, rows: Int, into outputs: UnsafeMutablePointer<Float>,
                                 scratch: UnsafeMutablePointer<Float>, normalized: UnsafeMutablePointer<Float>?) {
        let chunk = rowsPerChunk
        let half = chunk * hiddenWidth
        var start = 0
        while start < rows {
            let n = min(chunk, rows - start)
            var current = inputs + start * inputSize
            if let normalized {
                normalize(n, from: current, into: normalized)
                current = UnsafePointer(normalized)
            }
            for l in 0..<weightLayerCount {
                let last = l == weightLayerCount - 1
                let out = last ? outputs + start * outputSize : scratch + (l % 2) * half
                forwardLayer(l, current, rows: n, into: out, sums: nil, parallel: false)
                current = UnsafePointer(out)
            }
            start += n
        }
    }

    /// The mean loss and the accuracy (fraction of samples whose largest output matches the target)
    /// over `rows` samples. With `weights` (one per sample, checked by ``validate(weights:rows:what:)``),
    /// the weighted mean loss, sum(w l) / sum(w), and the weighted accuracy, the weight of the samples
    /// classified correctly over the total weight. With target rows on a network whose output layer is
    /// not sigmoid or softmax (a regression), the accuracy is NaN: use ``regressionMetrics(_:targets:rows:)``.
    package func evaluate(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil, rows: Int,
                          loss: Loss, weightsName: String = "weights") throws(NudgeError) -> (loss: Double, accuracy: Double) {
        let loss = try loss.resolved(for: activations[weightLayerCount - 1])
        guard rows > 0 else { throw .invalid("there are no samples; evaluation needs at least one") }
        try validate(inputs: inputs, targets: targets, rows: rows, loss: loss)
        if let weights { try validate(weights: weights, rows: rows, what: weightsName) }
        let ws = try Workspace(for: self, capacity: min(rows, rowsPerChunk))
        let tally = evaluate(inputs, targets: targets, weights: weights, rows: .range(start: 0, count: rows), loss: loss, in: ws)
        let mean = tally.loss / tally.weight
        guard mean.isFinite else {
            throw NudgeError(.notFinite, "the loss is \(mean): the network's outputs overflow on these inputs")
        }
        return (mean, measuresAccuracy(targets) ? tally.correct / tally.weight : .nan)
    }

    /// Evaluation over a selection of rows, with a caller's workspace; inputs (and weights) already validated.
    func evaluate(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil, rows: Rows, loss: Loss,
                  in ws: Workspace) -> Tally {
        var tally = Tally()
        forEachChunk(of: rows, size: ws.capacity) { chunk in
            tally.loss += forwardWithLoss(inputs, targets: targets, weights: weights, rows: chunk, loss: loss, scale: nil, in: ws).loss
            let output = UnsafePointer(ws.outputs[weightLayerCount - 1].pointer)
            tally += tallyCorrect(output, ws, weighted: weights != nil, rows: chunk.count)
        }
        return tally
    }

    /// The correct count (or weight) and the count (or total weight) of a batch in `ws`, whose outputs are `output`.
    func tallyCorrect(_ output: UnsafePointer<Float>, _ ws: Workspace, weighted: Bool, rows: Int) -> Tally {
        guard weighted else {
            let correct = countCorrect(outputs: output, targets: ws.targets.pointer, rows: rows, width: outputSize)
            return Tally(loss: 0, correct: Double(correct), weight: Double(rows))
        }
        var weight = 0.0
        for r in 0..<rows { weight += Double(ws.weights.pointer[r]) }
        let correct = weightedCorrect(outputs: output, targets: ws.targets.pointer, rows: rows, width: outputSize,
                                      weights: ws.weights.pointer)
        return Tally(loss: 0, correct: correct, weight: weight)
    }

    /// Checks sample weights: each finite and 0 or more, and not all 0. Names the first bad one as
    /// `what[i]`. One pass that vectorises for good weights: from +0 to the largest finite float the bit
    /// patterns are ordered as the values, and NaN, the infinities and every negative value (-0 too, which
    /// the slow path then accepts) have larger ones.
    package func validate(weights: UnsafePointer<Float>, rows: Int, what: String) throws(NudgeError) {
        var largest: UInt32 = 0
        for i in 0..<rows { largest = max(largest, weights[i].bitPattern) }
        if largest >= Float.infinity.bitPattern {
            largest = 0
            for i in 0..<rows {
                let w = weights[i]
                if !w.isFinite { throw NudgeError(.notFinite, "\(what)[\(i)] is \(w); weights must be finite") }
                if w < 0 { throw .invalid("\(what)[\(i)] is \(w); weights must be 0 or more") }
                largest = max(largest, w == 0 ? 0 : w.bitPattern)
            }
        }
        guard largest > 0 else {
            throw .invalid("\(what) are all zero (\(rows) samples); at least one sample needs a weight above zero")
        }
    }

    // MARK: Gradient

    /// The gradient of the mean loss over `rows` samples with respect to every parameter, written
    /// into `gradient` in parameter order; returns the loss. The network is not changed. With
    /// `weights`, of the weighted mean loss sum(w l) / sum(w).
    package func gradient(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil, rows: Int,
                          loss: Loss, into gradient: UnsafeMutablePointer<Float>) throws(NudgeError) -> Double {
        let loss = try loss.resolved(for: activations[weightLayerCount - 1])
        guard rows > 0 else { throw .invalid("there are no samples; a gradient needs at least one") }
        try validate(inputs: inputs, targets: targets, rows: rows, loss: loss)
        var weight = Double(rows)
        if let weights {
            try validate(weights: weights, rows: rows, what: "weights")
            weight = weightSum(weights, .range(start: 0, count: rows))
        }
        let ws = try Workspace(for: self, capacity: min(rows, rowsPerChunk))
        // Computed aside and copied at the end, so the caller's buffer is untouched when this fails.
        let result = try FloatBuffer(count: parameterCount, zeroed: false)
        var total = 0.0
        var first = true
        forEachChunk(of: .range(start: 0, count: rows), size: ws.capacity) { chunk in
            let (x, sum) = forwardWithLoss(inputs, targets: targets, weights: weights, rows: chunk, loss: loss,
                                           scale: 1 / Float(weight), in: ws)
            backward(x, rows: chunk.count, in: ws, into: result.pointer, accumulate: !first)
            total += sum
            first = false
        }
        guard total.isFinite else {
            throw NudgeError(.notFinite, "the loss is \(total / weight): the network's outputs overflow on these inputs")
        }
        guard isFinite(result.pointer, count: parameterCount) else {
            throw NudgeError(.notFinite, "the gradient has NaN or infinite entries: the network's outputs overflow on these inputs")
        }
        gradient.update(from: result.pointer, count: parameterCount)
        return total / weight
    }

    /// Loads `rows` into `ws`, runs them forward and returns the batch's input and the summed loss
    /// (`loss` must be resolved). With `scale`, `ws.deltaA` receives `scale` x dC/dz of the output
    /// layer, ready for `backward`. A `labelSmoothing` above 0 smooths the loaded targets first.
    /// With `weights` (indexed as the inputs), each sample's loss and delta count its weight times.
    func forwardWithLoss(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil, rows: Rows,
                         loss: Loss, scale: Float?, in ws: Workspace, dropout: Dropout? = nil, labelSmoothing: Float = 0,
                         parallel: Bool = true) -> (input: UnsafePointer<Float>, loss: Double) {
        let x = ws.load(rows, inputs: inputs, targets: targets, weights: weights, network: self, parallel: parallel)
        if labelSmoothing > 0 { smoothTargets(ws.targets.pointer, rows: rows.count, by: labelSmoothing) }
        forward(x, rows: rows.count, in: ws, dropout: dropout, parallel: parallel)
        let last = weightLayerCount - 1
        let total = loss.sum(outputs: ws.outputs[last].pointer, sums: ws.sums.pointer, targets: ws.targets.pointer,
                             rows: rows.count, width: outputSize, activation: activations[last],
                             delta: scale == nil ? nil : ws.deltaA.pointer, scale: scale ?? 0,
                             weights: weights == nil ? nil : UnsafePointer(ws.weights.pointer))
        return (x, total)
    }
}

extension Network {
    /// Label smoothing: each target row becomes (1 - amount) y + amount u, where u spreads the row's
    /// sum evenly over the outputs (for one-hot rows, 1 / outputs each), so the row's sum, and so the
    /// softmax cross-entropy's gradient a - y', keeps its form. A single output is pulled toward 0.5.
    /// The largest target stays the largest, so accuracy is counted as before.
    fileprivate func smoothTargets(_ y: UnsafeMutablePointer<Float>, rows: Int, by amount: Float) {
        let width = outputSize
        for r in 0..<rows {
            let row = y + r * width
            var sum: Float = 0
            for j in 0..<width { sum += row[j] }
            let share = width == 1 ? amount * 0.5 : amount * sum / Float(width)
            for j in 0..<width { row[j] = (1 - amount) * row[j] + share }
        }
    }
}

/// The sum of the weights of `rows`, in double precision (exact for weights of 1: the row count).
func weightSum(_ weights: UnsafePointer<Float>, _ rows: Rows) -> Double {
    var sum = 0.0
    switch rows {
    case .range(let start, let count): for r in start..<(start + count) { sum += Double(weights[r]) }
    case .indices(let index, let count): for r in 0..<count { sum += Double(weights[index[r]]) }
    }
    return sum
}

/// Calls `body` for consecutive pieces of `rows` of at most `size` samples each.
func forEachChunk(of rows: Rows, size: Int, _ body: (Rows) -> Void) {
    var start = 0
    while start < rows.count {
        let n = min(size, rows.count - start)
        switch rows {
        case .range(let first, _): body(.range(start: first + start, count: n))
        case .indices(let index, _): body(.indices(index + start, count: n))
        }
        start += n
    }
}

/// The exponent bits of a Float32: all ones for NaN and the infinities.
let exponentMask: UInt32 = 0x7F80_0000

/// Whether all `count` values are finite, in one pass that vectorises (an integer max is associative,
/// unlike a float sum, which the compiler must keep in order).
func isFinite(_ values: UnsafePointer<Float>, count: Int) -> Bool {
    var exponents: UInt32 = 0
    for i in 0..<count { exponents = max(exponents, values[i].bitPattern & exponentMask) }
    return exponents != exponentMask
}

/// Whether `aCount` 4-byte values (floats or labels) from `a` share a byte with `bCount` from `b`.
/// The counts are the callers' checked products; their byte sizes saturate rather than overflow.
func overlap(_ a: UnsafeRawPointer, _ aCount: Int, _ b: UnsafeRawPointer, _ bCount: Int) -> Bool {
    func end(_ p: UnsafeRawPointer, _ count: Int) -> UInt {
        let (bytes, o1) = UInt(max(count, 0)).multipliedReportingOverflow(by: 4)
        let (sum, o2) = UInt(bitPattern: p).addingReportingOverflow(bytes)
        return o1 || o2 ? UInt.max : sum
    }
    return UInt(bitPattern: a) < end(b, bCount) && UInt(bitPattern: b) < end(a, aCount)
}

/// Whether all `count` values lie in [0, 1], in one pass that vectorises as ``isFinite(_:count:)``
/// does: from +0 to 1 the bit patterns of floats are ordered as their values, and every other value
/// (negative, above 1, infinite, NaN, and -0, which the slow path then accepts) has a larger one.
func isWithinZeroAndOne(_ values: UnsafePointer<Float>, count: Int) -> Bool {
    var largest: UInt32 = 0
    for i in 0..<count { largest = max(largest, values[i].bitPattern) }
    return largest <= Float(1).bitPattern
}

/// The dropout of one training step: a rate per layer of units and a key from which every unit's
/// keep-or-drop draw is derived. A draw depends only on the key, the layer and the unit's position in
/// the batch, so the masks are the same whatever the number of threads.
struct Dropout {
    let rates: [Float]
    let key: UInt64
    /// Where the pass's rows sit in their batch: a unit's draw depends on its place in the batch, so
    /// a process of a group that computes part of a batch draws the masks one process would.
    var rows = RowPlaces()

    /// The place in the batch of each row of a pass: `first + r`, or `places[r]`.
    struct RowPlaces {
        var first = 0
        var places: UnsafePointer<Int>?

        var isMoved: Bool { first != 0 || places != nil }

        @inline(__always)
        func place(_ r: Int) -> Int { places.map { $0[r] } ?? first + r }
    }

    func key(layer: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: splitMix(key &+ UInt64(layer) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    /// Draws at or above this keep the unit.
    static func threshold(_ rate: Float) -> UInt32 {
        UInt32(min(Double(rate) * 4_294_967_296, 4_294_967_295))
    }
}

/// A 32-bit hash of a unit's position (murmur3's finaliser), uniform enough for dropout draws.
@inline(__always)
func dropoutHash(_ key: UInt32, _ index: UInt32) -> UInt32 {
    var h = index &* 0x9E37_79B1 ^ key
    h ^= h >> 16
    h &*= 0x85EB_CA6B
    h ^= h >> 13
    h &*= 0xC2B2_AE35
    h ^= h >> 16
    return h
}

/// SplitMix64's output function.
func splitMix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
