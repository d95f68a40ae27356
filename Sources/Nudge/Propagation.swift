/// Where the targets of a set of samples come from.
package enum Targets {
    /// `rows x outputSize` floats: one-hot rows, probabilities or regression values.
    case dense(UnsafePointer<Float>)
    /// One class index per sample. With a single output, the label (0 or 1) is the target itself.
    case labels(UnsafePointer<Int32>)
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
    /// The activations of each weight layer, `capacity x width`.
    let outputs: [FloatBuffer]
    /// The output layer's weighted sums, kept for numerically stable losses.
    let sums: FloatBuffer
    let deltaA: FloatBuffer
    let deltaB: FloatBuffer

    init(for network: Network, capacity: Int) throws(NudgeError) {
        self.capacity = capacity
        let sizes = network.layerSizes
        inputs = try FloatBuffer(count: checkedProduct(capacity, sizes[0], "batch inputs"))
        targets = try FloatBuffer(count: checkedProduct(capacity, network.outputSize, "batch targets"))
        var outs: [FloatBuffer] = []
        for l in 1..<sizes.count { outs.append(try FloatBuffer(count: checkedProduct(capacity, sizes[l], "layer \(l) outputs"))) }
        outputs = outs
        sums = try FloatBuffer(count: checkedProduct(capacity, network.outputSize, "output sums"))
        let widest = sizes.dropFirst().max() ?? 1
        deltaA = try FloatBuffer(count: checkedProduct(capacity, widest, "deltas"))
        deltaB = try FloatBuffer(count: checkedProduct(capacity, widest, "deltas"))
    }

    /// Points at the batch's inputs and fills `targets` with its target rows. Contiguous inputs are
    /// used in place; scattered ones are gathered into `inputs`.
    func load(_ rows: Rows, inputs data: UnsafePointer<Float>, targets source: Targets?, network: Network) -> UnsafePointer<Float> {
        let width = network.inputSize, out = network.outputSize
        let input: UnsafePointer<Float>
        switch rows {
        case .range(let start, _):
            input = data + start * width
        case .indices(let index, let count):
            for r in 0..<count { (inputs.pointer + r * width).update(from: data + index[r] * width, count: width) }
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

    /// Runs `rows` samples through every layer into `ws.outputs`, keeping the output layer's sums.
    func forward(_ input: UnsafePointer<Float>, rows: Int, in ws: Workspace) {
        var current = input
        for l in 0..<weightLayerCount {
            let fanIn = layerSizes[l], fanOut = layerSizes[l + 1]
            let out = ws.outputs[l].pointer
            LinearAlgebra.multiply(current, storage.pointer + weightOffsets[l], transposeB: true,
                                   into: out, m: rows, n: fanOut, k: fanIn)
            let last = l == weightLayerCount - 1
            activations[l].applyWithBias(out, rows: rows, width: fanOut, bias: storage.pointer + biasOffsets[l],
                                         keeping: last ? ws.sums.pointer : nil)
            current = UnsafePointer(out)
        }
    }

    /// Backpropagates the output layer's dC/dz, which `ws.deltaA` holds, into `gradient`
    /// (parameter order). With `accumulate`, adds to `gradient` instead of overwriting it.
    func backward(_ input: UnsafePointer<Float>, rows: Int, in ws: Workspace,
                  into gradient: UnsafeMutablePointer<Float>, accumulate: Bool) {
        var delta = ws.deltaA.pointer, spare = ws.deltaB.pointer
        let beta: Float = accumulate ? 1 : 0
        for l in stride(from: weightLayerCount - 1, through: 0, by: -1) {
            let fanIn = layerSizes[l], fanOut = layerSizes[l + 1]
            let previous = l == 0 ? input : UnsafePointer(ws.outputs[l - 1].pointer)
            LinearAlgebra.multiply(delta, transposeA: true, previous, into: gradient + weightOffsets[l],
                                   m: fanOut, n: fanIn, k: rows, beta: beta)
            let db = gradient + biasOffsets[l]
            if !accumulate { db.update(repeating: 0, count: fanOut) }
            for r in 0..<rows {
                let d = delta + r * fanOut
                for j in 0..<fanOut { db[j] += d[j] }
            }
            // The input layer has no parameters, so its gradient is never needed.
            guard l > 0 else { break }
            LinearAlgebra.multiply(delta, storage.pointer + weightOffsets[l], into: spare, m: rows, n: fanIn, k: fanOut)
            activations[l - 1].backpropagate(spare, outputs: ws.outputs[l - 1].pointer, rows: rows, width: fanIn)
            swap(&delta, &spare)
        }
    }

    /// Checks that inputs and targets are finite and labels are valid classes, naming the first bad value.
    package func validate(inputs: UnsafePointer<Float>, targets: Targets?, rows: Int, what: String = "inputs") throws(NudgeError) {
        let width = inputSize, out = outputSize
        for i in 0..<(rows * width) where !inputs[i].isFinite {
            throw NudgeError(.notFinite, "\(what) row \(i / width), column \(i % width) is \(inputs[i]); inputs must be finite")
        }
        switch targets {
        case .none:
            break
        case .dense(let y):
            for i in 0..<(rows * out) where !y[i].isFinite {
                throw NudgeError(.notFinite, "targets row \(i / out), column \(i % out) is \(y[i]); targets must be finite")
            }
        case .labels(let labels):
            let classes = out == 1 ? 2 : out
            for r in 0..<rows where labels[r] < 0 || Int(labels[r]) >= classes {
                throw .invalid("labels[\(r)] is \(labels[r]); the network has \(classes) classes (0 to \(classes - 1))")
            }
        }
    }

    // MARK: Prediction

    /// Writes the output layer's values for `rows` samples (`rows x inputSize`) into `outputs`
    /// (`rows x outputSize`). Reads only the network: safe from many threads at once.
    package func predict(_ inputs: UnsafePointer<Float>, rows: Int, into outputs: UnsafeMutablePointer<Float>) throws(NudgeError) {
        guard rows > 0 else { return }
        let scratch = try PredictionScratch(for: self, rows: min(rows, Network.chunkRows))
        predict(inputs, rows: rows, into: outputs, scratch: scratch)
    }

    /// Buffers for the hidden layers of a prediction, one chunk of rows at a time.
    struct PredictionScratch {
        let rows: Int
        let a: FloatBuffer
        let b: FloatBuffer

        init(for network: Network, rows: Int) throws(NudgeError) {
            let hidden = network.layerSizes.dropFirst().dropLast().max() ?? 0
            self.rows = rows
            a = try FloatBuffer(count: rows * hidden, zeroed: false)
            b = try FloatBuffer(count: rows * hidden, zeroed: false)
        }
    }

    private func predict(_ inputs: UnsafePointer<Float>, rows: Int, into outputs: UnsafeMutablePointer<Float>,
                         scratch: PredictionScratch) {
        var start = 0
        while start < rows {
            let n = min(scratch.rows, rows - start)
            var current = inputs + start * inputSize
            for l in 0..<weightLayerCount {
                let fanIn = layerSizes[l], fanOut = layerSizes[l + 1]
                let last = l == weightLayerCount - 1
                let out = last ? outputs + start * outputSize : (l % 2 == 0 ? scratch.a.pointer : scratch.b.pointer)
                LinearAlgebra.multiply(current, storage.pointer + weightOffsets[l], transposeB: true,
                                       into: out, m: n, n: fanOut, k: fanIn)
                activations[l].applyWithBias(out, rows: n, width: fanOut, bias: storage.pointer + biasOffsets[l])
                current = UnsafePointer(out)
            }
            start += n
        }
    }

    /// Writes the index of the largest output of each sample into `labels`.
    package func classify(_ inputs: UnsafePointer<Float>, rows: Int, into labels: UnsafeMutablePointer<Int32>) throws(NudgeError) {
        guard rows > 0 else { return }
        let chunk = min(rows, Network.chunkRows)
        let scratch = try PredictionScratch(for: self, rows: chunk)
        let out = try FloatBuffer(count: chunk * outputSize, zeroed: false)
        var start = 0
        while start < rows {
            let n = min(chunk, rows - start)
            predict(inputs + start * inputSize, rows: n, into: out.pointer, scratch: scratch)
            for r in 0..<n {
                let row = out.pointer + r * outputSize
                labels[start + r] = Int32(outputSize == 1 ? (row[0] >= 0.5 ? 1 : 0) : argmax(row, outputSize))
            }
            start += n
        }
    }

    /// The mean loss and the accuracy (fraction of samples whose largest output matches the target)
    /// over `rows` samples.
    package func evaluate(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int, loss: Loss) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        let loss = try loss.resolved(for: activations[weightLayerCount - 1])
        guard rows > 0 else { throw .invalid("sample_count is 0; evaluation needs at least one sample") }
        try validate(inputs: inputs, targets: targets, rows: rows)
        let ws = try Workspace(for: self, capacity: min(rows, Network.chunkRows))
        let result = evaluate(inputs, targets: targets, rows: .range(start: 0, count: rows), loss: loss, in: ws)
        guard result.loss.isFinite else {
            throw NudgeError(.notFinite, "the loss is \(result.loss): the network's outputs overflow on these inputs")
        }
        return result
    }

    /// Evaluation over a selection of rows, with a caller's workspace; inputs already validated.
    func evaluate(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Rows, loss: Loss, in ws: Workspace) -> (loss: Double, accuracy: Double) {
        var total = 0.0
        var correct = 0
        forEachChunk(of: rows, size: ws.capacity) { chunk in
            let x = ws.load(chunk, inputs: inputs, targets: targets, network: self)
            forward(x, rows: chunk.count, in: ws)
            let output = UnsafePointer(ws.outputs[weightLayerCount - 1].pointer)
            total += loss.sum(outputs: output, sums: ws.sums.pointer, targets: ws.targets.pointer,
                              rows: chunk.count, width: outputSize, activation: activations[weightLayerCount - 1],
                              delta: nil, scale: 0)
            correct += countCorrect(outputs: output, targets: ws.targets.pointer, rows: chunk.count, width: outputSize)
        }
        return (total / Double(rows.count), Double(correct) / Double(rows.count))
    }

    // MARK: Gradient

    /// The gradient of the mean loss over `rows` samples with respect to every parameter, written
    /// into `gradient` in parameter order; returns the loss. The network is not changed.
    package func gradient(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Int, loss: Loss,
                          into gradient: UnsafeMutablePointer<Float>) throws(NudgeError) -> Double {
        let loss = try loss.resolved(for: activations[weightLayerCount - 1])
        guard rows > 0 else { throw .invalid("sample_count is 0; a gradient needs at least one sample") }
        try validate(inputs: inputs, targets: targets, rows: rows)
        let ws = try Workspace(for: self, capacity: min(rows, Network.chunkRows))
        // Computed aside and copied at the end, so the caller's buffer is untouched when this fails.
        let result = try FloatBuffer(count: parameterCount, zeroed: false)
        var total = 0.0
        var first = true
        forEachChunk(of: .range(start: 0, count: rows), size: ws.capacity) { chunk in
            total += accumulateGradient(inputs, targets: targets, rows: chunk, loss: loss, scale: 1 / Float(rows),
                                        in: ws, into: result.pointer, accumulate: !first)
            first = false
        }
        guard total.isFinite else {
            throw NudgeError(.notFinite, "the loss is \(total / Double(rows)): the network's outputs overflow on these inputs")
        }
        guard isFinite(result.pointer, count: parameterCount) else {
            throw NudgeError(.notFinite, "the gradient has NaN or infinite entries: the network's outputs overflow on these inputs")
        }
        gradient.update(from: result.pointer, count: parameterCount)
        return total / Double(rows)
    }

    /// One forward and backward pass over `rows`; returns the summed loss. `loss` must be resolved.
    func accumulateGradient(_ inputs: UnsafePointer<Float>, targets: Targets, rows: Rows, loss: Loss, scale: Float,
                            in ws: Workspace, into gradient: UnsafeMutablePointer<Float>, accumulate: Bool) -> Double {
        let x = ws.load(rows, inputs: inputs, targets: targets, network: self)
        forward(x, rows: rows.count, in: ws)
        let total = loss.sum(outputs: ws.outputs[weightLayerCount - 1].pointer, sums: ws.sums.pointer,
                             targets: ws.targets.pointer, rows: rows.count, width: outputSize,
                             activation: activations[weightLayerCount - 1], delta: ws.deltaA.pointer, scale: scale)
        backward(x, rows: rows.count, in: ws, into: gradient, accumulate: accumulate)
        return total
    }
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

/// Whether all `count` values are finite, in one vectorisable pass: x * 0 is 0 for finite x and NaN otherwise.
func isFinite(_ values: UnsafePointer<Float>, count: Int) -> Bool {
    var check: Float = 0
    for i in 0..<count { check += values[i] * 0 }
    return check == 0
}
