// MARK: - Prediction, evaluation and gradients
import Nudge

// @c-section predict

/// Checks a batch's size against the network and returns `(rows, rows x input size)`.
private func batchShape(_ net: Network, _ sample_count: UInt) throws(NudgeError) -> Int {
    let rows = try callerCount(sample_count, "sample_count")
    _ = try elements(rows, net.inputSize, "inputs")
    _ = try elements(rows, net.outputSize, "outputs")
    return rows
}

/// Runs samples through the network and writes the output layer's values.
/// NaN or infinite inputs give NaN or infinite outputs; they are not checked, for speed.
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of nudge_network_input_size() floats, row-major.
/// @param[in] sample_count Samples (rows); 0 does nothing (inputs and outputs may then be NULL).
/// @param[out] outputs Receives sample_count rows of nudge_network_output_size() floats; must not
///             overlap the sample_count rows of inputs (no prediction in place).
/// @param[in] output_capacity Floats outputs can hold.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also when outputs overlap inputs), NUDGE_ERR_CAPACITY,
///         NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: reads the network only; any number of threads may predict with one network at once.
@_cdecl("nudge_predict")
public func nudge_predict(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ sample_count: UInt,
                          _ outputs: UnsafeMutablePointer<Float>?, _ output_capacity: UInt) -> nudge_status {
    guarded("nudge_predict") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        guard sample_count > 0 else { return }
        let x = try required(inputs, "inputs")
        let y = try required(outputs, "outputs")
        let rows = try batchShape(net, sample_count)
        try checkCapacity(output_capacity, rows * net.outputSize, "output_capacity")
        try net.predict(x, rows: rows, into: y)
    }
}

/// Writes each sample's class: the index of its largest output (for a single output, 1 if it is at
/// least 0.5, else 0).
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of nudge_network_input_size() floats, row-major.
/// @param[in] sample_count Samples (rows); 0 does nothing (inputs and labels may then be NULL).
/// @param[out] labels Receives sample_count class indices; must not overlap the sample_count rows
///             of inputs.
/// @param[in] label_capacity Elements labels can hold.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also when labels overlap inputs), NUDGE_ERR_CAPACITY,
///         NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_classify")
public func nudge_classify(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ sample_count: UInt,
                           _ labels: UnsafeMutablePointer<Int32>?, _ label_capacity: UInt) -> nudge_status {
    guarded("nudge_classify") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        guard sample_count > 0 else { return }
        let x = try required(inputs, "inputs")
        let out = try required(labels, "labels")
        let rows = try batchShape(net, sample_count)
        try checkCapacity(label_capacity, rows, "label_capacity")
        try net.classify(x, rows: rows, into: out)
    }
}

/// Measures the mean loss and the accuracy on samples with target vectors.
/// Accuracy counts samples whose largest output and largest target are at the same index (for a
/// single output: both on the same side of 0.5). It is defined for classifiers only: for a
/// regression network (an output layer other than sigmoid or softmax) it is NaN; measure those with
/// nudge_evaluate_regression(). A cross-entropy loss needs targets from 0 to 1.
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] loss A NUDGE_LOSS_ value.
/// @param[out] out_loss Receives the mean loss; may be NULL.
/// @param[out] out_accuracy Receives the accuracy in [0, 1], or NaN for a regression network; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also for a target outside 0 to 1 with a
///         cross-entropy loss), NUDGE_ERR_NOT_FINITE (NaN or infinite inputs or targets, or a loss
///         that overflows), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_evaluate")
public func nudge_evaluate(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                           _ sample_count: UInt, _ loss: nudge_loss,
                           _ out_loss: UnsafeMutablePointer<Double>?, _ out_accuracy: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_evaluate") { () throws(NudgeError) in
        try evaluation(network, inputs, { () throws(NudgeError) in .dense(try required(targets, "targets")) }, nil,
                       sample_count, loss, out_loss, out_accuracy)
    }
}

/// Measures the mean loss and the accuracy on samples with class labels (0 to output size - 1;
/// 0 or 1 for a single output).
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] loss A NUDGE_LOSS_ value.
/// @param[out] out_loss Receives the mean loss; may be NULL.
/// @param[out] out_accuracy Receives the fraction classified correctly; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also for labels out of range), NUDGE_ERR_NOT_FINITE
///         (NaN or infinite inputs, or a loss that overflows), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_evaluate_labels")
public func nudge_evaluate_labels(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                  _ sample_count: UInt, _ loss: nudge_loss,
                                  _ out_loss: UnsafeMutablePointer<Double>?, _ out_accuracy: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_evaluate_labels") { () throws(NudgeError) in
        try evaluation(network, inputs, { () throws(NudgeError) in .labels(try required(labels, "labels")) }, nil,
                       sample_count, loss, out_loss, out_accuracy)
    }
}

