import ArgumentParser
import Nudge

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network on labelled data and save it as a model file.",
        discussion: """
            The network is either given whole with --layers (input width first, which must be the \
            data's features per sample) or, by default, built around hidden layers (--hidden) with \
            the input width taken from the data and one output per class; the classes are the \
            labels 0 to the largest one seen, or --classes / --class-names.

            Progress goes to standard error: a bar redrawn after batches (epoch, loss, time left) \
            when it is a terminal, one line per epoch otherwise, nothing with --quiet.

            Ctrl-C (or SIGTERM) stops training after the current batch and still saves the model, \
            with the weights trained so far, then exits with status 130; a second Ctrl-C ends the \
            process at once (the save is atomic: the output is then the previous file or none). \
            A run whose loss becomes NaN or infinite writes no model and exits with status 3.

            The model file holds, as metadata: the command line, the date (from \
            $SOURCE_DATE_EPOCH when set, so that the same command and seed give a byte-identical \
            file), the data files, the class names, the training options and the result; \
            `nudge inspect` shows them.

            EXAMPLES:
              nudge train --images train-images-idx3-ubyte.gz \\
                  --labels train-labels-idx1-ubyte.gz \\
                  --epochs 20 --validation-fraction 0.1 --patience 2 -o fashion.nudge
              nudge train --images x.idx --labels y.idx --layers 784,256,64,10 \\
                  --activation relu,tanh --optimizer momentum --learning-rate 0.05 \\
                  --class-names "zero,one,two,three,four,five,six,seven,eight,nine" \\
                  -o digits.nudge
            """
    )

    // MARK: Data

    @Option(name: [.customLong("images"), .customLong("data")],
            help: ArgumentHelp("The training samples: an IDX file (plain or .gz).", valueName: "file"))
    var images: String

    @Option(help: ArgumentHelp("The training labels: an IDX file of one label per sample.", valueName: "file"))
    var labels: String?

    @Option(name: [.customLong("validation-images"), .customLong("validation-data")],
            help: ArgumentHelp("Held-out samples measured after every epoch (instead of --validation-fraction).", valueName: "file"))
    var validationImages: String?

    @Option(help: ArgumentHelp("Their labels.", valueName: "file"))
    var validationLabels: String?

    // MARK: Network

    @Option(help: ArgumentHelp("Every layer width, input first, such as 784,128,10.", valueName: "sizes"))
    var layers: CommaList<Int>?

    @Option(help: ArgumentHelp("Hidden layer widths (the default without --layers: 128); `none` for no hidden layer.",
                               valueName: "sizes"))
    var hidden: CommaList<Int>?

    @Option(help: ArgumentHelp("The hidden layers' activation: one for all, or one per hidden layer.",
                               discussion: "One of \(Choice<Activation>.allValueStrings.filter { $0 != "softmax" }.joined(separator: ", ")).",
                               valueName: "names"))
    var activation = CommaList([Choice(Activation.relu)])

    @Option(help: ArgumentHelp("The output layer's activation.", valueName: "name"))
    var outputActivation = Choice(Activation.softmax)

    @Option(help: ArgumentHelp("The number of classes (outputs), when the labels do not show them all.", valueName: "n"))
    var classes: Int?

    @Option(help: ArgumentHelp("Class names, in label order, stored in the model; they also set the number of classes.",
                               valueName: "names"))
    var classNames: CommaList<String>?

    // MARK: Training

    @OptionGroup(title: "Training options") var training: TrainingFlags

    // MARK: Regularisation, schedules, normalisation

    @Option(help: ArgumentHelp("Dropout rate of the hidden layers' units during training: one for all, or one per hidden layer.",
                               valueName: "rates"))
    var dropout: CommaList<Float>?

    @Option(help: ArgumentHelp("Dropout rate of the input features during training.", valueName: "rate"))
    var inputDropout: Float = 0

    @OptionGroup var compute: ComputeOptions

    // MARK: Output

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the model (atomically).", valueName: "file"))
    var output: String

    @Flag(name: .shortAndLong, help: "Print no progress and no summary; errors still go to standard error.")
    var quiet = false

    // MARK: Checks

    var options: TrainingOptions { training.options }

    /// The hidden widths asked for, when --layers is not given.
    var hiddenSizes: [Int] { hidden?.values ?? [128] }

    func validate() throws {
        do {
            try options.validate()
        } catch {
            throw ValidationError(error.message(naming: TrainingFlags.flag))
        }
        do {
            _ = try training.loss.value.resolved(for: outputActivation.value)
        } catch {
            throw ValidationError("--loss \(training.loss.value.name) does not fit --output-activation \(outputActivation.value.name): \(error.message)")
        }
        if layers != nil && hidden != nil { throw ValidationError("give --layers or --hidden, not both") }
        if validationImages != nil && training.validationFraction > 0 {
            throw ValidationError("give --validation-images or --validation-fraction, not both")
        }
        if validationLabels != nil && validationImages == nil {
            throw ValidationError("--validation-labels needs --validation-images")
        }
        if output.isEmpty { throw ValidationError("--output is empty") }
        let hiddenCount = layers.map { max($0.values.count - 2, 0) } ?? hiddenSizes.count
        if activation.values.count != 1 && activation.values.count != hiddenCount {
            throw ValidationError("--activation has \(activation.values.count) names; give one, or one per hidden layer (\(hiddenCount))")
        }
        if activation.values.contains(where: { $0.value == .softmax }) {
            throw ValidationError("--activation: softmax is for the output layer only (--output-activation)")
        }
        for rate in [inputDropout] + (dropout?.values ?? []) where !(rate >= 0 && rate < 1) {
            throw ValidationError("dropout rate \(rate): a rate must be at least 0 and below 1")
        }
        if dropout != nil && hiddenCount == 0 { throw ValidationError("--dropout: the network has no hidden layer") }
        if let rates = dropout?.values, rates.count != 1 && rates.count != hiddenCount {
            throw ValidationError("--dropout has \(rates.count) rates; give one, or one per hidden layer (\(hiddenCount))")
        }
        if let classes, classes < 1 { throw ValidationError("--classes is \(classes); it must be 1 or more") }
        if let names = classNames?.values {
            if names.isEmpty || names.contains(where: \.isEmpty) { throw ValidationError("--class-names has an empty name") }
            if let classes, classes != names.count {
                throw ValidationError("--classes is \(classes) but --class-names has \(names.count) names")
            }
        }
    }

    // MARK: Run

    func run() throws {
        try compute.apply()
        try checkWritable(output)
        let trainFiles = DataFiles(samples: images, labels: labels, labelsFlag: "--labels")
        let data = try trainFiles.load(labels: .required)
        let validationFiles = validationImages.map {
            DataFiles(samples: $0, labels: validationLabels, labelsFlag: "--validation-labels")
        }
        let validation = try validationFiles?.load(labels: .required)
        if let validation, validation.featureCount != data.featureCount {
            throw Failure(.badData, "\(validationFiles!.samples) has \(validation.featureCount) features per sample; \(images) has \(data.featureCount)")
        }
        let sizes = try layerSizes(for: data, validation: validation)
        let hiddenCount = sizes.count - 2
        let names = activation.values.map(\.value)
        let hiddenActivations = names.count == 1 ? Array(repeating: names[0], count: hiddenCount) : names
        let network = try during(.configuring) { () throws(NudgeError) in
            try Network(layerSizes: sizes, activations: hiddenActivations + [outputActivation.value], seed: training.seed)
        }
        var options = options
        options.dropout = dropoutRates(hiddenCount: hiddenCount)
        let trainer = try during(.configuring) { () throws(NudgeError) in try Trainer(network: network, options: options) }
        let resolvedLoss = try during(.configuring) { () throws(NudgeError) in try training.loss.value.resolved(for: outputActivation.value) }
        try during(.configuring) { () throws(NudgeError) in
            try describe(network, data: trainFiles, validation: validationFiles, loss: resolvedLoss)
        }

        let progress = TrainingProgress(quiet: quiet, epochs: training.epochs,
                                        showsLearningRate: options.schedule != .constant || options.warmupEpochs > 0)
        var stoppedAt: BatchReport?
        Interruption.install()
        let summary = try withExtendedLifetime((data, validation)) { () throws(Failure) in
            try during(.computing) { () throws(NudgeError) in
                try trainer.fit(data.featurePointer, targets: .labels(data.labelPointer!), rows: data.count,
                                validation: validation.map {
                                    Trainer.ValidationSet(inputs: $0.featurePointer, targets: .labels($0.labelPointer!), rows: $0.count)
                                },
                                progress: { report in
                                    progress.epoch(report)
                                    return Interruption.signal != 0
                                },
                                batchProgress: { report in
                                    progress.batch(report)
                                    if Interruption.signal != 0 { stoppedAt = report }
                                    return stoppedAt != nil
                                })
            }
        }
        // From here a Ctrl-C ends the process at once; the save is atomic.
        Interruption.uninstall()

        switch summary.stopReason {
        case .notFinite:
            progress.clearBar()
            throw Failure(.diverged, "training diverged: \(summary.message); no model written")
        case .cancelled:
            progress.note("interrupted \(stoppedAt.map { "at epoch \($0.epoch), batch \($0.batch) of \($0.batchCount)" } ?? "after epoch \(summary.epochsRun)"); saving the weights trained so far")
        case .completed, .earlyStopped:
            break
        }
        try during(.writing) { () throws(NudgeError) in
            try network.setMetadata(result(summary).compact, forKey: MetadataKey.result)
            try ModelFile.save(network, to: output)
        }
        progress.note(closingLine(summary, network: network))
        if summary.stopReason == .cancelled { throw ExitCode(ExitStatus.interrupted.rawValue) }
    }

    /// The widths of every layer: --layers checked against the data, or the data's width, the
    /// hidden widths and one output per class.
    private func layerSizes(for data: Dataset, validation: Dataset?) throws(Failure) -> [Int] {
        let labelled = max(data.classCount, validation?.classCount ?? 0)
        guard let given = layers?.values else {
            let classCount = classes ?? classNames?.values.count ?? max(labelled, 2)
            guard classCount >= labelled else {
                throw Failure(.usage, "\(classes != nil ? "--classes is" : "--class-names has") \(classCount)\(classes != nil ? "" : " names") but the labels go up to \(labelled - 1)")
            }
            return [data.featureCount] + hiddenSizes + [classCount]
        }
        guard given.count >= 2 else { throw Failure(.usage, "--layers needs at least 2 widths (input and output), got \(given.count)") }
        guard given[0] == data.featureCount else {
            throw Failure(.usage, "--layers starts with \(given[0]) inputs but \(images) has \(data.featureCount) features per sample")
        }
        let classCount = given.last! == 1 ? 2 : given.last!
        guard classCount >= labelled else {
            throw Failure(.usage, "--layers ends with \(given.last!) outputs but the labels go up to \(labelled - 1)")
        }
        if let names = classNames?.values, names.count != classCount {
            throw Failure(.usage, "--class-names has \(names.count) names but --layers gives \(classCount) classes")
        }
        return given
    }

    /// The library's dropout rates: the inputs', then each hidden layer's; none without dropout.
    private func dropoutRates(hiddenCount: Int) -> [Float] {
        let hidden = dropout.map { $0.values.count == 1 ? Array(repeating: $0.values[0], count: hiddenCount) : $0.values } ?? []
        let rates = [inputDropout] + hidden + Array(repeating: 0, count: hiddenCount - hidden.count)
        return rates.contains { $0 > 0 } ? rates : []
    }

    /// Metadata that says where the model came from.
    private func describe(_ network: Network, data: DataFiles, validation: DataFiles?, loss: Loss) throws(NudgeError) {
        try network.setMetadata("nudge \(NudgeVersion.string)", forKey: MetadataKey.createdBy)
        try network.setMetadata(creationDate(), forKey: MetadataKey.created)
        try network.setMetadata(quotedCommandLine(), forKey: MetadataKey.command)
        try network.setMetadata(data.samples, forKey: MetadataKey.trainingData)
        if let labels = data.labels { try network.setMetadata(labels, forKey: MetadataKey.trainingLabels) }
        if let validation {
            try network.setMetadata(validation.samples, forKey: MetadataKey.validationData)
            if let labels = validation.labels { try network.setMetadata(labels, forKey: MetadataKey.validationLabels) }
        }
        if let names = classNames?.values { try network.setMetadata(names.joined(separator: "\n"), forKey: MetadataKey.classNames) }
        var recorded = training.metadata
        if let rates = dropout?.values { recorded.append(("dropout", .array(rates.map { .float($0) }))) }
        if inputDropout > 0 { recorded.append(("input_dropout", .float(inputDropout))) }
        try network.setMetadata(JSON.object(recorded).compact, forKey: MetadataKey.training)
    }

    private func result(_ summary: TrainingSummary) -> JSON {
        let reason = switch summary.stopReason {
        case .completed: "completed"
        case .earlyStopped: "early_stopped"
        case .cancelled: "interrupted"
        case .notFinite: "diverged"
        }
        return .object([
            ("stop_reason", .string(reason)),
            ("epochs_run", .int(summary.epochsRun)),
            ("best_epoch", .int(summary.bestEpoch)),
            ("train_loss", .number(summary.finalTrainLoss)),
            ("train_accuracy", .number(summary.finalTrainAccuracy)),
            ("validation_loss", .number(summary.finalValidationLoss)),
            ("validation_accuracy", .number(summary.finalValidationAccuracy)),
        ])
    }

    private func closingLine(_ summary: TrainingSummary, network: Network) -> String {
        var line = "saved \(output): \(network.layerSizes.map(String.init).joined(separator: "-")), \(grouped(network.parameterCount)) parameters"
        switch summary.stopReason {
        case .earlyStopped:
            line += "; stopped early after epoch \(summary.epochsRun), weights of epoch \(summary.bestEpoch)"
        case .cancelled:
            line += "; interrupted after \(summary.epochsRun) full epoch\(summary.epochsRun == 1 ? "" : "s"), weights of the last batch"
        default:
            line += "; \(summary.epochsRun) epoch\(summary.epochsRun == 1 ? "" : "s") in \(fixed(summary.seconds, 1))s"
        }
        if !summary.finalValidationAccuracy.isNaN {
            line += "; validation accuracy \(fixed(summary.finalValidationAccuracy, 4))"
        } else if !summary.finalTrainAccuracy.isNaN {
            line += "; training accuracy \(fixed(summary.finalTrainAccuracy, 4))"
        }
        return line
    }
}
