import ArgumentParser
import Glibc
import Nudge

/// The files one set of samples comes from: a data file and, for a format that keeps labels in a
/// file of their own (IDX), that file. ``load(labels:)`` is the one place that picks a reader.
struct DataFiles {
    var samples: String
    var labels: String?
    /// The flag that names ``labels``, for messages.
    var labelsFlag: String
    /// How a CSV file is read (``CSVFlags``).
    var csv = CSVLayout()

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

    /// Reads the samples, and their labels when the command needs them. A CSV file's weight
    /// column, when ``csv`` names one, gives the data set its ``Dataset/weights``.
    func load(labels need: Labels) throws(Failure) -> Dataset {
        for path in [samples, need == .ignored ? nil : labels].compactMap({ $0 }) {
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
                throw Failure(.noInput, "\(path) is a folder, not a data file: give an IDX file (plain or .gz) or a CSV file")
            }
        }
        switch Format(path: samples) {
        case .idx:
            if !csv.flags.isEmpty {
                let flags = csv.flags.dropLast().joined(separator: ", ") + (csv.flags.count > 1 ? " and " : "") + csv.flags.last!
                throw Failure(.usage, "\(flags) \(csv.flags.count == 1 ? "is" : "are") for CSV files; \(samples) is an IDX file")
            }
            let labelsPath = need == .ignored ? nil : labels
            if need == .required && labelsPath == nil {
                throw Failure(.usage, "\(samples) is an IDX file, whose labels are in a file of their own: give \(labelsFlag) FILE")
            }
            return try during(.reading) { () throws(NudgeError) in try IDX.load(images: samples, labels: labelsPath) }
        case .csv:
            if need == .required, let labels {
                throw Failure(.usage, "\(samples) is a CSV file, which keeps its labels in a column (named label, or chosen with --label-column); \(labelsFlag) \(labels) is for IDX files")
            }
            let data: Dataset
            do {
                data = try CSV.load(path: samples, options: csv.options)
            } catch {
                // A column the flags name that the file does not have: the flags do not fit the data.
                throw error.kind == .invalidArgument ? Failure(.usage, error.message) : Failure(error, while: .reading)
            }
            if need == .required && !data.hasLabels {
                throw Failure(.badData, "\(samples) has no label column: name it with --label-column (a header name or a 0-based index), or give the file a header with a column named label")
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

/// How CSV files are read, from ``CSVFlags``: the reader's options, and the flags that set them
/// (which IDX files refuse).
struct CSVLayout {
    var options = CSV.Options()
    var flags: [String] = []
}

/// The flags that say how a CSV file is laid out, for every command that reads data. Columns are
/// chosen as Python's `load_csv` chooses them: a whole number is a 0-based index, anything else a
/// header name.
struct CSVFlags: ParsableArguments {
    @Option(help: ArgumentHelp("The label column: a header name, or a 0-based index (a whole number is an index). Default: the column named label, in any case, if there is one.",
                               valueName: "name|index"))
    var labelColumn: String?

    @Flag(help: "The first row is data, not a header: choose columns by index.")
    var noHeader = false

    @Option(help: ArgumentHelp("The character between fields: one ASCII character such as ';', or tab (also written \\t). Default: a comma.",
                               valueName: "char"))
    var delimiter: String?

    @Option(help: ArgumentHelp("Columns to leave out, such as an id or a name: header names or 0-based indexes, comma-separated; may be repeated. Their cells are not read as numbers.",
                               valueName: "a,b,..."))
    var ignoreColumns: [String] = []

    @Option(help: ArgumentHelp("The column of per-sample weights (numbers from 0), a header name or a 0-based index; it is not a feature.",
                               valueName: "name|index"))
    var weightColumn: String?

    func validate() throws {
        _ = try parsed()
    }

    /// The reader's options and the flags given (checked by `validate()` already).
    func layout() throws(Failure) -> CSVLayout {
        do {
            return try parsed()
        } catch {
            throw Failure(.usage, error.message)
        }
    }

    /// The reader's options and the flags given; a value no file can satisfy is a usage error.
    private func parsed() throws(ValidationError) -> CSVLayout {
        var layout = CSVLayout()
        var o = CSV.Options()
        if noHeader {
            o.header = .absent
            layout.flags.append("--no-header")
        }
        if let labelColumn {
            o.labelColumn = switch try column(labelColumn, flag: "--label-column") {
            case .index(let i): .index(i)
            case .name(let name): .name(name)
            }
            layout.flags.append("--label-column")
        }
        if let delimiter {
            o.delimiter = try CSVFlags.delimiterByte(delimiter)
            layout.flags.append("--delimiter")
        }
        for list in ignoreColumns {
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                o.ignoreColumns.append(try column(String(item), flag: "--ignore-columns"))
            }
        }
        if !ignoreColumns.isEmpty { layout.flags.append("--ignore-columns") }
        if let weightColumn {
            o.weightColumn = try column(weightColumn, flag: "--weight-column")
            layout.flags.append("--weight-column")
        }
        layout.options = o
        return layout
    }

    /// A column as a flag gives it: a whole number is a 0-based index, other text a header name.
    private func column(_ text: String, flag: String) throws(ValidationError) -> CSV.Options.Column {
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let index = Int32(text) else {
                throw ValidationError("\(flag) \(text) is past any column: a row has at most \(CSV.maxColumns) columns")
            }
            return .index(Int(index))
        }
        if let negative = Int(text), negative < 0 {
            throw ValidationError("\(flag) is \(text); a column index is 0 or more (0 is the first column)")
        }
        guard !text.isEmpty else { throw ValidationError("\(flag) has an empty column name") }
        guard !noHeader else {
            throw ValidationError("\(flag) \(text) is a column name, but --no-header says the file has no header row: give the column's 0-based index")
        }
        return .name(text)
    }

    /// The byte `--delimiter` gives: one ASCII character other than a double quote, CR, LF or NUL;
    /// `tab` and `\t` are a tab.
    static func delimiterByte(_ text: String) throws(ValidationError) -> UInt8 {
        if text == "tab" || text == "\\t" { return UInt8(ascii: "\t") }
        guard text.utf8.count == 1, let byte = text.utf8.first, byte < 0x80,
              ![0, UInt8(ascii: "\""), UInt8(ascii: "\r"), UInt8(ascii: "\n")].contains(byte) else {
            throw ValidationError("--delimiter is \"\(text)\"; give one ASCII character other than a double quote, CR or LF, such as ';', or tab")
        }
        return byte
    }
}

extension Dataset {
    /// The per-sample weights (`--weight-column`) in place, valid while the data set lives; nil without.
    var weightBuffer: UnsafeBufferPointer<Float>? {
        weightPointer.map { UnsafeBufferPointer(start: $0, count: count) }
    }
}
