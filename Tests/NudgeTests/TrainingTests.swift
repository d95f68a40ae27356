import Foundation
import Nudge
import Testing

@Suite("Training loop")
struct TrainingTests {
    static let xorInputs: [Float] = [0, 0, 0, 1, 1, 0, 1, 1]
    static let xorLabels: [Int32] = [0, 1, 1, 0]

    static let xorSetups: [([Int], [Activation])] = [
        ([2, 4, 1], [.tanh, .sigmoid]),
        ([2, 8, 2], [.relu, .softmax]),
    ]

    @Test("learns XOR to 100% accuracy", arguments: xorSetups)
    func xor(_ sizes: [Int], _ activations: [Activation]) throws {
        let net = try Network(layerSizes: sizes, activations: activations, seed: 3)
        var options = TrainingOptions()
        options.epochs = 1500
        options.batchSize = 4
        options.optimizer = .adam
        options.learningRate = 0.05
        let trainer = try Trainer(network: net, options: options)
        let summary = try trainer.fit(Self.xorInputs, labels: Self.xorLabels)
        #expect(summary.stopReason == .completed)
        #expect(summary.epochsRun == 1500)
        #expect(summary.finalTrainLoss < 0.05, "final loss \(summary.finalTrainLoss)")
        #expect(try net.classes(Self.xorInputs) == Self.xorLabels)
        let (loss, accuracy) = try net.evaluate(Self.xorInputs, .labels(Self.xorLabels))
        #expect(accuracy == 1)
        #expect(loss < 0.05)
        #expect(summary.finalValidationLoss.isNaN, "no validation data was given")
    }

    /// Two noisy Gaussian blobs per class, 3 classes in 4 dimensions.
    static func blobs(_ rows: Int, seed: UInt64, noise: Float = 0.6) -> ([Float], [Int32]) {
        var rng = TestRandom(seed: seed)
        let labels = rng.labels(rows, classes: 3)
        var x: [Float] = []
        let centres: [[Float]] = [[1, 0, 0, 1], [0, 1, 1, 0], [-1, -1, 0, 0]]
        for l in labels { x += centres[Int(l)].map { $0 + Float.random(in: -noise...noise, using: &rng.generator) } }
        return (x, labels)
    }

    @Test("a validation fraction is held out and measured every epoch")
    func validationFraction() throws {
        let (x, y) = Self.blobs(100, seed: 1)
        let net = try Network(layerSizes: [4, 8, 3], activations: [.relu, .softmax], seed: 1)
        var options = TrainingOptions()
        options.epochs = 5
        options.batchSize = 10
        options.validationFraction = 0.2
        options.learningRate = 0.01
        let trainer = try Trainer(network: net, options: options)
        var reports: [EpochReport] = []
        var batches = 0
        let summary = try trainer.fit(x, .labels(y), progress: { reports.append($0); return false },
                                      batchProgress: { _ in batches += 1; return false })
        #expect(summary.stopReason == .completed)
        #expect(reports.map(\.epoch) == [1, 2, 3, 4, 5])
        #expect(reports.allSatisfy { $0.epochs == 5 })
        #expect(reports.allSatisfy { $0.validationLoss.isFinite && $0.validationAccuracy >= 0 && $0.validationAccuracy <= 1 })
        #expect(reports.allSatisfy { $0.trainLoss.isFinite && $0.seconds >= 0 })
        // 80 training samples in batches of 10.
        #expect(batches == 5 * 8)
        #expect(summary.finalValidationLoss == reports.last!.validationLoss)
        #expect(summary.finalTrainLoss == reports.last!.trainLoss)
        #expect(summary.bestLoss == reports.map(\.validationLoss).min())

        // A fraction that leaves nothing to train or to validate is refused.
        options.validationFraction = 0.001
        try trainer.setOptions(options)
        let before = net.parameterBits
        expectNudgeError(.invalidArgument, "validationFraction") { try trainer.fit(x, labels: y) }
        #expect(net.parameterBits == before)
    }

