// MARK: - Training
// nudge_train_options and its conversion are generated from the option table (TrainOptions.swift).
import Glibc
import Nudge

// @c-section train

/// Sets every field of an options struct to its default, and struct_size to the size both sides
/// know. Pass sizeof your struct, so that a program built against this header never has more bytes
/// written than its struct holds, whatever version of the library it runs with:
/// `nudge_train_options_init(&options, sizeof options);`
/// @param[out] options The struct to fill.
/// @c-param options nudge_train_options *
/// @param[in] options_size sizeof(nudge_train_options) in the caller's header; at least 8, and not
///            ending inside a field.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT (options is NULL, or options_size is too small or
///         ends inside a field; the struct is then untouched).
@_cdecl("nudge_train_options_init")
public func nudge_train_options_init(_ options: UnsafeMutableRawPointer?, _ options_size: UInt) -> nudge_status {
    guarded("nudge_train_options_init") { () throws(NudgeError) in
        try initializeOptions(options, options_size, nudge_train_options(), "nudge_train_options")
    }
}

extension nudge_train_options: SizedCStruct {
    static var fieldOffsets: [Int] { trainOptionsOffsets }
}

/// A caller's options: the bytes its struct_size covers over the defaults. NULL means the defaults.
private func readOptions(_ pointer: UnsafeRawPointer?) throws(NudgeError) -> nudge_train_options {
    var options = nudge_train_options()
    guard let pointer else { return options }
    let size = Int(pointer.load(as: UInt32.self))
    guard size >= MemoryLayout<UInt32>.size, size <= 1 << 16 else {
        throw NudgeError(.invalidArgument, "options->struct_size is \(size); call nudge_train_options_init() first")
    }
    try checkStructSize(size, trainOptionsOffsets, nudge_train_options.self, "options", "nudge_train_options_init")
    withUnsafeMutableBytes(of: &options) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: min(size, MemoryLayout<nudge_train_options>.size)))
    }
    return options
}

/// A list option's entries (`dropout`), one per weight layer at most.
func floatList(_ pointer: UnsafePointer<Float>?, _ count: UInt, _ name: String) throws(NudgeError) -> [Float] {
    guard count > 0 else { return [] }
    let values = try required(pointer, name)
    guard count < UInt(Network.maxLayers) else {
        throw NudgeError(.invalidArgument, "\(name)_count is \(count); a network has at most \(Network.maxLayers - 1) weight layers")
    }
    return Array(UnsafeBufferPointer(start: values, count: Int(count)))
}

/// Fills a caller's report with the fields its struct_size covers.
private func writeReport(_ summary: TrainingSummary, to report: UnsafeMutableRawPointer?) {
    guard let report else { return }
    var r = nudge_train_report()
    r.stop_reason = summary.stopReason.code
    r.epochs_run = UInt32(clamping: summary.epochsRun)
    r.best_epoch = UInt32(clamping: summary.bestEpoch)
    r.best_loss = summary.bestLoss
    r.train_loss = summary.finalTrainLoss
    r.train_accuracy = summary.finalTrainAccuracy
    r.validation_loss = summary.finalValidationLoss
    r.validation_accuracy = summary.finalValidationAccuracy
    r.seconds = summary.seconds
    r.struct_size = report.load(as: UInt32.self)
    let size = min(Int(r.struct_size), MemoryLayout<nudge_train_report>.size)
    withUnsafeBytes(of: &r) { src in report.copyMemory(from: src.baseAddress!, byteCount: size) }
}

private func checkReport(_ report: UnsafeMutableRawPointer?) throws(NudgeError) {
    guard let report else { return }
    let size = report.load(as: UInt32.self)
    guard size >= UInt32(MemoryLayout<UInt32>.size), size <= 1 << 16 else {
        throw NudgeError(.invalidArgument, "report->struct_size is \(size); set it to sizeof(nudge_train_report)")
    }
}

