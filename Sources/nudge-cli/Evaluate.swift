import ArgumentParser
import Nudge

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model on labelled data: accuracy, loss, per-class accuracy, confusion matrix.",
        discussion: """
            The report goes to standard output, as aligned text or, with --format json, as one JSON \
            object. In the confusion matrix, row i counts the samples of class i by the class the \
            model predicted. With --min-accuracy X the exit status is 2 when the accuracy is below \
            X, after the report, so that a CI script can gate on a model.

            EXAMPLES:
              nudge evaluate fashion.nudge --images t10k-images-idx3-ubyte.gz \\
                  --labels t10k-labels-idx1-ubyte.gz
              nudge evaluate fashion.nudge --images test.idx --labels test-labels.idx \\
                  --format json --min-accuracy 0.85 > report.json
            """
    )

    @Argument(help: ArgumentHelp("The model file.", valueName: "model"))
    var model: String

    @Option(name: [.customLong("images"), .customLong("data")],
            help: ArgumentHelp("The samples: an IDX file (plain or .gz) or a CSV file with a label column.", valueName: "file"))
    var images: String

    @Option(help: ArgumentHelp("Their labels, for IDX samples: an IDX file.", valueName: "file"))
    var labels: String?

    @Option(help: ArgumentHelp("The cost function reported; auto picks it from the output activation.", valueName: "name"))
    var loss = Choice(Loss.auto)

    @Option(help: ArgumentHelp("How to print the report.", valueName: "format"))
    var format = ReportFormat.text

    @Option(help: ArgumentHelp("Exit with status 2 when the accuracy is below this fraction (0 to 1).", valueName: "x"))
    var minAccuracy: Double?

    @OptionGroup(title: "CSV data") var csv: CSVFlags

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let minAccuracy, !(0...1).contains(minAccuracy) {
            throw ValidationError("--min-accuracy is \(minAccuracy); it must be a fraction from 0 to 1")
        }
    }

    func run() throws {
        try compute.apply()
        let network = try during(.reading) { () throws(NudgeError) in try ModelFile.load(from: model) }
        let files = DataFiles(samples: images, labels: labels, labelsFlag: "--labels", csv: try csv.layout())
        let data = try files.load(labels: .required)
        try data.checkFits(network, source: images)
        let resolved = try during(.configuring) { () throws(NudgeError) in
            try loss.value.resolved(for: network.activations[network.weightLayerCount - 1])
        }
        let truth = data.labels!
        let (measured, predicted) = try during(.computing) { () throws(NudgeError) in
            (try network.evaluate(data, weights: data.weightBuffer, loss: resolved), try network.classify(data))
        }
        let report = Report(network: network, truth: truth, predicted: predicted, loss: measured.loss, lossName: resolved.name,
                            weightedAccuracy: data.weightBuffer == nil ? nil : measured.accuracy)
        // A gate must not pass, nor fail as "below the minimum", when its report was lost.
        try StandardOutput.write((format == .json ? report.json(model: model, data: files).rendered() : report.text(model: model, data: files)) + "\n")
        let gated = report.weightedAccuracy ?? report.accuracy
        if let minAccuracy, gated < minAccuracy {
            throw Failure(.belowMinimumAccuracy, "\(report.weightedAccuracy == nil ? "" : "weighted ")accuracy \(fixed(gated, 4)) is below --min-accuracy \(minAccuracy)")
        }
    }
}

/// What `evaluate` measured.
private struct Report {
    let classCount: Int
    let names: [String]?
    /// `confusion[i][j]`: samples of class i predicted as class j.
    var confusion: [[Int]]
    let samples: Int
    /// The mean loss, weighted when the data has per-sample weights.
    let loss: Double
    let lossName: String
    /// The accuracy with each sample counted by its weight (--weight-column); nil without weights.
    let weightedAccuracy: Double?

    init(network: Network, truth: [Int32], predicted: [Int32], loss: Double, lossName: String, weightedAccuracy: Double?) {
        self.weightedAccuracy = weightedAccuracy
        // A single output classifies into 0 and 1.
        classCount = max(network.outputSize, 2)
        names = network.classNames(count: classCount)
        confusion = Array(repeating: Array(repeating: 0, count: classCount), count: classCount)
        for (t, p) in zip(truth, predicted) { confusion[Int(t)][Int(p)] += 1 }
        samples = truth.count
        self.loss = loss
        self.lossName = lossName
    }

    var correct: Int { (0..<classCount).reduce(0) { $0 + confusion[$1][$1] } }
    var accuracy: Double { Double(correct) / Double(samples) }
    func count(of c: Int) -> Int { confusion[c].reduce(0, +) }
    /// NaN for a class without samples.
    func accuracy(of c: Int) -> Double { Double(confusion[c][c]) / Double(count(of: c)) }

    func text(model: String, data: DataFiles) -> String {
        var lines = [
            "model     \(model)",
            "data      \(data.description)",
            "samples   \(samples)",
            "accuracy  \(fixed(accuracy, 4))  (\(correct) correct)",
        ]
        if let weightedAccuracy {
            lines.append("weighted  \(fixed(weightedAccuracy, 4))  (accuracy with each sample counted by its weight)")
        }
        lines += ["loss      \(fixed(loss, 4))  (\(lossName)\(weightedAccuracy == nil ? "" : ", weighted"))", ""]
        let labels = (0..<classCount).map { c in names.map { "\(c) \($0[c])" } ?? "\(c)" }
        let labelWidth = max(5, labels.map(\.count).max() ?? 0)
        lines.append("class".rightPadded(to: labelWidth) + "  samples  correct  accuracy")
        for c in 0..<classCount {
            let a = accuracy(of: c)
            lines.append(labels[c].rightPadded(to: labelWidth) + "  " + String(count(of: c)).leftPadded(to: 7)
                         + "  " + String(confusion[c][c]).leftPadded(to: 7)
                         + "  " + (a.isNaN ? "-" : fixed(a, 4)).leftPadded(to: 8))
        }
        lines.append("")
        lines.append("confusion matrix (rows: true class, columns: predicted class)")
        let cellWidth = max(String(confusion.joined().max() ?? 0).count, String(classCount - 1).count) + 1
        let rowWidth = String(classCount - 1).count
        lines.append(String(repeating: " ", count: rowWidth) + (0..<classCount).map { String($0).leftPadded(to: cellWidth + 1) }.joined())
        for c in 0..<classCount {
            lines.append(String(c).leftPadded(to: rowWidth) + confusion[c].map { String($0).leftPadded(to: cellWidth + 1) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    func json(model: String, data: DataFiles) -> JSON {
        .object([
            ("model", .string(model)),
            ("data", .string(data.samples)),
            ("labels", data.labels.map(JSON.string) ?? .null),
            ("samples", .int(samples)),
            ("correct", .int(correct)),
            ("accuracy", .number(accuracy)),
            ("weighted_accuracy", weightedAccuracy.map(JSON.number) ?? .null),
            ("loss", .number(loss)),
            ("loss_weighted", .bool(weightedAccuracy != nil)),
            ("loss_function", .string(lossName)),
            ("classes", .array((0..<classCount).map { c in
                .object([
                    ("class", .int(c)),
                    ("name", names.map { .string($0[c]) } ?? .null),
                    ("samples", .int(count(of: c))),
                    ("correct", .int(confusion[c][c])),
                    ("accuracy", .number(accuracy(of: c))),
                ])
            })),
            ("confusion_matrix", .array(confusion.map { .array($0.map(JSON.int)) })),
        ])
    }
}
