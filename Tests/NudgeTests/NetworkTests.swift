import Foundation
import Nudge
import Testing

@Suite("Network: initialisation and reproducibility")
struct InitialisationTests {
    @Test("the same seed gives bit-identical parameters; different seeds differ")
    func seeds() throws {
        let sizes = [20, 16, 8, 3]
        let acts: [Activation] = [.relu, .tanh, .softmax]
        let a = try Network(layerSizes: sizes, activations: acts, seed: 42)
        let b = try Network(layerSizes: sizes, activations: acts, seed: 42)
        let c = try Network(layerSizes: sizes, activations: acts, seed: 43)
        #expect(a.parameterCount == 20 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3)
        #expect(a.parameterBits == b.parameterBits)
        let weights = (0..<3).flatMap { l in Array(a.weights(layer: l).indices).map { (l, $0) } }
        let differing = weights.filter { a.weights(layer: $0.0)[$0.1] != c.weights(layer: $0.0)[$0.1] }.count
        #expect(Double(differing) > 0.95 * Double(weights.count), "only \(differing) of \(weights.count) weights differ")
        // Creating other networks in between does not disturb the stream of a seed.
        _ = try Network(layerSizes: [100, 100], activations: [.sigmoid], seed: 42)
        let d = try Network(layerSizes: sizes, activations: acts, seed: 42)
        #expect(d.parameterBits == a.parameterBits)
    }

    @Test("SeededGenerator: same seed, same stream")
    func generator() {
        var g1 = SeededGenerator(seed: 7), g2 = SeededGenerator(seed: 7), g3 = SeededGenerator(seed: 8)
        let s1 = (0..<100).map { _ in g1.next() }
        let s2 = (0..<100).map { _ in g2.next() }
        let s3 = (0..<100).map { _ in g3.next() }
        #expect(s1 == s2)
        #expect(s1 != s3)
        #expect(Set(s1).count == 100)
    }

