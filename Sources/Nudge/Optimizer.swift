/// How each step turns the gradient into a change of the weights. Raw values are the C ABI's
/// `nudge_optimizer` codes.
public enum Optimizer: Int32, Sendable, CaseIterable {
    /// w -= lr * g
    case sgd = 0
    /// Classic momentum: v = mu v - lr g; w += v
    case momentum = 1
    /// Nesterov momentum, in the form that needs only the gradient at the current weights.
    case nesterov = 2
    /// Adam with bias correction (Kingma and Ba, 2015).
    case adam = 3

    public var name: String {
        switch self {
        case .sgd: "sgd"
        case .momentum: "momentum"
        case .nesterov: "nesterov"
        case .adam: "adam"
        }
    }
}

/// The optimiser's memory between steps (velocity, or Adam's moments and step count).
final class OptimizerState {
    let kind: Optimizer
    /// Velocity (momentum) or Adam's first moment; empty for plain SGD.
    private let first: FloatBuffer
    /// Adam's second moment; empty otherwise.
    private let second: FloatBuffer
    private(set) var steps = 0

    init(kind: Optimizer, parameterCount: Int) throws(NudgeError) {
        self.kind = kind
        first = try FloatBuffer(count: kind == .sgd ? 0 : parameterCount)
        second = try FloatBuffer(count: kind == .adam ? parameterCount : 0)
    }

    /// Forgets all history, as after weights were restored.
    func reset() {
        first.zero()
        second.zero()
        steps = 0
    }

    /// Moves every parameter of `network` against `gradient`. L2 weight decay applies to weights, not biases.
    /// Returns whether every new parameter is finite (a huge step can overflow even when the gradient does not).
    func apply(_ gradient: UnsafePointer<Float>, to network: Network, options: TrainingOptions) -> Bool {
        steps += 1
        let w = network.storage.pointer
        let lr = options.learningRate, mu = options.momentum
        let b1 = options.beta1, b2 = options.beta2, eps = options.epsilon
        let correction1 = 1 - Float(Double(b1).power(steps))
        let correction2Root = (1 - Float(Double(b2).power(steps))).squareRoot()
        // x * 0 is 0 for finite x and NaN otherwise, so the sum checks every new value in the same pass.
        var check: Float = 0
        for l in 0..<network.weightLayerCount {
            let fanIn = network.layerSizes[l], fanOut = network.layerSizes[l + 1]
            for part in 0..<2 {
                let isWeights = part == 0
                let start = isWeights ? network.weightOffsets[l] : network.biasOffsets[l]
                let count = isWeights ? fanIn * fanOut : fanOut
                let decay = isWeights ? options.weightDecay : 0
                let p = w + start, g = gradient + start
                switch kind {
                case .sgd:
                    for i in 0..<count {
                        p[i] -= lr * (g[i] + decay * p[i])
                        check += p[i] * 0
                    }
                case .momentum:
                    let v = first.pointer + start
                    for i in 0..<count {
                        v[i] = mu * v[i] - lr * (g[i] + decay * p[i])
                        p[i] += v[i]
                        check += p[i] * 0
                    }
                case .nesterov:
                    let v = first.pointer + start
                    for i in 0..<count {
                        let previous = v[i]
                        v[i] = mu * v[i] - lr * (g[i] + decay * p[i])
                        p[i] += -mu * previous + (1 + mu) * v[i]
                        check += p[i] * 0
                    }
                case .adam:
                    let m = first.pointer + start, v = second.pointer + start
                    let stepSize = lr / correction1
                    for i in 0..<count {
                        let gi = g[i] + decay * p[i]
                        m[i] = b1 * m[i] + (1 - b1) * gi
                        v[i] = b2 * v[i] + (1 - b2) * gi * gi
                        p[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2Root + eps)
                        check += p[i] * 0
                    }
                }
            }
        }
        return check == 0
    }
}

extension Double {
    fileprivate func power(_ n: Int) -> Double {
        var result = 1.0, base = self, e = n
        while e > 0 {
            if e & 1 == 1 { result *= base }
            base *= base
            e >>= 1
        }
        return result
    }
}