    @Test("an explicit validation set is measured every epoch with the network's current weights")
    func explicitValidation() throws {
        let (x, y) = Self.blobs(90, seed: 2)
        let (vx, vy) = Self.blobs(30, seed: 3)
        let net = try Network(layerSizes: [4, 8, 3], activations: [.tanh, .softmax], seed: 2)
        var options = TrainingOptions()
        options.epochs = 4
        options.batchSize = 16
        options.learningRate = 0.02
        let trainer = try Trainer(network: net, options: options)
        var reports: [EpochReport] = []
        let summary = try trainer.fit(x, labels: y, validation: (vx, vy), progress: { reports.append($0); return false })
        #expect(reports.count == 4)
        #expect(reports.allSatisfy { $0.validationLoss.isFinite && $0.validationAccuracy.isFinite })
        let (loss, accuracy) = try net.evaluate(vx, .labels(vy))
        #expect(abs(summary.finalValidationLoss - loss) < 1e-6 * max(1, loss))
        #expect(summary.finalValidationAccuracy == accuracy)
        #expect(summary.finalValidationAccuracy > 0.8, "blobs are easy: \(summary.finalValidationAccuracy)")

        // Validation data and a validation fraction together are refused.
        options.validationFraction = 0.2
        try trainer.setOptions(options)
        expectNudgeError(.invalidArgument, "not both") { try trainer.fit(x, labels: y, validation: (vx, vy)) }
        options.validationFraction = 0
        try trainer.setOptions(options)
        expectNudgeError(.shape, "validation inputs") { try trainer.fit(x, labels: y, validation: ([1, 2, 3], vy)) }
        expectNudgeError(.shape, "inputs has") { try trainer.fit(Array(x.dropLast()), labels: y) }
        expectNudgeError(.invalidArgument, "the validation data has no samples") { try trainer.fit(x, labels: y, validation: ([], [])) }
        expectNudgeError(.invalidArgument, "there are no samples") { try trainer.fit([], labels: []) }
    }

    /// Random labels: nothing to learn, so the validation loss soon rises as the network memorises noise.
    static func noise() -> (x: [Float], y: [Int32], vx: [Float], vy: [Int32]) {
        var rng = TestRandom(seed: 77)
        return (rng.floats(40 * 6, in: -1...1), rng.labels(40, classes: 3),
                rng.floats(20 * 6, in: -1...1), rng.labels(20, classes: 3))
    }

    @Test("early stopping stops, and restoreBestWeights ends with the weights of the best epoch", arguments: [true, false])
    func earlyStopping(_ restore: Bool) throws {
        let (x, y, vx, vy) = Self.noise()
        let net = try Network(layerSizes: [6, 32, 3], activations: [.relu, .softmax], seed: 9)
        var options = TrainingOptions()
        options.epochs = 500
        options.batchSize = 8
        options.learningRate = 0.01
        options.patience = 3
        options.restoreBestWeights = restore
        let trainer = try Trainer(network: net, options: options)
        var reports: [EpochReport] = []
        var snapshots: [[Float]] = []
        let summary = try trainer.fit(x, labels: y, validation: (vx, vy), progress: { report in
            reports.append(report)
            snapshots.append(net.parameters)
            return false
        })
        #expect(summary.stopReason == .earlyStopped)
        #expect(summary.epochsRun < 500)
        #expect(summary.epochsRun == reports.count)
        let losses = reports.map(\.validationLoss)
        let best = losses.indices.min(by: { losses[$0] < losses[$1] })!
        #expect(summary.bestEpoch == best + 1)
        #expect(summary.bestLoss == losses[best])
        #expect(summary.epochsRun == summary.bestEpoch + 3, "stops patience epochs after the best")
        #expect(reports.filter(\.improved).last?.epoch == summary.bestEpoch)
        let (final, _) = try net.evaluate(vx, .labels(vy))
        if restore {
            #expect(net.parameters == snapshots[best], "the best epoch's weights are restored")
            #expect(abs(final - summary.bestLoss) < 1e-6 * max(1, final), "final weights give \(final), best was \(summary.bestLoss)")
        } else {
            #expect(net.parameters == snapshots.last!)
            #expect(abs(final - losses.last!) < 1e-6 * max(1, final))
            #expect(final > summary.bestLoss)
        }
    }

