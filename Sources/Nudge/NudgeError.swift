/// An error from the library: what kind of failure it is, and a message that names what is wrong.
///
/// A message may name a training option (`batchSize is 0; it must be 1 to 1048576`). The core only
/// identifies the option; ``message`` spells it as a Swift caller wrote it, and each layer above
/// spells it as its own callers do with ``message(naming:)`` (`options->batch_size` in C,
/// `--batch-size` on the command line).
public struct NudgeError: Error, CustomStringConvertible, Sendable {
    /// Why a call failed.
    public enum Kind: Sendable, CaseIterable {
        /// An argument is missing, out of range or not one of the known values.
        case invalidArgument
        /// Array sizes disagree with each other or with the network.
        case shape
        /// An output buffer is too small for the result.
        case capacity
        /// Memory for the result could not be allocated, or the request is larger than the library allows.
        case outOfMemory
        /// A file could not be opened, read, written or renamed.
        case io
        /// A file or buffer is not a valid model or data file (bad magic, truncated, corrupted, inconsistent).
        case format
        /// A model file was written by a newer format version than this library reads.
        case version
        /// A value that must be finite is NaN or infinite (inputs, targets, loss or gradient).
        case notFinite
        /// A callback asked to stop.
        case cancelled
        /// A bug in the library; please report it.
        case `internal`
        /// The requested item (such as a metadata key) does not exist.
        case notFound
        /// A collective operation failed, or another process of the training group did: its own
        /// error says why (see ``Collective``).
        case collective

        /// A stable lower-case name, such as `"invalid_argument"`.
        public var name: String {
            switch self {
            case .invalidArgument: "invalid_argument"
            case .shape: "shape"
            case .capacity: "capacity"
            case .outOfMemory: "out_of_memory"
            case .io: "io"
            case .format: "format"
            case .version: "version"
            case .notFinite: "not_finite"
            case .cancelled: "cancelled"
            case .internal: "internal"
            case .notFound: "not_found"
            case .collective: "collective"
            }
        }
    }

    /// A piece of a message: plain text, or the name of something the caller set.
    public enum Part: Sendable, Equatable {
        /// Words, the same in every layer.
        case text(String)
        /// What the message is about.
        case subject(Subject)
        /// Another option the message mentions, such as the bound of a range.
        case reference(Subject)
    }

    /// Something a caller set, which each layer names in its own caller's terms.
    public enum Subject: Sendable, Hashable {
        /// A training option.
        case option(TrainingOptions.Field)
        /// One entry of a training option that holds a list (`dropout[2]`).
        case entry(TrainingOptions.Field, Int)

        /// The Swift spelling: the property of ``TrainingOptions``.
        public var swiftName: String {
            switch self {
            case .option(let field): field.swiftName
            case .entry(let field, let index): "\(field.swiftName)[\(index)]"
            }
        }
    }

    /// Why the call failed.
    public let kind: Kind
    /// The message in pieces, for layers that name options their own way; ``message`` joins them.
    public let parts: [Part]

    /// An error with a plain message.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        parts = [.text(message)]
    }

    /// An error whose message names options (``Part/subject(_:)``), so each layer can spell them.
    public init(_ kind: Kind, _ parts: [Part]) {
        self.kind = kind
        self.parts = parts
    }

    /// The message, naming options as a Swift caller wrote them.
    public var message: String { message(naming: \.swiftName) }

    /// The message, with every option it names spelt by `spell` (and the options it only mentions
    /// by `reference`, when given).
    public func message(naming spell: (Subject) -> String, references reference: ((Subject) -> String)? = nil) -> String {
        parts.map { part in
            switch part {
            case .text(let text): text
            case .subject(let subject): spell(subject)
            case .reference(let subject): reference.map { $0(subject) } ?? spell(subject)
            }
        }.joined()
    }

    /// The options the message is about.
    public var subjects: [Subject] {
        parts.compactMap { if case .subject(let s) = $0 { s } else { nil } }
    }

    /// The same error with `text` before its message.
    public func prefixed(_ text: String) -> NudgeError {
        NudgeError(kind, [.text(text)] + parts)
    }

    /// `kind: message`, such as `invalid_argument: batchSize is 0; it must be 1 to 1048576`.
    public var description: String { "\(kind.name): \(message)" }

    static func invalid(_ message: String) -> NudgeError { NudgeError(.invalidArgument, message) }
    static func shape(_ message: String) -> NudgeError { NudgeError(.shape, message) }
    static func format(_ message: String) -> NudgeError { NudgeError(.format, message) }
    static func invalid(_ parts: [Part]) -> NudgeError { NudgeError(.invalidArgument, parts) }
}

/// Multiplies sizes that come from callers or files, failing instead of trapping on overflow.
@inline(__always)
func checkedProduct(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws(NudgeError) -> Int {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    if overflow || product < 0 {
        throw NudgeError(.outOfMemory, "\(what()) overflows: \(a) x \(b)")
    }
    return product
}