/// The caller's validation data: none when validation_count is 0 and the call's validation pointers
/// are NULL. A count of 0 with a pointer set is refused: it is how an empty split of the caller's
/// data arrives, and training on without the validation the caller meant to give would hide that.
private func validationSet(_ options: nudge_train_options, _ targets: Targets, _ net: Network) throws(NudgeError) -> Trainer.ValidationSet? {
    let labels: Bool
    switch targets {
    case .dense: labels = false
    case .labels: labels = true
    }
    let yName = labels ? "options->validation_labels" : "options->validation_targets"
    guard options.validation_count > 0 else {
        let set = options.validation_inputs != nil ? "options->validation_inputs"
            : (labels ? options.validation_labels != nil : options.validation_targets != nil) ? yName
            : options.validation_weights != nil ? "options->validation_weights" : nil
        guard let set else { return nil }
        throw NudgeError(.invalidArgument, "options->validation_count is 0 but \(set) is set; give at least one validation sample, or set the validation pointers to NULL to train without validation data")
    }
    let vx = try required(options.validation_inputs, "options->validation_inputs")
    let vrows = try callerCount(options.validation_count, "options->validation_count")
    _ = try elements(vrows, net.inputSize, "options->validation_inputs")
    _ = try elements(vrows, net.outputSize, "options->validation_targets")
    if labels {
        return Trainer.ValidationSet(inputs: vx, targets: .labels(try required(options.validation_labels, yName)), rows: vrows,
                                     weights: options.validation_weights)
    }
    return Trainer.ValidationSet(inputs: vx, targets: .dense(try required(options.validation_targets, yName)), rows: vrows,
                                 weights: options.validation_weights)
}

/// Runs the training loop of `trainer` with the caller's per-call settings (validation data, callbacks).
/// `newOptions`, when given, replace the trainer's settings once every argument has been checked.
private func runTraining(_ trainer: Trainer, _ inputs: UnsafePointer<Float>?, _ targets: Targets, _ sampleCount: UInt,
                         _ options: nudge_train_options, _ report: UnsafeMutableRawPointer?,
                         applying newOptions: TrainingOptions? = nil) throws(NudgeError) {
    try checkReport(report)
    let net = trainer.network
    let x = try required(inputs, "inputs")
    let rows = try requiredSamples(sampleCount, for: "training")
    _ = try elements(rows, net.inputSize, "inputs")
    _ = try elements(rows, net.outputSize, "targets")

    let validation = try validationSet(options, targets, net)
    let userData = options.user_data
    var progress: ((EpochReport) -> Bool)?
    if let callback = options.progress {
        progress = { e in
            var r = nudge_epoch_report()
            r.epoch = UInt32(clamping: e.epoch)
            r.epochs = UInt32(clamping: e.epochs)
            r.improved = e.improved ? 1 : 0
            r.train_loss = e.trainLoss
            r.train_accuracy = e.trainAccuracy
            r.validation_loss = e.validationLoss
            r.validation_accuracy = e.validationAccuracy
            r.seconds = e.seconds
            r.learning_rate = Double(e.learningRate)
            return withUnsafePointer(to: &r) { callback(UnsafeRawPointer($0), userData) != 0 }
        }
    }
    var batchProgress: ((BatchReport) -> Bool)?
    if let callback = options.batch_progress {
        batchProgress = { b in
            var r = nudge_batch_report()
            r.epoch = UInt32(clamping: b.epoch)
            r.batch = UInt32(clamping: b.batch)
            r.batch_count = UInt32(clamping: b.batchCount)
            r.loss = b.loss
            return withUnsafePointer(to: &r) { callback(UnsafeRawPointer($0), userData) != 0 }
        }
    }
    let summary = try trainer.fit(x, targets: targets, weights: options.sample_weights, rows: rows, validation: validation,
                                  applying: newOptions, weightsName: ("options->sample_weights", "options->validation_weights"),
                                  progress: progress, batchProgress: batchProgress)
    writeReport(summary, to: report)
    switch summary.stopReason {
    case .completed, .earlyStopped: return
    case .cancelled: throw NudgeError(.cancelled, summary.message)
    case .notFinite: throw NudgeError(.notFinite, summary.message)
    }
}

