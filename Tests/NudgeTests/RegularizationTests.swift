import Foundation
import Nudge
import Testing

// Learning-rate schedules and warm-up, dropout, gradient clipping and input normalisation (model file
// format 2), through the Swift API. The C ABI and the Python package have their own versions of these
// checks (Tests/c/test_regularization.c, bindings/python/tests/test_regularization.py).

@Suite("Regularization: schedules, dropout, clipping, input normalisation")
struct RegularizationTests {

    // MARK: Data and helpers

    /// Three noisy clusters in `width` dimensions: class c is centred at +2 on feature c, -1 elsewhere.
    static func blobs(_ rows: Int, width: Int = 4, seed: UInt64, noise: Float = 0.5) -> ([Float], [Int32]) {
        var rng = TestRandom(seed: seed)
        let labels = rng.labels(rows, classes: 3)
        var x: [Float] = []
        for l in labels {
            for j in 0..<width {
                x.append((j == Int(l) ? 2 : -1) + Float.random(in: -noise...noise, using: &rng.generator))
            }
        }
        return (x, labels)
    }

    static func options(_ lr: Float, _ schedule: LearningRateSchedule = .constant, epochs: Int = 10) -> TrainingOptions {
        var o = TrainingOptions()
        o.learningRate = lr
        o.schedule = schedule
        o.epochs = epochs
        return o
    }

    static func close(_ a: Float, _ b: Float, _ relative: Float = 1e-6) -> Bool {
        abs(a - b) <= relative * max(abs(a), abs(b), 1e-30)
    }

    static func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    static func expectInvalid(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                              _ change: (inout TrainingOptions) -> Void) {
        var o = TrainingOptions()
        change(&o)
        expectNudgeError(.invalidArgument, fragment, sourceLocation: sourceLocation) { try o.validate() }
    }

    // MARK: Schedules

    @Test("constant schedule: the same rate at every step")
    func constantSchedule() throws {
        let o = Self.options(0.1, .constant, epochs: 3)
        try o.validate()
        for step in [0, 1, 2, 3, 8, 9, 100, 1_000_000] {
            #expect(o.learningRate(atStep: step, stepsPerEpoch: 3) == 0.1, "step \(step)")
        }
    }

    @Test("step schedule: times stepFactor every stepEpochs epochs")
    func stepSchedule() throws {
        var o = Self.options(0.1, .step, epochs: 8)
        o.stepEpochs = 2
        o.stepFactor = 0.5
        try o.validate()
        let lr: Float = 0.1
        // 3 steps per epoch: epochs 0-1 are steps 0...5, epochs 2-3 steps 6...11, epochs 4-5 steps 12...17.
        let expected: [(Int, Float)] = [(0, lr), (1, lr), (5, lr), (6, lr * 0.5), (11, lr * 0.5), (12, lr * 0.25),
                                        (17, lr * 0.25), (18, lr * 0.125), (23, lr * 0.125)]
        for (step, rate) in expected {
            #expect(o.learningRate(atStep: step, stepsPerEpoch: 3) == rate, "step \(step)")
        }
        // Another factor and interval: 0.1 every 3 epochs, 1 step per epoch.
        o.stepEpochs = 3
        o.stepFactor = 0.1
        #expect(o.learningRate(atStep: 2, stepsPerEpoch: 1) == lr)
        #expect(Self.close(o.learningRate(atStep: 3, stepsPerEpoch: 1), 0.01))
        #expect(Self.close(o.learningRate(atStep: 6, stepsPerEpoch: 1), 0.001))
        // A factor of 1 never changes the rate.
        o.stepFactor = 1
        #expect(o.learningRate(atStep: 10_000, stepsPerEpoch: 3) == lr)
    }

