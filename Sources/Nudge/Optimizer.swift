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
    /// Large networks are updated by the pool's threads, each on its own range of parameters.
    /// The gradient is set to zero as it is read, ready for the next batch to add into.
    func apply(clearing gradient: UnsafeMutablePointer<Float>, to network: Network, options: TrainingOptions) -> Bool {
        steps += 1
        let step = Step(options: options, steps: steps)
        let parts = WorkerPool.shared.parts(forWork: 4 * network.parameterCount)
        struct Update {
            let state: Unmanaged<OptimizerState>
            let network: Unmanaged<Network>
            let gradient: UnsafeMutablePointer<Float>
            let step: Step
            let decay: Float
            let exponents: UnsafeMutablePointer<UInt32>
        }
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: parts) { exponents in
            exponents.initialize(repeating: 0)
            let update = Update(state: .passUnretained(self), network: .passUnretained(network), gradient: gradient,
                                step: step, decay: options.weightDecay, exponents: exponents.baseAddress!)
            WorkerPool.shared.run(parts: parts, update) { context, part, parts in
                let u = context.load(as: Update.self)
                let state = u.state.takeUnretainedValue(), network = u.network.takeUnretainedValue()
                let range = piece(of: network.parameterCount, part: part, parts: parts)
                var largest: UInt32 = 0
                // Walk the layers' weight and bias blocks that overlap this thread's range.
                for l in 0..<network.weightLayerCount {
                    let fanIn = network.layerSizes[l], fanOut = network.layerSizes[l + 1]
                    let weights = network.weightOffsets[l]..<(network.weightOffsets[l] + fanIn * fanOut)
                    let biases = network.biasOffsets[l]..<(network.biasOffsets[l] + fanOut)
                    let weightPart = weights.clamped(to: range), biasPart = biases.clamped(to: range)
                    if !weightPart.isEmpty {
                        largest = max(largest, state.update(weightPart, network.storage.pointer, u.gradient, u.decay, u.step))
                    }
                    if !biasPart.isEmpty {
                        largest = max(largest, state.update(biasPart, network.storage.pointer, u.gradient, 0, u.step))
                    }
                }
                u.exponents[part] = largest
            }
            return !exponents.contains(exponentMask)
        }
    }

    /// The per-step constants of an update.
    fileprivate struct Step {
        let lr, mu, b1, b2, eps, correction1, correction2Root: Float

        init(options: TrainingOptions, steps: Int) {
            lr = options.learningRate
            mu = options.momentum
            b1 = options.beta1
            b2 = options.beta2
            eps = options.epsilon
            correction1 = 1 - Float(Double(b1).power(steps))
            correction2Root = (1 - Float(Double(b2).power(steps))).squareRoot()
        }
    }

    /// Updates parameters `range`; returns the largest exponent field among the new values (all ones
    /// means NaN or infinity). An integer max is associative, so it vectorises with the update.
    fileprivate func update(_ range: Range<Int>, _ w: UnsafeMutablePointer<Float>, _ gradient: UnsafeMutablePointer<Float>,
                        _ decay: Float, _ s: Step) -> UInt32 {
        let p = w + range.lowerBound, g = gradient + range.lowerBound
        let count = range.count
        var exponents: UInt32 = 0
        switch kind {
        case .sgd:
            for i in 0..<count {
                p[i] -= s.lr * (g[i] + decay * p[i])
                g[i] = 0
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        case .momentum:
            let v = first.pointer + range.lowerBound
            for i in 0..<count {
                v[i] = s.mu * v[i] - s.lr * (g[i] + decay * p[i])
                g[i] = 0
                p[i] += v[i]
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        case .nesterov:
            let v = first.pointer + range.lowerBound
            for i in 0..<count {
                let previous = v[i]
                v[i] = s.mu * v[i] - s.lr * (g[i] + decay * p[i])
                g[i] = 0
                p[i] += -s.mu * previous + (1 + s.mu) * v[i]
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        case .adam:
            let m = first.pointer + range.lowerBound, v = second.pointer + range.lowerBound
            let stepSize = s.lr / s.correction1
            for i in 0..<count {
                let gi = g[i] + decay * p[i]
                g[i] = 0
                m[i] = s.b1 * m[i] + (1 - s.b1) * gi
                v[i] = s.b2 * v[i] + (1 - s.b2) * gi * gi
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / s.correction2Root + s.eps)
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        }
        return exponents
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
