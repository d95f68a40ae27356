import Glibc
import Nudge

/// The files one set of samples comes from: a data file and, for a format that keeps labels in a
/// file of their own (IDX), that file. ``load(labels:)`` is the one place that picks a reader.
struct DataFiles {
    var samples: String
    var labels: String?
    /// The flag that names ``labels``, for messages.
    var labelsFlag: String

    /// File formats the tool reads.
    enum Format {
        /// IDX (MNIST, Fashion-MNIST), plain or gzip; the reader checks the magic.
        case idx
        /// Numeric CSV (`.csv` or `.csv.gz`), such as the Kaggle digit recognizer's files: labels in
        /// a column named `label` when there is one, every other column a feature.
        case csv

        init(path: String) {
            let name = path.lowercased()
            self = name.hasSuffix(".csv") || name.hasSuffix(".csv.gz") ? .csv : .idx
        }
    }

    /// What a command needs of the labels.
    enum Labels {
        case required, ignored
    }

    /// Reads the samples, and their labels when the command needs them.
    func load(labels need: Labels) throws(Failure) -> Dataset {
        for path in [samples, need == .ignored ? nil : labels].compactMap({ $0 }) {
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
                throw Failure(.noInput, "\(path) is a folder, not a data file: give an IDX file (plain or .gz) or a CSV file")
            }
        }
        switch Format(path: samples) {
        case .idx:
            let labelsPath = need == .ignored ? nil : labels
            if need == .required && labelsPath == nil {
                throw Failure(.usage, "\(samples) is an IDX file, whose labels are in a file of their own: give \(labelsFlag) FILE")
            }
            return try during(.reading) { () throws(NudgeError) in try IDX.load(images: samples, labels: labelsPath) }
        case .csv:
            if need == .required, let labels {
                throw Failure(.usage, "\(samples) is a CSV file, which keeps its labels in a column named label; \(labelsFlag) \(labels) is for IDX files")
            }
            let data = try during(.reading) { () throws(NudgeError) in try CSV.load(path: samples, options: CSV.Options()) }
            if need == .required && !data.hasLabels {
                throw Failure(.badData, "\(samples) has no label column: a CSV file needs a header with a column named label")
            }
            return data
        }
    }

    /// The files, for metadata and messages.
    var description: String {
        [samples, labels].compactMap { $0 }.joined(separator: " + ")
    }
}

extension Dataset {
    /// Fails unless every sample has as many features as the network has inputs.
    func checkFits(_ network: Network, source: String) throws(Failure) {
        guard featureCount == network.inputSize else {
            throw Failure(.badData, "\(source) has \(featureCount) features per sample; the model takes \(network.inputSize)")
        }
    }
}
