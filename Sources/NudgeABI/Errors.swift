// MARK: - Errors
// The status codes and the calls that explain a failure. The core's error kinds map to the codes
// in Codes.swift.

// @c-section errors

/// The result of every call that can fail: NUDGE_OK (0) or one of the NUDGE_ERR_ codes.
public typealias nudge_status = Int32
/// Success.
public let NUDGE_OK: nudge_status = 0
/// An argument is NULL, out of range or not one of the known values.
public let NUDGE_ERR_INVALID_ARGUMENT: nudge_status = 1
/// Array sizes disagree with each other or with the network.
public let NUDGE_ERR_SHAPE: nudge_status = 2
/// An output buffer is too small; the message says how many elements are needed.
public let NUDGE_ERR_CAPACITY: nudge_status = 3
/// Memory could not be allocated, or the request is larger than the library allows.
public let NUDGE_ERR_OUT_OF_MEMORY: nudge_status = 4
/// A file could not be opened, read, written or renamed.
public let NUDGE_ERR_IO: nudge_status = 5
/// A file or buffer is not valid (bad magic, truncated, corrupted, inconsistent sizes).
public let NUDGE_ERR_FORMAT: nudge_status = 6
/// A model file comes from a newer format version than this library reads.
public let NUDGE_ERR_VERSION: nudge_status = 7
/// A value that must be finite is NaN or infinite (inputs, targets, parameters, loss or gradient).
public let NUDGE_ERR_NOT_FINITE: nudge_status = 8
/// A callback asked to stop.
public let NUDGE_ERR_CANCELLED: nudge_status = 9
/// A bug in the library.
public let NUDGE_ERR_INTERNAL: nudge_status = 10
/// The requested item (a metadata key) does not exist.
public let NUDGE_ERR_NOT_FOUND: nudge_status = 11
/// A collective operation failed (the allreduce callback returned non-zero), or another process of
/// the training group failed: the message names its rank, and its own error says why.
public let NUDGE_ERR_COLLECTIVE: nudge_status = 12

/// The message of the last failed call on the calling thread ("" if none failed yet). Messages name
/// the function, the argument and the values involved, e.g.
/// "nudge_predict: output_capacity is 10 elements, 20 are needed".
/// @return A NUL-terminated UTF-8 string owned by the library, valid on this thread until the next
///         failing nudge_ call on this thread. Never NULL.
/// Thread safety: each thread has its own message.
@_cdecl("nudge_last_error")
public func nudge_last_error() -> UnsafePointer<CChar>? {
    lastErrorPointer
}

/// A status code's name, such as "invalid_argument".
/// @param[in] status A nudge_status value.
/// @return A static string; "unknown" for values that are not status codes.
@_cdecl("nudge_status_name")
public func nudge_status_name(_ status: nudge_status) -> UnsafePointer<CChar>? {
    let name: StaticString = statusNames.indices.contains(Int(status)) ? statusNames[Int(status)] : "unknown"
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}
