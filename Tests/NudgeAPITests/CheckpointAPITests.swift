import Foundation
import Nudge
import Synchronization
import Testing

// Checkpoints (Trainer.save(to:), Trainer.load(from:), Trainer.checkpoint) and groups of processes
// (Collective) through the public API. The members of a group here are threads of this process,
// whose allreduce sums through a barrier.

/// The fields of a summary a continued run reproduces exactly (all but the seconds).
func sameSummary(_ a: TrainingSummary, _ b: TrainingSummary) -> Bool {
    a.stopReason == b.stopReason && a.epochsRun == b.epochsRun && a.bestEpoch == b.bestEpoch
        && a.bestLoss.bitPattern == b.bestLoss.bitPattern && a.finalTrainLoss.bitPattern == b.finalTrainLoss.bitPattern
        && a.finalTrainAccuracy.bitPattern == b.finalTrainAccuracy.bitPattern
        && a.finalValidationLoss.bitPattern == b.finalValidationLoss.bitPattern
        && a.finalValidationAccuracy.bitPattern == b.finalValidationAccuracy.bitPattern
}

/// The fields of an epoch report a continued run gives again (all but the seconds).
func sameReports(_ a: [EpochReport], _ b: [EpochReport]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { x, y in
        x.epoch == y.epoch && x.epochs == y.epochs && x.improved == y.improved
            && x.trainLoss.bitPattern == y.trainLoss.bitPattern && x.validationLoss.bitPattern == y.validationLoss.bitPattern
            && x.trainAccuracy.bitPattern == y.trainAccuracy.bitPattern && x.learningRate.bitPattern == y.learningRate.bitPattern
    }
}

/// The sum of a group whose members are threads: each member puts its buffer in its slot, waits for
/// all, sums every slot in rank order into an array of its own, waits again (so that no buffer
/// changes while another member reads it) and copies the sums back. Every member computes the same
/// sums, bit for bit. A member that waits more than a minute gives up: its allreduce fails, and the
/// training call with it, instead of the test hanging.
/// @unchecked Sendable: `slots` and the barrier's counters are only touched under `condition`.
final class ThreadGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var arrived = 0, generation = 0
    private var slots: [UnsafeMutableBufferPointer<Float>?]

    init(size: Int) {
        self.size = size
        slots = Array(repeating: nil, count: size)
    }

    private func barrier() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let mine = generation
        arrived += 1
        if arrived == size {
            (arrived, generation) = (0, generation + 1)
            condition.broadcast()
            return true
        }
        let deadline = Date(timeIntervalSinceNow: 60)
        while generation == mine {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    func sum(_ buffer: UnsafeMutableBufferPointer<Float>, rank: Int) -> Bool {
        condition.withLock { slots[rank] = buffer }
        guard barrier() else { return false }
        let all = condition.withLock { slots }
        let fits = all.allSatisfy { $0?.count == buffer.count }
        var sums = [Float](repeating: 0, count: fits ? buffer.count : 0)
        if fits {
            for slot in all.compactMap({ $0 }) {
                for i in 0..<buffer.count { sums[i] += slot[i] }
            }
        }
        guard barrier() else { return false }
        for i in 0..<sums.count { buffer[i] = sums[i] }
        return fits
    }
}

