// MARK: - Library
import Nudge

/// The library's version as "major.minor.patch".
/// @return A static string, valid for the life of the process.
@_cdecl("nudge_version_string")
public func nudge_version_string() -> UnsafePointer<CChar>? {
    UnsafeRawPointer(versionString.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// The ABI version of the loaded library, to compare with NUDGE_ABI_VERSION.
/// @return The library's ABI version.
@_cdecl("nudge_abi_version")
public func nudge_abi_version() -> Int32 {
    NUDGE_ABI_VERSION
}

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
    let name: StaticString = NudgeStatus(rawValue: status)?.name ?? "unknown"
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

private let versionString: StaticString = "0.1.0"
