import Foundation
import Nudge
import Testing

/// One activation x loss combination for the finite-difference check.
struct GradientCase: Sendable, CustomTestStringConvertible {
    var sizes: [Int]
    var hidden: [Activation]
    var output: Activation
    var loss: Loss
    /// Class labels instead of dense targets.
    var labels = false

    var activations: [Activation] { hidden + [output] }

    /// The loss `.auto` must resolve to, from the documented rule.
    var concreteLoss: Loss {
        guard loss == .auto else { return loss }
        switch output {
        case .softmax: return .softmaxCrossEntropy
        case .sigmoid: return .sigmoidBinaryCrossEntropy
        default: return .meanSquaredError
        }
    }

    var testDescription: String {
        "\(sizes) \(hidden.map(\.name))->\(output.name) \(loss.name)\(labels ? " labels" : "")"
    }

    static let hiddenKinds: [Activation] = [.identity, .sigmoid, .tanh, .relu, .leakyRelu]

    static let all: [GradientCase] = {
        var cases: [GradientCase] = []
        // Mean squared error with every output activation and every hidden activation.
        for output in Activation.allCases {
            for h in hiddenKinds {
                cases.append(GradientCase(sizes: [3, 5, 4, 3], hidden: [h, h], output: output, loss: .meanSquaredError))
            }
        }
        // Mixed hidden layers.
        cases.append(GradientCase(sizes: [3, 5, 4, 2], hidden: [.relu, .tanh], output: .identity, loss: .meanSquaredError))
        cases.append(GradientCase(sizes: [3, 5, 4, 2], hidden: [.sigmoid, .leakyRelu], output: .tanh, loss: .meanSquaredError))
        cases.append(GradientCase(sizes: [3, 4, 3], hidden: [.tanh], output: .softmax, loss: .meanSquaredError, labels: true))
        // Single layer, no hidden layer at all.
        cases.append(GradientCase(sizes: [4, 3], hidden: [], output: .identity, loss: .meanSquaredError))
        cases.append(GradientCase(sizes: [4, 3], hidden: [], output: .softmax, loss: .softmaxCrossEntropy, labels: true))
        // Softmax cross-entropy: dense (soft) targets and labels, every hidden activation.
        for h in hiddenKinds {
            cases.append(GradientCase(sizes: [3, 5, 4, 3], hidden: [h, h], output: .softmax, loss: .softmaxCrossEntropy))
            cases.append(GradientCase(sizes: [3, 5, 4, 3], hidden: [h, h], output: .softmax, loss: .softmaxCrossEntropy, labels: true))
        }
        // Sigmoid binary cross-entropy: several independent outputs with dense targets, and one output with labels.
        for h in hiddenKinds {
            cases.append(GradientCase(sizes: [3, 5, 4, 2], hidden: [h, h], output: .sigmoid, loss: .sigmoidBinaryCrossEntropy))
            cases.append(GradientCase(sizes: [3, 5, 4, 1], hidden: [h, h], output: .sigmoid, loss: .sigmoidBinaryCrossEntropy, labels: true))
        }
        // .auto with every output activation.
        for output in Activation.allCases {
            cases.append(GradientCase(sizes: [3, 4, 3], hidden: [.tanh], output: output, loss: .auto))
        }
        return cases
    }()
}

@Suite("Gradients")
struct GradientTests {
    static let samples = 5

    static func data(for c: GradientCase, seed: UInt64) -> (inputs: [Float], targets: TargetData) {
        var rng = TestRandom(seed: seed)
        let nOut = c.sizes.last!
        let inputs = rng.floats(samples * c.sizes[0], in: -1...1)
        if c.labels {
            return (inputs, .labels(rng.labels(samples, classes: nOut == 1 ? 2 : nOut)))
        }
        switch c.concreteLoss {
        case .softmaxCrossEntropy:
            // Probability rows (soft targets).
            var y: [Float] = []
            for _ in 0..<samples {
                let raw = rng.floats(nOut, in: 0.05...1)
                let sum = raw.reduce(0, +)
                y += raw.map { $0 / sum }
            }
            return (inputs, .dense(y))
        default:
            return (inputs, .dense(rng.floats(samples * nOut, in: 0...1)))
        }
    }