    @Test("cosine schedule: from the rate to minLearningRate along half a cosine, never rising")
    func cosineSchedule() throws {
        var o = Self.options(0.1, .cosine, epochs: 4)
        o.minLearningRate = 0.01
        try o.validate()
        let perEpoch = 5, total = 20
        let rates = (0..<total).map { o.learningRate(atStep: $0, stepsPerEpoch: perEpoch) }
        #expect(rates[0] == 0.1, "the first step has the full rate")
        #expect(Self.close(rates[total / 2], (0.1 + 0.01) / 2, 1e-5), "midpoint \(rates[total / 2])")
        for (k, rate) in rates.enumerated() {
            let reference = 0.01 + 0.09 * (1 + cos(Double.pi * Double(k) / Double(total))) / 2
            #expect(abs(Double(rate) - reference) < 1e-6, "step \(k): \(rate), expected \(reference)")
        }
        #expect(rates[total - 1] > 0.01 && rates[total - 1] < 0.0106, "the last step is close to the minimum: \(rates[total - 1])")
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 }, "monotone non-increasing: \(rates)")
        // Past the planned steps the rate stays at the minimum.
        #expect(o.learningRate(atStep: total, stepsPerEpoch: perEpoch) == 0.01)
        #expect(o.learningRate(atStep: 10 * total, stepsPerEpoch: perEpoch) == 0.01)
        // Down to 0 by default.
        o.minLearningRate = 0
        let last = o.learningRate(atStep: total - 1, stepsPerEpoch: perEpoch)
        #expect(last > 0 && last < 0.001)
        #expect(o.learningRate(atStep: total, stepsPerEpoch: perEpoch) == 0)
    }

    @Test("linear warm-up: step k of W warm-up steps is rate * (k + 1) / W, then the schedule")
    func warmup() throws {
        var o = Self.options(0.1, .constant, epochs: 5)
        o.warmupEpochs = 2
        try o.validate()
        // 3 steps per epoch: W = 6.
        for k in 0..<6 {
            let rate = o.learningRate(atStep: k, stepsPerEpoch: 3)
            #expect(Self.close(rate, 0.1 * Float(k + 1) / 6), "warm-up step \(k): \(rate)")
        }
        for k in 6..<15 { #expect(o.learningRate(atStep: k, stepsPerEpoch: 3) == 0.1, "step \(k)") }

        // Fractional warm-up epochs: the warm-up lasts ceil(warmupEpochs * steps per epoch) steps.
        for (epochs, perEpoch, steps) in [(0.5, 3, 2), (0.4, 5, 2), (1.5, 4, 6), (0.1, 4, 1), (2.0 / 3.0, 3, 2)] {
            o.warmupEpochs = epochs
            for k in 0..<steps {
                let rate = o.learningRate(atStep: k, stepsPerEpoch: perEpoch)
                #expect(Self.close(rate, 0.1 * Float(k + 1) / Float(steps)),
                        "warm-up of \(epochs) epochs x \(perEpoch) steps, step \(k): \(rate)")
            }
            #expect(o.learningRate(atStep: steps, stepsPerEpoch: perEpoch) == 0.1, "warm-up of \(epochs) epochs ends after \(steps) steps")
        }

        // Warm-up, then cosine over the remaining steps: 5 epochs x 4 steps, W = 4, 16 cosine steps.
        o.schedule = .cosine
        o.warmupEpochs = 1
        o.minLearningRate = 0.02
        for k in 0..<4 { #expect(Self.close(o.learningRate(atStep: k, stepsPerEpoch: 4), 0.1 * Float(k + 1) / 4)) }
        // min + (lr - min) * 1 may round to one ulp below the rate.
        #expect(Self.close(o.learningRate(atStep: 4, stepsPerEpoch: 4), 0.1), "the cosine starts at the full rate after the warm-up")
        #expect(Self.close(o.learningRate(atStep: 4 + 8, stepsPerEpoch: 4), 0.06, 1e-5), "midpoint of the cosine part")
        #expect(o.learningRate(atStep: 20, stepsPerEpoch: 4) == 0.02)

        // Warm-up, then steps counted in epochs of the call: 3 steps per epoch, W = 3, halved every 2 epochs.
        o.schedule = .step
        o.stepEpochs = 2
        o.stepFactor = 0.5
        o.warmupEpochs = 1
        #expect(Self.close(o.learningRate(atStep: 0, stepsPerEpoch: 3), 0.1 / 3))
        #expect(o.learningRate(atStep: 3, stepsPerEpoch: 3) == 0.1)
        #expect(o.learningRate(atStep: 5, stepsPerEpoch: 3) == 0.1)
        #expect(o.learningRate(atStep: 6, stepsPerEpoch: 3) == 0.05)
    }

    @Test("schedule options out of range are refused, naming the field")
    func scheduleValidation() throws {
        Self.expectInvalid("stepFactor") { $0.stepFactor = 0 }
        Self.expectInvalid("stepFactor") { $0.stepFactor = 1.5 }
        Self.expectInvalid("stepFactor") { $0.stepFactor = -0.5 }
        Self.expectInvalid("stepFactor") { $0.stepFactor = .nan }
        Self.expectInvalid("stepEpochs") { $0.stepEpochs = 0 }
        Self.expectInvalid("stepEpochs") { $0.stepEpochs = -1 }
        Self.expectInvalid("warmupEpochs") { $0.warmupEpochs = -1 }
        Self.expectInvalid("warmupEpochs") { $0.warmupEpochs = .nan }
        Self.expectInvalid("warmupEpochs") { $0.warmupEpochs = .infinity }
        Self.expectInvalid("minLearningRate") { $0.learningRate = 0.01; $0.minLearningRate = 0.02 }
        Self.expectInvalid("minLearningRate") { $0.minLearningRate = -0.001 }
        Self.expectInvalid("minLearningRate") { $0.minLearningRate = .nan }
        Self.expectInvalid("clipNorm") { $0.clipNorm = -1 }
        Self.expectInvalid("clipNorm") { $0.clipNorm = .nan }
        Self.expectInvalid("clipNorm") { $0.clipNorm = .infinity }
        Self.expectInvalid("dropout[0]") { $0.dropout = [1.0] }
        Self.expectInvalid("dropout[1]") { $0.dropout = [0, -0.1] }
        Self.expectInvalid("dropout[2]") { $0.dropout = [0.5, 0.5, .nan] }
        Self.expectInvalid("dropout[1]") { $0.dropout = [0, .infinity] }
        // The edges that are allowed.
        var o = TrainingOptions()
        o.stepFactor = 1
        o.stepEpochs = 1
        o.minLearningRate = o.learningRate
        o.warmupEpochs = 0.25
        o.clipNorm = 0
        o.dropout = [0, 0.999]
        try o.validate()
        // A trainer refuses them as well, and keeps its options when setOptions fails.
        let net = try Network(layerSizes: [4, 6, 3], activations: [.relu, .softmax], seed: 1)
        var bad = TrainingOptions()
        bad.stepFactor = 0
        expectNudgeError(.invalidArgument, "stepFactor") { try Trainer(network: net, options: bad) }
        let trainer = try Trainer(network: net, options: TrainingOptions())
        expectNudgeError(.invalidArgument, "stepFactor") { try trainer.setOptions(bad) }
        #expect(trainer.options == TrainingOptions())
    }

    @Test("epoch reports carry the rate of each epoch's last step")
    func reportsFollowTheSchedule() throws {
        let (x, y) = Self.blobs(40, seed: 11)
        let net = try Network(layerSizes: [4, 6, 3], activations: [.relu, .softmax], seed: 1)
        var o = Self.options(0.1, .step, epochs: 6)
        o.optimizer = .sgd
        o.batchSize = 10
        o.stepEpochs = 2
        o.stepFactor = 0.5
        o.warmupEpochs = 0.5
        o.validationFraction = 0.25  // 30 training samples: 3 steps per epoch
        let trainer = try Trainer(network: net, options: o)
        var reports: [EpochReport] = []
        var batches = 0
        _ = try trainer.fit(x, .labels(y), progress: { reports.append($0); return false },
                            batchProgress: { _ in batches += 1; return false })
        #expect(batches == 18)
        #expect(reports.map(\.learningRate) == (1...6).map { o.learningRate(atStep: 3 * $0 - 1, stepsPerEpoch: 3) })
        #expect(reports.map(\.learningRate) == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])

        // Cosine: the report of the last epoch has the rate of the last step.
        var cosine = o
        cosine.schedule = .cosine
        cosine.warmupEpochs = 0
        cosine.minLearningRate = 0.001
        reports = []
        try trainer.setOptions(cosine)
        _ = try trainer.fit(x, .labels(y), progress: { reports.append($0); return false })
        #expect(reports.count == 6)
        #expect(reports.map(\.learningRate) == (1...6).map { cosine.learningRate(atStep: 3 * $0 - 1, stepsPerEpoch: 3) })
        #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.learningRate > $1.learningRate })
        #expect(reports.last!.learningRate < 0.005)
    }

    @Test("training steps use the scheduled rate: fit equals manual SGD steps at those rates")
    func scheduleIsApplied() throws {
        let (x, y) = Self.blobs(20, seed: 12)
        let a = try Network.random([4, 5, 3], [.tanh, .softmax], seed: 3)
        let b = try Network(copying: a)
        var o = Self.options(0.2, .cosine, epochs: 4)
        o.optimizer = .sgd
        o.batchSize = 10
        o.shuffle = false
        o.warmupEpochs = 1
        o.minLearningRate = 0.01
        _ = try Trainer(network: a, options: o).fit(x, .labels(y))

        var manual = Self.options(0.2)
        manual.optimizer = .sgd
        let trainer = try Trainer(network: b, options: manual)
        for epoch in 0..<4 {
            for batch in 0..<2 {
                manual.learningRate = o.learningRate(atStep: epoch * 2 + batch, stepsPerEpoch: 2)
                try trainer.setOptions(manual)
                _ = try trainer.step(Array(x[(batch * 40)..<((batch + 1) * 40)]),
                                     .labels(Array(y[(batch * 10)..<((batch + 1) * 10)])))
            }
        }
        #expect(a.parameterBits == b.parameterBits)
    }

    // MARK: Dropout

    @Test("after training with dropout, prediction and evaluation use every unit, deterministically")
    func dropoutOffOutsideTraining() throws {
        let (x, y) = Self.blobs(64, seed: 21)
        let (vx, vy) = Self.blobs(24, seed: 22)
        let net = try Network(layerSizes: [4, 16, 16, 3], activations: [.relu, .relu, .softmax], seed: 5)
        var o = Self.options(0.01, epochs: 1)
        o.batchSize = 8
        o.dropout = [0.2, 0.5, 0.5]
        let trainer = try Trainer(network: net, options: o)
        var reports: [EpochReport] = []
        let summary = try trainer.fit(x, labels: y, validation: (vx, vy), progress: { reports.append($0); return false })
        #expect(reports.count == 1)

        // Validation used every unit: it equals an evaluation after the epoch.
        let (loss, accuracy) = try net.evaluate(vx, .labels(vy))
        #expect(abs(reports[0].validationLoss - loss) <= 1e-6 * loss, "\(reports[0].validationLoss) vs \(loss)")
        #expect(reports[0].validationAccuracy == accuracy)
        #expect(summary.finalValidationLoss == reports[0].validationLoss)

        // Predictions are deterministic and equal an independent forward pass through all units.
        let first = try net.outputs(vx), second = try net.outputs(vx)
        #expect(first.map(\.bitPattern) == second.map(\.bitPattern))
        let reference = Reference.predict(net, vx)
        for (p, r) in zip(first, reference) { #expect(abs(Double(p) - r) < 1e-5) }
        #expect(try net.classes(vx) == net.classes(vx))

        // Evaluating again gives the same loss, bit for bit.
        #expect(try net.evaluate(vx, .labels(vy)).loss == loss)
    }

    static func dropoutRun(dropout: [Float], seed: UInt64, shuffle: Bool = true) throws -> Network {
        let (x, y) = Self.blobs(48, seed: 23)
        let net = try Network(layerSizes: [4, 12, 8, 3], activations: [.relu, .tanh, .softmax], seed: 6)
        var o = Self.options(0.01, epochs: 3)
        o.batchSize = 8
        o.seed = seed
        o.shuffle = shuffle
        o.dropout = dropout
        _ = try Trainer(network: net, options: o).fit(x, labels: y)
        return net
    }

    @Test("dropout acts in training, reproducibly for a seed")
    func dropoutActsAndIsReproducible() throws {
        let plain = try Self.dropoutRun(dropout: [], seed: 1)
        let dropped = try Self.dropoutRun(dropout: [0.5, 0.5, 0.5], seed: 1)
        #expect(plain.parameterBits != dropped.parameterBits, "dropout 0.5 changed nothing")
        // The same seed gives the same weights, bit for bit; another seed other weights.
        #expect(try Self.dropoutRun(dropout: [0.5, 0.5, 0.5], seed: 1).parameterBits == dropped.parameterBits)
        #expect(try Self.dropoutRun(dropout: [0.5, 0.5, 0.5], seed: 2).parameterBits != dropped.parameterBits)
        // Without shuffling too, so that only the dropout masks depend on the seed.
        let a = try Self.dropoutRun(dropout: [0, 0.3, 0.3], seed: 1, shuffle: false)
        let b = try Self.dropoutRun(dropout: [0, 0.3, 0.3], seed: 2, shuffle: false)
        #expect(a.parameterBits != b.parameterBits)
        #expect(try Self.dropoutRun(dropout: [0, 0.3, 0.3], seed: 1, shuffle: false).parameterBits == a.parameterBits)
        // Rates of 0 are no dropout at all.
        #expect(try Self.dropoutRun(dropout: [0, 0, 0], seed: 1).parameterBits == plain.parameterBits)
        // Input dropout alone acts too.
        #expect(try Self.dropoutRun(dropout: [0.5, 0, 0], seed: 1).parameterBits != plain.parameterBits)
    }

    @Test("a trainer's step loss is measured with dropout applied")
    func stepLossWithDropout() throws {
        let (x, y) = Self.blobs(32, seed: 24)
        let base = try Network.random([4, 16, 3], [.relu, .softmax], seed: 7)
        let before = try base.evaluate(x, .labels(y)).loss
        var o = Self.options(0.01)
        let plainNet = try Network(copying: base)
        let plainLoss = try Trainer(network: plainNet, options: o).step(x, .labels(y))
        #expect(abs(plainLoss - before) <= 1e-6 * before, "without dropout the step's loss is the evaluated loss")
        o.dropout = [0.5, 0.5]
        let droppedNet = try Network(copying: base)
        let droppedLoss = try Trainer(network: droppedNet, options: o).step(x, .labels(y))
        #expect(abs(droppedLoss - before) > 1e-3 * before, "with dropout 0.5 the loss should differ: \(droppedLoss) vs \(before)")
        #expect(plainNet.parameterBits != droppedNet.parameterBits)
    }

    @Test("dropout rates must match the network: one per layer of units feeding a weight layer")
    func dropoutCount() throws {
        let net = try Network(layerSizes: [4, 6, 5, 3], activations: [.relu, .relu, .softmax], seed: 1)
        var o = TrainingOptions()
        o.dropout = [0.1, 0.2]
        expectNudgeError(.shape, "dropout has 2 rates", "3") { try Trainer(network: net, options: o) }
        o.dropout = [0.1, 0.2, 0.3, 0.4]
        expectNudgeError(.shape, "dropout has 4 rates") { try Trainer(network: net, options: o) }
        let trainer = try Trainer(network: net, options: TrainingOptions())
        expectNudgeError(.shape, "dropout has 4 rates") { try trainer.setOptions(o) }
        #expect(trainer.options.dropout.isEmpty)
        // Options given to a training call are checked before anything changes.
        let (x, y) = Self.blobs(10, seed: 1)
        let before = net.parameterBits
        expectNudgeError(.shape, "dropout has 4 rates") { try trainer.fit(x, labels: y, applying: o) }
        #expect(net.parameterBits == before)
        #expect(trainer.options.dropout.isEmpty)
        o.dropout = [0.1, 0.2, 0.3]
        try trainer.setOptions(o)
    }

    /// One SGD step with the given dropout on a network [n, 1] (identity) with zero weights and bias 1,
    /// on one sample of ones with target 0: the output is 1 whatever is dropped, so weight j moves by
    /// -lr * delta * x~_j, where x~_j is 0 (dropped) or 1 / (1 - rate).
    static func inputDropoutStep(_ trainer: Trainer, width: Int) throws -> [Float] {
        var p = [Float](repeating: 0, count: width + 1)
        p[width] = 1
        try trainer.network.setParameters(p)
        _ = try trainer.step([Float](repeating: 1, count: width), .dense([0]))
        return Array(trainer.network.parameters[0..<width])
    }

    @Test("input dropout zeroes a fraction `rate` of the inputs and scales the others by 1 / (1 - rate)",
          arguments: [Float(0.1), 0.5, 0.8])
    func inputDropoutStatistics(_ rate: Float) throws {
        let width = 20_000
        var o = Self.options(0.01)
        o.optimizer = .sgd
        let plain = try Trainer(network: Network(layerSizes: [width, 1], activations: [.identity], seed: 1), options: o)
        let full = try Self.inputDropoutStep(plain, width: width)
        #expect(Set(full.map(\.bitPattern)).count == 1 && full[0] < 0)
        o.dropout = [rate]
        o.seed = 99
        let trainer = try Trainer(network: Network(layerSizes: [width, 1], activations: [.identity], seed: 1), options: o)
        let first = try Self.inputDropoutStep(trainer, width: width)
        let dropped = first.filter { $0 == 0 }.count
        let fraction = Double(dropped) / Double(width)
        #expect(abs(fraction - Double(rate)) < 0.015, "dropped \(fraction) of the inputs at rate \(rate)")
        let kept = first.filter { $0 != 0 }
        #expect(Set(kept.map(\.bitPattern)).count == 1, "every kept input is scaled the same")
        if let k = kept.first {
            #expect(Self.close(k / full[0], 1 / (1 - rate), 1e-5), "kept inputs scaled by \(k / full[0]), expected \(1 / (1 - rate))")
        }
        // The next step draws a new mask.
        let second = try Self.inputDropoutStep(trainer, width: width)
        let same = zip(first, second).filter { ($0 == 0) == ($1 == 0) }.count
        #expect(same < width * 95 / 100, "two steps dropped the same inputs")
        let droppedTwice = zip(first, second).filter { $0 == 0 && $1 == 0 }.count
        #expect(abs(Double(droppedTwice) / Double(width) - Double(rate * rate)) < 0.015, "masks of two steps should be independent")
    }

    @Test("hidden dropout: the same units are dropped in the forward pass and in backpropagation")
    func hiddenDropoutStatistics() throws {
        let hidden = 20_000, rate: Float = 0.3, c: Float = 0.001
        let net = try Network(layerSizes: [1, hidden, 1], activations: [.identity, .identity], seed: 1)
        // Layer 1: weights 1, biases 0, so every hidden unit is 1 on input 1. Layer 2: weights c, bias 0.
        let p = [Float](repeating: 1, count: hidden) + [Float](repeating: 0, count: hidden)
            + [Float](repeating: c, count: hidden) + [0]
        try net.setParameters(p)
        var o = Self.options(1e-4)
        o.optimizer = .sgd
        o.dropout = [0, rate]
        o.seed = 5
        let trainer = try Trainer(network: net, options: o)
        _ = try trainer.step([1], .dense([0]))
        let after = net.parameters
        let b1 = Array(after[hidden..<(2 * hidden)]), w2 = Array(after[(2 * hidden)..<(3 * hidden)])
        // A dropped unit passed nothing forward (its outgoing weight has no gradient) and nothing back
        // (its bias has no gradient).
        let keptForward = w2.map { $0 != c }, keptBackward = b1.map { $0 != 0 }
        #expect(keptForward == keptBackward, "forward and backward masks differ")
        let fraction = Double(keptForward.filter { !$0 }.count) / Double(hidden)
        #expect(abs(fraction - Double(rate)) < 0.015, "dropped \(fraction) of the hidden units at rate \(rate)")
        #expect(Set(zip(w2, keptForward).filter(\.1).map(\.0.bitPattern)).count == 1)
        #expect(Set(zip(b1, keptBackward).filter(\.1).map(\.0.bitPattern)).count == 1)
        // The input layer's weights are not dropped (rate 0): every first-layer weight of a kept unit moved.
        let w1 = Array(after[0..<hidden])
        #expect(zip(w1, keptBackward).allSatisfy { $1 ? $0 != 1 : $0 == 1 })
    }

    // MARK: Clipping

    static func clipSetup() throws -> (Network, [Float], [Int32], [Float], Double) {
        let (x, y) = Self.blobs(16, seed: 31)
        let net = try Network.random([4, 6, 3], [.tanh, .softmax], seed: 8, range: -1.5...1.5)
        let g = try net.gradient(x, .labels(y), loss: .auto).gradient
        return (net, x, y, g, Self.norm(g))
    }

    @Test("clipping: an SGD step moves the weights by lr * clipNorm along the gradient when it is longer",
          arguments: [Optimizer.sgd, .momentum])
    func clipLongGradient(_ optimizer: Optimizer) throws {
        let (net, x, y, g, gNorm) = try Self.clipSetup()
        #expect(gNorm > 0.05)
        let lr: Float = 0.1, clip = Float(gNorm * 0.4)
        var o = Self.options(lr)
        o.optimizer = optimizer
        o.clipNorm = clip
        let before = net.parameters
        _ = try Trainer(network: net, options: o).step(x, .labels(y))
        let delta = zip(net.parameters, before).map { $0 - $1 }
        let moved = Self.norm(delta)
        #expect(abs(moved - Double(lr * clip)) <= 1e-4 * Double(lr * clip), "moved \(moved), expected \(lr * clip)")
        // Along the negative gradient.
        for (d, gi) in zip(delta, g) {
            #expect(abs(Double(d) + Double(lr * clip) * Double(gi) / gNorm) < 2e-6)
        }
    }

    @Test("clipping: a gradient shorter than clipNorm is not changed")
    func clipShortGradient() throws {
        let (net, x, y, _, gNorm) = try Self.clipSetup()
        let twin = try Network(copying: net)
        var o = Self.options(0.1)
        o.optimizer = .sgd
        _ = try Trainer(network: twin, options: o).step(x, .labels(y))
        o.clipNorm = Float(gNorm * 2)
        let before = net.parameters
        _ = try Trainer(network: net, options: o).step(x, .labels(y))
        let clipped = zip(net.parameters, before).map { Double($0 - $1) }
        let plain = zip(twin.parameters, before).map { Double($0 - $1) }
        // The full step: lr * |g|, and the same as without clipping.
        #expect(abs(clipped.reduce(0) { $0 + $1 * $1 }.squareRoot() - 0.1 * gNorm) < 1e-5 * gNorm)
        for (a, b) in zip(clipped, plain) { #expect(abs(a - b) < 1e-7) }
    }

    @Test("clipping leaves weight decay out of the norm")
    func clipExcludesWeightDecay() throws {
        let (net, x, y, _, gNorm) = try Self.clipSetup()
        let lr: Float = 0.1, decay: Float = 0.5, clip = Float(gNorm * 0.5)
        var o = Self.options(lr)
        o.optimizer = .sgd
        o.weightDecay = decay
        o.clipNorm = clip
        let before = net.parameters
        _ = try Trainer(network: net, options: o).step(x, .labels(y))
        // w' = w - lr (g~ + decay w) for weights, w - lr g~ for biases.
        var sizes = 0
        var isWeight: [Bool] = []
        for l in 0..<net.weightLayerCount {
            let fanIn = net.layerSizes[l], fanOut = net.layerSizes[l + 1]
            isWeight += [Bool](repeating: true, count: fanIn * fanOut) + [Bool](repeating: false, count: fanOut)
            sizes += fanIn * fanOut + fanOut
        }
        #expect(sizes == net.parameterCount)
        let clippedGradient = (0..<net.parameterCount).map { i in
            Float(-(Double(net.parameters[i]) - Double(before[i])) / Double(lr) - (isWeight[i] ? Double(decay * before[i]) : 0))
        }
        #expect(abs(Self.norm(clippedGradient) - Double(clip)) < 1e-4 * Double(clip),
                "the clipped gradient has norm \(Self.norm(clippedGradient)), expected \(clip)")
    }

    @Test("clipping applies in the training loop too")
    func clipInFit() throws {
        let (net, x, y, _, gNorm) = try Self.clipSetup()
        let lr: Float = 0.05, clip = Float(gNorm * 0.25)
        var o = Self.options(lr, epochs: 1)
        o.optimizer = .sgd
        o.batchSize = 16
        o.clipNorm = clip
        let before = net.parameters
        _ = try Trainer(network: net, options: o).fit(x, labels: y)
        let moved = Self.norm(zip(net.parameters, before).map { $0 - $1 })
        #expect(abs(moved - Double(lr * clip)) <= 1e-4 * Double(lr * clip), "moved \(moved), expected \(lr * clip)")
    }

    @Test("clipping handles a finite gradient whose squared norm exceeds Float's range")
    func clipHugeGradient() throws {
        // [1, 1] identity, w = 1, b = 0, x = 1e10, target 0: the gradient is (2e20, 2e10), finite, but
        // its squared norm (4e40) is not a Float. Clipping exists for exploding gradients like this one.
        let net = try Network(layerSizes: [1, 1], activations: [.identity], seed: 1)
        try net.setParameters([1, 0])
        let g = try net.gradient([1e10], .dense([0]), loss: .auto).gradient
        #expect(g.allSatisfy { $0.isFinite } && g[0] > 1e20, "gradient \(g)")
        var o = Self.options(1e-3)
        o.optimizer = .sgd
        // Without clipping the step is taken (and is huge, but finite).
        let twin = try Network(copying: net)
        _ = try Trainer(network: twin, options: o).step([1e10], .dense([0]))
        #expect(twin.parameters.allSatisfy { $0.isFinite })
        // With clipping it must be taken too, and move the weights by lr * clipNorm along -g / |g|.
        o.clipNorm = 1
        let trainer = try Trainer(network: net, options: o)
        do {
            _ = try trainer.step([1e10], .dense([0]))
        } catch {
            Issue.record("a clipped step on a finite gradient failed: \(error)")
        }
        #expect(Self.close(net.parameters[0], 1 - 1e-3, 1e-5), "w = \(net.parameters[0]), expected 0.999")
        #expect(abs(net.parameters[1]) < 1e-9, "b = \(net.parameters[1])")
    }

    // MARK: Normalisation

    @Test("normalisation values are checked, and a failed change leaves the network as it was")
    func normalizationValidation() throws {
        expectNudgeError(.shape, "offset has 2", "scale 3") { try InputNormalization(offset: [0, 1], scale: [1, 1, 1]) }
        expectNudgeError(.shape) { try InputNormalization(offset: [], scale: []) }
        expectNudgeError(.notFinite, "offset[1]") { try InputNormalization(offset: [0, .nan], scale: [1, 1]) }
        expectNudgeError(.notFinite, "scale[0]") { try InputNormalization(offset: [0, 0], scale: [.infinity, 1]) }
        let net = try Network(layerSizes: [4, 3, 2], activations: [.relu, .softmax], seed: 1)
        #expect(net.normalization == nil)
        let perFeature = try InputNormalization(offset: [1, 2, 3, 4], scale: [0.5, 0.25, 2, 1])
        try net.setNormalization(perFeature)
        #expect(net.normalization == perFeature)
        expectNudgeError(.shape, "3 values", "4") { try net.setNormalization(InputNormalization(offset: [0, 0, 0], scale: [1, 1, 1])) }
        #expect(net.normalization == perFeature)
        let global = try InputNormalization(offset: [10], scale: [0.1])
        try net.setNormalization(global)
        #expect(net.normalization == global)
        try net.setNormalization(nil)
        #expect(net.normalization == nil)
        expectNudgeError(.shape, "multiple") { try net.fitNormalization([1, 2, 3], kind: .global) }
        expectNudgeError(.notFinite) { try net.fitNormalization([1, 2, .nan, 4], kind: .global) }
        expectNudgeError(.invalidArgument, "at least one sample") { try net.fitNormalization([], kind: .global) }
        #expect(net.normalization == nil)
    }

    @Test("fitted normalisation: mean and 1 / standard deviation, global or per feature; a constant feature is only centred")
    func fitValues() throws {
        var rng = TestRandom(seed: 41)
        let rows = 50, width = 4
        var x = rng.floats(rows * width, in: 0...255)
        for r in 0..<rows { x[r * width + 2] = 7.5 }  // feature 2 is constant
        let net = try Network(layerSizes: [width, 3, 2], activations: [.relu, .softmax], seed: 1)

        try net.fitNormalization(x, kind: .global)
        let all = x.map(Double.init)
        let mean = all.reduce(0, +) / Double(all.count)
        let std = (all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(all.count)).squareRoot()
        let global = try #require(net.normalization)
        #expect(global.offset.count == 1 && global.scale.count == 1)
        #expect(Self.close(global.offset[0], Float(mean), 1e-6))
        #expect(Self.close(global.scale[0], Float(1 / std), 1e-6))

        try net.fitNormalization(x, kind: .perFeature)
        let perFeature = try #require(net.normalization)
        #expect(perFeature.offset.count == width && perFeature.scale.count == width)
        for j in 0..<width {
            let column = (0..<rows).map { Double(x[$0 * width + j]) }
            let m = column.reduce(0, +) / Double(rows)
            let s = (column.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(rows)).squareRoot()
            #expect(Self.close(perFeature.offset[j], Float(m), 1e-6), "offset[\(j)]")
            if j == 2 {
                #expect(perFeature.offset[j] == 7.5 && perFeature.scale[j] == 1, "a constant feature: offset \(perFeature.offset[j]), scale \(perFeature.scale[j])")
            } else {
                #expect(Self.close(perFeature.scale[j], Float(1 / s), 1e-6), "scale[\(j)]")
            }
        }
        // A constant data set, globally: scale 1.
        try net.fitNormalization([Float](repeating: 3, count: 8), kind: .global)
        let constant = try InputNormalization(offset: [3], scale: [1])
        #expect(net.normalization == constant)
        // .none removes it.
        try net.fitNormalization(x, kind: .none)
        #expect(net.normalization == nil)
    }

    @Test("prediction, evaluation and gradients see normalised inputs")
    func normalizationIsApplied() throws {
        var rng = TestRandom(seed: 42)
        let rows = 300, width = 5  // over 256 rows: prediction works in more than one chunk
        let x = rng.floats(rows * width, in: 0...255)
        let labels = rng.labels(rows, classes: 3)
        let net = try Network.random([width, 8, 3], [.tanh, .softmax], seed: 9)
        let twin = try Network(copying: net)
        let offset: [Float] = [100, 120, 140, 10, 0], scale: [Float] = [0.01, 0.02, 0.005, 0.03, 0.004]
        try net.setNormalization(InputNormalization(offset: offset, scale: scale))
        let manual = x.enumerated().map { ($1 - offset[$0 % width]) * scale[$0 % width] }
        let a = try net.outputs(x), b = try twin.outputs(manual)
        for (u, v) in zip(a, b) { #expect(abs(u - v) <= 1e-6) }
        #expect(try net.classes(x) == twin.classes(manual))
        let e1 = try net.evaluate(x, .labels(labels)), e2 = try twin.evaluate(manual, .labels(labels))
        #expect(abs(e1.loss - e2.loss) <= 1e-6 * e2.loss && e1.accuracy == e2.accuracy)
        let g1 = try net.gradient(x, .labels(labels), loss: .auto), g2 = try twin.gradient(manual, .labels(labels), loss: .auto)
        #expect(abs(g1.loss - g2.loss) <= 1e-6 * g2.loss)
        for (u, v) in zip(g1.gradient, g2.gradient) { #expect(abs(u - v) <= 1e-5 * max(1, abs(v))) }
        // Without normalisation the raw inputs give something else entirely.
        #expect(try twin.outputs(x) != a)
        // A global normalisation applies the same offset and scale to every input.
        try net.setNormalization(InputNormalization(offset: [127.5], scale: [1 / 127.5]))
        let globalManual = x.map { ($0 - 127.5) * (1 / 127.5) }
        for (u, v) in zip(try net.outputs(x), try twin.outputs(globalManual)) { #expect(abs(u - v) <= 1e-6) }
        // A copy keeps it.
        let copy = try Network(copying: net)
        #expect(copy.normalization == net.normalization)
        #expect(try copy.outputs(x).map(\.bitPattern) == net.outputs(x).map(\.bitPattern))
    }

    static func layout(_ net: Network) -> (normalizationAt: Int, metadataAt: Int) {
        let l = net.layerSizes.count
        let k = 40 + 4 * l + 4 * (l - 1)
        return (k, k + 4)
    }

    @Test("model files: version 2 with the normalisation, version 1 without; both load")
    func modelFileFormat() throws {
        let net = try Network.random([4, 5, 3], [.relu, .softmax], seed: 10)
        try net.setMetadata("v", forKey: "k")
        let v1 = try ModelFile.encode(net)
        #expect(v1.u32(at: 8) == 1)
        #expect(try ModelFile.decode(v1).normalization == nil)

        let offset: [Float] = [1.5, -2, 0, 255], scale: [Float] = [0.25, 1, 3, 1 / 255]
        try net.setNormalization(InputNormalization(offset: offset, scale: scale))
        let v2 = try ModelFile.encode(net)
        #expect(v2.u32(at: 8) == 2)
        #expect(v2.count == v1.count + 4 + 8 * 4)
        #expect(try ModelFile.encodedSize(net) == v2.count)
        #expect(v2.u64(at: 16) == UInt64(v2.count))
        let (kAt, metadataAt) = Self.layout(net)
        #expect(v2.u32(at: kAt) == 4, "K follows the activations")
        // Metadata: u32 1, "k", u32 1, "v"; then the offsets and scales; then the parameters.
        #expect(v2.u32(at: metadataAt) == 1 && v2[metadataAt + 4] == UInt8(ascii: "k"))
        let valuesAt = metadataAt + 10
        #expect((0..<4).map { v2.u32(at: valuesAt + 4 * $0) } == offset.map(\.bitPattern))
        #expect((0..<4).map { v2.u32(at: valuesAt + 16 + 4 * $0) } == scale.map(\.bitPattern))
        #expect((0..<net.parameterCount).map { v2.u32(at: valuesAt + 32 + 4 * $0) } == net.parameterBits)
        #expect(v2.u32(at: v2.count - 4) == CRC32.checksum(v2.dropLast(4)))

        let back = try ModelFile.decode(v2)
        #expect(back.normalization == net.normalization)
        #expect(back.parameterBits == net.parameterBits)
        #expect(back.metadataValue(forKey: "k") == "v")
        var rng = TestRandom(seed: 2)
        let x = rng.floats(10 * 4, in: -10...300)
        #expect(try back.outputs(x).map(\.bitPattern) == net.outputs(x).map(\.bitPattern))
        #expect(try ModelFile.encode(back) == v2)

        // Through a file too.
        let folder = try TemporaryFolder()
        try ModelFile.save(net, to: folder.file("m.nudge"))
        let loaded = try ModelFile.load(from: folder.file("m.nudge"))
        #expect(loaded.normalization == net.normalization)
        #expect(try loaded.outputs(x).map(\.bitPattern) == net.outputs(x).map(\.bitPattern))

        // A global normalisation is stored with K = 1.
        try net.setNormalization(InputNormalization(offset: [3], scale: [0.5]))
        let global = try ModelFile.encode(net)
        #expect(global.u32(at: 8) == 2 && global.u32(at: kAt) == 1 && global.count == v1.count + 4 + 8)
        #expect(try ModelFile.decode(global).normalization == net.normalization)
        // Removing it goes back to version 1, byte for byte.
        try net.setNormalization(nil)
        #expect(try ModelFile.encode(net) == v1)
    }

    @Test("model files: a version-2 file with K = 0 loads without normalisation; bad K or values are format errors")
    func modelFileCorruption() throws {
        let net = try Network.random([4, 5, 3], [.relu, .softmax], seed: 11)
        let v1 = try ModelFile.encode(net)
        let (kAt, _) = Self.layout(net)
        // Version 2 with K = 0: four zero bytes after the activations.
        var zeroK = Array(v1[0..<kAt]) + [0, 0, 0, 0] + Array(v1[kAt...])
        zeroK.setU32(2, at: 8)
        zeroK.setU64(UInt64(zeroK.count), at: 16)
        zeroK.fixCRC()
        let decoded = try ModelFile.decode(zeroK)
        #expect(decoded.normalization == nil)
        #expect(decoded.parameterBits == net.parameterBits)

        try net.setNormalization(InputNormalization(offset: [1, 2, 3, 4], scale: [1, 1, 1, 1]))
        let v2 = try ModelFile.encode(net)
        for k: UInt32 in [5, 2, 3, 1000, 0xFFFF_FFFF] {
            var bad = v2
            bad.setU32(k, at: kAt)
            bad.fixCRC()
            expectNudgeError(.format, "normalisation") { try ModelFile.decode(bad) }
        }
        // K = 1 or 0 where 4 pairs are stored: the sizes no longer add up.
        for k: UInt32 in [1, 0] {
            var bad = v2
            bad.setU32(k, at: kAt)
            bad.fixCRC()
            expectNudgeError(.format) { try ModelFile.decode(bad) }
        }
        // A NaN offset or an infinite scale.
        let valuesAt = kAt + 4  // no metadata: the values follow K
        for (at, bits) in [(valuesAt, Float.nan.bitPattern), (valuesAt + 16, Float.infinity.bitPattern)] {
            var bad = v2
            bad.setU32(bits, at: at)
            bad.fixCRC()
            expectNudgeError(.format, "normalisation") { try ModelFile.decode(bad) }
        }
        // A version-1 file is not read as if it had a K.
        var relabelled = v2
        relabelled.setU32(1, at: 8)
        relabelled.fixCRC()
        expectNudgeError(.format) { try ModelFile.decode(relabelled) }
    }

    /// Synthetic "images" of 0...255 values: 3 classes, 12 pixels.
    static func rawImages(_ rows: Int, seed: UInt64) -> ([Float], [Int32]) {
        var rng = TestRandom(seed: seed)
        let labels = rng.labels(rows, classes: 3)
        var x: [Float] = []
        for l in labels {
            for j in 0..<12 {
                let bright = j / 4 == Int(l)
                x.append((bright ? 200 : 40) + Float.random(in: -40...40, using: &rng.generator))
            }
        }
        return (x, labels)
    }

    @Test("training with normalisation on raw 0...255 inputs fits it on the training data and predicts raw inputs after a reload")
    func trainOnRawInputs() throws {
        let (x, y) = Self.rawImages(150, seed: 51)
        let (tx, ty) = Self.rawImages(60, seed: 52)
        let net = try Network(layerSizes: [12, 16, 3], activations: [.relu, .softmax], seed: 12)
        var o = Self.options(0.01, epochs: 15)
        o.batchSize = 16
        o.normalization = .global
        _ = try Trainer(network: net, options: o).fit(x, labels: y)
        let fitted = try #require(net.normalization)
        let all = x.map(Double.init)
        let mean = all.reduce(0, +) / Double(all.count)
        let std = (all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(all.count)).squareRoot()
        #expect(fitted.offset.count == 1)
        #expect(Self.close(fitted.offset[0], Float(mean), 1e-6) && Self.close(fitted.scale[0], Float(1 / std), 1e-6))
        #expect(try net.evaluate(tx, .labels(ty)).accuracy >= 0.95)
        let back = try ModelFile.decode(ModelFile.encode(net))
        #expect(back.normalization == fitted)
        #expect(try back.outputs(tx).map(\.bitPattern) == net.outputs(tx).map(\.bitPattern))
        #expect(try back.evaluate(tx, .labels(ty)).accuracy >= 0.95)
    }

    @Test("training fits the normalisation on the training samples, not the held-out fraction")
    func normalizationIgnoresHeldOut() throws {
        // Row r is the unit vector e_r: the per-feature mean of feature r is 1 / trainCount if row r
        // was trained on and 0 if it was held out, so the fitted offsets show the split.
        let n = 20
        var x = [Float](repeating: 0, count: n * n)
        for r in 0..<n { x[r * n + r] = 1 }
        let y = (0..<n).map { Int32($0 % 2) }
        let net = try Network(layerSizes: [n, 4, 2], activations: [.tanh, .softmax], seed: 13)
        var o = Self.options(0.01, epochs: 1)
        o.batchSize = 5
        o.validationFraction = 0.25
        o.normalization = .perFeature
        var reports: [EpochReport] = []
        _ = try Trainer(network: net, options: o).fit(x, .labels(y), progress: { reports.append($0); return false })
        let fitted = try #require(net.normalization)
        let heldOut = (0..<n).filter { fitted.offset[$0] == 0 }
        let trained = (0..<n).filter { fitted.offset[$0] != 0 }
        #expect(heldOut.count == 5, "offsets \(fitted.offset)")
        #expect(trained.allSatisfy { fitted.offset[$0] == Float(1.0 / 15) })
        #expect(heldOut.allSatisfy { fitted.scale[$0] == 1 }, "a feature that is 0 in every training row is only centred")
        let m = 1.0 / 15
        #expect(trained.allSatisfy { Self.close(fitted.scale[$0], Float(1 / (m * (1 - m)).squareRoot()), 1e-6) })
        // And those rows are the validation data: the reported loss is theirs.
        let hx = heldOut.flatMap { Array(x[($0 * n)..<(($0 + 1) * n)]) }
        let hy = heldOut.map { y[$0] }
        let (loss, _) = try net.evaluate(hx, .labels(hy))
        #expect(abs(reports[0].validationLoss - loss) <= 1e-6 * loss, "\(reports[0].validationLoss) vs \(loss)")
    }

    @Test("with explicit validation data, the normalisation is fitted on the training inputs only")
    func normalizationIgnoresValidationData() throws {
        let (x, y) = Self.blobs(40, seed: 61)
        let (shifted, vy) = Self.blobs(20, seed: 62)
        let vx = shifted.map { $0 + 100 }
        let net = try Network(layerSizes: [4, 6, 3], activations: [.relu, .softmax], seed: 14)
        var o = Self.options(0.01, epochs: 1)
        o.normalization = .global
        _ = try Trainer(network: net, options: o).fit(x, labels: y, validation: (vx, vy))
        let mean = x.map(Double.init).reduce(0, +) / Double(x.count)
        let fitted = try #require(net.normalization)
        #expect(Self.close(fitted.offset[0], Float(mean), 1e-5), "offset \(fitted.offset[0]), training mean \(mean)")
    }

    @Test("normalization .none keeps the network's normalisation; bad arguments change nothing")
    func normalizationOptionNone() throws {
        let (x, y) = Self.blobs(30, seed: 71)
        let net = try Network(layerSizes: [4, 6, 3], activations: [.relu, .softmax], seed: 15)
        let kept = try InputNormalization(offset: [0.5], scale: [2])
        try net.setNormalization(kept)
        var o = Self.options(0.01, epochs: 1)
        let trainer = try Trainer(network: net, options: o)
        _ = try trainer.fit(x, labels: y)
        #expect(net.normalization == kept)
        // A call that fails on its arguments fits nothing.
        o.normalization = .perFeature
        try trainer.setOptions(o)
        expectNudgeError(.notFinite, "validation inputs") {
            try trainer.fit(x, .labels(y), validation: ([.nan, 0, 0, 0], .labels([0])))
        }
        #expect(net.normalization == kept)
        o.validationFraction = 0.001
        expectNudgeError(.invalidArgument, "validationFraction") { try trainer.fit(x, labels: y, applying: o) }
        #expect(net.normalization == kept)
        o.validationFraction = 0
        _ = try trainer.fit(x, labels: y)
        #expect(net.normalization != kept && net.normalization?.offset.count == 4)
    }
}

extension Trainer {
    /// The pointer-based `fit` with options for this call, for class labels.
    fileprivate func fit(_ inputs: [Float], labels: [Int32], applying options: TrainingOptions) throws -> TrainingSummary {
        try inputs.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { l in
                try fit(x.baseAddress!, targets: .labels(l.baseAddress!), rows: labels.count, validation: nil,
                        applying: options, progress: nil, batchProgress: nil)
            }
        }
    }
}
