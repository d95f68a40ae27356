import Glibc

/// How wrong the network is: the cost C averaged over the samples of a batch.
public enum Loss: Sendable, CaseIterable {
    /// Chosen from the output activation: softmax -> softmax cross-entropy,
    /// sigmoid -> sigmoid binary cross-entropy, anything else -> mean squared error.
    case auto
    /// C = (1/n) sum over samples and outputs of (a - y)^2: the classic "how wrong are we".
    case meanSquaredError
    /// C = -(1/n) sum y log softmax(z), for one class per sample. Needs a softmax output layer.
    case softmaxCrossEntropy
    /// C = -(1/n) sum [y log a + (1 - y) log(1 - a)], a = sigmoid(z), for independent labels.
    /// Needs a sigmoid output layer.
    case sigmoidBinaryCrossEntropy

    /// A stable lower-case name, such as `"mse"`.
    public var name: String {
        switch self {
        case .auto: "auto"
        case .meanSquaredError: "mse"
        case .softmaxCrossEntropy: "softmax_cross_entropy"
        case .sigmoidBinaryCrossEntropy: "sigmoid_binary_cross_entropy"
        }
    }

    /// Whether the loss needs targets from 0 to 1 (the cross-entropies: outside that range they go
    /// negative, and training chases outputs that cannot be reached). `self` must be resolved.
    public var needsTargetsFromZeroToOne: Bool {
        self == .softmaxCrossEntropy || self == .sigmoidBinaryCrossEntropy
    }

    /// The concrete loss for a network whose output layer uses `output`; fails for pairs that do not fit.
    public func resolved(for output: Activation) throws(NudgeError) -> Loss {
        switch self {
        case .auto:
            switch output {
            case .softmax: return .softmaxCrossEntropy
            case .sigmoid: return .sigmoidBinaryCrossEntropy
            default: return .meanSquaredError
            }
        case .meanSquaredError:
            return self
        case .softmaxCrossEntropy:
            guard output == .softmax else {
                throw .invalid("loss softmax_cross_entropy needs a softmax output layer; the output layer is \(output.name)")
            }
            return self
        case .sigmoidBinaryCrossEntropy:
            guard output == .sigmoid else {
                throw .invalid("loss sigmoid_binary_cross_entropy needs a sigmoid output layer; the output layer is \(output.name)")
            }
            return self
        }
    }

    /// The loss summed over `rows` samples (the caller divides by the sample count, or by the sum of
    /// the weights), computed from the output layer's activations `a` and weighted sums `z`. When
    /// `delta` is given it receives `scale` x dC/dz for the output layer, ready for backpropagation.
    /// With `weights` (one per row), each row's loss and its delta are multiplied by its weight.
    /// `self` must be resolved.
    func sum(outputs a: UnsafePointer<Float>, sums z: UnsafePointer<Float>, targets y: UnsafePointer<Float>,
             rows: Int, width: Int, activation: Activation,
             delta: UnsafeMutablePointer<Float>?, scale: Float, weights: UnsafePointer<Float>? = nil) -> Double {
        if let weights {
            return weightedSum(outputs: a, sums: z, targets: y, rows: rows, width: width, activation: activation,
                               delta: delta, scale: scale, weights: weights)
        }
        var total = 0.0
        switch self {
        case .auto, .meanSquaredError:
            for i in 0..<(rows * width) {
                let d = a[i] - y[i]
                total += Double(d * d)
                delta?[i] = 2 * d * scale
            }
            if let delta { activation.backpropagate(delta, outputs: a, rows: rows, width: width) }
        case .softmaxCrossEntropy:
            for r in 0..<rows {
                let zr = z + r * width, yr = y + r * width, ar = a + r * width
                var top = -Float.infinity
                for j in 0..<width { top = max(top, zr[j]) }
                var sumExp = 0.0, ySum: Float = 0
                for j in 0..<width { sumExp += Double(expf(zr[j] - top)); ySum += yr[j] }
                let logSum = Double(top) + log(sumExp)
                for j in 0..<width where yr[j] != 0 { total -= Double(yr[j]) * (Double(zr[j]) - logSum) }
                if let delta {
                    let dr = delta + r * width
                    for j in 0..<width { dr[j] = (ar[j] * ySum - yr[j]) * scale }
                }
            }
        case .sigmoidBinaryCrossEntropy:
            for i in 0..<(rows * width) {
                let zi = Double(z[i]), yi = Double(y[i])
                total += max(zi, 0) - zi * yi + log1p(exp(-abs(zi)))
                delta?[i] = (a[i] - y[i]) * scale
            }
        }
        return total
    }

