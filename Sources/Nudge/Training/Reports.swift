/// What one epoch achieved, reported as it ends.
public struct EpochReport: Sendable {
    /// 1 for the first epoch of this run.
    public var epoch: Int
    /// Epochs this run plans (``TrainingOptions/epochs``).
    public var epochs: Int
    /// Mean loss over the epoch's batches, as they were trained.
    public var trainLoss: Double
    /// Fraction of training samples classified correctly during the epoch; NaN for a regression
    /// (target rows on an output layer other than sigmoid or softmax).
    public var trainAccuracy: Double
    /// Loss on the validation data after the epoch; NaN without validation data.
    public var validationLoss: Double
    /// Accuracy on the validation data after the epoch; NaN without validation data, and for a regression.
    public var validationAccuracy: Double
    /// Wall time of the epoch, validation included.
    public var seconds: Double
    /// Whether the monitored loss reached a new best.
    public var improved: Bool
    /// The learning rate of the epoch's last step.
    public var learningRate: Float = 0
}

/// Progress inside an epoch, reported after every batch.
public struct BatchReport: Sendable {
    /// 1 for the run's first epoch.
    public var epoch: Int
    /// 1 for the epoch's first batch.
    public var batch: Int
    /// Batches per epoch.
    public var batchCount: Int
    /// The mean loss of the epoch's batches so far.
    public var loss: Double
}

/// Why a training run ended.
public enum StopReason: Sendable, CaseIterable {
    /// Every epoch ran.
    case completed
    /// The monitored loss stopped improving for ``TrainingOptions/patience`` epochs.
    case earlyStopped
    /// A callback asked to stop; the weights are those of the last finished batch.
    case cancelled
    /// The loss, gradient or a step became NaN or infinite; the network holds the last weights whose
    /// loss was measured finite (those at the start of the failing epoch, or of the one before), or,
    /// with early stopping and ``TrainingOptions/restoreBestWeights``, those of the best epoch.
    case notFinite
}

/// The outcome of a training run.
public struct TrainingSummary: Sendable {
    /// Why the run ended.
    public var stopReason: StopReason = .completed
    /// Epochs that ran to the end.
    public var epochsRun = 0
    /// The epoch with the lowest monitored loss (0 if none finished).
    public var bestEpoch = 0
    /// The lowest monitored loss (the validation loss with validation data, else the training loss);
    /// NaN if no epoch finished.
    public var bestLoss = Double.nan
    /// The last finished epoch's ``EpochReport/trainLoss``; NaN if none finished.
    public var finalTrainLoss = Double.nan
    /// The last finished epoch's ``EpochReport/trainAccuracy``; NaN if none finished.
    public var finalTrainAccuracy = Double.nan
    /// The last finished epoch's ``EpochReport/validationLoss``; NaN if none finished or without validation data.
    public var finalValidationLoss = Double.nan
    /// The last finished epoch's ``EpochReport/validationAccuracy``; NaN if none finished or without validation data.
    public var finalValidationAccuracy = Double.nan
    /// Wall time of the run.
    public var seconds = 0.0
    /// What stopped the run, for ``StopReason/notFinite`` and ``StopReason/cancelled``; empty otherwise.
    public var message = ""
}
