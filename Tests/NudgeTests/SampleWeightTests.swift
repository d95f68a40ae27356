import Foundation
import Nudge
import Testing

/// Per-sample weights in the loss and its gradient (Network.gradient and evaluate with `weights:`):
/// checked against central finite differences of an independent Double reference, against repeated
/// and removed samples, and against the unweighted path for weights of 1.
@Suite("Sample weights")
struct SampleWeightTests {
    static let cases: [GradientCase] = [
        GradientCase(sizes: [3, 5, 4, 3], hidden: [.tanh, .sigmoid], output: .identity, loss: .meanSquaredError),
        GradientCase(sizes: [3, 5, 3], hidden: [.tanh], output: .softmax, loss: .softmaxCrossEntropy, labels: true),
        GradientCase(sizes: [3, 5, 2], hidden: [.sigmoid], output: .sigmoid, loss: .sigmoidBinaryCrossEntropy),
    ]
    /// Weights of the five samples of GradientTests.data: 0 leaves one out, one is fractional, one large.
    static let weights: [Float] = [1, 0, 2.5, 0.25, 4]

    @Test("the weighted gradient matches central finite differences of sum(w l) / sum(w)", arguments: cases)
    func finiteDifferences(_ c: GradientCase) throws {
        let net = try Network.random(c.sizes, c.activations, seed: 31)
        let (inputs, targets) = GradientTests.data(for: c, seed: 77)
        let y = targets.denseRows(outputs: c.sizes.last!)
        let (loss, g) = try Self.weightedGradient(net, inputs, targets, Self.weights)
        let params = net.parameters.map(Double.init)
        let n = c.sizes[0], outputs = c.sizes.last!
        func reference(_ p: [Double]) -> Double {
            var total = 0.0
            for (r, w) in Self.weights.enumerated() {
                let row = Array(inputs[(r * n)..<((r + 1) * n)]), t = Array(y[(r * outputs)..<((r + 1) * outputs)])
                total += Double(w) * Reference.loss(c.concreteLoss, inputs: row, targets: t, sizes: c.sizes,
                                                    activations: c.activations, parameters: p)
            }
            return total / Double(Self.weights.reduce(0, +))
        }
        let exact = reference(params)
        #expect(abs(loss - exact) <= 1e-5 * max(1, abs(exact)), "returned loss \(loss), reference \(exact)")
        let evaluated = try Self.weightedEvaluation(net, inputs, targets, Self.weights).loss
        #expect(abs(evaluated - exact) <= 1e-5 * max(1, abs(exact)), "evaluate \(evaluated), reference \(exact)")
        var worst = 0.0
        let fd = params.indices.map { i -> Double in
            var p = params
            p[i] += 1e-6
            let up = reference(p)
            p[i] -= 2e-6
            return (up - reference(p)) / 2e-6
        }
        let scale = fd.map(abs).max() ?? 0
        #expect(scale > 1e-4)
        for i in params.indices { worst = max(worst, abs(Double(g[i]) - fd[i]) / scale) }
        #expect(worst < 1e-3, "largest difference \(worst) of the gradient's scale")
    }

    @Test("weight k is k copies and weight 0 is absent; weights of 1 are the unweighted gradient bit for bit", arguments: cases)
    func repetition(_ c: GradientCase) throws {
        let net = try Network.random(c.sizes, c.activations, seed: 5)
        let (inputs, targets) = GradientTests.data(for: c, seed: 9)
        let counts: [Float] = [2, 0, 1, 3, 1]
        let weighted = try Self.weightedGradient(net, inputs, targets, counts)
        var rows: [Int] = []
        for (r, k) in counts.enumerated() { rows += Array(repeating: r, count: Int(k)) }
        let n = c.sizes[0]
        let repeatedInputs = rows.flatMap { inputs[($0 * n)..<(($0 + 1) * n)] }
        let repeated: TargetData
        switch targets {
        case .labels(let l): repeated = .labels(rows.map { l[$0] })
        case .dense(let y):
            let o = c.sizes.last!
            repeated = .dense(rows.flatMap { y[($0 * o)..<(($0 + 1) * o)] })
        }
        let expected = try net.gradient(repeatedInputs, repeated, loss: c.loss)
        #expect(abs(weighted.loss - expected.loss) <= 1e-6 * max(1, abs(expected.loss)))
        let scale = maxAbs(expected.gradient)
        #expect(zip(weighted.gradient, expected.gradient).allSatisfy { abs($0 - $1) <= 1e-5 * scale })

        let ones = try Self.weightedGradient(net, inputs, targets, [Float](repeating: 1, count: 5))
        let plain = try net.gradient(inputs, targets, loss: c.loss)
        #expect(ones.loss.bitPattern == plain.loss.bitPattern)
        #expect(ones.gradient.map(\.bitPattern) == plain.gradient.map(\.bitPattern))
        let plainEvaluation = try net.evaluate(inputs, targets)
        let onesEvaluation = try Self.weightedEvaluation(net, inputs, targets, [Float](repeating: 1, count: 5))
        #expect(onesEvaluation.loss.bitPattern == plainEvaluation.loss.bitPattern)
        #expect(onesEvaluation.accuracy.bitPattern == plainEvaluation.accuracy.bitPattern)
    }

    @Test("bad weights are refused, naming the first one")
    func badWeights() throws {
        let c = Self.cases[1]
        let net = try Network.random(c.sizes, c.activations, seed: 5)
        let (inputs, targets) = GradientTests.data(for: c, seed: 9)
        expectNudgeError(.invalidArgument, "weights[2] is -1.0; weights must be 0 or more") {
            try Self.weightedGradient(net, inputs, targets, [1, 1, -1, 1, 1])
        }
        expectNudgeError(.notFinite, "weights[3] is nan; weights must be finite") {
            try Self.weightedEvaluation(net, inputs, targets, [1, 1, 1, .nan, 1])
        }
        expectNudgeError(.notFinite, "weights[0] is inf") {
            try Self.weightedEvaluation(net, inputs, targets, [.infinity, 1, 1, 1, 1])
        }
        expectNudgeError(.invalidArgument, "weights are all zero (5 samples)") {
            try Self.weightedEvaluation(net, inputs, targets, [0, -0.0, 0, 0, 0])
        }
        expectNudgeError(.shape, "weights has 4 values; 5 samples need 5") {
            try Self.weightedEvaluation(net, inputs, targets, [1, 1, 1, 1])
        }
        // -0 counts as 0, not as a negative weight.
        _ = try Self.weightedEvaluation(net, inputs, targets, [-0.0, 1, 1, 1, 1])
    }

    static func weightedGradient(_ net: Network, _ inputs: [Float], _ targets: TargetData,
                                 _ weights: [Float]) throws -> (loss: Double, gradient: [Float]) {
        switch targets {
        case .dense(let y): return try net.gradient(inputs, targets: y, weights: weights)
        case .labels(let l): return try net.gradient(inputs, targets: Self.oneHot(l, net.outputSize), weights: weights)
        }
    }

    static func weightedEvaluation(_ net: Network, _ inputs: [Float], _ targets: TargetData,
                                   _ weights: [Float]) throws -> (loss: Double, accuracy: Double) {
        switch targets {
        case .dense(let y): return try net.evaluate(inputs, targets: y, weights: weights)
        case .labels(let l): return try net.evaluate(inputs, labels: l, weights: weights)
        }
    }

    static func oneHot(_ labels: [Int32], _ classes: Int) -> [Float] {
        labels.flatMap { l in (0..<classes).map { $0 == Int(l) ? Float(1) : 0 } }
    }
}
