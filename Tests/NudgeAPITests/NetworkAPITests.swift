import Foundation
import Nudge
import Testing

/// A 2-2 identity layer with known weights: outputs (x0 + 2 x1 + 0.5, 3 x0 + 4 x1 - 1).
private func knownLinear() throws -> Network {
    let net = try Network(layerSizes: [2, 2], activations: [.identity], seed: 0)
    try net.setParameters([1, 2, 3, 4, 0.5, -1])
    return net
}

@Suite("Public API: networks")
struct NetworkAPITests {
    @Test("a new network has the architecture asked for, and the same seed gives the same weights")
    func create() throws {
        let net = try Network(layerSizes: [3, 4, 2], activations: [.relu, .softmax], seed: 9)
        #expect(net.layerSizes == [3, 4, 2])
        #expect(net.activations == [.relu, .softmax])
        #expect(net.inputSize == 3)
        #expect(net.outputSize == 2)
        #expect(net.weightLayerCount == 2)
        #expect(net.parameterCount == 3 * 4 + 4 + 4 * 2 + 2)
        #expect(net.parameters.count == net.parameterCount)
        #expect(net.biases(layer: 0) == [0, 0, 0, 0])
        let twin = try Network(layerSizes: [3, 4, 2], activations: [.relu, .softmax], seed: 9)
        #expect(bits(twin.parameters) == bits(net.parameters))
        let other = try Network(layerSizes: [3, 4, 2], activations: [.relu, .softmax], seed: 10)
        #expect(bits(other.parameters) != bits(net.parameters))

        expectError(.invalidArgument, "softmax") { try Network(layerSizes: [3, 4, 2], activations: [.softmax, .softmax], seed: 1) }
        expectError(.shape, "activations") { try Network(layerSizes: [3, 4, 2], activations: [.relu], seed: 1) }
        expectError(.invalidArgument, "at least 2") { try Network(layerSizes: [3], activations: [], seed: 1) }
    }

    @Test("a copy is independent of its original")
    func copy() throws {
        let net = try Network(layerSizes: [2, 3, 1], activations: [.tanh, .sigmoid], seed: 4)
        try net.setMetadata("yes", forKey: "copied")
        let copy = try Network(copying: net)
        #expect(bits(copy.parameters) == bits(net.parameters))
        #expect(copy.metadataValue(forKey: "copied") == "yes")
        try copy.setParameters([Float](repeating: 0.25, count: copy.parameterCount))
        #expect(net.parameters.contains { $0 != 0.25 })
    }

    @Test("predict and classify give one row per sample, with the layer's values")
    func predictAndClassify() throws {
        let net = try knownLinear()
        let outputs = try net.predict([1, 1, 0, 0, -1, 0])
        #expect(outputs == [3.5, 6, 0.5, -1, -0.5, -4])
        #expect(try net.classify([1, 1, 0, 0, -1, 0]) == [1, 0, 0])
        #expect(try net.predict([]) == [])
        #expect(try net.classify([]) == [])

        let inputs: [Float] = [1, 1, 0, 0]
        var out = [Float](repeating: .nan, count: 5)
        var labels = [Int32](repeating: -1, count: 2)
        try inputs.withUnsafeBufferPointer { x in
            try out.withUnsafeMutableBufferPointer { try net.predict(x, into: $0) }
            try labels.withUnsafeMutableBufferPointer { try net.classify(x, into: $0) }
        }
        #expect(Array(out[0..<4]) == [3.5, 6, 0.5, -1])
        #expect(out[4].isNaN, "only the rows asked for are written")
        #expect(labels == [1, 0])

        expectError(.shape, "not a multiple of the input size 2") { try net.predict([1, 2, 3]) }
        expectError(.shape) { try net.classify([1]) }
        expectError(.capacity, "outputs") {
            var small = [Float](repeating: 0, count: 3)
            try inputs.withUnsafeBufferPointer { x in try small.withUnsafeMutableBufferPointer { try net.predict(x, into: $0) } }
        }
        expectError(.capacity, "labels") {
            var small = [Int32](repeating: 0, count: 1)
            try inputs.withUnsafeBufferPointer { x in try small.withUnsafeMutableBufferPointer { try net.classify(x, into: $0) } }
        }
    }

