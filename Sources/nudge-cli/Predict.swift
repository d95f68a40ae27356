import ArgumentParser
import Nudge

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify samples with a model and write the predictions as CSV.",
        discussion: """
            By default: a header `index,label` and one row per sample, with the 0-based sample \
            index and the predicted class; --probabilities adds the network's outputs as columns \
            p0, p1, ... (class probabilities with a softmax output layer; with a single sigmoid \
            output, one column p1). --kaggle writes exactly what Kaggle's digit-recognizer \
            competition takes: the header `ImageId,Label`, 1-based ids, one line per image.

            The CSV goes to standard output unless --output names a file, which is then written \
            whole or not at all (a symbolic link: the file it points to). `-o -` and `-o /dev/stdout` \
            mean standard output; a FIFO or character device named with -o is written in place, as \
            a stream. Nothing else goes to standard output.

            EXAMPLES:
              nudge predict fashion.nudge --images t10k-images-idx3-ubyte.gz \\
                  > predictions.csv
              nudge predict fashion.nudge --images t10k-images-idx3-ubyte.gz \\
                  --probabilities -o scores.csv
              nudge predict digits.nudge --images test.idx --kaggle -o submission.csv
            """
    )

    @Argument(help: ArgumentHelp("The model file.", valueName: "model"))
    var model: String

    @Option(name: [.customLong("images"), .customLong("data")],
            help: ArgumentHelp("The samples: an IDX file (plain or .gz) or a CSV file; labels, if any, are not read.", valueName: "file"))
    var images: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the CSV (default: standard output).", valueName: "file"))
    var output: String?

    @Flag(help: "Add the network's outputs for every class.")
    var probabilities = false

    @Flag(help: "Kaggle digit-recognizer submission: ImageId,Label with 1-based ids.")
    var kaggle = false

    @OptionGroup(title: "CSV data") var csv: CSVFlags

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if kaggle && probabilities { throw ValidationError("--kaggle files have no probability columns; drop --probabilities") }
        if output?.isEmpty == true { throw ValidationError("--output is empty") }
    }

    func run() throws {
        try compute.apply()
        if let output {
            try checkNotAnInput(output, flag: "--output", inputs: [("the model", model), ("--images", images)])
        }
        let out = try TextOutput(path: output)
        let network = try during(.reading) { () throws(NudgeError) in try ModelFile.load(from: model) }
        let data = try DataFiles(samples: images, labels: nil, labelsFlag: "--labels", csv: try csv.layout()).load(labels: .ignored)
        try data.checkFits(network, source: images)
        let width = network.outputSize
        let (labels, outputs) = try during(.computing) { () throws(NudgeError) in
            (try network.classify(data), probabilities ? try network.predict(data) : [])
        }
        if kaggle {
            try out.write("ImageId,Label\n")
            for (i, label) in labels.enumerated() { try out.write("\(i + 1),\(label)\n") }
        } else {
            let columns = !probabilities ? [] : width == 1 ? ["p1"] : (0..<width).map { "p\($0)" }
            try out.write((["index", "label"] + columns).joined(separator: ",") + "\n")
            for (i, label) in labels.enumerated() {
                var row = "\(i),\(label)"
                if probabilities {
                    for j in 0..<width { row += ",\(outputs[i * width + j])" }
                }
                try out.write(row + "\n")
            }
        }
        try out.commit()
    }
}
