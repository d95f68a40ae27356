/// Everything that shapes a training run. The defaults suit a first try at classification.
public struct TrainingOptions: Sendable, Equatable {
    /// Passes over the training data.
    public var epochs = 10
    /// Samples per gradient step.
    public var batchSize = 32
    public var optimizer: Optimizer = .adam
    public var learningRate: Float = 0.001
    /// Momentum factor for ``Optimizer/momentum`` and ``Optimizer/nesterov``.
    public var momentum: Float = 0.9
    /// Adam's decay rates and denominator guard.
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// L2 penalty on weights (not biases), added to the gradient as `weightDecay * w`.
    public var weightDecay: Float = 0
    public var loss: Loss = .auto
    /// Reshuffle the training samples before each epoch.
    public var shuffle = true
    /// Seeds the shuffling and the validation split; the same seed gives the same run.
    public var seed: UInt64 = 0
    /// Fraction of the samples held out for validation when no validation set is given (0 for none).
    public var validationFraction = 0.0
    /// Stop after this many epochs without improvement of the monitored loss (validation loss when
    /// there is validation data, training loss otherwise); 0 never stops early.
    public var patience = 0
    /// The least decrease of the monitored loss that counts as an improvement.
    public var minDelta = 0.0
    /// With early stopping, end with the weights of the best epoch rather than the last.
    public var restoreBestWeights = true

    /// The largest batch accepted.
    public static let maxBatchSize = 1 << 20

    public init() {}

    /// Checks every field, naming the first one that is out of range.
    public func validate() throws(NudgeError) {
        guard epochs >= 0 else { throw .invalid("epochs is \(epochs); it must be 0 or more") }
        guard (1...TrainingOptions.maxBatchSize).contains(batchSize) else {
            throw .invalid("batch_size is \(batchSize); it must be 1 to \(TrainingOptions.maxBatchSize)")
        }
        guard learningRate.isFinite, learningRate > 0 else {
            throw .invalid("learning_rate is \(learningRate); it must be a finite number above 0")
        }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else {
            throw .invalid("momentum is \(momentum); it must be at least 0 and below 1")
        }
        guard beta1.isFinite, beta1 >= 0, beta1 < 1 else { throw .invalid("beta1 is \(beta1); it must be at least 0 and below 1") }
        guard beta2.isFinite, beta2 >= 0, beta2 < 1 else { throw .invalid("beta2 is \(beta2); it must be at least 0 and below 1") }
        guard epsilon.isFinite, epsilon > 0 else { throw .invalid("epsilon is \(epsilon); it must be a finite number above 0") }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw .invalid("weight_decay is \(weightDecay); it must be a finite number, 0 or more")
        }
        guard validationFraction.isFinite, validationFraction >= 0, validationFraction < 1 else {
            throw .invalid("validation_fraction is \(validationFraction); it must be at least 0 and below 1")
        }
        guard patience >= 0 else { throw .invalid("patience is \(patience); it must be 0 or more") }
        guard minDelta.isFinite, minDelta >= 0 else { throw .invalid("min_delta is \(minDelta); it must be a finite number, 0 or more") }
    }
}

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

/// Why a training run ended. Raw values are the C ABI's `nudge_stop_reason` codes.
public enum StopReason: Int32, Sendable {
    case completed = 0
    case earlyStopped = 1
    /// A callback asked to stop; the weights are those of the last finished batch.
    case cancelled = 2
    /// The loss, gradient or a step became NaN or infinite; the network holds the last weights whose
    /// loss was measured finite (those at the start of the failing epoch, or of the one before), or,
    /// with early stopping and ``TrainingOptions/restoreBestWeights``, those of the best epoch.
    case notFinite = 3
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
