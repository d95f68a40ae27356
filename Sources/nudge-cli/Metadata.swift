import Glibc
import Nudge

/// The metadata keys `nudge train` writes into a model (docs/CLI.md lists them). Structured values
/// are JSON, so that other programs can read them; class names are one per line.
enum MetadataKey {
    static let createdBy = "created_by"
    static let created = "created"
    static let command = "command"
    static let trainingData = "training_data"
    static let trainingLabels = "training_labels"
    static let validationData = "validation_data"
    static let validationLabels = "validation_labels"
    static let classNames = "class_names"
    static let training = "training"
    static let result = "result"
}

extension Network {
    /// The class names stored in the model, when there is one per class.
    func classNames(count: Int) -> [String]? {
        guard let text = metadataValue(forKey: MetadataKey.classNames) else { return nil }
        let names = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return names.count == count ? names : nil
    }
}

/// The command line as a shell would take it back: `nudge` and the arguments, quoted where needed.
func quotedCommandLine() -> String {
    (["nudge"] + CommandLine.arguments.dropFirst()).map(shellQuoted).joined(separator: " ")
}

private func shellQuoted(_ word: String) -> String {
    let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_./=:,+@%".unicodeScalars.contains($0)
    }
    return plain ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

/// The current time in UTC as ISO 8601, or the time in $SOURCE_DATE_EPOCH when it is set, as
/// reproducible-build tools expect, so that a rerun can write a byte-identical model.
func creationDate() -> String {
    var seconds = time(nil)
    if let text = getenv("SOURCE_DATE_EPOCH"), let value = Int(String(cString: text)) { seconds = time_t(value) }
    var parts = tm()
    gmtime_r(&seconds, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// `1234567` as `1,234,567`.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}
