import Nudge
import Testing

@Suite("Public API: training")
struct TrainingAPITests {
    @Test("steps on one batch lower its loss, with labels, target rows and buffers")
    func step() throws {
        let batch = xor(16, seed: 3)
        var options = TrainingOptions()
        options.learningRate = 0.05
        let net = try Network(layerSizes: [2, 8, 2], activations: [.tanh, .softmax], seed: 5)
        let trainer = try Trainer(network: net, options: options)
        let first = try trainer.step(batch.inputs, labels: batch.labels)
        var last = first
        for _ in 0..<30 { last = try trainer.step(batch.inputs, labels: batch.labels) }
        #expect(last < first * 0.5, "loss went from \(first) to \(last)")
        #expect(abs(try net.evaluate(batch.inputs, labels: batch.labels).loss - last) < 0.1)

        // The same steps with one-hot rows, and with buffers, move the weights identically.
        let rows = oneHot(batch.labels, classes: 2)
        let byRows = try Network(layerSizes: [2, 8, 2], activations: [.tanh, .softmax], seed: 5)
        let byBuffers = try Network(layerSizes: [2, 8, 2], activations: [.tanh, .softmax], seed: 5)
        let rowTrainer = try Trainer(network: byRows, options: options)
        let bufferTrainer = try Trainer(network: byBuffers, options: options)
        for _ in 0..<31 {
            _ = try rowTrainer.step(batch.inputs, targets: rows)
            _ = try batch.inputs.withUnsafeBufferPointer { x in
                try batch.labels.withUnsafeBufferPointer { try bufferTrainer.step(x, labels: $0) }
            }
        }
        #expect(bits(byRows.parameters) == bits(net.parameters))
        #expect(bits(byBuffers.parameters) == bits(net.parameters))

        expectError(.invalidArgument, "no samples") { try trainer.step([], labels: []) }
        expectError(.shape, "labels has 1 values; 2 samples need 2") { try trainer.step([0, 1, 1, 0], labels: [1]) }
        let before = bits(net.parameters)
        expectError(.notFinite) { try trainer.step([.nan, 1], labels: [0]) }
        #expect(bits(net.parameters) == before, "a failed step leaves the weights as they were")
    }

    @Test("fit learns XOR, reports every epoch and batch, and buffers train as arrays do")
    func fit() throws {
        let train = xor(240, seed: 1), test = xor(200, seed: 2)
        var options = TrainingOptions()
        options.epochs = 40
        options.batchSize = 16
        options.learningRate = 0.02
        let net = try Network(layerSizes: [2, 16, 2], activations: [.tanh, .softmax], seed: 42)
        let trainer = try Trainer(network: net, options: options)
        var epochs: [EpochReport] = []
        var batches = 0
        let summary = try trainer.fit(train.inputs, labels: train.labels,
                                      progress: { epochs.append($0); return false },
                                      batchProgress: { report in
                                          #expect(report.batchCount == 15)
                                          batches += 1
                                          return false
                                      })
        #expect(summary.stopReason == .completed)
        #expect(summary.epochsRun == 40)
        #expect(epochs.map(\.epoch) == Array(1...40))
        #expect(batches == 40 * 15)
        #expect(summary.finalTrainAccuracy == epochs.last!.trainAccuracy)
        #expect(summary.finalValidationLoss.isNaN)
        let accuracy = try net.evaluate(test.inputs, labels: test.labels).accuracy
        #expect(accuracy >= 0.95, "test accuracy \(accuracy)")

        let twin = try Network(layerSizes: [2, 16, 2], activations: [.tanh, .softmax], seed: 42)
        _ = try train.inputs.withUnsafeBufferPointer { x in
            try train.labels.withUnsafeBufferPointer { try Trainer(network: twin, options: options).fit(x, labels: $0) }
        }
        #expect(bits(twin.parameters) == bits(net.parameters))
    }

    @Test("fit with target rows and validation data, early stopping, and a callback that stops")
    func fitWithValidation() throws {
        let train = xor(200, seed: 7), held = xor(100, seed: 8)
        var options = TrainingOptions()
        options.epochs = 30
        options.learningRate = 0.02
        options.patience = 2
        let net = try Network(layerSizes: [2, 12, 2], activations: [.relu, .softmax], seed: 11)
        let trainer = try Trainer(network: net, options: options)
        let summary = try trainer.fit(train.inputs, targets: oneHot(train.labels, classes: 2),
                                      validation: (inputs: held.inputs, targets: oneHot(held.labels, classes: 2)))
        #expect(summary.stopReason == .completed || summary.stopReason == .earlyStopped)
        #expect(summary.bestEpoch >= 1)
        #expect(summary.finalValidationAccuracy > 0.8)
        #expect(!summary.finalValidationLoss.isNaN)

        let cancelled = try trainer.fit(train.inputs, labels: train.labels,
                                        validation: (inputs: held.inputs, labels: held.labels)) { $0.epoch == 2 }
        #expect(cancelled.stopReason == .cancelled)
        #expect(cancelled.epochsRun == 2)
        #expect(cancelled.message.contains("progress callback"))

        expectError(.shape, "validation labels has 1 values") {
            try trainer.fit(train.inputs, labels: train.labels, validation: (inputs: held.inputs, labels: [0]))
        }
        expectError(.invalidArgument, "validation data has no samples") {
            try trainer.fit(train.inputs, labels: train.labels, validation: (inputs: [], labels: []))
        }
    }