/// Computes the gradient of the mean loss over a batch with respect to every parameter: the vector
/// whose negative, -grad C(W), says how to nudge each weight to lower the cost. The network is not changed.
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] loss A NUDGE_LOSS_ value.
/// @param[out] gradient Receives nudge_network_parameter_count() floats, in parameter order.
/// @param[in] gradient_capacity Floats gradient can hold.
/// @param[out] out_loss Receives the mean loss; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also for a target outside 0 to 1 with a
///         cross-entropy loss), NUDGE_ERR_CAPACITY, NUDGE_ERR_NOT_FINITE (NaN or infinite inputs or
///         targets, or a loss or gradient that overflows; gradient is then untouched),
///         NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_gradient")
public func nudge_gradient(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                           _ sample_count: UInt, _ loss: nudge_loss, _ gradient: UnsafeMutablePointer<Float>?,
                           _ gradient_capacity: UInt, _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_gradient") { () throws(NudgeError) in
        try gradientCall(network, inputs, targets, nil, sample_count, loss, gradient, gradient_capacity, out_loss)
    }
}

/// Measures the weighted mean loss and the weighted accuracy on samples with target vectors, one
/// weight each: sum(w * loss) / sum(w), and the weight of the samples classified correctly over
/// sum(w). A sample of weight 0 counts as absent, one of weight 2 as two copies; NULL weights (all
/// 1) give nudge_evaluate()'s results. Accuracy as nudge_evaluate() counts it (NaN for a regression network).
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] weights sample_count weights, each finite and 0 or more, not all 0; or NULL.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] loss A NUDGE_LOSS_ value.
/// @param[out] out_loss Receives the weighted mean loss; may be NULL.
/// @param[out] out_accuracy Receives the weighted accuracy in [0, 1], or NaN for a regression
///             network; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also for a target outside 0 to 1 with a
///         cross-entropy loss, a negative weight, or weights all 0), NUDGE_ERR_NOT_FINITE (NaN or
///         infinite inputs, targets or weights, or a loss that overflows), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_evaluate_weighted")
public func nudge_evaluate_weighted(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                    _ weights: UnsafePointer<Float>?, _ sample_count: UInt, _ loss: nudge_loss,
                                    _ out_loss: UnsafeMutablePointer<Double>?,
                                    _ out_accuracy: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_evaluate_weighted") { () throws(NudgeError) in
        try evaluation(network, inputs, { () throws(NudgeError) in .dense(try required(targets, "targets")) }, weights,
                       sample_count, loss, out_loss, out_accuracy)
    }
}

/// Measures the weighted mean loss and the weighted accuracy on samples with class labels, one weight
/// each, as nudge_evaluate_weighted() does.
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] weights sample_count weights, each finite and 0 or more, not all 0; or NULL.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] loss A NUDGE_LOSS_ value.
/// @param[out] out_loss Receives the weighted mean loss; may be NULL.
/// @param[out] out_accuracy Receives the weighted fraction classified correctly; may be NULL.
/// @return As nudge_evaluate_weighted(); labels out of range give NUDGE_ERR_INVALID_ARGUMENT.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_evaluate_labels_weighted")
public func nudge_evaluate_labels_weighted(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?,
                                           _ labels: UnsafePointer<Int32>?, _ weights: UnsafePointer<Float>?,
                                           _ sample_count: UInt, _ loss: nudge_loss,
                                           _ out_loss: UnsafeMutablePointer<Double>?,
                                           _ out_accuracy: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_evaluate_labels_weighted") { () throws(NudgeError) in
        try evaluation(network, inputs, { () throws(NudgeError) in .labels(try required(labels, "labels")) }, weights,
                       sample_count, loss, out_loss, out_accuracy)
    }
}

/// The evaluation functions' checks (in the order their callers have always seen) and the evaluation;
/// `targets` reads the caller's targets or labels, which must not be NULL.
private func evaluation(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: () throws(NudgeError) -> Targets,
                        _ weights: UnsafePointer<Float>?, _ sampleCount: UInt, _ loss: nudge_loss,
                        _ outLoss: UnsafeMutablePointer<Double>?, _ outAccuracy: UnsafeMutablePointer<Double>?) throws(NudgeError) {
    let net = try borrowNetwork(network)
    let x = try required(inputs, "inputs")
    let y = try targets()
    let rows = try batchShape(net, sampleCount)
    _ = try requiredSamples(sampleCount, for: "evaluation")
    let result = try net.evaluate(x, targets: y, weights: weights, rows: rows, loss: try Loss.decode(loss, "loss"))
    outLoss?.pointee = result.loss
    outAccuracy?.pointee = result.accuracy
}

