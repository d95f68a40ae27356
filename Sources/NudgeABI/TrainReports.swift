// MARK: - Training reports and callbacks
// What training tells its caller: a report per epoch and per batch through the callbacks, why it
// stopped, and a report of the whole call. The options that take the callbacks are generated
// (TrainOptions.swift); nudge.h declares the callbacks right before them.

// @c-section train

/// What one epoch achieved; passed to the progress callback as each epoch ends.
public struct nudge_epoch_report {
    /// sizeof(nudge_epoch_report) as the library knows it; fields beyond a caller's header are newer.
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_epoch_report>.stride)
    /// 1 for the first epoch of this call.
    public var epoch: UInt32 = 0
    /// The epochs this call plans.
    public var epochs: UInt32 = 0
    /// 1 if the monitored loss reached a new best in this epoch, else 0.
    public var improved: Int32 = 0
    /// Mean training loss over the epoch's batches.
    public var train_loss: Double = 0
    /// Fraction of training samples classified correctly during the epoch; NaN for a regression
    /// network (target rows on an output layer other than sigmoid or softmax).
    public var train_accuracy: Double = 0
    /// Loss on the validation data after the epoch; NaN without validation data.
    public var validation_loss: Double = 0
    /// Accuracy on the validation data after the epoch; NaN without validation data, and for a
    /// regression network.
    public var validation_accuracy: Double = 0
    /// Wall time of the epoch in seconds, validation included.
    public var seconds: Double = 0
    /// The learning rate of the epoch's last step (after warm-up and schedule).
    public var learning_rate: Double = 0
}

/// Called once per epoch with its report, on the thread that called the training function.
/// Return 0 to go on, non-zero to stop (the call then returns NUDGE_ERR_CANCELLED).
/// The report is valid only during the call.
/// @c-param report const nudge_epoch_report *
public typealias nudge_progress_fn = @convention(c) (_ report: UnsafeRawPointer?, _ user_data: UnsafeMutableRawPointer?) -> Int32

/// Progress inside an epoch; passed to the batch callback after every batch.
public struct nudge_batch_report {
    /// sizeof(nudge_batch_report) as the library knows it.
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_batch_report>.stride)
    /// 1 for the first epoch of this call.
    public var epoch: UInt32 = 0
    /// 1 for the epoch's first batch.
    public var batch: UInt32 = 0
    /// Batches in each epoch.
    public var batch_count: UInt32 = 0
    /// Mean loss of the epoch's batches so far.
    public var loss: Double = 0
}

/// Called after every batch, on the thread that called the training function. Return 0 to go on,
/// non-zero to stop between batches (the call then returns NUDGE_ERR_CANCELLED). Keep it cheap.
/// @c-param report const nudge_batch_report *
public typealias nudge_batch_fn = @convention(c) (_ report: UnsafeRawPointer?, _ user_data: UnsafeMutableRawPointer?) -> Int32

/// Why a training run ended.
public typealias nudge_stop_reason = Int32
/// All requested epochs ran.
public let NUDGE_STOP_COMPLETED: nudge_stop_reason = 0
/// Early stopping: the monitored loss stopped improving for `patience` epochs.
public let NUDGE_STOP_EARLY: nudge_stop_reason = 1
/// A callback returned non-zero (the call returns NUDGE_ERR_CANCELLED).
public let NUDGE_STOP_CANCELLED: nudge_stop_reason = 2
/// The loss, gradient or a step became NaN or infinite (the call returns NUDGE_ERR_NOT_FINITE); the
/// network holds the last weights whose loss was measured finite (those at the start of the failing
/// epoch, or of the one before it), or, with early stopping and restore_best_weights, those of the
/// best epoch.
public let NUDGE_STOP_NOT_FINITE: nudge_stop_reason = 3

/// The outcome of a training call. Set `struct_size` to sizeof(nudge_train_report) before the call
/// (in C, `nudge_train_report report = { .struct_size = sizeof report };`); the library fills the
/// fields it covers.
public struct nudge_train_report {
    /// Set by the caller to sizeof(nudge_train_report).
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_train_report>.stride)
    /// A NUDGE_STOP_ value.
    public var stop_reason: nudge_stop_reason = 0
    /// Epochs that finished.
    public var epochs_run: UInt32 = 0
    /// The epoch with the lowest monitored loss (0 if none finished).
    public var best_epoch: UInt32 = 0
    /// The lowest monitored loss (NaN if no epoch finished).
    public var best_loss: Double = 0
    /// Training loss of the last finished epoch.
    public var train_loss: Double = 0
    /// Training accuracy of the last finished epoch (NaN for a regression network).
    public var train_accuracy: Double = 0
    /// Validation loss after the last finished epoch (NaN without validation data).
    public var validation_loss: Double = 0
    /// Validation accuracy after the last finished epoch (NaN without validation data, and for a
    /// regression network).
    public var validation_accuracy: Double = 0
    /// Wall time of the whole call in seconds.
    public var seconds: Double = 0
}
