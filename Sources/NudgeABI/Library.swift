// MARK: - Library
import Nudge

// @c-section library

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

/// Sets how many threads Nudge uses for training and for large predictions, the calling thread
/// included. Nudge splits each training step's batch by rows between its own threads (each
/// computes the gradient of its rows; the gradients are summed in a fixed order), or each large
/// matrix product by output units when the batch is small, and large predictions by rows; BLAS runs
/// single-threaded inside each part (Nudge sets OpenBLAS's own thread count to 1 when it starts). The
/// threads stay alive between calls. Callers that find Nudge's threads busy (another thread is
/// training or predicting) do their work on their own thread, so concurrent calls never multiply
/// the number of threads.
/// @param[in] count 1 to 256; 1 does everything on the calling thread; 0 restores the default: the
///            environment variable NUDGE_NUM_THREADS if set, else the number of online processors.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
/// Thread safety: may be called at any time; running computations keep the count they started with.
@_cdecl("nudge_set_num_threads")
public func nudge_set_num_threads(_ count: UInt) -> nudge_status {
    guarded("nudge_set_num_threads") { () throws(NudgeError) in
        guard count <= UInt(WorkerPool.maxThreads) else {
            throw NudgeError(.invalidArgument, "count is \(count); it must be 0 (the default) to \(WorkerPool.maxThreads)")
        }
        try WorkerPool.shared.setThreadCount(Int(count))
    }
}

/// The number of threads Nudge uses (see nudge_set_num_threads()).
/// @return At least 1.
@_cdecl("nudge_get_num_threads")
public func nudge_get_num_threads() -> UInt {
    UInt(WorkerPool.shared.threadCount)
}