    @Test("a single sigmoid output classifies at 0.5")
    func singleOutput() throws {
        let net = try Network(layerSizes: [1, 1], activations: [.sigmoid], seed: 0)
        try net.setParameters([1, 0])
        #expect(try net.classify([-2, 2, 0]) == [0, 1, 1])
        let p = try net.predict([0])
        #expect(p == [0.5])
    }

    @Test("regressionMetrics gives MSE, MAE and R² averaged over the outputs, never NaN")
    func regressionMetrics() throws {
        let net = try knownLinear()
        // Outputs (3.5, 6) and (0.5, -1) against (3.5, 5) and (0, -1): errors 0, 1, 0.5, 0. R² per
        // output: 1 - 0.25 / 6.125 and 1 - 1 / 18.
        let m = try net.regressionMetrics([1, 1, 0, 0], targets: [3.5, 5, 0, -1])
        #expect(abs(m.meanSquaredError - 0.3125) < 1e-12)
        #expect(abs(m.meanAbsoluteError - 0.375) < 1e-12)
        #expect(abs(m.r2 - (2 - 0.25 / 6.125 - 1.0 / 18) / 2) < 1e-12)
        // Constant targets: 1 when matched exactly, else 0; one sample has constant targets.
        let one = try net.regressionMetrics([1, 1], targets: [3.5, 5])
        #expect(one.r2 == 0.5 && one.meanSquaredError == 0.5)
        let inputs: [Float] = [1, 1, 0, 0], targets: [Float] = [3.5, 5, 0, -1]
        let byBuffers = try inputs.withUnsafeBufferPointer { x in
            try targets.withUnsafeBufferPointer { try net.regressionMetrics(x, targets: $0) }
        }
        #expect(byBuffers == m)
        expectError(.shape, "targets has 3 values") { try net.regressionMetrics([1, 1, 0, 0], targets: [0, 0, 1]) }
        expectError(.invalidArgument, "no samples") { try net.regressionMetrics([], targets: []) }
        expectError(.notFinite, "targets row 0, column 1 is nan") { try net.regressionMetrics([1, 1], targets: [0, .nan]) }
    }

    @Test("a softmax output of one unit is refused: it would always predict class 1")
    func softmaxOfOneUnit() throws {
        expectError(.invalidArgument, "layer_sizes[2] is 1, but a softmax output needs at least 2 units") {
            try Network(layerSizes: [3, 4, 1], activations: [.relu, .softmax], seed: 0)
        }
        _ = try Network(layerSizes: [3, 4, 1], activations: [.relu, .sigmoid], seed: 0)
    }

    @Test("cross-entropy targets outside 0 to 1 are refused, naming the value and the range")
    func crossEntropyTargets() throws {
        let sigmoid = try Network(layerSizes: [2, 1], activations: [.sigmoid], seed: 0)
        let message = "targets row 1, column 0 is 5.0; cross-entropy needs targets from 0 to 1"
        expectError(.invalidArgument, message) { try sigmoid.evaluate([0, 1, 1, 0], targets: [1, 5]) }
        expectError(.invalidArgument, message) { try sigmoid.gradient([0, 1, 1, 0], targets: [1, 5]) }
        let trainer = try Trainer(network: sigmoid)
        expectError(.invalidArgument, message) { try trainer.fit([0, 1, 1, 0], targets: [1, 5]) }
        expectError(.invalidArgument, message) { try trainer.step([0, 1, 1, 0], targets: [1, 5]) }
        expectError(.invalidArgument, "targets row 0, column 0 is -3.0") { try trainer.step([0, 1, 1, 0], targets: [-3, 0]) }
        _ = try sigmoid.evaluate([0, 1, 1, 0], targets: [1, 5], loss: .meanSquaredError)
    }