/// Trains a network on samples with target vectors, by mini-batch gradient descent with the given
/// options: shuffling, validation, early stopping, callbacks. Data are checked before any change
/// (NaN or infinite values fail with NUDGE_ERR_NOT_FINITE; with a cross-entropy loss, targets
/// outside 0 to 1 fail with NUDGE_ERR_INVALID_ARGUMENT). A callback must not call a training
/// function on the same network or trainer: that call fails with NUDGE_ERR_INVALID_ARGUMENT.
/// @param[in,out] network The network to train.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] options From nudge_train_options_init(), or NULL for the defaults. Sample weights
///            go in options->sample_weights (and options->validation_weights).
/// @param[out] report Receives the outcome whenever training ran, including a run stopped by a
///             callback (NUDGE_ERR_CANCELLED) or by divergence (NUDGE_ERR_NOT_FINITE, stop_reason
///             NUDGE_STOP_NOT_FINITE); untouched when the call fails before training starts (bad
///             arguments or data). May be NULL. Set report->struct_size first.
/// @return NUDGE_OK; NUDGE_ERR_INVALID_ARGUMENT (also for a negative weight, or weights all 0),
///         NUDGE_ERR_NOT_FINITE (bad data, NaN or infinite weights included; the network is
///         unchanged), NUDGE_ERR_OUT_OF_MEMORY; NUDGE_ERR_CANCELLED (a callback stopped; the weights
///         are those after the last finished batch); NUDGE_ERR_NOT_FINITE (training diverged; the
///         network holds the last weights whose loss was measured finite).
/// Thread safety: changes the network; nothing else may use it during the call.
/// @c-param options const nudge_train_options *
/// @c-param report nudge_train_report *
@_cdecl("nudge_train")
public func nudge_train(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                        _ sample_count: UInt, _ options: UnsafeRawPointer?,
                        _ report: UnsafeMutableRawPointer?) -> nudge_status {
    guarded("nudge_train") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let y = try required(targets, "targets")
        let o = try readOptions(options)
        let trainer = try Trainer(network: net, options: try coreOptions(o))
        try runTraining(trainer, inputs, .dense(y), sample_count, o, report)
    }
}

/// Trains a network on samples with class labels (0 to output size - 1; 0 or 1 for a single
/// output), as nudge_train() does with one-hot targets. Validation labels go in options->validation_labels.
/// @param[in,out] network The network to train.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] options From nudge_train_options_init(), or NULL for the defaults.
/// @param[out] report Receives the outcome; may be NULL. Set report->struct_size first.
/// @return As nudge_train(); labels out of range give NUDGE_ERR_INVALID_ARGUMENT.
/// Thread safety: changes the network; nothing else may use it during the call.
/// @c-param options const nudge_train_options *
/// @c-param report nudge_train_report *
@_cdecl("nudge_train_labels")
public func nudge_train_labels(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                               _ sample_count: UInt, _ options: UnsafeRawPointer?,
                               _ report: UnsafeMutableRawPointer?) -> nudge_status {
    guarded("nudge_train_labels") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let y = try required(labels, "labels")
        let o = try readOptions(options)
        let trainer = try Trainer(network: net, options: try coreOptions(o))
        try runTraining(trainer, inputs, .labels(y), sample_count, o, report)
    }
}

/// The learning rate a training call with these options uses at a given step (warm-up, then the
/// schedule), for plotting a schedule or checking one before a long run.
/// @param[in] options The options (NULL for the defaults); `epochs` and `learning_rate` matter too.
/// @c-param options const nudge_train_options *
/// @param[in] step The step, 0 for the call's first batch.
/// @param[in] steps_per_epoch Batches per epoch: ceil(training samples / batch_size), at least 1.
/// @param[out] out_rate Receives the rate.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT (options out of range, steps_per_epoch 0).
@_cdecl("nudge_learning_rate_at")
public func nudge_learning_rate_at(_ options: UnsafeRawPointer?, _ step: UInt64, _ steps_per_epoch: UInt,
                                   _ out_rate: UnsafeMutablePointer<Float>?) -> nudge_status {
    guarded("nudge_learning_rate_at") { () throws(NudgeError) in
        let out = try required(out_rate, "out_rate")
        let o = try coreOptions(try readOptions(options))
        guard steps_per_epoch > 0 else { throw NudgeError(.invalidArgument, "steps_per_epoch is 0; it must be at least 1") }
        let perEpoch = try callerCount(steps_per_epoch, "steps_per_epoch")
        guard step <= UInt64(Int.max / 2) else { throw NudgeError(.invalidArgument, "step is \(step); too large") }
        out.pointee = o.learningRate(atStep: Int(step), stepsPerEpoch: perEpoch)
    }
}