    @Test("gradient matches central finite differences", arguments: GradientCase.all)
    func finiteDifferences(_ c: GradientCase) throws {
        let seed = UInt64(abs(c.testDescription.hashValueStable)) // a different, fixed network per case
        let net = try Network.random(c.sizes, c.activations, seed: seed)
        let (inputs, targets) = Self.data(for: c, seed: seed ^ 0xABCDEF)
        let before = net.parameterBits

        let (value, g) = try net.gradient(inputs, targets, loss: c.loss)
        #expect(net.parameterBits == before, "gradient must not change the network")
        #expect(g.allSatisfy { $0.isFinite })

        let params = net.parameters.map(Double.init)
        let y = targets.denseRows(outputs: c.sizes.last!)
        func reference(_ p: [Double]) -> Double {
            Reference.loss(c.concreteLoss, inputs: inputs, targets: y, sizes: c.sizes, activations: c.activations, parameters: p)
        }
        let exact = reference(params)
        #expect(abs(value - exact) <= 1e-5 * max(1, abs(exact)), "returned loss \(value), reference \(exact)")
        let evaluated = try net.evaluate(inputs, targets, loss: c.loss).loss
        #expect(abs(evaluated - exact) <= 1e-5 * max(1, abs(exact)), "evaluate loss \(evaluated), reference \(exact)")

        // Central differences in Double on the reference loss. A parameter whose difference quotient
        // changes with the step size sits on a ReLU kink; those (rare) parameters are skipped.
        var fd = [Double](repeating: 0, count: params.count)
        var skipped: [Int] = []
        for i in params.indices {
            func quotient(_ h: Double) -> Double {
                var p = params
                p[i] = params[i] + h
                let up = reference(p)
                p[i] = params[i] - h
                return (up - reference(p)) / (2 * h)
            }
            let a = quotient(1e-6), b = quotient(5e-7)
            if abs(a - b) > 1e-6 * max(1, abs(a)) { skipped.append(i) }
            fd[i] = a
        }
        #expect(skipped.count <= 2, "too many parameters on kinks: \(skipped)")
        let scale = fd.map(abs).max() ?? 0
        #expect(scale > 1e-4, "the case should have a non-trivial gradient")
        var worst = 0.0
        for i in params.indices where !skipped.contains(i) {
            let err = abs(Double(g[i]) - fd[i])
            worst = max(worst, err / max(scale, 1e-12))
            #expect(err <= 1e-3 * abs(fd[i]) + 1e-4 * scale + 1e-7,
                    "parameter \(i): gradient \(g[i]), finite difference \(fd[i])")
        }
        #expect(worst < 1e-3)
    }

    @Test(".auto resolves from the output activation", arguments: Activation.allCases)
    func autoResolution(_ output: Activation) throws {
        let expected: Loss = output == .softmax ? .softmaxCrossEntropy : output == .sigmoid ? .sigmoidBinaryCrossEntropy : .meanSquaredError
        #expect(try Loss.auto.resolved(for: output) == expected)
        #expect(try Loss.meanSquaredError.resolved(for: output) == .meanSquaredError)
        // The gradient and loss for .auto are exactly those of the resolved loss.
        let c = GradientCase(sizes: [3, 4, 3], hidden: [.tanh], output: output, loss: .auto)
        let net = try Network.random(c.sizes, c.activations, seed: 99)
        let (x, t) = Self.data(for: c, seed: 5)
        let auto = try net.gradient(x, t, loss: .auto)
        let explicit = try net.gradient(x, t, loss: expected)
        #expect(auto.loss == explicit.loss)
        #expect(auto.gradient.map(\.bitPattern) == explicit.gradient.map(\.bitPattern))
    }

    static let mismatchedPairs: [(Loss, Activation)] =
        Activation.allCases.filter { $0 != .softmax }.map { (.softmaxCrossEntropy, $0) }
        + Activation.allCases.filter { $0 != .sigmoid }.map { (.sigmoidBinaryCrossEntropy, $0) }

    @Test("losses that do not fit the output layer are refused", arguments: mismatchedPairs)
    func invalidPairs(_ loss: Loss, _ output: Activation) throws {
        expectNudgeError(.invalidArgument, loss.name, output.name) { try loss.resolved(for: output) }
        let net = try Network.random([3, 4, 2], [.tanh, output], seed: 1)
        let x: [Float] = [0.1, 0.2, 0.3]
        let before = net.parameterBits
        expectNudgeError(.invalidArgument, loss.name) { try net.gradient(x, .labels([1]), loss: loss) }
        expectNudgeError(.invalidArgument, loss.name) { try net.evaluate(x, .labels([1]), loss: loss) }
        var options = TrainingOptions()
        options.loss = loss
        expectNudgeError(.invalidArgument, loss.name) { try Trainer(network: net, options: options) }
        let trainer = try Trainer(network: net)
        expectNudgeError(.invalidArgument, loss.name) { try trainer.setOptions(options) }
        #expect(trainer.options.loss == .auto, "a refused setOptions keeps the old options")
        #expect(net.parameterBits == before)
    }

    @Test("gradient order is parameter order: perturbing parameters[i] through the library moves the loss by g[i]")
    func gradientOrderMatchesParameterOrder() throws {
        let net = try Network.random([3, 4, 3], [.tanh, .softmax], seed: 3)
        var rng = TestRandom(seed: 17)
        let x = rng.floats(6 * 3, in: -1...1)
        let t = TargetData.labels(rng.labels(6, classes: 3))
        let original = net.parameters
        let (_, g) = try net.gradient(x, t, loss: .softmaxCrossEntropy)
        #expect(net.parameters == original, "gradient must leave the parameters unchanged")

        // The documented layout: per layer, weights (fanOut x fanIn, row-major) then biases.
        #expect(original == net.weights(layer: 0) + net.biases(layer: 0) + net.weights(layer: 1) + net.biases(layer: 1))

        let h: Float = 1e-2
        for i in original.indices {
            var p = original
            p[i] = original[i] + h
            try net.setParameters(p)
            let up = try net.evaluate(x, t, loss: .softmaxCrossEntropy).loss
            p[i] = original[i] - h
            try net.setParameters(p)
            let down = try net.evaluate(x, t, loss: .softmaxCrossEntropy).loss
            let step = Double(original[i] + h) - Double(original[i] - h)
            let fd = (up - down) / step
            #expect(abs(Double(g[i]) - fd) <= 2e-3 + 2e-2 * abs(fd), "index \(i): gradient \(g[i]), perturbation \(fd)")
        }
        try net.setParameters(original)

        // A swapped layout would show up here: the output-layer bias gradient of softmax cross-entropy
        // is the mean of (softmax - one-hot) over the samples.
        let out = try net.outputs(x)
        let y = t.denseRows(outputs: 3)
        let biasOffset = 3 * 4 + 4 + 4 * 3
        for j in 0..<3 {
            let expected = (0..<6).map { Double(out[$0 * 3 + j]) - y[$0 * 3 + j] }.reduce(0, +) / 6
            #expect(abs(Double(g[biasOffset + j]) - expected) < 1e-6)
        }
    }

    @Test("gradient is deterministic and the same across internal chunks of samples")
    func gradientOverManyRows() throws {
        let net = try Network.random([5, 7, 3], [.sigmoid, .softmax], seed: 8)
        var rng = TestRandom(seed: 4)
        let rows = 600 // more than one internal chunk
        let x = rng.floats(rows * 5, in: -1...1)
        let labels = rng.labels(rows, classes: 3)
        let all = try net.gradient(x, .labels(labels), loss: .auto)
        let again = try net.gradient(x, .labels(labels), loss: .auto)
        #expect(all.gradient == again.gradient && all.loss == again.loss)
        let first = try net.gradient(Array(x[0..<(300 * 5)]), .labels(Array(labels[0..<300])), loss: .auto)
        let second = try net.gradient(Array(x[(300 * 5)...]), .labels(Array(labels[300...])), loss: .auto)
        #expect(abs(all.loss - (first.loss + second.loss) / 2) < 1e-9 * max(1, all.loss))
        let scale = maxAbs(all.gradient)
        for i in all.gradient.indices {
            let mean = (first.gradient[i] + second.gradient[i]) / 2
            #expect(abs(all.gradient[i] - mean) <= 1e-5 * scale, "index \(i)")
        }
    }

    @Test("gradient and evaluate reject bad inputs without touching the network")
    func gradientRejectsBadData() throws {
        let net = try Network.random([2, 3, 3], [.relu, .softmax], seed: 2)
        let before = net.parameterBits
        expectNudgeError(.notFinite, "row 0, column 1") { try net.gradient([0, .nan], .labels([0]), loss: .auto) }
        expectNudgeError(.notFinite, "row 1, column 0") { try net.gradient([0, 0, .infinity, 0], .labels([0, 1]), loss: .auto) }
        expectNudgeError(.notFinite, "targets") { try net.gradient([0, 0], .dense([0, .nan, 1]), loss: .auto) }
        expectNudgeError(.invalidArgument, "labels[1] is 3") { try net.gradient([0, 0, 1, 1], .labels([0, 3]), loss: .auto) }
        expectNudgeError(.invalidArgument, "labels[0] is -1") { try net.evaluate([0, 0], .labels([-1])) }
        expectNudgeError(.invalidArgument, "there are no samples") { try net.gradient([], .labels([]), loss: .auto) }
        expectNudgeError(.invalidArgument, "there are no samples") { try net.evaluate([], .labels([])) }
        #expect(net.parameterBits == before)
    }
}

extension String {
    /// A hash that does not change between runs (Swift's `hashValue` is seeded per process).
    var hashValueStable: Int {
        var h: UInt64 = 1_469_598_103_934_665_603
        for b in utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return Int(truncatingIfNeeded: h >> 1)
    }
}
