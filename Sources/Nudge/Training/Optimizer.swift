import NudgeKernels

/// How each step turns the gradient into a change of the weights.
public enum Optimizer: Sendable, CaseIterable {
    /// w -= lr * g
    case sgd
    /// Classic momentum: v = mu v - lr g; w += v
    case momentum
    /// Nesterov momentum, in the form that needs only the gradient at the current weights.
    case nesterov
    /// Adam with bias correction (Kingma and Ba, 2015).
    case adam

    /// A stable lower-case name, such as `"nesterov"`.
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
    let first: FloatBuffer
    /// Adam's second moment; empty otherwise.
    let second: FloatBuffer
    var steps = 0

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

    /// Starts a step: counts it and returns the constants of its update, which the backward pass
    /// applies layer by layer (see `Network.backward`) as soon as each layer's gradient is ready.
    func begin(_ options: TrainingOptions, learningRate: Float) -> Step {
        steps += 1
        return Step(options: options, learningRate: learningRate, steps: steps)
    }

    /// Updates the weights `rows` (output units) of weight layer `layer`, and their biases, from the
    /// gradient (plus `second`, when given: two threads' gradients over their rows of a batch, read in
    /// the same pass), and clears what it read so that the next batch can add into it.
    /// Returns the largest exponent field among the new values (all ones: NaN or infinity).
    func update(layer l: Int, rows: Range<Int>, of network: Network, gradient: UnsafeMutablePointer<Float>,
                adding second: UnsafeMutablePointer<Float>? = nil, step: Step) -> UInt32 {
        let fanIn = network.layerSizes[l]
        let weights = (network.weightOffsets[l] + rows.lowerBound * fanIn)..<(network.weightOffsets[l] + rows.upperBound * fanIn)
        let biases = (network.biasOffsets[l] + rows.lowerBound)..<(network.biasOffsets[l] + rows.upperBound)
        return max(update(weights, network.storage.pointer, gradient, second, step.decay, step),
                   update(biases, network.storage.pointer, gradient, second, 0, step))
    }

    /// The per-step constants of an update.
    struct Step {
        let lr, mu, b1, b2, eps, correction1, correction2Root, decay: Float

        init(options: TrainingOptions, learningRate: Float, steps: Int) {
            decay = options.weightDecay
            lr = learningRate
            mu = options.momentum
            b1 = options.beta1
            b2 = options.beta2
            eps = options.epsilon
            correction1 = 1 - Float(Double(b1).power(steps))
            correction2Root = (1 - Float(Double(b2).power(steps))).squareRoot()
        }
    }

    /// Updates parameters `range` from gradient `ga` (plus `gb`, when given), both indexed like the
    /// parameters and cleared as they are read (NudgeKernels, in C: compiled for the processor's widest
    /// vectors); returns the largest exponent field among the new values (all ones means NaN or infinity).
    private func update(_ range: Range<Int>, _ w: UnsafeMutablePointer<Float>, _ ga: UnsafeMutablePointer<Float>,
                        _ gb: UnsafeMutablePointer<Float>?, _ decay: Float, _ s: Step) -> UInt32 {
        let start = range.lowerBound, g = ga + start, g2 = gb.map { $0 + start }
        let p = w + start, count = range.count
        var exponents: UInt32 = 0
        switch kind {
        case .sgd, .momentum, .nesterov:
            let which = kind == .sgd ? NK_SGD : kind == .momentum ? NK_MOMENTUM : NK_NESTEROV
            exponents = nk_sgd_update(which, p, kind == .sgd ? nil : first.pointer + start, g, g2, count, s.lr, s.mu, decay)
        case .adam:
            // Its square roots and divisions were most of an Adam step's time with baseline SSE2 vectors.
            var constants = nk_adam_step(rate: s.lr / s.correction1, beta1: s.b1, beta2: s.b2, one_minus_beta1: 1 - s.b1,
                                         one_minus_beta2: 1 - s.b2, correction2_root: s.correction2Root,
                                         epsilon: s.eps, decay: decay)
            exponents = nk_adam_update(p, first.pointer + start, second.pointer + start, g, g2, count, &constants)
        }
        return exponents
    }
}

extension Double {
    func power(_ n: Int) -> Double {
        var result = 1.0, base = self, e = n
        while e > 0 {
            if e & 1 == 1 { result *= base }
            base *= base
            e >>= 1
        }
        return result
    }
}