    @Test("early stopping without validation data monitors the training loss")
    func earlyStoppingOnTrainingLoss() throws {
        let (x, y, _, _) = Self.noise()
        let net = try Network(layerSizes: [6, 4, 3], activations: [.tanh, .softmax], seed: 9)
        var options = TrainingOptions()
        options.epochs = 50
        options.learningRate = 0.01
        options.patience = 2
        options.minDelta = 10 // the training loss never improves by this much after the first epoch
        let trainer = try Trainer(network: net, options: options)
        var reports: [EpochReport] = []
        let summary = try trainer.fit(x, labels: y, progress: { reports.append($0); return false })
        #expect(summary.stopReason == .earlyStopped)
        #expect(summary.epochsRun == 3)
        #expect(summary.bestEpoch == 1)
        #expect(summary.bestLoss == reports[0].trainLoss)
        #expect(reports.map(\.improved) == [true, false, false])
    }

    @Test("the progress callback cancels after the epoch it returns true for")
    func progressCancels() throws {
        let (x, y) = Self.blobs(50, seed: 4)
        let net = try Network(layerSizes: [4, 5, 3], activations: [.relu, .softmax], seed: 4)
        var options = TrainingOptions()
        options.epochs = 20
        options.batchSize = 10
        let trainer = try Trainer(network: net, options: options)
        var seen = 0
        var atCancel: [Float] = []
        let summary = try trainer.fit(x, labels: y, progress: { report in
            seen += 1
            atCancel = net.parameters
            return report.epoch == 2
        })
        #expect(summary.stopReason == .cancelled)
        #expect(summary.epochsRun == 2)
        #expect(seen == 2)
        #expect(!summary.message.isEmpty)
        #expect(net.parameters == atCancel, "the weights are those of the last finished batch")
    }

    @Test("the batch callback cancels in the middle of an epoch")
    func batchCancels() throws {
        let (x, y) = Self.blobs(50, seed: 5)
        let net = try Network(layerSizes: [4, 5, 3], activations: [.relu, .softmax], seed: 5)
        var options = TrainingOptions()
        options.epochs = 20
        options.batchSize = 10
        let trainer = try Trainer(network: net, options: options)
        var batches: [BatchReport] = []
        var epochs = 0
        let before = net.parameters
        let summary = try trainer.fit(x, .labels(y), progress: { _ in epochs += 1; return false }, batchProgress: {
            batches.append($0)
            return $0.epoch == 2 && $0.batch == 3
        })
        #expect(summary.stopReason == .cancelled)
        #expect(epochs == 1)
        #expect(summary.epochsRun == 1)
        #expect(batches.count == 5 + 3)
        #expect(batches.allSatisfy { $0.batchCount == 5 && $0.loss.isFinite })
        #expect(batches.map(\.batch) == [1, 2, 3, 4, 5, 1, 2, 3])
        #expect(net.parameters != before)
    }

    @Test("a huge learning rate ends with notFinite and the last weights whose loss was measured finite")
    func divergence() throws {
        var rng = TestRandom(seed: 13)
        let rows = 32
        let x = rng.floats(rows * 3, in: -1000...1000) // unnormalised
        let y = (0..<rows).map { r in x[3 * r] - x[3 * r + 1] }
        let net = try Network(layerSizes: [3, 4, 1], activations: [.identity, .identity], seed: 13)
        var options = TrainingOptions()
        options.epochs = 100
        options.batchSize = 32
        options.optimizer = .sgd
        options.learningRate = 1e6
        options.loss = .meanSquaredError
        let trainer = try Trainer(network: net, options: options)
        // The weights at the end of each epoch, starting with the initial ones.
        var history = [net.parameters]
        let summary = try trainer.fit(x, .dense(y), progress: { _ in history.append(net.parameters); return false })
        #expect(summary.stopReason == .notFinite)
        #expect(!summary.message.isEmpty)
        #expect(summary.epochsRun < 100)
        #expect(net.parameters.allSatisfy { $0.isFinite })
        // The failing epoch started from history.last; if its first batch already failed on those,
        // the weights one epoch older are the last ones measured finite.
        #expect(history.suffix(2).contains(net.parameters))
        #expect(try net.evaluate(x, .dense(y), loss: .meanSquaredError).loss.isFinite)
        // The same happens with several batches per epoch.
        let other = try Network(layerSizes: [3, 4, 1], activations: [.identity, .identity], seed: 14)
        options.batchSize = 5
        let second = try Trainer(network: other, options: options)
        var historyOther = [other.parameters]
        let s2 = try second.fit(x, .dense(y), progress: { _ in historyOther.append(other.parameters); return false })
        #expect(s2.stopReason == .notFinite)
        #expect(other.parameters.allSatisfy { $0.isFinite })
        #expect(historyOther.suffix(2).contains(other.parameters))
        #expect(try other.evaluate(x, .dense(y), loss: .meanSquaredError).loss.isFinite)
        // And the step that overflows reports notFinite without changing the network.
        var threw = false
        for _ in 0..<30 {
            let snapshot = net.parameterBits
            do {
                _ = try trainer.step(x, .dense(y))
            } catch let error as NudgeError {
                #expect(error.kind == .notFinite)
                #expect(net.parameterBits == snapshot)
                threw = true
                break
            }
            #expect(net.parameters.allSatisfy { $0.isFinite })
        }
        #expect(threw)
        #expect(net.parameters.allSatisfy { $0.isFinite })
    }

