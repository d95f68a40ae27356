import Glibc

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

    // MARK: Regularisation and schedules

    /// Dropout rates, one per layer of units that feeds a weight layer: entry 0 for the inputs, entry
    /// i for the outputs of hidden layer i (so ``Network/weightLayerCount`` entries), each in [0, 1).
    /// During training each such unit is zeroed with its rate and the survivors scaled by 1 / (1 - rate)
    /// ("inverted" dropout), so prediction, evaluation and validation use every unit unchanged.
    /// Empty (the default) means no dropout.
    public var dropout: [Float] = []
    /// How the learning rate changes over a training call (see ``LearningRateSchedule``).
    public var schedule: LearningRateSchedule = .constant
    /// ``LearningRateSchedule/step``: the rate is multiplied by ``stepFactor`` every `stepEpochs` epochs.
    public var stepEpochs = 10
    public var stepFactor: Float = 0.1
    /// The rate rises linearly from learningRate / warm-up steps to learningRate over the first
    /// `warmupEpochs` epochs (fractions allowed) of a training call, before any schedule. 0: no warm-up.
    public var warmupEpochs = 0.0
    /// The rate ``LearningRateSchedule/cosine`` ends at.
    public var minLearningRate: Float = 0
    /// When above 0, each step's whole gradient (every layer together, weight decay excluded) is
    /// scaled down to this L2 norm if it is longer.
    public var clipNorm: Float = 0
    /// Fits the network's input normalisation on the training samples (not the held-out validation
    /// fraction) at the start of each training call; ``InputNormalization/Kind/none`` leaves the
    /// network's normalisation as it is.
    public var normalization: InputNormalization.Kind = .none

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
        for (i, rate) in dropout.enumerated() where !(rate >= 0 && rate < 1) {
            throw .invalid("dropout[\(i)] is \(rate); a dropout rate must be at least 0 and below 1")
        }
        guard stepEpochs >= 1 else { throw .invalid("step_epochs is \(stepEpochs); it must be 1 or more") }
        guard stepFactor.isFinite, stepFactor > 0, stepFactor <= 1 else {
            throw .invalid("step_factor is \(stepFactor); it must be above 0 and at most 1")
        }
        guard warmupEpochs.isFinite, warmupEpochs >= 0 else {
            throw .invalid("warmup_epochs is \(warmupEpochs); it must be a finite number, 0 or more")
        }
        guard minLearningRate.isFinite, minLearningRate >= 0, minLearningRate <= learningRate else {
            throw .invalid("min_learning_rate is \(minLearningRate); it must be at least 0 and at most learning_rate (\(learningRate))")
        }
        guard clipNorm.isFinite, clipNorm >= 0 else { throw .invalid("clip_norm is \(clipNorm); it must be a finite number, 0 or more") }
    }

    /// Checks the options that depend on the network: one dropout rate per weight layer, or none.
    func validate(for network: Network) throws(NudgeError) {
        try validate()
        guard dropout.isEmpty || dropout.count == network.weightLayerCount else {
            throw .shape("dropout has \(dropout.count) rates; this network needs \(network.weightLayerCount) (the inputs and each hidden layer) or none")
        }
        _ = try loss.resolved(for: network.activations[network.weightLayerCount - 1])
    }

    /// The learning rate of step `step` (0 for a training call's first batch) of a call with
    /// `stepsPerEpoch` batches per epoch and ``epochs`` epochs: warm-up, then the schedule.
    public func learningRate(atStep step: Int, stepsPerEpoch: Int) -> Float {
        let perEpoch = max(stepsPerEpoch, 1)
        let warmup = Int(min((warmupEpochs * Double(perEpoch)).rounded(.up), 1e18))
        if step < warmup { return learningRate * Float(step + 1) / Float(warmup) }
        switch schedule {
        case .constant:
            return learningRate
        case .step:
            let drops = (step / perEpoch) / stepEpochs
            return learningRate * Float(Double(stepFactor).power(drops))
        case .cosine:
            let (steps, overflow) = epochs.multipliedReportingOverflow(by: perEpoch)
            let total = max((overflow ? Int.max : steps) - warmup, 1)
            let progress = min(Double(step - warmup) / Double(total), 1)
            if progress == 0 { return learningRate }
            let cosine = (1 + cos(Double.pi * progress)) / 2
            return minLearningRate + (learningRate - minLearningRate) * Float(cosine)
        }
    }
}

/// How the learning rate changes during a training call. Raw values are the C ABI's `nudge_schedule` codes.
public enum LearningRateSchedule: Int32, Sendable, CaseIterable {
    /// The same rate throughout.
    case constant = 0
    /// Multiplied by ``TrainingOptions/stepFactor`` every ``TrainingOptions/stepEpochs`` epochs.
    case step = 1
    /// Falls from the rate to ``TrainingOptions/minLearningRate`` along half a cosine over the call's
    /// steps after warm-up.
    case cosine = 2

    public var name: String {
        switch self {
        case .constant: "constant"
        case .step: "step"
        case .cosine: "cosine"
        }
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
