import Glibc
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

            The training options are the library's, one flag each (docs/OPTIONS.md lists them in \
            every layer's spelling); --dropout and --input-dropout give its dropout rates.

            Progress goes to standard error: a bar redrawn after batches (epoch, loss, time left) \
            when it is a terminal, one line per epoch otherwise, nothing with --quiet.

            Ctrl-C (or SIGTERM) stops training after the current batch and still saves the model, \
            with the weights trained so far, then exits with status 130; a second Ctrl-C ends the \
            process at once (the save is atomic: the output is then the previous file or none). \
            A run whose loss becomes NaN or infinite writes no model and exits with status 3.

            With --checkpoint, the whole trainer (weights, optimiser state, generator, position in \
            the run) is written atomically every --checkpoint-every steps, at each epoch's end and \
            at the end; the same command with --resume goes on from it after a kill, a crash or \
            Ctrl-C, and ends with the weights the run would have had uninterrupted.

            The model file holds, as metadata: the command line, the date (from \
            $SOURCE_DATE_EPOCH when set, so that the same command and seed give a byte-identical \
            file), the data files, the class names, every training option and the result; \
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

    // The help lists the groups in this order; the two "Training options" groups make one section.
    @OptionGroup(title: "Data") var files: DataFlags
    @OptionGroup(title: "CSV data") var csv: CSVFlags
    @OptionGroup(title: "Network") var architecture: NetworkFlags
    @OptionGroup(title: "Training options") var training: TrainingFlags
    @OptionGroup(title: "Training options") var dropout: DropoutFlags
    @OptionGroup(title: "Output") var output: OutputFlags
    @OptionGroup(title: "Checkpoints") var checkpoints: CheckpointFlags
    @OptionGroup var compute: ComputeOptions

    /// How the tool names a library option in messages: its flag. Entry 0 of the library's dropout
    /// rates is the inputs' (--input-dropout); the others are the hidden layers' (--dropout).
    static func flag(_ subject: NudgeError.Subject) -> String {
        if case .entry(.dropout, 0) = subject { return "--input-dropout" }
        return TrainingFlags.flag(subject)
    }

    // MARK: Checks

    /// What no group checks alone: the training options against their ranges (with the dropout
    /// rates, so that the library's ranges are the only ones), and flags of different groups
    /// against each other. Each group checks its own flags first.
    func validate() throws {
        var options = training.options
        options.dropout = [dropout.input] + (dropout.hidden?.values ?? [])
        do {
            try options.validate()
        } catch {
            throw ValidationError(error.message(naming: Train.flag))
        }
        let outputActivation = architecture.outputActivation.value
        do {
            _ = try training.loss.value.resolved(for: outputActivation)
        } catch {
            throw ValidationError("--loss \(training.loss.value.name) does not fit --output-activation \(outputActivation.name): \(error.message(naming: Train.flag))")
        }
        if files.validationImages != nil && training.validationFraction > 0 {
            throw ValidationError("give --validation-images or --validation-fraction, not both")
        }
        try dropout.check(hiddenCount: architecture.hiddenCount)
    }

    // MARK: Run

    func run() throws {
        try compute.apply()
        try checkOutputs()
        let (data, validation) = try loadData()
        let trainer = try configure(for: data, validation: validation)
        let progress = TrainingProgress(quiet: output.quiet, epochs: training.epochs,
                                        showsLearningRate: training.schedule.value != .constant || training.warmupEpochs > 0)
        let (summary, stoppedAt) = try fit(trainer, data: data, validation: validation, progress: progress)
        try finish(trainer.network, summary: summary, stoppedAt: stoppedAt, progress: progress)
    }

    /// Before anything is read: the model and the checkpoint can be saved where the flags say (a
    /// regular file or a new name whose folder is writable), and neither is one of the inputs.
    private func checkOutputs() throws(Failure) {
        let inputs = [("--images", files.images), ("--labels", files.labels),
                      ("--validation-images", files.validationImages), ("--validation-labels", files.validationLabels)]
        try checkNotAnInput(output.path, flag: "--output", inputs: inputs + [("--checkpoint", checkpoints.path)])
        try checkWritable(output.path)
        if let checkpoint = checkpoints.path {
            try checkNotAnInput(checkpoint, flag: "--checkpoint", inputs: inputs)
            try checkWritable(checkpoint)
        }
    }

    /// The training data and any validation data, which must have as many features per sample.
    private func loadData() throws(Failure) -> (Dataset, Dataset?) {
        let layout = try csv.layout()
        let data = try files.training(layout).load(labels: .required)
        guard let validationFiles = files.validation(layout) else { return (data, nil) }
        let validation = try validationFiles.load(labels: .required)
        guard validation.featureCount == data.featureCount else {
            throw Failure(.badData, "\(validationFiles.samples) has \(validation.featureCount) features per sample; \(files.images) has \(data.featureCount)")
        }
        return (data, validation)
    }

    /// The network the flags describe, its trainer, and the metadata that says where it came from.
    private func configure(for data: Dataset, validation: Dataset?) throws(Failure) -> Trainer {
        if let resumed = try checkpoints.resumed() { return try check(resumed, for: data, validation: validation) }
        let sizes = try layerSizes(for: data, validation: validation)
        let hiddenCount = sizes.count - 2
        let names = architecture.activation.values.map(\.value)
        let activations = (names.count == 1 ? Array(repeating: names[0], count: hiddenCount) : names)
            + [architecture.outputActivation.value]
        var options = training.options
        options.dropout = dropout.rates(hiddenCount: hiddenCount)
        return try during(.configuring) { () throws(NudgeError) in
            let network = try Network(layerSizes: sizes, activations: activations, seed: training.seed)
            let trainer = try Trainer(network: network, options: options)
            try describe(network, loss: try training.loss.value.resolved(for: architecture.outputActivation.value))
            trainer.checkpoint = try checkpoints.plan()
            return trainer
        }
    }

    /// A trainer loaded by --resume, which must be the run these flags describe.
    private func check(_ trainer: Trainer, for data: Dataset, validation: Dataset?) throws(Failure) -> Trainer {
        let sizes = try layerSizes(for: data, validation: validation)
        var options = training.options
        options.dropout = dropout.rates(hiddenCount: sizes.count - 2)
        guard trainer.network.layerSizes == sizes else {
            throw Failure(.usage, "--resume: the checkpoint \(checkpoints.path ?? "") holds a \(trainer.network.layerSizes.map(String.init).joined(separator: "-")) network; these flags describe \(sizes.map(String.init).joined(separator: "-"))")
        }
        guard trainer.options == options else {
            let differing = zip(trainer.options.storedValues, options.storedValues).first { $0.1 != $1.1 }.map { Train.flag(.option($0.0.0)) }
            throw Failure(.usage, "--resume: the checkpoint's run was started with other training options\(differing.map { " (\($0) differs)" } ?? ""); give the flags it was started with")
        }
        return try during(.configuring) { () throws(NudgeError) in
            trainer.checkpoint = try checkpoints.plan()
            return trainer
        }
    }

    /// Trains until the epochs are done, early stopping or a signal; returns the summary and, when a
    /// signal stopped training between batches, the last batch trained.
    private func fit(_ trainer: Trainer, data: Dataset, validation: Dataset?,
                     progress: TrainingProgress) throws(Failure) -> (TrainingSummary, BatchReport?) {
        var stoppedAt: BatchReport?
        Interruption.install()
        let summary = try during(.computing) { () throws(NudgeError) in
            // Per-sample weights come from --weight-column (each file's own column), read in place.
            try trainer.fit(data, weights: data.weightBuffer, validation: validation, validationWeights: validation?.weightBuffer,
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
        // From here a Ctrl-C ends the process at once; the save is atomic.
        Interruption.uninstall()
        return (summary, stoppedAt)
    }

    /// Saves the model, unless training diverged, and says how training ended.
    private func finish(_ network: Network, summary: TrainingSummary, stoppedAt: BatchReport?,
                        progress: TrainingProgress) throws {
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
            try ModelFile.save(network, to: output.path)
        }
        progress.note(closingLine(summary, network: network))
        if summary.stopReason == .cancelled { throw ExitCode(ExitStatus.interrupted.rawValue) }
    }

    /// The widths of every layer: --layers checked against the data, or the data's width, the
    /// hidden widths and one output per class.
    private func layerSizes(for data: Dataset, validation: Dataset?) throws(Failure) -> [Int] {
        let labelled = max(data.classCount, validation?.classCount ?? 0)
        let classes = architecture.classes, names = architecture.classNames?.values
        guard let given = architecture.layers?.values else {
            let classCount = classes ?? names?.count ?? max(labelled, 2)
            guard classCount >= labelled else {
                throw Failure(.usage, "\(classes != nil ? "--classes is" : "--class-names has") \(classCount)\(classes != nil ? "" : " names") but the labels go up to \(labelled - 1)")
            }
            guard data.featureCount <= Network.maxWidth else {
                throw Failure(.badData, "\(files.images) has \(data.featureCount) features per sample; a network takes at most \(Network.maxWidth) inputs")
            }
            guard classCount <= Network.maxWidth else {
                throw Failure(.badData, "the labels go up to \(labelled - 1); a network has at most \(Network.maxWidth) outputs")
            }
            return [data.featureCount] + architecture.hiddenSizes + [classCount]
        }
        guard given[0] == data.featureCount else {
            throw Failure(.usage, "--layers starts with \(given[0]) inputs but \(files.images) has \(data.featureCount) features per sample")
        }
        guard architecture.classCount! >= labelled else {
            throw Failure(.usage, "--layers ends with \(given.last!) outputs but the labels go up to \(labelled - 1)")
        }
        return given
    }

    /// Metadata that says where the model came from.
    private func describe(_ network: Network, loss: Loss) throws(NudgeError) {
        try network.setMetadata("nudge \(NudgeVersion.string)", forKey: MetadataKey.createdBy)
        try network.setMetadata(creationDate(), forKey: MetadataKey.created)
        try network.setMetadata(quotedCommandLine(), forKey: MetadataKey.command)
        try network.setMetadata(files.images, forKey: MetadataKey.trainingData)
        if let labels = files.labels { try network.setMetadata(labels, forKey: MetadataKey.trainingLabels) }
        if let validation = files.validationImages {
            try network.setMetadata(validation, forKey: MetadataKey.validationData)
            if let labels = files.validationLabels { try network.setMetadata(labels, forKey: MetadataKey.validationLabels) }
        }
        if let names = architecture.classNames?.values {
            try network.setMetadata(names.joined(separator: "\n"), forKey: MetadataKey.classNames)
        }
        // Every option as given, except the loss: the one `auto` chose.
        let recorded = training.metadata.map { key, value in key == "loss" ? (key, JSON.string(loss.name)) : (key, value) }
        try network.setMetadata(JSON.object(recorded + dropout.metadata).compact, forKey: MetadataKey.training)
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
        var line = "saved \(output.path): \(network.layerSizes.map(String.init).joined(separator: "-")), \(grouped(network.parameterCount)) parameters"
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

// MARK: Hand-written flags

// The flags of `nudge train` that are not training options of the library's table; the training
// options' flags are generated (TrainingFlags.swift).

/// The files to train and validate on.
struct DataFlags: ParsableArguments {
    @Option(name: [.customLong("images"), .customLong("data")],
            help: ArgumentHelp("The training samples: an IDX file (plain or .gz) or a CSV file with a label column.", valueName: "file"))
    var images: String

    @Option(help: ArgumentHelp("The training labels, for IDX samples: an IDX file of one label per sample.", valueName: "file"))
    var labels: String?

    @Option(name: [.customLong("validation-images"), .customLong("validation-data")],
            help: ArgumentHelp("Held-out samples measured after every epoch (instead of --validation-fraction).", valueName: "file"))
    var validationImages: String?

    @Option(help: ArgumentHelp("Their labels.", valueName: "file"))
    var validationLabels: String?

    func validate() throws {
        if validationLabels != nil && validationImages == nil {
            throw ValidationError("--validation-labels needs --validation-images")
        }
    }

    /// The training files, a CSV file read as `csv` says.
    func training(_ csv: CSVLayout) -> DataFiles {
        DataFiles(samples: images, labels: labels, labelsFlag: "--labels", csv: csv)
    }

    /// The validation files, if any, a CSV file laid out as the training file.
    func validation(_ csv: CSVLayout) -> DataFiles? {
        validationImages.map { DataFiles(samples: $0, labels: validationLabels, labelsFlag: "--validation-labels", csv: csv) }
    }
}

/// The network's shape: its layers, their activations and the classes.
struct NetworkFlags: ParsableArguments {
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

    /// The hidden widths asked for, when --layers is not given.
    var hiddenSizes: [Int] { hidden?.values ?? [128] }

    var hiddenCount: Int { layers.map { max($0.values.count - 2, 0) } ?? hiddenSizes.count }

    /// The classes --layers gives (a single output classifies into two), or nil without --layers.
    var classCount: Int? { layers?.values.last.map { $0 == 1 ? 2 : $0 } }

    func validate() throws {
        if layers != nil && hidden != nil { throw ValidationError("give --layers or --hidden, not both") }
        if let count = layers?.values.count, count < 2 {
            throw ValidationError("--layers needs at least 2 widths (input and output), got \(count)")
        }
        for (flag, widths) in [("--layers", layers?.values), ("--hidden", hidden?.values)] {
            if let width = widths?.first(where: { !(1...Network.maxWidth).contains($0) }) {
                throw ValidationError("\(flag) has a width of \(width); each layer needs 1 to \(Network.maxWidth) units")
            }
        }
        if activation.values.count != 1 && activation.values.count != hiddenCount {
            throw ValidationError("--activation has \(activation.values.count) names; give one, or one per hidden layer (\(hiddenCount))")
        }
        if activation.values.contains(where: { $0.value == .softmax }) {
            throw ValidationError("--activation: softmax is for the output layer only (--output-activation)")
        }
        try validateClasses()
    }

    private func validateClasses() throws {
        if let classes, !(1...Network.maxWidth).contains(classes) {
            throw ValidationError("--classes is \(classes); it must be 1 to \(Network.maxWidth)")
        }
        guard let names = classNames?.values else { return }
        if names.isEmpty || names.contains(where: \.isEmpty) { throw ValidationError("--class-names has an empty name") }
        if let classes, classes != names.count {
            throw ValidationError("--classes is \(classes) but --class-names has \(names.count) names")
        }
        if let classCount, classCount != names.count {
            throw ValidationError("--class-names has \(names.count) names but --layers gives \(classCount) classes")
        }
    }
}

/// Dropout, given per layer of units rather than as the library's list of rates.
struct DropoutFlags: ParsableArguments {
    @Option(name: .customLong("dropout"),
            help: ArgumentHelp("Dropout rate of the hidden layers' units during training: one for all, or one per hidden layer. Each must be \(TrainingFlags.requirement(.dropout)!).",
                               valueName: "rates"))
    var hidden: CommaList<Float>?

    @Option(name: .customLong("input-dropout"),
            help: ArgumentHelp("Dropout rate of the input features during training. Must be \(TrainingFlags.requirement(.dropout)!).", valueName: "rate"))
    var input: Float = 0

    /// Checks the number of rates against the hidden layers (Train.validate checks the rates).
    func check(hiddenCount: Int) throws {
        guard let rates = hidden?.values else { return }
        if hiddenCount == 0 { throw ValidationError("--dropout: the network has no hidden layer") }
        if rates.count != 1 && rates.count != hiddenCount {
            throw ValidationError("--dropout has \(rates.count) rates; give one, or one per hidden layer (\(hiddenCount))")
        }
    }

    /// The library's dropout rates: the inputs', then each hidden layer's; none without dropout.
    func rates(hiddenCount: Int) -> [Float] {
        let given = hidden?.values ?? []
        let perLayer = given.count == 1 ? Array(repeating: given[0], count: hiddenCount) : given
        let rates = [input] + perLayer + Array(repeating: 0, count: hiddenCount - perLayer.count)
        return rates.contains { $0 > 0 } ? rates : []
    }

    /// The rates as the model's metadata records them: as given, and the inputs' when not 0.
    var metadata: [(String, JSON)] {
        (hidden.map { [("dropout", JSON.array($0.values.map { .float($0) }))] } ?? [])
            + (input > 0 ? [("input_dropout", .float(input))] : [])
    }
}

/// Where the model goes, and what the run prints.
struct OutputFlags: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("Where to write the model (atomically).", valueName: "file"))
    var path: String

    @Flag(name: .shortAndLong, help: "Print no progress and no summary; errors still go to standard error.")
    var quiet = false

    func validate() throws {
        if path.isEmpty { throw ValidationError("--output is empty") }
        if path == "-" { throw ValidationError("--output is -: a model is saved to a file, not to standard output; give a file name (./- for a file named -)") }
    }
}