    @Test("evaluate gives the mean loss and the accuracy, from labels or target rows")
    func evaluate() throws {
        let net = try knownLinear()
        // Outputs (3.5, 6) and (0.5, -1); squared errors 0 + 1 and 0.25 + 0, mean 0.625.
        let (loss, accuracy) = try net.evaluate([1, 1, 0, 0], targets: [3.5, 5, 0, -1], loss: .meanSquaredError)
        #expect(abs(loss - 0.625) < 1e-6)
        // Identity outputs with target rows are a regression: no accuracy (regressionMetrics measures it).
        #expect(accuracy.isNaN)
        // Labels say the outputs are class scores: classes 1 and 0 are predicted.
        let half = try net.evaluate([1, 1, 0, 0], labels: [1, 1], loss: .meanSquaredError)
        #expect(half.accuracy == 0.5)

        let softmax = try Network(layerSizes: [2, 3], activations: [.softmax], seed: 0)
        // Zero weights: every class has probability 1/3, so the loss is log 3.
        try softmax.setParameters([Float](repeating: 0, count: softmax.parameterCount))
        let byLabels = try softmax.evaluate([1, 2, 3, 4], labels: [2, 0])
        #expect(abs(byLabels.loss - Foundation.log(3)) < 1e-6)
        let byRows = try softmax.evaluate([1, 2, 3, 4], targets: oneHot([2, 0], classes: 3))
        #expect(byRows.loss == byLabels.loss)
        let inputs: [Float] = [1, 2, 3, 4], labels: [Int32] = [2, 0]
        let byBuffers = try inputs.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { try softmax.evaluate(x, labels: $0) }
        }
        #expect(byBuffers == byLabels)

