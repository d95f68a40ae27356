import Foundation
import Nudge
import Synchronization
import Testing

// Training with per-sample weights through the public API: weights of 1 against none, bit for bit, on
// both step paths; weights that change the run; validation weights; checkpoints; groups.

@Suite("Sample weights through the public API")
struct SampleWeightAPITests {
    /// Weights from 0 to 3 in quarters, zeros included, the same for a seed.
    static func weights(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float(Int.random(in: 0...12, using: &rng)) / 4 }
    }

    @Test("weights of 1 train as no weights, bit for bit, split by units or by rows", arguments: [16, 256])
    func onesAreNone(batchSize: Int) throws {
        // 256 rows of a 64-wide network are split by rows between threads where there are several.
        var rng = SeededGenerator(seed: 3)
        let inputs = (0..<(600 * 64)).map { _ in Float.random(in: -1...1, using: &rng) }
        let labels = (0..<600).map { _ in Int32.random(in: 0...2, using: &rng) }
        var options = TrainingOptions()
        (options.epochs, options.batchSize, options.validationFraction, options.seed) = (2, batchSize, 0.1, 5)
        options.dropout = [0, 0.2]
        func run(_ weights: [Float]?) throws -> (Network, TrainingSummary) {
            let net = try Network(layerSizes: [64, 32, 3], activations: [.relu, .softmax], seed: 1)
            return (net, try Trainer(network: net, options: options).fit(inputs, labels: labels, weights: weights))
        }
        let (plain, summary) = try run(nil)
        let (ones, weighted) = try run([Float](repeating: 1, count: 600))
        #expect(bits(ones.parameters) == bits(plain.parameters))
        #expect(sameSummary(weighted, summary), "\(weighted) against \(summary)")
        let (other, _) = try run(Self.weights(600, seed: 1))
        #expect(bits(other.parameters) != bits(plain.parameters))
    }

    @Test("validation weights weigh the validation loss, and early stopping with it")
    func validationWeights() throws {
        let data = xor(300, seed: 2), validation = xor(100, seed: 3)
        let w = Self.weights(100, seed: 4)
        var options = CheckpointAPITests.options()
        options.validationFraction = 0
        options.epochs = 3
        let net = try CheckpointAPITests.network()
        let trainer = try Trainer(network: net, options: options)
        var last: EpochReport?
        _ = try trainer.fit(data.inputs, labels: data.labels, validation: (validation.inputs, validation.labels),
                            validationWeights: w, progress: { last = $0; return false })
        let report = try #require(last)
        let measured = try net.evaluate(validation.inputs, labels: validation.labels, weights: w)
        #expect(abs(report.validationLoss - measured.loss) <= 1e-6 * measured.loss, "\(report.validationLoss) against \(measured.loss)")
        #expect(abs(report.validationAccuracy - measured.accuracy) <= 1e-12)
        expectError(.invalidArgument, "validation weights[1] is -2.0") {
            try trainer.fit(data.inputs, labels: data.labels, validation: (validation.inputs, validation.labels),
                            validationWeights: [1, -2] + [Float](repeating: 1, count: 98))
        }
        expectError(.invalidArgument, "validation weights are given without validation data") {
            try trainer.fit(data.inputs, labels: data.labels, validationWeights: w)
        }
        expectError(.invalidArgument, "weights are all zero (300 samples)") {
            try trainer.fit(data.inputs, labels: data.labels, weights: [Float](repeating: 0, count: 300))
        }
        expectError(.notFinite, "weights[7] is nan") {
            try trainer.fit(data.inputs, labels: data.labels, weights: (0..<300).map { $0 == 7 ? .nan : 1 })
        }
    }

    @Test("a weighted run stopped by its batch callback goes on from its checkpoint exactly")
    func resume() throws {
        let folder = try ScratchFolder()
        let path = folder.path("run.ckpt")
        let data = xor(200, seed: 4)
        let w = Self.weights(200, seed: 6)
        let reference = try Trainer(network: try CheckpointAPITests.network(), options: CheckpointAPITests.options())
        let summary = try reference.fit(data.inputs, labels: data.labels, weights: w)
        for stop in [9, 11] {
            let trainer = try Trainer(network: try CheckpointAPITests.network(), options: CheckpointAPITests.options())
            trainer.checkpoint = try CheckpointPlan(path: path, everySteps: 3)
            var seen = 0
            let cut = try trainer.fit(data.inputs, labels: data.labels, weights: w, batchProgress: { _ in seen += 1; return seen == stop })
            #expect(cut.stopReason == .cancelled)
            expectError(.invalidArgument, "was given sample weights, this call is not") {
                try Trainer.load(from: path).fit(data.inputs, labels: data.labels)
            }
            expectError(.invalidArgument, "other data") {
                try Trainer.load(from: path).fit(data.inputs, labels: data.labels, weights: w.map { $0 + 1 })
            }
            let resumed = try Trainer.load(from: path)
            let rest = try resumed.fit(data.inputs, labels: data.labels, weights: w)
            #expect(sameSummary(rest, summary), "stopped at batch \(stop): \(rest) against \(summary)")
            #expect(bits(resumed.network.parameters) == bits(reference.network.parameters), "stopped at batch \(stop)")
        }
    }

    @Test("a group whose members do not all give weights refuses to start, on every member")
    func groupAgreesOnWeights() throws {
        let data = xor(100, seed: 13)
        let group = ThreadGroup(size: 2)
        let errors = Mutex<[Int: String]>([:])
        let finished = DispatchSemaphore(value: 0)
        for rank in 0..<2 {
            let thread = Thread {
                defer { finished.signal() }
                do {
                    let trainer = try Trainer(network: try CheckpointAPITests.network(), options: CheckpointAPITests.groupOptions())
                    trainer.collective = try Collective(rank: rank, size: 2, layout: .sharded) { group.sum($0, rank: rank) }
                    _ = try trainer.fit(data.inputs, labels: data.labels,
                                        weights: rank == 0 ? [Float](repeating: 1, count: 100) : nil)
                } catch {
                    errors.withLock { $0[rank] = "\(error)" }
                }
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        for _ in 0..<2 { #expect(finished.wait(timeout: .now() + 120) == .success) }
        let found = errors.withLock { $0 }
        for rank in 0..<2 {
            #expect(found[rank]?.contains("rank 1 does not give sample weights and rank 0 does") == true, "rank \(rank): \(found[rank] ?? "no error")")
        }
    }

    @Test("a weighted group of two trains as one weighted trainer, to float rounding", arguments: Collective.DataLayout.allCases)
    func group(layout: Collective.DataLayout) throws {
        let data = xor(400, seed: 11)
        let w = Self.weights(400, seed: 12)
        let alone = try CheckpointAPITests.network()
        let summary = try Trainer(network: alone, options: CheckpointAPITests.groupOptions())
            .fit(data.inputs, labels: data.labels, weights: w)
        let ranks = try CheckpointAPITests.trainGroup(data, size: 2, layout: layout, shards: [260, 140], sampleWeights: w)
        #expect(bits(ranks[0].weights) == bits(ranks[1].weights), "the members' weights differ")
        let scale = alone.parameters.map { abs($0) }.max() ?? 1
        let largest = zip(alone.parameters, ranks[0].weights).map { abs($0 - $1) }.max() ?? 0
        #expect(largest / scale < 1e-5, "\(layout): max |dw| / max |w| = \(largest / scale) against one trainer")
        #expect(ranks[0].summary.epochsRun == summary.epochsRun)
        #expect(abs(ranks[0].summary.finalValidationLoss - summary.finalValidationLoss) <= 1e-5 * summary.finalValidationLoss)
        #expect(abs(ranks[0].summary.finalTrainLoss - summary.finalTrainLoss) <= 1e-5 * summary.finalTrainLoss)
    }
}