// MARK: Trainers

// @c-section trainer

/// A trainer: optimiser state (momentum, Adam's moments) and buffers for training one network.
/// Thread safety: one thread at a time; while it trains, its network must not be used elsewhere.
public typealias nudge_trainer = OpaquePointer

func borrowTrainer(_ handle: nudge_trainer?) throws(NudgeError) -> Trainer {
    try borrow(handle, .trainer, as: Trainer.self, "trainer")
}

/// Creates a trainer for a network: the optimiser's state (momentum, Adam's moments and step count)
/// and reusable buffers, so training can go on across calls or be fed batch by batch.
/// The hyper-parameters of `options` are copied; its pointer fields (validation data, callbacks)
/// are ignored here and read by each nudge_trainer_train() call instead.
/// @param[in,out] network The network to train; the trainer keeps it alive until nudge_trainer_free().
/// @param[in] options From nudge_train_options_init(), or NULL for the defaults.
/// @param[out] out_trainer Receives the trainer.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_trainer and releases it with nudge_trainer_free().
/// @c-param options const nudge_train_options *
@_cdecl("nudge_trainer_create")
public func nudge_trainer_create(_ network: nudge_network?, _ options: UnsafeRawPointer?,
                                 _ out_trainer: UnsafeMutablePointer<nudge_trainer?>?) -> nudge_status {
    guarded("nudge_trainer_create") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let out = try required(out_trainer, "out_trainer")
        let trainer = try Trainer(network: net, options: try coreOptions(try readOptions(options)))
        out.pointee = makeHandle(trainer, .trainer)
    }
}

/// Releases a trainer and its optimiser state. NULL, and handles already freed, are ignored.
/// @param[in,out] trainer The trainer, or NULL.
@_cdecl("nudge_trainer_free")
public func nudge_trainer_free(_ trainer: nudge_trainer?) {
    releaseHandle(trainer, .trainer)
}

/// One gradient step on one batch of samples with target vectors, with the trainer's optimiser.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples in the batch, at least 1.
/// @param[out] out_loss Receives the batch's mean loss before the step; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_NOT_FINITE (bad data, or a loss,
///         gradient or step that is not finite: the weights are then unchanged and the optimiser
///         state restarts), NUDGE_ERR_OUT_OF_MEMORY.
@_cdecl("nudge_trainer_step")
public func nudge_trainer_step(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                               _ sample_count: UInt, _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_trainer_step") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        try step(t, inputs, .dense(try required(targets, "targets")), sample_count, out_loss)
    }
}

/// One gradient step on one batch of samples with class labels.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] sample_count Samples in the batch, at least 1.
/// @param[out] out_loss Receives the batch's mean loss before the step; may be NULL.
/// @return As nudge_trainer_step(); labels out of range give NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_trainer_step_labels")
public func nudge_trainer_step_labels(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                      _ sample_count: UInt, _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_trainer_step_labels") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        try step(t, inputs, .labels(try required(labels, "labels")), sample_count, out_loss)
    }
}

