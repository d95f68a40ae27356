import Glibc

// What the option table cannot say: the rules that tie options to a network or to each other, and
// the learning-rate schedule they describe.
extension TrainingOptions {
    /// The largest batch accepted.
    public static let maxBatchSize = 1 << 20

    /// Checks the options that depend on the network: one dropout rate per weight layer, or none.
    func validate(for network: Network) throws(NudgeError) {
        try validate()
        guard dropout.isEmpty || dropout.count == network.weightLayerCount else {
            throw NudgeError(.shape, [.subject(.option(.dropout)), .text(" has \(dropout.count) rates; this network needs \(network.weightLayerCount) (the inputs and each hidden layer) or none")])
        }
        _ = try loss.resolved(for: network.activations[network.weightLayerCount - 1])
    }

    /// The learning rate of step `step` (0 for a training call's first batch) of a call with
    /// `stepsPerEpoch` batches per epoch and ``epochs`` epochs: warm-up, then the schedule. For
    /// plotting a schedule, or checking one before a long run.
    ///
    /// ```swift
    /// var options = TrainingOptions()
    /// options.schedule = .cosine
    /// options.epochs = 10
    /// let last = options.learningRate(atStep: 10 * 100 - 1, stepsPerEpoch: 100)   // near minLearningRate
    /// ```
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

/// How the learning rate changes during a training call.
public enum LearningRateSchedule: Sendable, CaseIterable {
    /// The same rate throughout.
    case constant
    /// Multiplied by ``TrainingOptions/stepFactor`` every ``TrainingOptions/stepEpochs`` epochs.
    case step
    /// Falls from the rate to ``TrainingOptions/minLearningRate`` along half a cosine over the call's
    /// steps after warm-up.
    case cosine

    /// A stable lower-case name, such as `"cosine"`.
    public var name: String {
        switch self {
        case .constant: "constant"
        case .step: "step"
        case .cosine: "cosine"
        }
    }
}