@Suite("Public API: checkpoints and groups")
struct CheckpointAPITests {
    static func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 4
        o.batchSize = 16
        o.learningRate = 0.02
        o.seed = 7
        o.validationFraction = 0.2
        o.patience = 3
        o.dropout = [0, 0.1]
        return o
    }

    /// The options of the group tests: those of the checkpoint tests without dropout, whose masks a
    /// group's members draw over their own rows, so that with dropout a group is not one trainer's run.
    static func groupOptions() -> TrainingOptions {
        var o = options()
        o.dropout = []
        return o
    }

    static func network() throws -> Network {
        try Network(layerSizes: [2, 12, 2], activations: [.tanh, .softmax], seed: 8)
    }

    @Test("a run stopped by its batch callback goes on from its checkpoint exactly")
    func resume() throws {
        let folder = try ScratchFolder()
        let path = folder.path("run.ckpt"), again = folder.path("again.ckpt")
        let data = xor(200, seed: 4)
        let reference = try Trainer(network: try Self.network(), options: Self.options())
        var epochs: [EpochReport] = []
        var total = 0
        let summary = try reference.fit(data.inputs, labels: data.labels, progress: { epochs.append($0); return false },
                                        batchProgress: { _ in total += 1; return false })
        #expect(summary.stopReason == .completed && total == 40, "\(summary.stopReason), \(total) batches")
        for stop in [1, 9, 10, 11, 40] {
            let trainer = try Trainer(network: try Self.network(), options: Self.options())
            trainer.checkpoint = try CheckpointPlan(path: path, everySteps: 3)
            var seen = 0
            let cut = try trainer.fit(data.inputs, labels: data.labels, batchProgress: { _ in seen += 1; return seen == stop })
            #expect(cut.stopReason == .cancelled && seen == stop)
            #expect(trainer.position == nil, "a trainer that ran its own run holds no loaded run")

            // Loaded, saved again before it goes on, and loaded again: the run is still there.
            try Trainer.load(from: path).save(to: again)
            let resumed = try Trainer.load(from: again)
            let position = try #require(resumed.position)
            #expect(!position.finished && position.steps == stop && position.epochsDone == (stop - 1) / 10)
            var replayed: [EpochReport] = []
            var trained = 0
            let rest = try resumed.fit(data.inputs, labels: data.labels, progress: { replayed.append($0); return false },
                                       batchProgress: { _ in trained += 1; return false })
            #expect(sameSummary(rest, summary), "stopped at batch \(stop): \(rest) against \(summary)")
            #expect(sameReports(replayed, epochs), "stopped at batch \(stop): the epoch reports differ")
            #expect(trained == total - stop)
            #expect(bits(resumed.network.parameters) == bits(reference.network.parameters), "stopped at batch \(stop)")
            #expect(resumed.position == nil)
        }
        // A checkpoint is a model file: plain readers load its network; a plain model file is no checkpoint.
        let plain = try ModelFile.load(from: path)
        try ModelFile.save(plain, to: folder.path("plain.nudge"))
        expectError(.format, "without a trainer") { try Trainer.load(from: folder.path("plain.nudge")) }
        expectError(.io) { try Trainer.load(from: folder.path("missing.ckpt")) }
    }

    @Test("a finished run's checkpoint reports the run again without training")
    func finished() throws {
        let folder = try ScratchFolder()
        let path = folder.path("run.ckpt")
        let data = xor(200, seed: 4)
        let trainer = try Trainer(network: try Self.network(), options: Self.options())
        trainer.checkpoint = try CheckpointPlan(path: path)
        let summary = try trainer.fit(data.inputs, labels: data.labels)
        let loaded = try Trainer.load(from: path)
        #expect(loaded.position.map { $0.finished && $0.epochsDone == summary.epochsRun } == true)
        var trained = 0
        let again = try loaded.fit(data.inputs, labels: data.labels, batchProgress: { _ in trained += 1; return false })
        #expect(sameSummary(again, summary) && again.seconds == summary.seconds && trained == 0)
        #expect(bits(loaded.network.parameters) == bits(trainer.network.parameters))
        expectError(.invalidArgument, "200 samples, this call gives 199") {
            try Trainer.load(from: path).fit(Array(data.inputs.dropLast(2)), labels: Array(data.labels.dropLast()))
        }
    }

    /// Trains a group of `size` threads with `layout`, each member on its rows of `data` (all of them,
    /// or its shard of `shards`); returns each rank's weights and summary.
    static func trainGroup(_ data: (inputs: [Float], labels: [Int32]), size: Int, layout: Collective.DataLayout,
                           shards: [Int], sampleWeights: [Float]? = nil) throws -> [(weights: [Float], summary: TrainingSummary)] {
        let group = ThreadGroup(size: size)
        let results = Mutex<[Int: ([Float], TrainingSummary)]>([:])
        let problems = Mutex<[String]>([])
        let finished = DispatchSemaphore(value: 0)
        let options = Self.groupOptions()
        for rank in 0..<size {
            let thread = Thread {
                defer { finished.signal() }
                do {
                    let start = layout == .sharded ? shards[..<rank].reduce(0, +) : 0
                    let count = layout == .sharded ? shards[rank] : data.labels.count
                    // Each member's own network has its own seed: rank 0's weights are the group's.
                    let net = try Network(layerSizes: [2, 12, 2], activations: [.tanh, .softmax], seed: 8 + 100 * UInt64(rank))
                    let trainer = try Trainer(network: net, options: options)
                    trainer.collective = try Collective(rank: rank, size: size, layout: layout) { group.sum($0, rank: rank) }
                    let summary = try trainer.fit(Array(data.inputs[(2 * start)..<(2 * (start + count))]),
                                                  labels: Array(data.labels[start..<(start + count)]),
                                                  weights: sampleWeights.map { Array($0[start..<(start + count)]) })
                    results.withLock { $0[rank] = (net.parameters, summary) }
                } catch {
                    problems.withLock { $0.append("rank \(rank): \(error)") }
                }
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        for rank in 0..<size {
            #expect(finished.wait(timeout: .now() + 180) == .success, "rank \(rank) of \(size) did not finish in 3 minutes")
        }
        let found = problems.withLock { $0 }
        #expect(found.isEmpty, "a group of \(size): \(found)")
        let all = results.withLock { $0 }
        return try (0..<size).map { rank in try #require(all[rank], "rank \(rank) has no result") }
    }

    @Test("a group of two members on two threads trains as one trainer, to float rounding", arguments: Collective.DataLayout.allCases)
    func groupOfTwo(layout: Collective.DataLayout) throws {
        let data = xor(400, seed: 11)
        let alone = try Self.network()
        let summary = try Trainer(network: alone, options: Self.groupOptions()).fit(data.inputs, labels: data.labels)
        let ranks = try Self.trainGroup(data, size: 2, layout: layout, shards: [260, 140])
        #expect(bits(ranks[0].weights) == bits(ranks[1].weights), "the members' weights differ")
        #expect(sameSummary(ranks[0].summary, ranks[1].summary), "the members' summaries differ")
        let scale = alone.parameters.map { abs($0) }.max() ?? 1
        let largest = zip(alone.parameters, ranks[0].weights).map { abs($0 - $1) }.max() ?? 0
        print("a group of two on two threads, \(layout) data: max |dw| / max |w| = \(largest / scale) against one trainer")
        #expect(largest / scale < 1e-5, "\(layout): max |dw| / max |w| = \(largest / scale) against one trainer")
        #expect(ranks[0].summary.epochsRun == summary.epochsRun && ranks[0].summary.bestEpoch == summary.bestEpoch)
        #expect(abs(ranks[0].summary.finalValidationLoss - summary.finalValidationLoss) <= 1e-5 * summary.finalValidationLoss)
    }

    @Test("Collective refuses a rank outside the group and a group size out of range")
    func collectiveArguments() {
        expectError(.invalidArgument, "rank is 2") { try Collective(rank: 2, size: 2) { _ in true } }
        expectError(.invalidArgument, "size is 0") { try Collective(rank: 0, size: 0) { _ in true } }
        expectError(.invalidArgument, "size is 65537") { try Collective(rank: 0, size: 65537) { _ in true } }
        expectError(.invalidArgument, "every_steps") { try CheckpointPlan(path: "x", everySteps: -1) }
        expectError(.invalidArgument, "empty") { try CheckpointPlan(path: "") }
    }
}
