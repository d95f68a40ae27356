import Testing
@testable import Nudge

/// Label smoothing (TrainingOptions.labelSmoothing): training on labels with smoothing amount e is
/// training on the target rows (1 - e) y + e / outputs, with nothing else changed.
@Suite("label smoothing")
struct LabelSmoothingTests {
    private static func samples(_ rows: Int, width: Int, classes: Int) -> (x: [Float], labels: [Int32]) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        let x = (0..<(rows * width)).map { _ in next() }
        let labels = (0..<rows).map { Int32(abs(Int(x[$0 * width] * 1000)) % classes) }
        return (x, labels)
    }

    /// The smoothed one-hot rows, computed as the library documents them.
    private static func smoothed(_ labels: [Int32], classes: Int, by e: Float) -> [Float] {
        var rows = [Float](repeating: 0, count: labels.count * classes)
        for (r, label) in labels.enumerated() {
            for j in 0..<classes {
                // A single output's target is the label itself (0 or 1).
                let y: Float = classes == 1 ? Float(label) : (j == Int(label) ? 1 : 0)
                rows[r * classes + j] = (1 - e) * y + (classes == 1 ? e * 0.5 : e * 1 / Float(classes))
            }
        }
        return rows
    }

    private static func options(smoothing: Float, optimizer: Optimizer) -> TrainingOptions {
        var o = TrainingOptions()
        o.optimizer = optimizer
        o.learningRate = 0.05
        o.labelSmoothing = smoothing
        o.epochs = 3
        o.batchSize = 8
        return o
    }

    @Test("labels with smoothing train exactly as the smoothed target rows do",
          arguments: [(Optimizer.sgd, Float(0.1)), (.adam, 0.2), (.momentum, 0.05)])
    func sameAsSmoothedTargets(optimizer: Optimizer, smoothing: Float) throws {
        let (x, labels) = Self.samples(40, width: 5, classes: 4)
        let a = try Network(layerSizes: [5, 7, 4], activations: [.tanh, .softmax], seed: 11)
        let b = try Network(copying: a)
        let withLabels = try Trainer(network: a, options: Self.options(smoothing: smoothing, optimizer: optimizer))
        let withRows = try Trainer(network: b, options: Self.options(smoothing: 0, optimizer: optimizer))
        let s1 = try withLabels.fit(x, labels: labels)
        let s2 = try withRows.fit(x, targets: Self.smoothed(labels, classes: 4, by: smoothing))
        #expect(maxAbs(zip(a.parameters, b.parameters).map { $0 - $1 }) <= 1e-6)
        #expect(abs(s1.finalTrainLoss - s2.finalTrainLoss) <= 1e-6)
        #expect(s1.finalTrainAccuracy == s2.finalTrainAccuracy)
    }

    @Test("smoothing changes the steps (the control), and a single sigmoid output is pulled toward 0.5")
    func changesTraining() throws {
        let (x, labels) = Self.samples(40, width: 5, classes: 2)
        let plain = try Network(layerSizes: [5, 1], activations: [.sigmoid], seed: 3)
        let smooth = try Network(copying: plain)
        let rows = try Network(copying: plain)
        _ = try Trainer(network: plain, options: Self.options(smoothing: 0, optimizer: .sgd)).fit(x, labels: labels)
        _ = try Trainer(network: smooth, options: Self.options(smoothing: 0.3, optimizer: .sgd)).fit(x, labels: labels)
        _ = try Trainer(network: rows, options: Self.options(smoothing: 0, optimizer: .sgd))
            .fit(x, targets: Self.smoothed(labels, classes: 1, by: 0.3))
        #expect(maxAbs(zip(plain.parameters, smooth.parameters).map { $0 - $1 }) > 1e-3)
        #expect(maxAbs(zip(rows.parameters, smooth.parameters).map { $0 - $1 }) <= 1e-6)
    }

    @Test("the monitored validation loss is measured on the targets as given")
    func validationUnsmoothed() throws {
        let (x, labels) = Self.samples(32, width: 5, classes: 3)
        let net = try Network(layerSizes: [5, 3], activations: [.softmax], seed: 2)
        var o = Self.options(smoothing: 0.4, optimizer: .adam)
        o.epochs = 1
        let summary = try Trainer(network: net, options: o).fit(x, labels: labels, validation: (x, labels))
        let plain = try net.evaluate(x, labels: labels)
        #expect(abs(summary.finalValidationLoss - plain.loss) <= 1e-9)
    }
}
