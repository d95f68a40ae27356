// Nudge from Swift: train a small network on a generated problem (XOR with a margin), measure it on
// fresh samples, save it, load it back and check that the copy predicts the same. Exits with 1 if the
// accuracy is too low or the copy differs, so `make example-swift` doubles as a test.
//
//     swift run -c release nudge-swift-example
import Foundation
import Nudge

/// Points in [-1, 1]^2 away from the axes, class 1 when both coordinates have the same sign:
/// separable by a small network, not by a line.
func xorSamples(_ count: Int, seed: UInt64) -> (inputs: [Float], labels: [Int32]) {
    var rng = SeededGenerator(seed: seed)
    var inputs: [Float] = [], labels: [Int32] = []
    while labels.count < count {
        let x = Float.random(in: -1...1, using: &rng), y = Float.random(in: -1...1, using: &rng)
        guard abs(x) > 0.1, abs(y) > 0.1 else { continue }
        inputs += [x, y]
        labels.append(x * y > 0 ? 1 : 0)
    }
    return (inputs, labels)
}

func run() throws -> Bool {
    let train = xorSamples(1000, seed: 1)
    let test = xorSamples(500, seed: 2)

    // 2 inputs, 16 tanh units, 2 classes.
    let net = try Network(layerSizes: [2, 16, 2], activations: [.tanh, .softmax], seed: 42)
    var options = TrainingOptions()
    options.epochs = 30
    options.learningRate = 0.01
    options.validationFraction = 0.2   // measured after every epoch
    let trainer = try Trainer(network: net, options: options)
    let summary = try trainer.fit(train.inputs, labels: train.labels) { report in
        if report.epoch % 10 == 0 {
            print("epoch \(report.epoch)  validation accuracy \(String(format: "%.1f%%", 100 * report.validationAccuracy))")
        }
        return false   // true would stop training
    }
    let (loss, accuracy) = try net.evaluate(test.inputs, labels: test.labels)
    print("trained \(summary.epochsRun) epochs; test accuracy \(String(format: "%.1f%%", 100 * accuracy)) (loss \(String(format: "%.4f", loss)))")

    try net.setMetadata("different signs,same sign", forKey: "classes")
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("xor-\(getpid()).nudge").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try ModelFile.save(net, to: path)
    let loaded = try ModelFile.load(from: path)
    let fromBytes = try ModelFile.decode(try ModelFile.encode(net))

    let expected = try net.predict(test.inputs).map(\.bitPattern)
    let sameFromFile = try loaded.predict(test.inputs).map(\.bitPattern) == expected
    let sameFromBytes = try fromBytes.predict(test.inputs).map(\.bitPattern) == expected
    let classes = try loaded.classify([0.5, 0.5, 0.5, -0.5])
    print("reloaded from \(path): predicts \(sameFromFile ? "the same" : "DIFFERENTLY"); "
          + "from bytes: \(sameFromBytes ? "the same" : "DIFFERENTLY"); (0.5, 0.5) -> \(classes[0]), (0.5, -0.5) -> \(classes[1])")
    print("classes: \(loaded.metadataValue(forKey: "classes") ?? "none")")

    guard accuracy >= 0.95 else {
        print("error: test accuracy \(accuracy) is below 95%")
        return false
    }
    guard sameFromFile, sameFromBytes, classes == [1, 0] else {
        print("error: the reloaded network does not predict as the original")
        return false
    }
    return true
}

do {
    exit(try run() ? 0 : 1)
} catch {
    print("error: \(error)")
    exit(1)
}