    @Test("He (rectifiers) and Xavier (others) initial weight scales; zero biases", arguments: Activation.allCases)
    func initialScale(_ activation: Activation) throws {
        let fanIn = 784, fanOut = 128
        let net = try Network(layerSizes: [fanIn, fanOut], activations: [activation], seed: 2024)
        let w = net.weights(layer: 0).map(Double.init)
        #expect(w.count == fanIn * fanOut)
        #expect(net.biases(layer: 0).allSatisfy { $0 == 0 })
        let n = Double(w.count)
        let mean = w.reduce(0, +) / n
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n).squareRoot()
        let he = activation == .relu || activation == .leakyRelu
        // He: normal with std sqrt(2/fanIn). Xavier (Glorot uniform): limit sqrt(6/(fanIn+fanOut)), std limit/sqrt(3).
        let expected = he ? (2.0 / Double(fanIn)).squareRoot() : (2.0 / Double(fanIn + fanOut)).squareRoot()
        #expect(abs(std / expected - 1) < 0.02, "std \(std), expected \(expected)")
        #expect(abs(mean) < 4 * expected / n.squareRoot(), "mean \(mean)")
        let largest = w.map(abs).max()!
        if he {
            // A normal distribution has tails: about 0.27% beyond 3 std, nothing bounded.
            let beyond = Double(w.filter { abs($0) > 3 * expected }.count) / n
            #expect(beyond > 0.001 && beyond < 0.005, "fraction beyond 3 std: \(beyond)")
        } else {
            let limit = (6.0 / Double(fanIn + fanOut)).squareRoot()
            #expect(largest <= limit * (1 + 1e-6), "largest \(largest) beyond the Xavier limit \(limit)")
            #expect(largest > 0.99 * limit)
        }
    }

    @Test("copies are independent and keep metadata")
    func copying() throws {
        let net = try Network(layerSizes: [3, 4, 2], activations: [.tanh, .sigmoid], seed: 1)
        try net.setMetadata("v", forKey: "k")
        let copy = try Network(copying: net)
        #expect(copy.parameterBits == net.parameterBits)
        #expect(copy.metadataValue(forKey: "k") == "v")
        try copy.setParameters([Float](repeating: 0.5, count: copy.parameterCount))
        try copy.setMetadata("w", forKey: "k")
        #expect(net.parameters.contains { $0 != 0.5 })
        #expect(net.metadataValue(forKey: "k") == "v")
    }

    @Test("setParameters checks count and finiteness and changes nothing when it fails")
    func setParameters() throws {
        let net = try Network(layerSizes: [2, 2], activations: [.identity], seed: 1)
        let before = net.parameterBits
        expectNudgeError(.shape, "5", "6") { try net.setParameters([1, 2, 3, 4, 5]) }
        expectNudgeError(.notFinite, "parameters[3]") { try net.setParameters([1, 2, 3, .nan, 5, 6]) }
        expectNudgeError(.notFinite, "parameters[0]") { try net.setParameters([-.infinity, 2, 3, 4, 5, 6]) }
        #expect(net.parameterBits == before)
        try net.setParameters([1, 2, 3, 4, 5, 6])
        #expect(net.weights(layer: 0) == [1, 2, 3, 4])
        #expect(net.biases(layer: 0) == [5, 6])
        // Row j of the weight matrix holds the weights into neuron j.
        let expected: [Float] = [1 * 10 + 2 * 100 + 5, 3 * 10 + 4 * 100 + 6]
        #expect(try net.outputs([10, 100]) == expected)
    }

    @Test("metadata keys are byte strings: canonically equivalent spellings are different keys")
    func metadataKeysAreBytes() throws {
        let net = try Network(layerSizes: [2, 2], activations: [.identity], seed: 1)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed) // Swift's String equality would merge them
        try net.setMetadata("one", forKey: composed)
        try net.setMetadata("two", forKey: decomposed)
        #expect(net.metadata.count == 2)
        #expect(net.metadataValue(forKey: composed) == "one")
        #expect(net.metadataValue(forKey: decomposed) == "two")
        let loaded = try ModelFile.decode(try ModelFile.encode(net))
        #expect(loaded.metadata.map(\.key.utf8).map(Array.init) == [Array(composed.utf8), Array(decomposed.utf8)])
    }

    @Test("metadata: set, replace, read, remove, and bad keys")
    func metadata() throws {
        let net = try Network(layerSizes: [2, 2], activations: [.identity], seed: 1)
        try net.setMetadata("1", forKey: "a")
        try net.setMetadata("2", forKey: "b")
        try net.setMetadata("3", forKey: "a")
        #expect(net.metadata.map(\.key) == ["a", "b"])
        #expect(net.metadataValue(forKey: "a") == "3")
        #expect(net.removeMetadata(forKey: "a"))
        #expect(!net.removeMetadata(forKey: "a"))
        #expect(net.metadataValue(forKey: "a") == nil)
        expectNudgeError(.invalidArgument, "empty") { try net.setMetadata("x", forKey: "") }
        let long = String(repeating: "x", count: Network.maxMetadataBytes + 1)
        expectNudgeError(.invalidArgument, "longer") { try net.setMetadata(long, forKey: "k") }
        #expect(net.metadata.count == 1)
    }
}

@Suite("Network: architectures")
struct ArchitectureTests {
    static let large: [([Int], [Activation])] = [
        ([4096, 4096], [.sigmoid]),
        ([1, 4096, 1], [.relu, .identity]),
        ([64, 4096, 4096, 10], [.tanh, .relu, .softmax]),
        (Array(repeating: 32, count: 17), (0..<16).map { (l: Int) -> Activation in l % 2 == 0 ? .tanh : .leakyRelu }),
        ([8] + Array(repeating: 48, count: 15) + [5], Array(repeating: .relu, count: 15) + [.softmax]),
    ]

    @Test("wide (4096) and deep (16 weight layers) networks can be created and predict correctly", arguments: large)
    func largeNetworks(_ sizes: [Int], _ activations: [Activation]) throws {
        let net = try Network(layerSizes: sizes, activations: activations, seed: 11)
        #expect(net.layerSizes == sizes)
        #expect(net.activations == activations)
        #expect(net.weightLayerCount == sizes.count - 1)
        #expect(net.inputSize == sizes.first! && net.outputSize == sizes.last!)
        var expectedCount = 0
        for l in 0..<(sizes.count - 1) { expectedCount += sizes[l] * sizes[l + 1] + sizes[l + 1] }
        #expect(net.parameterCount == expectedCount)
        var rng = TestRandom(seed: 3)
        let rows = 2
        let x = rng.floats(rows * sizes[0], in: -1...1)
        let out = try net.outputs(x)
        #expect(out.count == rows * sizes.last!)
        #expect(out.allSatisfy { $0.isFinite })
        let reference = Reference.predict(net, x)
        let scale = max(reference.map(abs).max()!, 1e-3)
        for i in out.indices {
            #expect(abs(Double(out[i]) - reference[i]) <= 1e-4 * scale, "output \(i): \(out[i]) vs \(reference[i])")
        }
    }

