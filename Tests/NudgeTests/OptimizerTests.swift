import Foundation
import Nudge
import Testing

@Suite("Optimisers")
struct OptimizerTests {
    /// y = 2 x0 - 3 x1 + 0.5 x2 + 1: linear regression, convex for an identity output with MSE.
    static func regression(rows: Int = 32, seed: UInt64 = 12) -> (x: [Float], y: [Float]) {
        var rng = TestRandom(seed: seed)
        let x = rng.floats(rows * 3, in: -1...1)
        var y: [Float] = []
        for r in 0..<rows {
            let a: Float = 2 * x[3 * r], b: Float = 3 * x[3 * r + 1], c: Float = 0.5 * x[3 * r + 2]
            y.append(a - b + c + 1)
        }
        return (x, y)
    }

    static let rates: [(Optimizer, Float)] = [(.sgd, 0.1), (.momentum, 0.05), (.nesterov, 0.05), (.adam, 0.05)]

    @Test("every optimiser decreases the loss of a linear regression", arguments: rates)
    func decreasesLoss(_ optimizer: Optimizer, _ rate: Float) throws {
        let (x, y) = Self.regression()
        let net = try Network(layerSizes: [3, 1], activations: [.identity], seed: 4)
        var options = TrainingOptions()
        options.optimizer = optimizer
        options.learningRate = rate
        options.loss = .meanSquaredError
        let trainer = try Trainer(network: net, options: options)
        let initial = try net.evaluate(x, .dense(y)).loss
        var losses: [Double] = []
        for _ in 0..<150 { losses.append(try trainer.step(x, .dense(y))) }
        let final = try net.evaluate(x, .dense(y)).loss
        #expect(losses[0] == initial, "step reports the loss before the step")
        #expect(final < 1e-2 * initial, "\(optimizer.name): loss \(initial) -> \(final)")
        #expect(losses[10] < losses[0])
        // The weights approach the true coefficients.
        let w = net.weights(layer: 0), b = net.biases(layer: 0)
        #expect(abs(w[0] - 2) < 0.2 && abs(w[1] + 3) < 0.2 && abs(w[2] - 0.5) < 0.2 && abs(b[0] - 1) < 0.2, "\(w) \(b)")
    }

    @Test("one SGD step is exactly w - lr * g")
    func sgdStep() throws {
        let net = try Network.random([4, 5, 3], [.tanh, .softmax], seed: 30)
        var rng = TestRandom(seed: 31)
        let x = rng.floats(8 * 4, in: -1...1)
        let t = TargetData.labels(rng.labels(8, classes: 3))
        let w0 = net.parameters
        let (loss, g) = try net.gradient(x, t, loss: .auto)
        var options = TrainingOptions()
        options.optimizer = .sgd
        options.learningRate = 0.37
        let trainer = try Trainer(network: net, options: options)
        let reported = try trainer.step(x, t)
        #expect(reported == loss)
        let expected = zip(w0, g).map { $0 - 0.37 * $1 }
        #expect(net.parameterBits == expected.map(\.bitPattern))
        #expect(net.parameters != w0)
    }

    @Test("momentum and Nesterov follow their update rules over two steps", arguments: [Optimizer.momentum, .nesterov])
    func momentumSteps(_ optimizer: Optimizer) throws {
        let net = try Network.random([3, 4, 2], [.sigmoid, .identity], seed: 40)
        var rng = TestRandom(seed: 41)
        let x = rng.floats(6 * 3, in: -1...1)
        let t = TargetData.dense(rng.floats(6 * 2, in: -1...1))
        let lr: Float = 0.2, mu: Float = 0.8
        var options = TrainingOptions()
        options.optimizer = optimizer
        options.learningRate = lr
        options.momentum = mu
        let trainer = try Trainer(network: net, options: options)
        var w = net.parameters.map(Double.init)
        var v = [Double](repeating: 0, count: w.count)
        for _ in 0..<2 {
            let g = try net.gradient(x, t, loss: .auto).gradient.map(Double.init)
            _ = try trainer.step(x, t)
            for i in w.indices {
                let previous = v[i]
                v[i] = Double(mu) * v[i] - Double(lr) * g[i]
                w[i] += optimizer == .momentum ? v[i] : -Double(mu) * previous + (1 + Double(mu)) * v[i]
            }
            let actual = net.parameters
            for i in w.indices {
                #expect(abs(Double(actual[i]) - w[i]) < 1e-5, "parameter \(i): \(actual[i]) vs \(w[i])")
            }
        }
    }

    @Test("Adam's first step moves every parameter with a clear gradient by about the learning rate, against the gradient")
    func adamFirstStep() throws {
        let net = try Network.random([3, 4, 2], [.tanh, .softmax], seed: 50)
        var rng = TestRandom(seed: 51)
        let x = rng.floats(6 * 3, in: -1...1)
        let t = TargetData.labels(rng.labels(6, classes: 2))
        let w0 = net.parameters
        let g = try net.gradient(x, t, loss: .auto).gradient
        var options = TrainingOptions()
        options.optimizer = .adam
        options.learningRate = 0.01
        let trainer = try Trainer(network: net, options: options)
        _ = try trainer.step(x, t)
        let w1 = net.parameters
        for i in w0.indices where abs(g[i]) > 1e-4 {
            let move = w1[i] - w0[i]
            #expect(abs(abs(move) - 0.01) < 1e-4, "parameter \(i) moved \(move)")
            #expect((move < 0) == (g[i] > 0), "parameter \(i) moved \(move) with gradient \(g[i])")
        }
    }

