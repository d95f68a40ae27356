/// Why a call failed. The raw values are the C ABI's `nudge_status` codes, so they never change.
public enum NudgeStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    /// An argument is missing, out of range or not one of the known values.
    case invalidArgument = 1
    /// Array sizes disagree with each other or with the network.
    case shape = 2
    /// An output buffer is too small for the result.
    case capacity = 3
    /// Memory for the result could not be allocated, or the request is larger than the library allows.
    case outOfMemory = 4
    /// A file could not be opened, read, written or renamed.
    case io = 5
    /// A file or buffer is not a valid model or data file (bad magic, truncated, corrupted, inconsistent).
    case format = 6
    /// A model file was written by a newer format version than this library reads.
    case version = 7
    /// A value that must be finite is NaN or infinite (inputs, targets, loss or gradient).
    case notFinite = 8
    /// A callback asked to stop.
    case cancelled = 9
    /// A bug in the library; please report it.
    case `internal` = 10
    /// The requested item (such as a metadata key) does not exist.
    case notFound = 11

    /// A stable lower-case name, such as `"invalid_argument"`; static, so C callers may keep the pointer.
    public var name: StaticString {
        switch self {
        case .ok: "ok"
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
        }
    }
}

/// An error from the library: a status and a message that names what is wrong.
public struct NudgeError: Error, CustomStringConvertible, Sendable {
    public let status: NudgeStatus
    public let message: String

    public init(_ status: NudgeStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.name): \(message)" }

    static func invalid(_ message: String) -> NudgeError { NudgeError(.invalidArgument, message) }
    static func shape(_ message: String) -> NudgeError { NudgeError(.shape, message) }
    static func format(_ message: String) -> NudgeError { NudgeError(.format, message) }
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
