/// What one epoch achieved, reported as it ends.
public struct EpochReport: Sendable {
    /// 1 for the first epoch of this run.
    public var epoch: Int
    /// Epochs this run plans (``TrainingOptions/epochs``).
    public var epochs: Int
    /// Mean loss over the epoch's batches, as they were trained.
    public var trainLoss: Double
    /// Fraction of training samples classified correctly during the epoch.
    public var trainAccuracy: Double
    /// Loss and accuracy on the validation data after the epoch; NaN without validation data.
    public var validationLoss: Double
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
    public var epoch: Int
    /// 1 for the epoch's first batch.
    public var batch: Int
    public var batchCount: Int
    /// The mean loss of the epoch's batches so far.
    public var loss: Double
}

/// Why a training run ended.
public enum StopReason: Sendable, CaseIterable {
    case completed
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
    public var stopReason: StopReason = .completed
    public var epochsRun = 0
    /// The epoch with the lowest monitored loss (0 if none finished).
    public var bestEpoch = 0
    public var bestLoss = Double.nan
    public var finalTrainLoss = Double.nan
    public var finalTrainAccuracy = Double.nan
    public var finalValidationLoss = Double.nan
    public var finalValidationAccuracy = Double.nan
    public var seconds = 0.0
    /// What went wrong, for ``StopReason/notFinite``.
    public var message = ""
}