    /// ``sum(outputs:sums:targets:rows:width:activation:delta:scale:weights:)`` with a weight per row:
    /// row r's loss counts `weights[r]` times and its delta is scaled by `scale * weights[r]`. Each
    /// product is arranged so that weights of 1 give the unweighted loop's results bit for bit.
    private func weightedSum(outputs a: UnsafePointer<Float>, sums z: UnsafePointer<Float>, targets y: UnsafePointer<Float>,
                             rows: Int, width: Int, activation: Activation,
                             delta: UnsafeMutablePointer<Float>?, scale: Float, weights: UnsafePointer<Float>) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let w = Double(weights[r]), rowScale = scale * weights[r]
            let zr = z + r * width, yr = y + r * width, ar = a + r * width, dr = delta.map { $0 + r * width }
            switch self {
            case .auto, .meanSquaredError:
                for j in 0..<width {
                    let d = ar[j] - yr[j]
                    total += w * Double(d * d)
                    dr?[j] = 2 * d * rowScale
                }
            case .softmaxCrossEntropy:
                var top = -Float.infinity
                for j in 0..<width { top = max(top, zr[j]) }
                var sumExp = 0.0, ySum: Float = 0
                for j in 0..<width { sumExp += Double(expf(zr[j] - top)); ySum += yr[j] }
                let logSum = Double(top) + log(sumExp)
                for j in 0..<width where yr[j] != 0 { total -= w * Double(yr[j]) * (Double(zr[j]) - logSum) }
                if let dr {
                    for j in 0..<width { dr[j] = (ar[j] * ySum - yr[j]) * rowScale }
                }
            case .sigmoidBinaryCrossEntropy:
                for j in 0..<width {
                    let zi = Double(zr[j]), yi = Double(yr[j])
                    total += w * (max(zi, 0) - zi * yi + log1p(exp(-abs(zi))))
                    dr?[j] = (ar[j] - yr[j]) * rowScale
                }
            }
        }
        if self == .meanSquaredError || self == .auto, let delta {
            activation.backpropagate(delta, outputs: a, rows: rows, width: width)
        }
        return total
    }
}

/// How many of `rows` outputs match their targets: the largest output against the largest target
/// for two or more outputs, both on the same side of 0.5 for a single output.
func countCorrect(outputs a: UnsafePointer<Float>, targets y: UnsafePointer<Float>, rows: Int, width: Int) -> Int {
    var correct = 0
    if width == 1 {
        for r in 0..<rows where (a[r] >= 0.5) == (y[r] >= 0.5) { correct += 1 }
        return correct
    }
    for r in 0..<rows where argmax(a + r * width, width) == argmax(y + r * width, width) { correct += 1 }
    return correct
}

/// The summed weight of the rows whose outputs match their targets (as ``countCorrect(outputs:targets:rows:width:)``
/// counts them), with `weights` one per row.
func weightedCorrect(outputs a: UnsafePointer<Float>, targets y: UnsafePointer<Float>, rows: Int, width: Int,
                     weights: UnsafePointer<Float>) -> Double {
    var correct = 0.0
    for r in 0..<rows {
        let hit = width == 1 ? (a[r] >= 0.5) == (y[r] >= 0.5) : argmax(a + r * width, width) == argmax(y + r * width, width)
        if hit { correct += Double(weights[r]) }
    }
    return correct
}

/// The index of the largest of `count` values; the first one on ties, and NaN never wins.
@inline(__always)
func argmax(_ values: UnsafePointer<Float>, _ count: Int) -> Int {
    var best = 0
    var top = -Float.infinity
    for j in 0..<count where values[j] > top {
        top = values[j]
        best = j
    }
    return best
}