    @Test("setOptions changes later calls, all or nothing")
    func setOptions() throws {
        let net = try Network(layerSizes: [2, 4, 2], activations: [.tanh, .softmax], seed: 1)
        let trainer = try Trainer(network: net)
        #expect(trainer.options == TrainingOptions())
        #expect(trainer.network === net)
        var options = TrainingOptions()
        options.optimizer = .momentum
        options.learningRate = 0.1
        try trainer.setOptions(options)
        #expect(trainer.options.optimizer == .momentum)
        var bad = options
        bad.momentum = 1
        expectError(.invalidArgument, "momentum") { try trainer.setOptions(bad) }
        #expect(trainer.options == options)
    }

    @Test("a bad option fails with invalidArgument naming the TrainingOptions property")
    func badOption() throws {
        let net = try Network(layerSizes: [2, 2], activations: [.softmax], seed: 1)
        var options = TrainingOptions()
        options.batchSize = 0
        let error = expectError(.invalidArgument, "batchSize is 0") { try Trainer(network: net, options: options) }
        #expect(error?.subjects == [.option(.batchSize)])
        #expect(error?.description.hasPrefix("invalid_argument: batchSize") == true)

        var dropout = TrainingOptions()
        dropout.dropout = [0.1, 0.2, 0.3]
        expectError(.shape, "dropout has 3 rates") { try Trainer(network: net, options: dropout) }
        var fraction = TrainingOptions()
        fraction.validationFraction = 1.5
        expectError(.invalidArgument, "validationFraction") { try Trainer(network: net, options: fraction) }
        // Counts name both ends of their range: the C field (uint32_t) holds no more.
        var epochs = TrainingOptions()
        epochs.epochs = 1 << 32
        expectError(.invalidArgument, "epochs is 4294967296; it must be 0 to 4294967295") { try epochs.validate() }
        epochs.epochs = -1
        expectError(.invalidArgument, "epochs is -1; it must be 0 to 4294967295") { try epochs.validate() }
    }

    @Test("the learning-rate schedule is readable before training")
    func schedule() {
        var options = TrainingOptions()
        options.learningRate = 0.1
        options.schedule = .step
        options.stepEpochs = 2
        options.stepFactor = 0.5
        #expect(options.learningRate(atStep: 0, stepsPerEpoch: 10) == 0.1)
        #expect(options.learningRate(atStep: 20, stepsPerEpoch: 10) == 0.05)
        #expect(LearningRateSchedule.cosine.name == "cosine")
        #expect(Optimizer.adam.name == "adam")
        #expect(Loss.auto.name == "auto")
    }

    @Test("a training callback that trains the same trainer or network again gets an error, not a trap")
    func reentry() throws {
        let net = try Network(layerSizes: [2, 3, 1], activations: [.tanh, .sigmoid], seed: 1)
        let trainer = try Trainer(network: net)
        let x: [Float] = [0, 1, 1, 0], y: [Float] = [1, 0]
        var errors: [NudgeError] = []
        func record(_ body: () throws(NudgeError) -> Void) {
            do { try body() } catch { errors.append(error) }
        }
        var options = TrainingOptions()
        options.epochs = 2
        options.batchSize = 1
        try trainer.setOptions(options)
        _ = try trainer.fit(x, targets: y, progress: { _ in
            record { () throws(NudgeError) in _ = try trainer.fit(x, targets: y) }
            record { () throws(NudgeError) in _ = try trainer.step(x, targets: y) }
            record { () throws(NudgeError) in try trainer.setOptions(options) }
            record { () throws(NudgeError) in _ = try Trainer(network: net).step(x, targets: y) }
            return false
        })
        #expect(errors.count == 8)
        for (i, error) in errors.enumerated() {
            #expect(error.kind == .invalidArgument)
            let expected = i % 4 == 3 ? "the network is already being trained by another call" : "the trainer is already training"
            #expect(error.message.contains(expected), "\(error.message)")
        }
        // Reading the network from a callback is fine, and the trainer trains again afterwards.
        _ = try trainer.fit(x, targets: y, progress: { _ in (try? net.predict(x)) == nil })
        _ = try trainer.step(x, targets: y)
    }
}