        expectError(.invalidArgument, "labels[1] is 3") { try softmax.evaluate([1, 2, 3, 4], labels: [0, 3]) }
        expectError(.shape, "labels has 1 values; 2 samples need 2") { try softmax.evaluate([1, 2, 3, 4], labels: [0]) }
        expectError(.shape, "targets has 3 values") { try softmax.evaluate([1, 2, 3, 4], targets: [0, 0, 1]) }
        expectError(.invalidArgument, "no samples") { try softmax.evaluate([], labels: []) }
        expectError(.notFinite) { try softmax.evaluate([.nan, 1], labels: [0]) }
        expectError(.invalidArgument) { try softmax.evaluate([1, 2], labels: [0], loss: .sigmoidBinaryCrossEntropy) }
    }

    @Test("the gradient matches central finite differences of the loss")
    func gradient() throws {
        let net = try Network(layerSizes: [3, 4, 2], activations: [.tanh, .softmax], seed: 21)
        try net.setParameters(randomFloats(net.parameterCount, in: -0.8...0.8, seed: 5))
        let inputs = randomFloats(5 * 3, in: -1...1, seed: 6)
        let labels: [Int32] = [0, 1, 1, 0, 1]
        let (loss, g) = try net.gradient(inputs, labels: labels)
        #expect(g.count == net.parameterCount)
        #expect(abs(loss - (try net.evaluate(inputs, labels: labels).loss)) < 1e-9)

        let probe = try Network(copying: net)
        let h: Float = 1e-2
        for i in 0..<net.parameterCount {
            var p = net.parameters
            p[i] += h
            try probe.setParameters(p)
            let up = try probe.evaluate(inputs, labels: labels).loss
            p[i] -= 2 * h
            try probe.setParameters(p)
            let down = try probe.evaluate(inputs, labels: labels).loss
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(g[i])) <= 2e-3 + 1e-2 * abs(numeric), "parameter \(i): \(g[i]) vs \(numeric)")
        }

        // Target rows give the same gradient as the labels they encode; buffers the same as arrays.
        let rows = oneHot(labels, classes: 2)
        #expect(bits(try net.gradient(inputs, targets: rows).gradient) == bits(g))
        var out = [Float](repeating: .nan, count: net.parameterCount + 1)
        let value = try inputs.withUnsafeBufferPointer { x in
            try rows.withUnsafeBufferPointer { y in
                try out.withUnsafeMutableBufferPointer { try net.gradient(x, targets: y, into: $0) }
            }
        }
        #expect(value == loss)
        #expect(bits(Array(out.prefix(net.parameterCount))) == bits(g))
        #expect(out.last!.isNaN)
        expectError(.capacity, "gradient") {
            var small = [Float](repeating: 0, count: 3)
            return try inputs.withUnsafeBufferPointer { x in
                try labels.withUnsafeBufferPointer { y in
                    try small.withUnsafeMutableBufferPointer { try net.gradient(x, labels: y, into: $0) }
                }
            }
        }
    }

    @Test("parameters go out and back in, as arrays and through buffers, in the documented order")
    func parameters() throws {
        let net = try Network(layerSizes: [2, 3, 1], activations: [.relu, .identity], seed: 3)
        let values = (0..<net.parameterCount).map { Float($0) / 10 }
        try net.setParameters(values)
        #expect(net.parameters == values)
        // Layer 0: 3 x 2 weights, then 3 biases; layer 1: 1 x 3 weights, then 1 bias.
        #expect(net.weights(layer: 0) == Array(values[0..<6]))
        #expect(net.biases(layer: 0) == Array(values[6..<9]))
        #expect(net.weights(layer: 1) == Array(values[9..<12]))
        #expect(net.biases(layer: 1) == [values[12]])

        let reversed = Array(values.reversed())
        try reversed.withUnsafeBufferPointer { try net.setParameters($0) }
        var copied = [Float](repeating: 0, count: net.parameterCount)
        try copied.withUnsafeMutableBufferPointer { try net.copyParameters(into: $0) }
        #expect(copied == reversed)

        expectError(.shape, "parameters has 2 values") { try net.setParameters([1, 2]) }
        var bad = values
        bad[4] = .infinity
        expectError(.notFinite, "parameters[4]") { try net.setParameters(bad) }
        #expect(net.parameters == reversed, "a failed set leaves the parameters as they were")
        expectError(.capacity) {
            var small = [Float](repeating: 0, count: 2)
            try small.withUnsafeMutableBufferPointer { try net.copyParameters(into: $0) }
        }
    }

    @Test("metadata is set, replaced, read in order and removed")
    func metadata() throws {
        let net = try Network(layerSizes: [2, 2], activations: [.softmax], seed: 1)
        try net.setMetadata("cat,dog", forKey: "classes")
        try net.setMetadata("1", forKey: "version")
        try net.setMetadata("cat,dog,bird", forKey: "classes")
        #expect(net.metadata.map(\.key) == ["classes", "version"])
        #expect(net.metadataValue(forKey: "classes") == "cat,dog,bird")
        #expect(net.metadataValue(forKey: "missing") == nil)
        #expect(net.removeMetadata(forKey: "version"))
        #expect(!net.removeMetadata(forKey: "version"))
        #expect(net.metadata.count == 1)
        expectError(.invalidArgument, "empty") { try net.setMetadata("x", forKey: "") }
    }

    @Test("the input normalisation is set, fitted, applied to predictions and removed")
    func normalization() throws {
        let net = try Network(layerSizes: [2, 2], activations: [.identity], seed: 0)
        try net.setParameters([1, 0, 0, 1, 0, 0])
        #expect(net.normalization == nil)
        try net.setNormalization(InputNormalization(offset: [1, 2], scale: [0.5, 2]))
        #expect(try net.predict([3, 4]) == [1, 4])
        #expect(net.normalization?.offset == [1, 2])

        try net.fitNormalization([1, 2, 3, 4], kind: .global)
        let global = try #require(net.normalization)
        #expect(global.offset == [2.5])
        #expect(abs(global.scale[0] - 1 / Float(1.25).squareRoot()) < 1e-6)

        let samples: [Float] = [1, 2, 3, 4]
        try samples.withUnsafeBufferPointer { try net.fitNormalization($0, kind: .perFeature) }
        #expect(net.normalization?.offset == [2, 3])
        #expect(net.normalization?.scale == [1, 1])
        #expect(try net.predict([2, 3]) == [0, 0])

        try net.setNormalization(nil)
        #expect(try net.predict([2, 3]) == [2, 3])
        expectError(.shape, "normalisation has 3 values") {
            try net.setNormalization(InputNormalization(offset: [0, 0, 0], scale: [1, 1, 1]))
        }
        expectError(.shape) { try InputNormalization(offset: [0], scale: [1, 2]) }
        expectError(.notFinite) { try InputNormalization(offset: [.nan], scale: [1]) }
        expectError(.shape, "multiple") { try net.fitNormalization([1, 2, 3], kind: .global) }
        #expect(InputNormalization.Kind.perFeature.name == "per_feature")
    }
}

