// The types, constants and structs of the C ABI. `nudge-header` turns this file, with the
// other files of this folder, into include/nudge.h; see that tool for the rules it follows.

// MARK: - Status codes

/// The result of every call that can fail: NUDGE_OK (0) or one of the NUDGE_ERR_ codes.
public typealias nudge_status = Int32
/// Success.
public let NUDGE_OK: nudge_status = 0
/// An argument is NULL, out of range or not one of the known values.
public let NUDGE_ERR_INVALID_ARGUMENT: nudge_status = 1
/// Array sizes disagree with each other or with the network.
public let NUDGE_ERR_SHAPE: nudge_status = 2
/// An output buffer is too small; the message says how many elements are needed.
public let NUDGE_ERR_CAPACITY: nudge_status = 3
/// Memory could not be allocated, or the request is larger than the library allows.
public let NUDGE_ERR_OUT_OF_MEMORY: nudge_status = 4
/// A file could not be opened, read, written or renamed.
public let NUDGE_ERR_IO: nudge_status = 5
/// A file or buffer is not valid (bad magic, truncated, corrupted, inconsistent sizes).
public let NUDGE_ERR_FORMAT: nudge_status = 6
/// A model file comes from a newer format version than this library reads.
public let NUDGE_ERR_VERSION: nudge_status = 7
/// A value that must be finite is NaN or infinite (inputs, targets, parameters, loss or gradient).
public let NUDGE_ERR_NOT_FINITE: nudge_status = 8
/// A callback asked to stop.
public let NUDGE_ERR_CANCELLED: nudge_status = 9
/// A bug in the library.
public let NUDGE_ERR_INTERNAL: nudge_status = 10
/// The requested item (a metadata key) does not exist.
public let NUDGE_ERR_NOT_FOUND: nudge_status = 11

// MARK: - Enumerations

/// What a layer applies to its weighted sums.
public typealias nudge_activation = Int32
/// a = z
public let NUDGE_ACTIVATION_IDENTITY: nudge_activation = 0
/// a = 1 / (1 + exp(-z))
public let NUDGE_ACTIVATION_SIGMOID: nudge_activation = 1
/// a = tanh(z)
public let NUDGE_ACTIVATION_TANH: nudge_activation = 2
/// a = max(z, 0)
public let NUDGE_ACTIVATION_RELU: nudge_activation = 3
/// a = z for z > 0, 0.01 z otherwise
public let NUDGE_ACTIVATION_LEAKY_RELU: nudge_activation = 4
/// a = exp(z) / sum(exp(z)) over the layer; output layer only.
public let NUDGE_ACTIVATION_SOFTMAX: nudge_activation = 5

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

// MARK: - Handles

/// A network: its architecture, parameters and metadata.
/// Thread safety: any number of threads may call the functions that take a `const nudge_network *`
/// (prediction, evaluation, gradients, queries, saving) at once; a function that takes a non-const
/// handle must not overlap with any other use of that network.
public typealias nudge_network = OpaquePointer
/// A trainer: optimiser state (momentum, Adam's moments) and buffers for training one network.
/// Thread safety: one thread at a time; while it trains, its network must not be used elsewhere.
public typealias nudge_trainer = OpaquePointer
/// Samples loaded from files: features (row-major float32) and optional int32 labels.
/// Thread safety: read-only after loading; any number of threads may read it at once.
public typealias nudge_dataset = OpaquePointer

// MARK: - Reports and callbacks

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
    /// Fraction of training samples classified correctly during the epoch.
    public var train_accuracy: Double = 0
    /// Loss on the validation data after the epoch; NaN without validation data.
    public var validation_loss: Double = 0
    /// Accuracy on the validation data after the epoch; NaN without validation data.
    public var validation_accuracy: Double = 0
    /// Wall time of the epoch in seconds, validation included.
    public var seconds: Double = 0
    /// The learning rate of the epoch's last step (after warm-up and schedule).
    public var learning_rate: Double = 0
}

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

/// Called once per epoch with its report, on the thread that called the training function.
/// Return 0 to go on, non-zero to stop (the call then returns NUDGE_ERR_CANCELLED).
/// The report is valid only during the call.
/// @c-param report const nudge_epoch_report *
public typealias nudge_progress_fn = @convention(c) (_ report: UnsafeRawPointer?, _ user_data: UnsafeMutableRawPointer?) -> Int32

/// Called after every batch, on the thread that called the training function. Return 0 to go on,
/// non-zero to stop between batches (the call then returns NUDGE_ERR_CANCELLED). Keep it cheap.
/// @c-param report const nudge_batch_report *
public typealias nudge_batch_fn = @convention(c) (_ report: UnsafeRawPointer?, _ user_data: UnsafeMutableRawPointer?) -> Int32

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
    /// Training accuracy of the last finished epoch.
    public var train_accuracy: Double = 0
    /// Validation loss after the last finished epoch (NaN without validation data).
    public var validation_loss: Double = 0
    /// Validation accuracy after the last finished epoch (NaN without validation data).
    public var validation_accuracy: Double = 0
    /// Wall time of the whole call in seconds.
    public var seconds: Double = 0
}

// MARK: - CSV reading

/// Whether the first row of a CSV file is a header (nudge_csv_options.header).
public typealias nudge_csv_header = Int32
/// The first row is a header if any of its non-empty cells is not a number.
public let NUDGE_CSV_HEADER_AUTO: nudge_csv_header = 0
/// The first row is a header.
public let NUDGE_CSV_HEADER_PRESENT: nudge_csv_header = 1
/// There is no header: the first row is data.
public let NUDGE_CSV_HEADER_NONE: nudge_csv_header = 2

/// nudge_csv_options.label_column: the header column named "label" (ASCII letters in any case) if
/// there is exactly one, otherwise none.
public let NUDGE_CSV_LABEL_AUTO: Int32 = -1
/// nudge_csv_options.label_column: no label column; every column is a feature.
public let NUDGE_CSV_LABEL_NONE: Int32 = -2

/// How nudge_dataset_load_csv() reads a file. Start from nudge_csv_options_init(), then set the
/// fields you need: the library reads only the first `struct_size` bytes.
public struct nudge_csv_options {
    /// Set by nudge_csv_options_init() to sizeof(nudge_csv_options).
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_csv_options>.stride)
    /// A NUDGE_CSV_HEADER_ value. Default NUDGE_CSV_HEADER_AUTO.
    public var header: nudge_csv_header = 0
    /// The 0-based column of the class labels, NUDGE_CSV_LABEL_AUTO or NUDGE_CSV_LABEL_NONE.
    /// Default NUDGE_CSV_LABEL_AUTO.
    public var label_column: Int32 = -1
    /// 0 accepts any label from 0 to INT32_MAX; above 0, every label must be below it. Default 0.
    public var class_count: UInt32 = 0
    /// The exact header name of the label column (UTF-8), or NULL. When set, label_column must be
    /// NUDGE_CSV_LABEL_AUTO and the file must have a header. Read during the call only. Default NULL.
    public var label_name: UnsafePointer<CChar>? = nil
    /// The character between fields: ASCII, not a double quote, CR, LF or NUL. Default ','.
    public var delimiter: CChar = 44
}