    @Test("invalid architectures throw with the right status and a message naming the problem")
    func invalidArchitectures() throws {
        expectNudgeError(.invalidArgument, "at least 2", "got 0") { try Network(layerSizes: [], activations: [], seed: 1) }
        expectNudgeError(.invalidArgument, "at least 2", "got 1") { try Network(layerSizes: [5], activations: [], seed: 1) }
        expectNudgeError(.invalidArgument, "layer_sizes[1] is 0") { try Network(layerSizes: [3, 0, 2], activations: [.relu, .identity], seed: 1) }
        expectNudgeError(.invalidArgument, "layer_sizes[0] is -4") { try Network(layerSizes: [-4, 2], activations: [.identity], seed: 1) }
        expectNudgeError(.invalidArgument, "layer_sizes[2] is \(Network.maxWidth + 1)") {
            try Network(layerSizes: [3, 2, Network.maxWidth + 1], activations: [.relu, .identity], seed: 1)
        }
        expectNudgeError(.invalidArgument, "activations[0] is softmax") {
            try Network(layerSizes: [3, 4, 2], activations: [.softmax, .identity], seed: 1)
        }
        expectNudgeError(.invalidArgument, "activations[1] is softmax") {
            try Network(layerSizes: [3, 4, 4, 2], activations: [.relu, .softmax, .softmax], seed: 1)
        }
        expectNudgeError(.shape, "need 2 activations, got 1") { try Network(layerSizes: [3, 4, 2], activations: [.relu], seed: 1) }
        expectNudgeError(.shape, "need 1 activations, got 2") { try Network(layerSizes: [3, 2], activations: [.relu, .relu], seed: 1) }
        expectNudgeError(.invalidArgument, "at most \(Network.maxLayers)") {
            try Network(layerSizes: Array(repeating: 1, count: Network.maxLayers + 1),
                        activations: Array(repeating: .identity, count: Network.maxLayers), seed: 1)
        }
        // Too many parameters: refused before anything is allocated.
        expectNudgeError(.outOfMemory, "\(Network.maxParameters) parameters") {
            try Network(layerSizes: [Network.maxWidth, Network.maxWidth], activations: [.identity], seed: 1)
        }
        expectNudgeError(.outOfMemory, "\(Network.maxParameters) parameters") {
            try Network(layerSizes: [65536, 32768, 1], activations: [.relu, .identity], seed: 1)
        }
        // A softmax output layer is fine, and so is a one-unit layer.
        _ = try Network(layerSizes: [1, 1, 2], activations: [.tanh, .softmax], seed: 1)
    }
}

@Suite("Prediction")
struct PredictionTests {
    @Test("predict over many rows equals row-by-row prediction; classify is the argmax")
    func chunking() throws {
        let net = try Network.random([6, 10, 4], [.relu, .softmax], seed: 21)
        var rng = TestRandom(seed: 9)
        let rows = 700
        let x = rng.floats(rows * 6, in: -2...2)
        let all = try net.outputs(x)
        let labels = try net.classes(x)
        for r in stride(from: 0, to: rows, by: 37) {
            let one = try net.outputs(Array(x[(r * 6)..<((r + 1) * 6)]))
            let row = Array(all[(r * 4)..<((r + 1) * 4)])
            #expect(one == row, "row \(r)")
            #expect(Int(labels[r]) == row.indices.max(by: { row[$0] < row[$1] }))
        }
        let reference = Reference.predict(net, x)
        #expect(zip(all, reference).allSatisfy { abs(Double($0) - $1) < 1e-5 })
    }

    @Test("classify with one output thresholds at 0.5")
    func binaryClassify() throws {
        let net = try Network(layerSizes: [1, 1], activations: [.sigmoid], seed: 1)
        try net.setParameters([1, 0])
        #expect(try net.classes([-3, -0.1, 0.1, 3]) == [0, 0, 1, 1])
    }

    @Test("concurrent predictions agree with a serial one")
    func concurrentPredict() async throws {
        let net = try Network.random([16, 32, 5], [.tanh, .softmax], seed: 5)
        var rng = TestRandom(seed: 1)
        let x = rng.floats(300 * 16, in: -1...1)
        let expected = try net.outputs(x)
        let results = try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<8 { group.addTask { try net.outputs(x) } }
            var all: [[Float]] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0 == expected })
    }
}
