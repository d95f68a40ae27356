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
    /// gradient, and clears that part of the gradient so that the next batch can add into it.
    /// Returns the largest exponent field among the new values (all ones: NaN or infinity).
    func update(layer l: Int, rows: Range<Int>, of network: Network, gradient: UnsafeMutablePointer<Float>,
                step: Step) -> UInt32 {
        update(layer: l, rows: rows, of: network, step: step) { ClearedGradient(g: gradient + $0) }
    }

    /// As ``update(layer:rows:of:gradient:step:)``, with the gradient `first + second` (two threads'
    /// gradients over their rows of a batch), read in the same pass; neither buffer is changed.
    func update(layer l: Int, rows: Range<Int>, of network: Network, summing first: UnsafePointer<Float>,
                _ second: UnsafePointer<Float>, step: Step) -> UInt32 {
        update(layer: l, rows: rows, of: network, step: step) { SummedGradient(a: first + $0, b: second + $0) }
    }

    @inline(__always)
    private func update<G: GradientSource>(layer l: Int, rows: Range<Int>, of network: Network, step: Step,
                                           from source: (Int) -> G) -> UInt32 {
        let fanIn = network.layerSizes[l]
        let weights = (network.weightOffsets[l] + rows.lowerBound * fanIn)..<(network.weightOffsets[l] + rows.upperBound * fanIn)
        let biases = (network.biasOffsets[l] + rows.lowerBound)..<(network.biasOffsets[l] + rows.upperBound)
        return max(update(weights, network.storage.pointer, source(weights.lowerBound), step.decay, step),
                   update(biases, network.storage.pointer, source(biases.lowerBound), 0, step))
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

    /// Updates parameters `range`; returns the largest exponent field among the new values (all ones
    /// means NaN or infinity). An integer max is associative, so it vectorises with the update.
    private func update<G: GradientSource>(_ range: Range<Int>, _ w: UnsafeMutablePointer<Float>, _ g: G,
                                           _ decay: Float, _ s: Step) -> UInt32 {
        let p = w + range.lowerBound
        let count = range.count
        var exponents: UInt32 = 0
        switch kind {
        case .sgd:
            for i in 0..<count {
                p[i] -= s.lr * (g[i] + decay * p[i])
                g.consumed(i)
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        case .momentum:
            let v = first.pointer + range.lowerBound
            for i in 0..<count {
                v[i] = s.mu * v[i] - s.lr * (g[i] + decay * p[i])
                g.consumed(i)
                p[i] += v[i]
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        case .nesterov:
            let v = first.pointer + range.lowerBound
            for i in 0..<count {
                let previous = v[i]
                v[i] = s.mu * v[i] - s.lr * (g[i] + decay * p[i])
                g.consumed(i)
                p[i] += -s.mu * previous + (1 + s.mu) * v[i]
                exponents = max(exponents, p[i].bitPattern & exponentMask)
            }
        case .adam:
            let m = first.pointer + range.lowerBound, v = second.pointer + range.lowerBound
            // The same arithmetic as the scalar loop below, eight lanes at a time: the compiler does
            // not vectorise the square root and division on its own.
            let stepSize = s.lr / s.correction1
            let b1 = SIMD8<Float>(repeating: s.b1), b2 = SIMD8<Float>(repeating: s.b2)
            let c1 = SIMD8<Float>(repeating: 1 - s.b1), c2 = SIMD8<Float>(repeating: 1 - s.b2)
            let root = SIMD8<Float>(repeating: s.correction2Root), eps = SIMD8<Float>(repeating: s.eps)
            let rate = SIMD8<Float>(repeating: stepSize), decayLanes = SIMD8<Float>(repeating: decay)
            var wide = SIMD8<UInt32>(repeating: 0)
            let mask = SIMD8<UInt32>(repeating: exponentMask)
            var i = 0
            while i + 8 <= count {
                let pi = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                let gi = g.lanes(i) + decayLanes * pi
                let mi = b1 * UnsafeRawPointer(m + i).loadUnaligned(as: SIMD8<Float>.self) + c1 * gi
                let vi = b2 * UnsafeRawPointer(v + i).loadUnaligned(as: SIMD8<Float>.self) + c2 * gi * gi
                let next = pi - rate * mi / (vi.squareRoot() / root + eps)
                UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(p + i).storeBytes(of: next, as: SIMD8<Float>.self)
                g.consumedLanes(i)
                wide = pointwiseMax(wide, unsafeBitCast(next, to: SIMD8<UInt32>.self) & mask)
                i += 8
            }
            exponents = wide.max()
            while i < count {
                let gi = g[i] + decay * p[i]
                g.consumed(i)
                m[i] = s.b1 * m[i] + (1 - s.b1) * gi
                v[i] = s.b2 * v[i] + (1 - s.b2) * gi * gi
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / s.correction2Root + s.eps)
                exponents = max(exponents, p[i].bitPattern & exponentMask)
                i += 1
            }
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

/// Where an optimiser update reads the gradient, element by element or eight lanes at a time.
protocol GradientSource {
    subscript(_ i: Int) -> Float { get }
    func lanes(_ i: Int) -> SIMD8<Float>
    /// Called once element `i` has been read.
    func consumed(_ i: Int)
    /// Called once elements `i..<i + 8` have been read.
    func consumedLanes(_ i: Int)
}

/// One gradient buffer, cleared as it is read so that the next batch can add into it.
struct ClearedGradient: GradientSource {
    let g: UnsafeMutablePointer<Float>

    @inline(__always) subscript(_ i: Int) -> Float { g[i] }
    @inline(__always) func lanes(_ i: Int) -> SIMD8<Float> { UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always) func consumed(_ i: Int) { g[i] = 0 }
    @inline(__always) func consumedLanes(_ i: Int) {
        UnsafeMutableRawPointer(g + i).storeBytes(of: SIMD8<Float>(repeating: 0), as: SIMD8<Float>.self)
    }
}

/// The sum of two gradient buffers (a + b, in that order), left as they are: the next step overwrites them.
struct SummedGradient: GradientSource {
    let a, b: UnsafePointer<Float>

    @inline(__always) subscript(_ i: Int) -> Float { a[i] + b[i] }
    @inline(__always) func lanes(_ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) func consumed(_ i: Int) {}
    @inline(__always) func consumedLanes(_ i: Int) {}
}
