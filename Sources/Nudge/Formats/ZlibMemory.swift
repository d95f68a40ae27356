import CZlib
import Glibc

// zlib allocates its state and buffers itself (the state when a file is opened, the buffers on the
// first read) and reports a failed allocation as Z_MEM_ERROR, or as a NULL gzFile with errno ENOMEM.
// The readers turn those into `outOfMemory`, not a corrupt or unreadable file.

/// Whether zlib's last failure on `file` was an allocation that failed.
func zlibOutOfMemory(_ file: gzFile?) -> Bool {
    guard let file else { return false }
    var status: Int32 = Z_OK
    _ = gzerror(file, &status)
    return status == Z_MEM_ERROR
}

/// The error for zlib's failed allocation while reading `path`.
func zlibMemoryError(_ path: String) -> NudgeError {
    NudgeError(.outOfMemory, "could not allocate zlib's memory to read \(path)")
}

/// The error for a gzdopen that returned NULL: out of memory, or the system's reason.
func gzopenError(_ what: String, _ path: String) -> NudgeError {
    errno == ENOMEM ? zlibMemoryError(path) : ioError("cannot open \(what) \(path)")
}
