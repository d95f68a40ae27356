/// Networks and trainers on a loaded data set, read in place: a data set of 60,000 images is not
/// copied to be predicted, evaluated or trained on.
extension Dataset {
    /// Whether the data set has class labels.
    public var hasLabels: Bool { labelPointer != nil }

    /// Fails unless every sample has the network's input size (and, when `labelled`, a label).
    fileprivate func check(fits network: Network, labelled: Bool) throws(NudgeError) {
        guard featureCount == network.inputSize else {
            throw .shape("the data set has \(featureCount) features per sample; the network takes \(network.inputSize)")
        }
        guard !labelled || hasLabels else { throw .invalid("the data set has no labels") }
    }
}

extension Network {
    /// The network's outputs for every sample of `data`, row-major (``Dataset/count`` rows of ``outputSize``).
    public func predict(_ data: Dataset) throws(NudgeError) -> [Float] {
        try data.check(fits: self, labelled: false)
        var outputs = [Float](repeating: 0, count: try checkedProduct(data.count, outputSize, "the outputs"))
        try outputs.withUnsafeMutableBufferPointer { (out) throws(NudgeError) in
            guard let base = out.baseAddress else { return }
            try withExtendedLifetime(data) { () throws(NudgeError) in try predict(data.featurePointer, rows: data.count, into: base) }
        }
        return outputs
    }

    /// The class of every sample of `data`: the largest output (for a single output, 1 from 0.5 up).
    public func classify(_ data: Dataset) throws(NudgeError) -> [Int32] {
        try data.check(fits: self, labelled: false)
        var labels = [Int32](repeating: 0, count: data.count)
        try labels.withUnsafeMutableBufferPointer { (out) throws(NudgeError) in
            guard let base = out.baseAddress else { return }
            try withExtendedLifetime(data) { () throws(NudgeError) in try classify(data.featurePointer, rows: data.count, into: base) }
        }
        return labels
    }

    /// The mean loss and the accuracy on a labelled data set; with `weights` (one per sample), the
    /// weighted mean loss and weighted accuracy (see `evaluate(_:labels:weights:loss:)`).
    public func evaluate(_ data: Dataset, weights: UnsafeBufferPointer<Float>? = nil,
                         loss: Loss = .auto) throws(NudgeError) -> (loss: Double, accuracy: Double) {
        try data.check(fits: self, labelled: true)
        let w = try weights.map { (b) throws(NudgeError) in try self.weights(b, rows: data.count, "weights") }
        return try withExtendedLifetime(data) { () throws(NudgeError) in
            try evaluate(data.featurePointer, targets: .labels(data.labelPointer!), weights: w, rows: data.count, loss: loss)
        }
    }
}

extension Trainer {
    /// ``fit(_:labels:weights:validation:validationWeights:progress:batchProgress:)`` on labelled data
    /// sets, read in place; `weights` and `validationWeights` (one per sample of `data` and of
    /// `validation`) weigh the samples as that method does.
    public func fit(_ data: Dataset, weights: UnsafeBufferPointer<Float>? = nil,
                    validation: Dataset? = nil, validationWeights: UnsafeBufferPointer<Float>? = nil,
                    progress: ((EpochReport) -> Bool)? = nil,
                    batchProgress: ((BatchReport) -> Bool)? = nil) throws(NudgeError) -> TrainingSummary {
        try data.check(fits: network, labelled: true)
        try validation?.check(fits: network, labelled: true)
        let w = try weights.map { (b) throws(NudgeError) in try network.weights(b, rows: data.count, "weights") }
        var set: ValidationSet?
        if let validation {
            let vw = try validationWeights.map { (b) throws(NudgeError) in
                try network.weights(b, rows: validation.count, "validation weights")
            }
            set = ValidationSet(inputs: validation.featurePointer, targets: .labels(validation.labelPointer!),
                                rows: validation.count, weights: vw)
        } else if validationWeights != nil {
            throw .invalid("validation weights are given without validation data")
        }
        return try withExtendedLifetime((data, validation)) { () throws(NudgeError) in
            try fit(data.featurePointer, targets: .labels(data.labelPointer!), weights: w, rows: data.count,
                    validation: set, progress: progress, batchProgress: batchProgress)
        }
    }
}