    static func exactFit() throws -> (Network, [Float], [Float]) {
        // Targets equal to the network's own outputs: the loss and the gradient are exactly zero.
        let net = try Network(layerSizes: [2, 2], activations: [.identity], seed: 1)
        try net.setParameters([0.5, -1, 2, 0.25, 0.75, -0.5])
        let x: [Float] = [1, 2, -1, 0.5, 0, 3]
        return (net, x, try net.outputs(x))
    }

    @Test("weight decay shrinks weights, never biases", arguments: Optimizer.allCases)
    func weightDecay(_ optimizer: Optimizer) throws {
        let (net, x, y) = try Self.exactFit()
        #expect(try net.gradient(x, .dense(y), loss: .meanSquaredError).gradient.allSatisfy { $0 == 0 })
        let w0 = net.weights(layer: 0), b0 = net.biases(layer: 0)
        var options = TrainingOptions()
        options.optimizer = optimizer
        options.learningRate = 0.1
        options.weightDecay = 0.5
        options.loss = .meanSquaredError
        let trainer = try Trainer(network: net, options: options)
        _ = try trainer.step(x, .dense(y))
        let w1 = net.weights(layer: 0)
        #expect(net.biases(layer: 0) == b0, "biases must not decay")
        for i in w0.indices {
            #expect(abs(w1[i]) < abs(w0[i]), "weight \(i): \(w0[i]) -> \(w1[i])")
            #expect(w1[i].sign == w0[i].sign)
        }
        if optimizer != .adam {
            // With a zero gradient the step is exactly the decay term: w - lr * lambda * w (Nesterov: (1 + mu) times that).
            let factor: Float = optimizer == .nesterov ? 1 + options.momentum : 1
            for i in w0.indices {
                #expect(abs(w1[i] - (w0[i] - factor * 0.1 * 0.5 * w0[i])) < 1e-6)
            }
        }
        // Without decay, nothing moves at all.
        let (still, xs, ys) = try Self.exactFit()
        options.weightDecay = 0
        let plain = try Trainer(network: still, options: options)
        let before = still.parameterBits
        _ = try plain.step(xs, .dense(ys))
        #expect(still.parameterBits == before)
    }

    @Test("with a real gradient, weight decay changes the weights by -lr * lambda * w and leaves biases as without decay")
    func weightDecayComparedWithout() throws {
        let a = try Network.random([3, 4, 2], [.relu, .softmax], seed: 60)
        let b = try Network(copying: a)
        var rng = TestRandom(seed: 61)
        let x = rng.floats(5 * 3, in: -1...1)
        let t = TargetData.labels(rng.labels(5, classes: 2))
        let w0 = a.parameters
        var options = TrainingOptions()
        options.optimizer = .sgd
        options.learningRate = 0.1
        let plain = try Trainer(network: a, options: options)
        options.weightDecay = 0.01
        let decayed = try Trainer(network: b, options: options)
        _ = try plain.step(x, t)
        _ = try decayed.step(x, t)
        for l in 0..<2 {
            #expect(a.biases(layer: l) == b.biases(layer: l))
        }
        let offsets = [(0, 12), (16, 24)] // weight ranges of the two layers
        let pa = a.parameters, pb = b.parameters
        for (start, end) in offsets {
            for i in start..<end {
                #expect(abs((pb[i] - pa[i]) - (-0.1 * 0.01 * w0[i])) < 1e-6, "weight \(i)")
            }
        }
    }

    @Test("training options are validated field by field")
    func optionsValidation() throws {
        var ok = TrainingOptions()
        try ok.validate()
        let cases: [(WritableKeyPath<TrainingOptions, Float>, Float, String)] = [
            (\.learningRate, 0, "learningRate"), (\.learningRate, .nan, "learningRate"),
            (\.momentum, 1, "momentum"), (\.momentum, -0.1, "momentum"),
            (\.beta1, 1, "beta1"), (\.beta2, .infinity, "beta2"),
            (\.epsilon, 0, "epsilon"), (\.weightDecay, -1, "weightDecay"),
        ]
        for (path, value, name) in cases {
            var o = TrainingOptions()
            o[keyPath: path] = value
            expectNudgeError(.invalidArgument, name) { try o.validate() }
        }
        ok.batchSize = 0
        expectNudgeError(.invalidArgument, "batchSize") { try ok.validate() }
        ok = TrainingOptions()
        ok.epochs = -1
        expectNudgeError(.invalidArgument, "epochs") { try ok.validate() }
        ok = TrainingOptions()
        ok.validationFraction = 1
        expectNudgeError(.invalidArgument, "validationFraction") { try ok.validate() }
        ok = TrainingOptions()
        ok.patience = -2
        expectNudgeError(.invalidArgument, "patience") { try ok.validate() }
        ok = TrainingOptions()
        ok.minDelta = -1
        expectNudgeError(.invalidArgument, "minDelta") { try ok.validate() }
        let net = try Network(layerSizes: [2, 2], activations: [.softmax], seed: 1)
        expectNudgeError(.invalidArgument, "minDelta") { try Trainer(network: net, options: ok) }
    }
}