    @Test("a step whose update overflows the weights never leaves non-finite parameters", arguments: [1, 3])
    func overflowingUpdate(_ epochs: Int) throws {
        // The loss and the gradient are finite, but lr * gradient overflows Float.
        var rng = TestRandom(seed: 15)
        let x = rng.floats(8 * 2, in: -1...1)
        let y = rng.floats(8, in: 5...10)
        let net = try Network(layerSizes: [2, 1], activations: [.identity], seed: 15)
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = 8
        options.optimizer = .sgd
        options.learningRate = 1e38
        options.loss = .meanSquaredError
        let before = net.parameters
        let trainer = try Trainer(network: net, options: options)
        let summary = try trainer.fit(x, .dense(y))
        #expect(net.parameters.allSatisfy { $0.isFinite }, "stop reason \(summary.stopReason), parameters \(net.parameters)")
        if summary.stopReason == .notFinite {
            #expect(net.parameters == before, "no epoch was good, so the initial weights are restored")
        } else {
            Issue.record("training with non-finite weights reported \(summary.stopReason)")
        }
        // Whatever the outcome, the trained network can be saved and read back.
        #expect(throws: Never.self) { try ModelFile.decode(try ModelFile.encode(net)) }

        // The same through single steps: a step either succeeds with finite weights or fails leaving them as they were.
        let stepped = try Network(layerSizes: [2, 1], activations: [.identity], seed: 15)
        let stepper = try Trainer(network: stepped, options: options)
        for _ in 0..<3 {
            let snapshot = stepped.parameterBits
            do {
                _ = try stepper.step(x, .dense(y))
                #expect(stepped.parameters.allSatisfy { $0.isFinite }, "after a successful step: \(stepped.parameters)")
            } catch {
                #expect((error as? NudgeError)?.kind == .notFinite)
                #expect(stepped.parameterBits == snapshot)
            }
        }
    }

    @Test("bad data is rejected before any change", arguments: 0..<6)
    func badData(_ which: Int) throws {
        let net = try Network(layerSizes: [2, 3, 3], activations: [.relu, .softmax], seed: 6)
        let trainer = try Trainer(network: net)
        let before = net.parameterBits
        let x: [Float] = [0, 1, 1, 0, 1, 1]
        switch which {
        case 0: expectNudgeError(.notFinite, "row 2, column 1") { try trainer.fit([0, 1, 1, 0, 1, .nan], labels: [0, 1, 2]) }
        case 1: expectNudgeError(.invalidArgument, "labels[2] is 3") { try trainer.fit(x, labels: [0, 1, 3]) }
        case 2: expectNudgeError(.invalidArgument, "labels[0] is -1") { try trainer.fit(x, labels: [-1, 1, 2]) }
        case 3: expectNudgeError(.notFinite, "targets") { try trainer.fit(x, .dense([1, 0, 0, 0, 1, 0, 0, .infinity, 1])) }
        case 4: expectNudgeError(.notFinite, "validation inputs") {
            try trainer.fit(x, labels: [0, 1, 2], validation: ([.nan, 0], [1]))
        }
        default: expectNudgeError(.notFinite) { try trainer.step([.nan, 0], .labels([1])) }
        }
        #expect(net.parameterBits == before)
        // The trainer is still usable afterwards.
        _ = try trainer.fit(x, labels: [0, 1, 2])
        #expect(net.parameterBits != before)
    }