/// One gradient step on one batch of samples with target vectors and a weight each: each sample's
/// loss and gradient count its weight times and the batch's gradient is divided by the sum of its
/// weights, as options->sample_weights weigh the batches of nudge_trainer_train(). NULL weights (all
/// 1) give nudge_trainer_step()'s step bit for bit.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] weights sample_count weights, each finite and 0 or more, not all 0; or NULL.
/// @param[in] sample_count Samples in the batch, at least 1.
/// @param[out] out_loss Receives the batch's weighted mean loss before the step; may be NULL.
/// @return As nudge_trainer_step(); also NUDGE_ERR_INVALID_ARGUMENT for a negative weight or weights
///         all 0, NUDGE_ERR_NOT_FINITE for a NaN or infinite weight (the weights are then unchanged).
@_cdecl("nudge_trainer_step_weighted")
public func nudge_trainer_step_weighted(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                        _ weights: UnsafePointer<Float>?, _ sample_count: UInt,
                                        _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_trainer_step_weighted") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        try step(t, inputs, .dense(try required(targets, "targets")), sample_count, out_loss, weights: weights)
    }
}

/// One gradient step on one batch of samples with class labels and a weight each, as
/// nudge_trainer_step_weighted() weighs them.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] weights sample_count weights, each finite and 0 or more, not all 0; or NULL.
/// @param[in] sample_count Samples in the batch, at least 1.
/// @param[out] out_loss Receives the batch's weighted mean loss before the step; may be NULL.
/// @return As nudge_trainer_step_weighted(); labels out of range give NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_trainer_step_labels_weighted")
public func nudge_trainer_step_labels_weighted(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?,
                                               _ labels: UnsafePointer<Int32>?, _ weights: UnsafePointer<Float>?,
                                               _ sample_count: UInt, _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_trainer_step_labels_weighted") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        try step(t, inputs, .labels(try required(labels, "labels")), sample_count, out_loss, weights: weights)
    }
}

private func step(_ t: Trainer, _ inputs: UnsafePointer<Float>?, _ targets: Targets, _ sampleCount: UInt,
                  _ outLoss: UnsafeMutablePointer<Double>?, weights: UnsafePointer<Float>? = nil) throws(NudgeError) {
    let x = try required(inputs, "inputs")
    let rows = try requiredSamples(sampleCount, for: "a step")
    guard rows <= TrainingOptions.maxBatchSize else {
        throw NudgeError(.invalidArgument, "sample_count is \(rows); one step takes at most \(TrainingOptions.maxBatchSize) samples")
    }
    let loss = try t.step(x, targets: targets, weights: weights, rows: rows)
    outLoss?.pointee = loss
}

/// Runs the training loop with the trainer's optimiser state, as nudge_train() does, so a second
/// call goes on where the first stopped (Adam's moments and momentum are kept).
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] options NULL keeps the trainer's settings; otherwise they replace its hyper-parameters
///            (the optimiser state is kept unless the optimizer changes) and give this call's
///            validation data and callbacks.
/// @param[out] report Receives the outcome; may be NULL. Set report->struct_size first.
/// @return As nudge_train().
/// @c-param options const nudge_train_options *
/// @c-param report nudge_train_report *
@_cdecl("nudge_trainer_train")
public func nudge_trainer_train(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                _ sample_count: UInt, _ options: UnsafeRawPointer?,
                                _ report: UnsafeMutableRawPointer?) -> nudge_status {
    guarded("nudge_trainer_train") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        let y = try required(targets, "targets")
        let o = try readOptions(options)
        try runTraining(t, inputs, .dense(y), sample_count, o, report, applying: options == nil ? nil : try coreOptions(o))
    }
}

/// Runs the training loop on samples with class labels, keeping the trainer's optimiser state.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] sample_count Samples, at least 1.
/// @param[in] options As for nudge_trainer_train().
/// @param[out] report Receives the outcome; may be NULL. Set report->struct_size first.
/// @return As nudge_train_labels().
/// @c-param options const nudge_train_options *
/// @c-param report nudge_train_report *
@_cdecl("nudge_trainer_train_labels")
public func nudge_trainer_train_labels(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                       _ sample_count: UInt, _ options: UnsafeRawPointer?,
                                       _ report: UnsafeMutableRawPointer?) -> nudge_status {
    guarded("nudge_trainer_train_labels") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        let y = try required(labels, "labels")
        let o = try readOptions(options)
        try runTraining(t, inputs, .labels(y), sample_count, o, report, applying: options == nil ? nil : try coreOptions(o))
    }
}
