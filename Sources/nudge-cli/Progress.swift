import Glibc
import Nudge

/// Training progress on standard error: a bar redrawn after batches when standard error is a
/// terminal, one line per epoch otherwise (logs, pipes), nothing with `--quiet`. Epoch lines look
/// the same either way, so a log reads like the terminal did.
final class TrainingProgress {
    enum Style { case bar, lines, none }

    let style: Style
    /// The epochs planned, for the bar.
    private let epochs: Int
    /// Whether epoch lines show the learning rate (when a schedule or warm-up changes it).
    private let showsLearningRate: Bool
    /// When the current epoch's first batch started.
    private var epochStarted = now()
    private var lastDrawn = -Double.infinity
    private var barShown = false

    init(quiet: Bool, epochs: Int, showsLearningRate: Bool) {
        self.epochs = epochs
        self.showsLearningRate = showsLearningRate
        let term = getenv("TERM").map { String(cString: $0) }
        if quiet {
            style = .none
        } else if isatty(STDERR_FILENO) == 1, term != "dumb" {
            style = .bar
        } else {
            style = .lines
        }
    }

    func batch(_ report: BatchReport) {
        guard style == .bar else { return }
        let time = now()
        // A few redraws a second are enough to read, and cost nothing beside the batches.
        guard time - lastDrawn >= 0.1 || report.batch == report.batchCount else { return }
        lastDrawn = time
        let elapsed = time - epochStarted
        let left = elapsed / Double(report.batch) * Double(report.batchCount - report.batch)
        let counts = "\(String(report.batch).leftPadded(to: String(report.batchCount).count))/\(report.batchCount)"
        let head = "epoch \(report.epoch)/\(epochs) "
        let tail = " \(counts)  loss \(fixed(report.loss, 4))  ETA \(clock(left))"
        let width = max(10, min(40, terminalColumns() - head.count - tail.count - 3))
        let done = Int(Double(width) * Double(report.batch) / Double(report.batchCount))
        let bar = String(repeating: "=", count: done) + (done < width ? ">" + String(repeating: " ", count: width - done - 1) : "")
        writeError("\r\u{1B}[K" + head + "[" + bar + "]" + tail)
        barShown = true
    }

    func epoch(_ report: EpochReport) {
        defer { epochStarted = now() }
        guard style != .none else { return }
        clearBar()
        var line = "epoch \(String(report.epoch).leftPadded(to: String(report.epochs).count))/\(report.epochs)"
            + "  loss \(fixed(report.trainLoss, 4))  accuracy \(fixed(report.trainAccuracy, 4))"
        if !report.validationLoss.isNaN {
            line += "  val_loss \(fixed(report.validationLoss, 4))  val_accuracy \(fixed(report.validationAccuracy, 4))"
        }
        if showsLearningRate { line += "  lr \(report.learningRate)" }
        line += "  \(fixed(report.seconds, 2))s"
        printError(line)
    }

    /// Prints a message on a line of its own, below the bar if one is shown.
    func note(_ message: String) {
        guard style != .none else { return }
        clearBar()
        printError(message)
    }

    func clearBar() {
        if barShown { writeError("\r\u{1B}[K") }
        barShown = false
    }
}

/// Seconds on a monotonic clock.
func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// `x` with `digits` decimals, such as `0.4321`.
func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var unit: Int64 = 1
    for _ in 0..<digits { unit *= 10 }
    let scaled = Int64((abs(x) * Double(unit)).rounded())
    let fraction = String(scaled % unit)
    let sign = x < 0 && scaled != 0 ? "-" : ""
    return sign + String(scaled / unit) + (digits > 0 ? "." + String(repeating: "0", count: digits - fraction.count) + fraction : "")
}

/// A duration as `m:ss` or `h:mm:ss`.
func clock(_ seconds: Double) -> String {
    let total = seconds.isFinite ? Int(seconds.rounded()) : 0
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60)
    let ss = s < 10 ? "0\(s)" : "\(s)"
    if h > 0 { return "\(h):\(m < 10 ? "0\(m)" : "\(m)"):\(ss)" }
    return "\(m):\(ss)"
}

/// The width of the terminal on standard error, or 80.
private func terminalColumns() -> Int {
    var size = winsize()
    if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return 80
}