    static func trainingRun(seed: UInt64, shuffle: Bool = true) throws -> [UInt32] {
        let (x, y) = blobs(64, seed: 8)
        let net = try Network(layerSizes: [4, 6, 3], activations: [.leakyRelu, .softmax], seed: seed)
        var options = TrainingOptions()
        options.epochs = 3
        options.batchSize = 7
        options.seed = seed
        options.shuffle = shuffle
        options.validationFraction = 0.25
        options.learningRate = 0.01
        _ = try Trainer(network: net, options: options).fit(x, labels: y)
        return net.parameterBits
    }

    @Test("the training seed drives the shuffling")
    func seedDrivesShuffling() throws {
        func run(seed: UInt64, shuffle: Bool) throws -> [UInt32] {
            let (x, y) = Self.blobs(40, seed: 8)
            let net = try Network(layerSizes: [4, 6, 3], activations: [.tanh, .softmax], seed: 1)
            var options = TrainingOptions()
            options.epochs = 2
            options.batchSize = 8
            options.seed = seed
            options.shuffle = shuffle
            _ = try Trainer(network: net, options: options).fit(x, labels: y)
            return net.parameterBits
        }
        #expect(try run(seed: 1, shuffle: true) != run(seed: 2, shuffle: true))
        #expect(try run(seed: 1, shuffle: false) == run(seed: 2, shuffle: false))
        #expect(try run(seed: 1, shuffle: true) != run(seed: 1, shuffle: false))
    }

    @Test("training twice with the same seed, options and data gives bit-identical parameters")
    func reproducibleTraining() throws {
        let a = try Self.trainingRun(seed: 5)
        let b = try Self.trainingRun(seed: 5)
        let c = try Self.trainingRun(seed: 6)
        #expect(a == b)
        #expect(a != c)
    }

    @Test("the trainer keeps Adam's state across fit calls: 1 + 1 epochs equal 2 epochs without shuffling")
    func statePersists() throws {
        let (x, y) = Self.blobs(40, seed: 10)
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 8
        options.shuffle = false
        options.optimizer = .adam
        options.learningRate = 0.01

        let once = try Network(layerSizes: [4, 5, 3], activations: [.tanh, .softmax], seed: 1)
        _ = try Trainer(network: once, options: options).fit(x, labels: y)

        options.epochs = 1
        let twice = try Network(layerSizes: [4, 5, 3], activations: [.tanh, .softmax], seed: 1)
        let trainer = try Trainer(network: twice, options: options)
        _ = try trainer.fit(x, labels: y)
        // Changing options other than the optimiser keeps its state.
        options.patience = 5
        options.minDelta = 0.5
        try trainer.setOptions(options)
        _ = try trainer.fit(x, labels: y)
        #expect(twice.parameterBits == once.parameterBits)

        // A fresh trainer for the second epoch starts Adam over, which gives different weights.
        let fresh = try Network(layerSizes: [4, 5, 3], activations: [.tanh, .softmax], seed: 1)
        _ = try Trainer(network: fresh, options: options).fit(x, labels: y)
        _ = try Trainer(network: fresh, options: options).fit(x, labels: y)
        #expect(fresh.parameterBits != once.parameterBits)
    }

    @Test("zero epochs changes nothing")
    func zeroEpochs() throws {
        let (x, y) = Self.blobs(10, seed: 1)
        let net = try Network(layerSizes: [4, 3], activations: [.softmax], seed: 1)
        var options = TrainingOptions()
        options.epochs = 0
        let before = net.parameterBits
        let summary = try Trainer(network: net, options: options).fit(x, labels: y)
        #expect(summary.stopReason == .completed)
        #expect(summary.epochsRun == 0)
        #expect(net.parameterBits == before)
    }
}
