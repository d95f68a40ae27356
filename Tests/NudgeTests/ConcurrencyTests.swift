import Foundation
import Nudge
import Synchronization
import Testing

// Networks used from many threads at once: real threads (Foundation's Thread), so that the library's
// own worker pool runs beside them, as it does in a host application. `make test-swift-tsan` runs this
// suite under ThreadSanitizer; it also runs in the plain `swift test`.

/// Problems found on other threads: Swift Testing records issues only on the test's own task, so
/// threads write here and the test reports them afterwards.
final class ThreadProblems: Sendable {
    private let found = Mutex<[String]>([])

    func note(_ problem: String) {
        found.withLock { $0.append(problem) }
    }

    var all: [String] { found.withLock { $0 } }

    /// Records every problem as a test issue, naming the first few.
    func report(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let problems = all
        #expect(problems.isEmpty, "\(what): \(problems.count) problem(s); the first: \(problems.prefix(3).joined(separator: "; "))",
                sourceLocation: sourceLocation)
    }
}

/// A counter several threads share.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// Runs `body(i)` for i in 0..<count, each on its own new thread, all released at once, and returns
/// when every one has finished. A body that throws is noted as a problem.
func onThreads(_ count: Int, problems: ThreadProblems, _ body: @escaping @Sendable (Int) throws -> Void) {
    let ready = SharedCounter()
    let finished = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let thread = Thread {
            ready.value.add(1, ordering: .acquiringAndReleasing)
            while ready.value.load(ordering: .acquiring) < count { sched_yield() }
            do { try body(i) } catch { problems.note("thread \(i): \(error)") }
            finished.signal()
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
    for _ in 0..<count { finished.wait() }
}

@Suite("Threads")
struct ConcurrencyTests {
    /// Inputs of `rows` samples of `width` features in [-1, 1].
    static func inputs(_ rows: Int, _ width: Int, seed: UInt64) -> [Float] {
        var rng = TestRandom(seed: seed)
        return rng.floats(rows * width, in: -1...1)
    }

    @Test("8 threads predicting with one network get the single-threaded results, bit for bit")
    func predictingTogether() throws {
        // 256 rows of this network are ~10^7 multiply-adds, so each large call is split between the
        // pool's threads whenever a caller finds the pool free; single rows never are.
        let net = try Network(layerSizes: [64, 192, 96, 10], activations: [.relu, .tanh, .softmax], seed: 41)
        try net.setMetadata("a,b,c", forKey: "classes")
        let x = Self.inputs(256, 64, seed: 42)
        try net.fitNormalization(x, kind: .perFeature)
        let expected = try net.outputs(x).map(\.bitPattern)
        let expectedClasses = try net.classes(x)
        let single = try (0..<8).map { try net.outputs(Array(x[($0 * 64)..<(($0 + 1) * 64)])).map(\.bitPattern) }
        #expect(expected.count == 256 * 10)
        #expect(Set(expectedClasses).count > 1, "the network should not predict one class for everything")

        let problems = ThreadProblems()
        onThreads(8, problems: problems) { t in
            for iteration in 0..<12 {
                // Every other call a whole batch; in between one row, then a classification.
                let y = try net.outputs(x).map(\.bitPattern)
                if y != expected {
                    let first = y.indices.first { y[$0] != expected[$0] } ?? -1
                    problems.note("thread \(t) iteration \(iteration): output \(first) differs")
                }
                let row = (t + iteration) % 8
                if try net.outputs(Array(x[(row * 64)..<((row + 1) * 64)])).map(\.bitPattern) != single[row] {
                    problems.note("thread \(t) iteration \(iteration): row \(row) predicted alone differs")
                }
                if try net.classes(x) != expectedClasses {
                    problems.note("thread \(t) iteration \(iteration): classes differ")
                }
            }
        }
        problems.report("concurrent predictions")
    }

    /// Trains a fresh network of the given seed on its own data; returns its parameters as bits.
    static func trainAlone(seed: UInt64) throws -> [UInt32] {
        // Batches of 64 rows of 48-128-64-4 are ~7 * 10^5 multiply-adds per product: large enough for
        // the worker pool, small enough to train in well under a second.
        let net = try Network(layerSizes: [48, 128, 64, 4], activations: [.relu, .relu, .softmax], seed: seed)
        var rng = TestRandom(seed: seed &* 31 &+ 7)
        let rows = 512
        let labels = rng.labels(rows, classes: 4)
        let x = rng.floats(rows * 48, in: -1...1).enumerated().map { i, v in
            v + (i % 48 == Int(labels[i / 48]) ? 1.5 : 0)
        }
        var options = TrainingOptions()
        options.epochs = 3
        options.batchSize = 64
        options.learningRate = 0.003
        options.seed = seed
        options.dropout = [0.1, 0.1, 0]
        options.normalization = .global
        let trainer = try Trainer(network: net, options: options)
        let summary = try trainer.fit(x, .labels(labels))
        guard summary.stopReason == .completed else { throw NudgeError(.invalidArgument, "training stopped: \(summary.stopReason)") }
        return net.parameterBits
    }

    @Test("networks trained on parallel threads equal the same networks trained alone")
    func trainingTogether() throws {
        let seeds: [UInt64] = [1, 2, 3, 4]
        let alone = try seeds.map { try Self.trainAlone(seed: $0) }
        #expect(Set(alone).count == seeds.count, "different seeds should give different networks")
        let results = Mutex<[Int: [UInt32]]>([:])
        let problems = ThreadProblems()
        onThreads(seeds.count, problems: problems) { i in
            let bits = try Self.trainAlone(seed: seeds[i])
            results.withLock { $0[i] = bits }
        }
        problems.report("parallel training")
        let together = results.withLock { $0 }
        for (i, seed) in seeds.enumerated() {
            #expect(together[i] == alone[i], "seed \(seed): trained together differs from trained alone")
        }
    }

    @Test("predictions on a clone stay unchanged while another thread trains the original")
    func predictingWhileTraining() throws {
        let net = try Network(layerSizes: [32, 96, 5], activations: [.tanh, .softmax], seed: 7)
        let x = Self.inputs(400, 32, seed: 8)
        var rng = TestRandom(seed: 9)
        let labels = rng.labels(400, classes: 5)
        let clone = try Network(copying: net)
        let before = net.parameterBits
        let expected = try clone.outputs(x).map(\.bitPattern)
        #expect(try net.outputs(x).map(\.bitPattern) == expected, "a clone predicts what its original does")

        let trainingDone = SharedCounter()
        let predictions = SharedCounter()
        let problems = ThreadProblems()
        onThreads(4, problems: problems) { t in
            if t == 0 {
                defer { trainingDone.value.store(1, ordering: .releasing) }
                var options = TrainingOptions()
                options.epochs = 8
                options.batchSize = 32
                options.learningRate = 0.01
                options.seed = 10
                _ = try Trainer(network: net, options: options).fit(x, .labels(labels))
                return
            }
            // At least a few predictions each, and on until the training has finished.
            var round = 0
            while round < 3 || trainingDone.value.load(ordering: .acquiring) == 0 {
                if try clone.outputs(x).map(\.bitPattern) != expected {
                    problems.note("thread \(t) round \(round): the clone's predictions changed")
                }
                predictions.value.add(1, ordering: .relaxed)
                round += 1
            }
        }
        problems.report("predicting on a clone during training")
        #expect(predictions.value.load(ordering: .relaxed) >= 9)
        #expect(net.parameterBits != before, "training should have changed the original")
        #expect(clone.parameterBits == before, "training the original must not change the clone")
        #expect(try clone.outputs(x).map(\.bitPattern) == expected)
    }

    @Test("threads saving and loading different files each read back what they wrote")
    func savingAndLoadingTogether() throws {
        let folder = try TemporaryFolder()
        let threads = 8
        let networks = try (0..<threads).map { i in
            let net = try Network(layerSizes: [20 + i, 16, 3], activations: [.relu, .softmax], seed: UInt64(100 + i))
            try net.setMetadata("network \(i)", forKey: "name")
            try net.fitNormalization(Self.inputs(10, 20 + i, seed: UInt64(200 + i)), kind: i % 2 == 0 ? .global : .perFeature)
            return net
        }
        let encoded = try networks.map { try ModelFile.encode($0) }
        #expect(Set(encoded).count == threads)
        let problems = ThreadProblems()
        let paths = (0..<threads).map { folder.file("model-\($0).nudge") }
        onThreads(threads, problems: problems) { i in
            let path = paths[i]
            let net = networks[i]
            for round in 0..<10 {
                try ModelFile.save(net, to: path)
                let loaded = try ModelFile.load(from: path)
                if loaded.parameterBits != net.parameterBits || loaded.layerSizes != net.layerSizes
                    || loaded.activations != net.activations || loaded.normalization != net.normalization
                    || loaded.metadataValue(forKey: "name") != "network \(i)" {
                    problems.note("thread \(i) round \(round): the loaded network differs from the saved one")
                }
                if try ModelFile.encode(loaded) != encoded[i] {
                    problems.note("thread \(i) round \(round): the loaded network encodes differently")
                }
            }
        }
        problems.report("concurrent saves and loads")
        // Every save renamed its temporary file away.
        #expect(try folder.contents() == (0..<threads).map { "model-\($0).nudge" }.sorted())
    }
}