/// Computes the gradient of the weighted mean loss over a batch, sum(w * loss) / sum(w), with
/// respect to every parameter; as nudge_gradient() with a weight per sample (a sample of weight 0
/// counts as absent, one of weight 2 as two copies; NULL weights give nudge_gradient()'s result).
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] weights sample_count weights, each finite and 0 or more, not all 0; or NULL.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] loss A NUDGE_LOSS_ value.
/// @param[out] gradient Receives nudge_network_parameter_count() floats, in parameter order.
/// @param[in] gradient_capacity Floats gradient can hold.
/// @param[out] out_loss Receives the weighted mean loss; may be NULL.
/// @return As nudge_gradient(); also NUDGE_ERR_INVALID_ARGUMENT for a negative weight or weights
///         all 0, NUDGE_ERR_NOT_FINITE for a NaN or infinite weight.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_gradient_weighted")
public func nudge_gradient_weighted(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                    _ weights: UnsafePointer<Float>?, _ sample_count: UInt, _ loss: nudge_loss,
                                    _ gradient: UnsafeMutablePointer<Float>?, _ gradient_capacity: UInt,
                                    _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_gradient_weighted") { () throws(NudgeError) in
        try gradientCall(network, inputs, targets, weights, sample_count, loss, gradient, gradient_capacity, out_loss)
    }
}

/// nudge_gradient() and nudge_gradient_weighted() once in their guard: the checks, then the gradient.
private func gradientCall(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                          _ weights: UnsafePointer<Float>?, _ sampleCount: UInt, _ loss: nudge_loss,
                          _ gradient: UnsafeMutablePointer<Float>?, _ capacity: UInt,
                          _ outLoss: UnsafeMutablePointer<Double>?) throws(NudgeError) {
    let net = try borrowNetwork(network)
    let x = try required(inputs, "inputs")
    let y = try required(targets, "targets")
    let g = try required(gradient, "gradient")
    let rows = try batchShape(net, sampleCount)
    try checkCapacity(capacity, net.parameterCount, "gradient_capacity")
    _ = try requiredSamples(sampleCount, for: "a gradient")
    // Computed first: `outLoss?.pointee = try ...` would skip the call itself when outLoss is NULL.
    let value = try net.gradient(x, targets: .dense(y), weights: weights, rows: rows, loss: try Loss.decode(loss, "loss"), into: g)
    outLoss?.pointee = value
}

/// How close a regression network's outputs come to their targets (nudge_evaluate_regression()).
/// Set `struct_size` to sizeof(nudge_regression_metrics) before the call (in C,
/// `nudge_regression_metrics m = { .struct_size = sizeof m };`); the library fills the fields it covers.
public struct nudge_regression_metrics {
    /// Set by the caller to sizeof(nudge_regression_metrics).
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_regression_metrics>.stride)
    /// Mean squared error over every sample and output: the NUDGE_LOSS_MSE loss divided by the
    /// output size.
    public var mse: Double = 0
    /// Mean absolute error over every sample and output.
    public var mae: Double = 0
    /// Coefficient of determination, 1 - (sum of squared errors) / (sum of squared deviations of the
    /// targets from their mean), for each output, averaged over the outputs with equal weights: 1 is
    /// a perfect fit, 0 no better than predicting the mean, below 0 worse. An output whose targets
    /// are all equal (so also a single sample) counts 1 if every prediction equals them, else 0, so
    /// r2 is never NaN.
    public var r2: Double = 0
}

/// Measures a regression: the mean squared error, the mean absolute error and R^2 (the coefficient
/// of determination) of the network's outputs against target vectors. Works for any network; for a
/// classifier nudge_evaluate() gives the loss and accuracy instead.
/// @param[in] network The network.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples, at least 1.
/// @param[out] out_metrics Receives the metrics; set out_metrics->struct_size first. Untouched on failure.
/// @c-param out_metrics nudge_regression_metrics *
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (NULL pointers, sample_count 0, struct_size out of
///         range), NUDGE_ERR_NOT_FINITE (NaN or infinite inputs or targets, or outputs that
///         overflow), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: as nudge_predict().
@_cdecl("nudge_evaluate_regression")
public func nudge_evaluate_regression(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                      _ sample_count: UInt, _ out_metrics: UnsafeMutableRawPointer?) -> nudge_status {
    guarded("nudge_evaluate_regression") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let x = try required(inputs, "inputs")
        let y = try required(targets, "targets")
        let out = try required(out_metrics, "out_metrics")
        let size = out.load(as: UInt32.self)
        guard size >= UInt32(MemoryLayout<UInt32>.size), size <= 1 << 16 else {
            throw NudgeError(.invalidArgument, "out_metrics->struct_size is \(size); set it to sizeof(nudge_regression_metrics)")
        }
        let rows = try batchShape(net, sample_count)
        _ = try requiredSamples(sample_count, for: "evaluation")
        let m = try net.regressionMetrics(x, targets: y, rows: rows)
        var r = nudge_regression_metrics()
        r.struct_size = size
        (r.mse, r.mae, r.r2) = (m.meanSquaredError, m.meanAbsoluteError, m.r2)
        withUnsafeBytes(of: &r) { src in
            out.copyMemory(from: src.baseAddress!, byteCount: min(Int(size), MemoryLayout<nudge_regression_metrics>.size))
        }
    }
}