/// Where the trainer's checkpoints go, and whether to go on from one.
struct CheckpointFlags: ParsableArguments {
    @Option(name: .customLong("checkpoint"),
            help: ArgumentHelp("Write the whole trainer here (atomically) during training, to go on after a stop with --resume.",
                               valueName: "file"))
    var path: String?

    @Option(name: .customLong("checkpoint-every"),
            help: ArgumentHelp("Steps between checkpoints; 0 writes one at the end of each epoch only.", valueName: "steps"))
    var every: Int = 0

    @Flag(help: "Go on from the --checkpoint file when it exists (the same flags as the run that wrote it); start anew when it does not.")
    var resume = false

    func validate() throws {
        if path?.isEmpty == true { throw ValidationError("--checkpoint is empty") }
        if every < 0 { throw ValidationError("--checkpoint-every is \(every); it must be 0 (each epoch) or more") }
        if path == nil && (resume || every > 0) {
            throw ValidationError("\(resume ? "--resume" : "--checkpoint-every") needs --checkpoint")
        }
    }

    /// The library's checkpoint plan, or nil without --checkpoint.
    func plan() throws(NudgeError) -> CheckpointPlan? {
        guard let path else { return nil }
        return try CheckpointPlan(path: path, everySteps: every)
    }

    /// With --resume and an existing checkpoint, the trainer it holds.
    func resumed() throws(Failure) -> Trainer? {
        guard resume, let path, access(path, F_OK) == 0 else { return nil }
        return try during(.reading) { () throws(NudgeError) in try Trainer.load(from: path) }
    }
}
