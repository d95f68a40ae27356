// The C codes of the core's enumerations and errors: the one place where a `nudge_` code meets a
// Swift case. The core has no codes of its own; these numbers belong to the C ABI and never change.
import Nudge

/// A core enumeration with a C code per case.
protocol CCoded: CaseIterable, Equatable {
    var code: Int32 { get }
    /// The prefix of its constants in nudge.h, such as "NUDGE_OPTIMIZER_".
    static var constantPrefix: String { get }
}

extension CCoded {
    /// The case with a caller's `code`, or an error naming `name` and the valid codes.
    static func decode(_ code: Int32, _ name: String) throws(NudgeError) -> Self {
        guard let value = allCases.first(where: { $0.code == code }) else {
            throw NudgeError(.invalidArgument, "\(name) is \(code), not a \(constantPrefix) value (0 to \(allCases.count - 1))")
        }
        return value
    }
}

extension Activation: CCoded {
    static let constantPrefix = "NUDGE_ACTIVATION_"
    var code: nudge_activation {
        switch self {
        case .identity: NUDGE_ACTIVATION_IDENTITY
        case .sigmoid: NUDGE_ACTIVATION_SIGMOID
        case .tanh: NUDGE_ACTIVATION_TANH
        case .relu: NUDGE_ACTIVATION_RELU
        case .leakyRelu: NUDGE_ACTIVATION_LEAKY_RELU
        case .softmax: NUDGE_ACTIVATION_SOFTMAX
        }
    }
}

extension StopReason: CCoded {
    static let constantPrefix = "NUDGE_STOP_"
    var code: nudge_stop_reason {
        switch self {
        case .completed: NUDGE_STOP_COMPLETED
        case .earlyStopped: NUDGE_STOP_EARLY
        case .cancelled: NUDGE_STOP_CANCELLED
        case .notFinite: NUDGE_STOP_NOT_FINITE
        }
    }
}

extension NudgeError.Kind {
    var status: nudge_status {
        switch self {
        case .invalidArgument: NUDGE_ERR_INVALID_ARGUMENT
        case .shape: NUDGE_ERR_SHAPE
        case .capacity: NUDGE_ERR_CAPACITY
        case .outOfMemory: NUDGE_ERR_OUT_OF_MEMORY
        case .io: NUDGE_ERR_IO
        case .format: NUDGE_ERR_FORMAT
        case .version: NUDGE_ERR_VERSION
        case .notFinite: NUDGE_ERR_NOT_FINITE
        case .cancelled: NUDGE_ERR_CANCELLED
        case .internal: NUDGE_ERR_INTERNAL
        case .notFound: NUDGE_ERR_NOT_FOUND
        case .collective: NUDGE_ERR_COLLECTIVE
        }
    }
}

/// Each status's name, static so that C callers may keep the pointer; index = status code.
let statusNames: [StaticString] = [
    "ok", "invalid_argument", "shape", "capacity", "out_of_memory", "io", "format", "version", "not_finite",
    "cancelled", "internal", "not_found", "collective",
]
