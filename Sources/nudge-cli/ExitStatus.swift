import Nudge

/// The exit statuses a script can rely on; each keeps its meaning in every release. Usage and file
/// errors use the `sysexits.h` numbers that other Unix tools use for the same cases, and the two
/// outcomes a script most often tests for (an accuracy gate, a diverged run) get small codes of
/// their own that no library error can produce.
enum ExitStatus: Int32, CaseIterable {
    case success = 0
    /// Anything not listed below, such as running out of memory.
    case failure = 1
    /// `evaluate --min-accuracy`: the accuracy is below the threshold (the report is still printed).
    case belowMinimumAccuracy = 2
    /// `train`: the loss became NaN or infinite; no model is written.
    case diverged = 3
    /// EX_USAGE: a bad flag or value, or flags that do not fit the data.
    case usage = 64
    /// EX_DATAERR: a data or model file that is not valid, or data that does not fit the model.
    case badData = 65
    /// EX_NOINPUT: an input file is missing or cannot be read.
    case noInput = 66
    /// EX_CANTCREAT: the output file cannot be created.
    case cannotCreate = 73
    /// EX_IOERR: writing the output failed part-way (disk full, I/O error).
    case ioError = 74
    /// 128 + SIGINT: `train` was interrupted; the model trained so far was written.
    case interrupted = 130

    /// One line per status, for `--help` and docs/CLI.md.
    static var table: String {
        let lines: [(ExitStatus, String)] = [
            (.success, "success"),
            (.failure, "any other failure (out of memory, internal error)"),
            (.belowMinimumAccuracy, "evaluate: accuracy below --min-accuracy"),
            (.diverged, "train: the loss became NaN or infinite; no model written"),
            (.usage, "usage error: unknown flag, bad value, flags that do not fit the data"),
            (.badData, "bad data or model file content, or data that does not fit the model"),
            (.noInput, "an input file is missing or unreadable"),
            (.cannotCreate, "the output file cannot be created"),
            (.ioError, "writing the output failed part-way"),
            (.interrupted, "train: interrupted (Ctrl-C); the model so far was written"),
        ]
        return lines.map { "  \(String($0.0.rawValue).leftPadded(to: 3))  \($0.1)" }.joined(separator: "\n")
    }
}

/// A failure reported as one line, `nudge: error: <message>`, on standard error, ending the process
/// with `status`.
struct Failure: Error {
    let status: ExitStatus
    let message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    /// A library error, classified by what the tool was doing when it happened.
    init(_ error: NudgeError, while phase: Phase) {
        message = error.message(naming: Train.flag)
        status = switch (error.kind, phase) {
        case (.invalidArgument, .configuring), (.shape, .configuring): .usage
        case (.io, .reading), (.notFound, _): .noInput
        case (.io, _): .ioError
        case (.format, _), (.version, _), (.shape, _), (.notFinite, _), (.invalidArgument, _): .badData
        default: .failure
        }
    }
}

/// What the tool asks of the library; it decides which exit status a library error means.
enum Phase {
    /// Building the network and trainer from the flags: invalid values are usage errors.
    case configuring
    /// Loading data and model files: a system error means the input is missing or unreadable.
    case reading
    /// Training, predicting, evaluating: the data does not fit the model.
    case computing
    /// Saving the model or writing the output.
    case writing
}

/// Runs a library call, turning its error into a ``Failure``.
func during<T>(_ phase: Phase, _ body: () throws(NudgeError) -> T) throws(Failure) -> T {
    do {
        return try body()
    } catch {
        throw Failure(error, while: phase)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    func rightPadded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
