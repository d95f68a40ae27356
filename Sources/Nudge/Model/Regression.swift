/// How close a network's outputs come to target values: the measures of a regression, where the
/// accuracy of ``Network/evaluate(_:targets:loss:)`` means nothing.
public struct RegressionMetrics: Sendable, Equatable {
    /// The mean of (output - target)^2 over every sample and output (the ``Loss/meanSquaredError``
    /// loss divided by the number of outputs).
    public var meanSquaredError: Double
    /// The mean of |output - target| over every sample and output.
    public var meanAbsoluteError: Double
    /// The coefficient of determination, 1 - (sum of squared errors) / (sum of squared deviations of
    /// the targets from their mean), computed for each output and averaged with equal weights. 1 is a
    /// perfect fit, 0 does as well as always predicting the mean, below 0 does worse. An output whose
    /// targets are all the same (so also a single sample) counts 1 when every output matches them
    /// exactly and 0 otherwise, so the value is never NaN.
    public var r2: Double

    public init(meanSquaredError: Double, meanAbsoluteError: Double, r2: Double) {
        self.meanSquaredError = meanSquaredError
        self.meanAbsoluteError = meanAbsoluteError
        self.r2 = r2
    }
}

extension Activation {
    /// Whether an output layer with this activation gives class scores (sigmoid, softmax), for which
    /// an accuracy means something; any other output layer is a regression.
    public var isClassifierOutput: Bool { self == .sigmoid || self == .softmax }
}

extension Network {
    /// Whether an accuracy means something for these targets: class labels, or target rows on a
    /// classifier's output layer. Evaluation and training reports give NaN otherwise.
    func measuresAccuracy(_ targets: Targets) -> Bool {
        if case .labels = targets { return true }
        return activations[weightLayerCount - 1].isClassifierOutput
    }

    /// MSE, MAE and R² of the network's outputs over `rows` samples with target rows of
    /// ``outputSize`` values. Reads only the network, as `predict` does.
    package func regressionMetrics(_ inputs: UnsafePointer<Float>, targets y: UnsafePointer<Float>,
                                   rows: Int) throws(NudgeError) -> RegressionMetrics {
        guard rows > 0 else { throw .invalid("there are no samples; evaluation needs at least one") }
        try validate(inputs: inputs, targets: .dense(y), rows: rows)
        let width = outputSize
        // Per output: the targets' mean, then the sums of squared errors and of squared deviations.
        let sums = try HeapBuffer<Double>(count: 3 * width, zeroed: true)
        let mean = sums.pointer, squaredErrors = sums.pointer + width, deviations = sums.pointer + 2 * width
        for r in 0..<rows {
            for j in 0..<width { mean[j] += Double(y[r * width + j]) }
        }
        for j in 0..<width { mean[j] /= Double(rows) }
        let chunk = min(rows, rowsPerChunk)
        let outputs = try FloatBuffer(count: chunk * width, zeroed: false)
        var absoluteErrors = 0.0
        var start = 0
        while start < rows {
            let n = min(chunk, rows - start)
            try predict(inputs + start * inputSize, rows: n, into: outputs.pointer)
            for i in 0..<(n * width) {
                let j = i % width, target = Double(y[start * width + i])
                let error = Double(outputs.pointer[i]) - target
                squaredErrors[j] += error * error
                absoluteErrors += abs(error)
                deviations[j] += (target - mean[j]) * (target - mean[j])
            }
            start += n
        }
        var squared = 0.0, r2 = 0.0
        for j in 0..<width {
            squared += squaredErrors[j]
            if deviations[j] > 0 {
                r2 += 1 - squaredErrors[j] / deviations[j]
            } else {
                r2 += squaredErrors[j] == 0 ? 1 : 0
            }
        }
        let count = Double(rows) * Double(width)
        guard squared.isFinite, absoluteErrors.isFinite else {
            throw NudgeError(.notFinite, "the squared error is \(squared / count): the network's outputs overflow on these inputs")
        }
        return RegressionMetrics(meanSquaredError: squared / count, meanAbsoluteError: absoluteErrors / count,
                                 r2: r2 / Double(width))
    }
}
