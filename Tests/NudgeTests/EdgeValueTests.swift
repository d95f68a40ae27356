import Foundation
import Nudge
import Testing

@Suite("Edge values")
struct EdgeValueTests {
    static let hiddenKinds: [Activation] = [.identity, .sigmoid, .tanh, .relu, .leakyRelu]

    @Test("huge inputs (1e30) give finite outputs; softmax rows sum to 1", arguments: hiddenKinds)
    func hugeInputs(_ hidden: Activation) throws {
        let net = try Network(layerSizes: [3, 4, 3], activations: [hidden, .softmax], seed: 1)
        let x: [Float] = [1e30, -1e30, 3e29, -2e30, 5e29, 1e30]
        let out = try net.outputs(x)
        #expect(out.allSatisfy { $0.isFinite }, "\(out)")
        for r in 0..<2 {
            let row = out[(3 * r)..<(3 * r + 3)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-6)
            #expect(row.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        // Saturating hidden layers give the same outputs as their limit values would.
        if hidden == .tanh || hidden == .sigmoid {
            let reference = Reference.predict(net, x)
            #expect(zip(out, reference).allSatisfy { abs(Double($0) - $1) < 1e-5 })
        }
    }

    @Test("zero inputs give the activation of the biases")
    func zeroInputs() throws {
        let net = try Network(layerSizes: [3, 2, 2], activations: [.tanh, .identity], seed: 1)
        var p = net.parameters
        // Layer 0: 6 weights, biases at 6, 7. Layer 1: 4 weights at 8...11, biases at 12, 13.
        p[6] = 0.5
        p[7] = -1
        p[12] = 0.25
        p[13] = -0.75
        try net.setParameters(p)
        let out = try net.outputs([0, 0, 0])
        let h = [tanh(Float(0.5)), tanh(Float(-1))]
        let expected = [p[8] * h[0] + p[9] * h[1] + 0.25, p[10] * h[0] + p[11] * h[1] - 0.75]
        #expect(abs(out[0] - expected[0]) < 1e-6 && abs(out[1] - expected[1]) < 1e-6, "\(out) vs \(expected)")
    }

    @Test("softmax of very large logits is finite and sums to 1")
    func largeLogits() throws {
        let net = try Network(layerSizes: [1, 4], activations: [.softmax], seed: 1)
        // Logits = w * x + b with x = 1.
        try net.setParameters([3e38, -3e38, 1e30, 1e4, 0, 0, 0, 0])
        let out = try net.outputs([1])
        #expect(out.allSatisfy { $0.isFinite }, "\(out)")
        #expect(abs(out.reduce(0, +) - 1) < 1e-6)
        #expect(out[0] == 1)
        // Equal huge logits share the probability.
        try net.setParameters([1e35, 1e35, -1e35, -1e35, 0, 0, 0, 0])
        let tie = try net.outputs([1])
        #expect(zip(tie, [0.5, 0.5, 0, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(tie)")
    }

    @Test("sigmoid of +-100 is finite and saturated; tanh too")
    func sigmoidSaturation() throws {
        let net = try Network(layerSizes: [1, 2], activations: [.sigmoid], seed: 1)
        try net.setParameters([1, -1, 0, 0])
        let out = try net.outputs([100, -100, 1000, 0])
        #expect(out.allSatisfy { $0.isFinite }, "\(out)")
        // Rows: x = 100, -100, 1000, 0; outputs sigmoid(x), sigmoid(-x).
        #expect(out[0] == 1 && out[1] >= 0 && out[1] < 1e-37)
        #expect(out[2] >= 0 && out[2] < 1e-37 && out[3] == 1)
        #expect(out[4] == 1 && out[5] == 0)
        #expect(out[6] == 0.5 && out[7] == 0.5)
        let t = try Network(layerSizes: [1, 1], activations: [.tanh], seed: 1)
        try t.setParameters([1, 0])
        #expect(try t.outputs([100, -100, 1e30]) == [1, -1, 1])
    }

    struct Saturated: Sendable, CustomTestStringConvertible {
        var output: Activation
        var loss: Loss
        var scale: Float
        var testDescription: String { "\(output.name) \(loss.name) logits x\(scale)" }
    }

    static let saturated: [Saturated] = [
        Saturated(output: .sigmoid, loss: .sigmoidBinaryCrossEntropy, scale: 100),
        Saturated(output: .sigmoid, loss: .sigmoidBinaryCrossEntropy, scale: 1e6),
        Saturated(output: .sigmoid, loss: .meanSquaredError, scale: 1e6),
        Saturated(output: .softmax, loss: .softmaxCrossEntropy, scale: 100),
        Saturated(output: .softmax, loss: .softmaxCrossEntropy, scale: 1e6),
        Saturated(output: .softmax, loss: .meanSquaredError, scale: 1e6),
        Saturated(output: .tanh, loss: .meanSquaredError, scale: 1e6),
    ]

    @Test("losses and gradients stay finite for saturated, confidently wrong outputs", arguments: saturated)
    func saturatedLoss(_ c: Saturated) throws {
        let net = try Network(layerSizes: [2, 2], activations: [c.output], seed: 1)
        // Output 0 gets logit +scale*x0, output 1 gets -scale*x0.
        try net.setParameters([c.scale, 0, -c.scale, 0, 0, 0])
        let x: [Float] = [1, 0, -1, 0]
        // Targets opposite to what the network says.
        let targets = TargetData.labels([1, 0])
        let (loss, g) = try net.gradient(x, targets, loss: c.loss)
        #expect(loss.isFinite, "loss \(loss)")
        #expect(g.allSatisfy { $0.isFinite }, "\(g)")
        #expect(loss > 0)
        let (evaluated, accuracy) = try net.evaluate(x, targets, loss: c.loss)
        #expect(evaluated.isFinite)
        #expect(accuracy == 0)
        if c.loss != .meanSquaredError {
            // Cross-entropies grow with the logit: 2 * scale per sample here, for softmax (the gap
            // between the logits) and for the sigmoid (scale for each of the two wrong outputs).
            let expected = 2 * Double(c.scale)
            #expect(abs(loss - expected) <= 1e-3 * expected, "loss \(loss), expected about \(expected)")
        }
        // And correct, confident outputs give a loss of about 0 (not NaN from log(0)).
        // (A tanh output cannot reach the one-hot target 0, so it has no such case.)
        guard c.output != .tanh else { return }
        let right = TargetData.labels([0, 1])
        let (good, _) = try net.gradient(x, right, loss: c.loss)
        #expect(good.isFinite && good >= 0 && good < 1e-6, "loss \(good)")
    }

    @Test("evaluate with labels on a single sigmoid output uses the label as the target")
    func singleOutputLabels() throws {
        let net = try Network(layerSizes: [1, 1], activations: [.sigmoid], seed: 1)
        try net.setParameters([10, 0])
        let (loss, accuracy) = try net.evaluate([1, -1, 1], .labels([1, 0, 0]))
        #expect(accuracy == 2.0 / 3.0)
        // BCE: two confident right answers (log1p(exp(-10)) each) and one confident wrong one (10 + log1p(exp(-10))).
        let expected = (3 * log1p(exp(-10.0)) + 10) / 3
        #expect(abs(loss - expected) < 1e-5)
    }
}
