// MARK: - Saving and loading
import Nudge

// @c-section files

/// Saves a network to a model file (docs/FORMAT.md), atomically: the data go to a temporary file in
/// the same folder, which is flushed to disk and then renamed over `path`; the folder is flushed
/// last, so that the rename survives a power loss. A failed or interrupted save leaves any previous
/// file at `path` intact, except when only that last flush fails: NUDGE_ERR_IO then says that the
/// new file is in place but may not survive a power loss.
/// A path that exists and is not a regular file (a directory, a character or block device, a FIFO, a
/// socket, directly or through symbolic links) is refused with NUDGE_ERR_IO, "PATH is not a regular
/// file (it is a FIFO)", and left exactly as it was. A symbolic link means the file it points to:
/// that file is replaced (the temporary file is written in its folder) and the link stays; a
/// dangling link creates the file it names. A save killed mid-way (kill -9, a crash) can leave a
/// temporary file `path.tmp-XXXXXX` next to `path`; the next save to `path` removes it. Every save
/// holds a lock (flock) on its temporary file until the rename, and removes only the `path.tmp-`
/// files of six letters or digits that are regular files nobody holds locked, so saves in progress
/// in other processes are never disturbed.
/// @param[in] network The network.
/// @param[in] path A UTF-8 file path.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO (the message gives the system's reason), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: reads the network only.
@_cdecl("nudge_save")
public func nudge_save(_ network: nudge_network?, _ path: UnsafePointer<CChar>?) -> nudge_status {
    guarded("nudge_save") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try ModelFile.save(net, to: try string(path, "path"))
    }
}

/// Loads a network from a model file. Every field is checked (magic, version, sizes, CRC-32) before
/// the network is built, so a bad file gives an error and never a partly built network.
/// @param[in] path A UTF-8 file path.
/// @param[out] out_network Receives the network.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT (not a model file,
///         truncated or corrupted), NUDGE_ERR_VERSION (written by a newer library), NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_network and releases it with nudge_network_free().
@_cdecl("nudge_load")
public func nudge_load(_ path: UnsafePointer<CChar>?, _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_load") { () throws(NudgeError) in
        let p = try string(path, "path")
        let out = try required(out_network, "out_network")
        out.pointee = makeHandle(try ModelFile.load(from: p), .network)
    }
}

/// Writes a network in the model file format into memory.
/// @param[in] network The network.
/// @param[out] buffer Receives the bytes; NULL asks only for the size.
/// @param[in] capacity Bytes buffer can hold.
/// @param[out] out_size Receives the size in bytes (also when buffer is NULL).
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY, NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: reads the network only.
@_cdecl("nudge_save_to_buffer")
public func nudge_save_to_buffer(_ network: nudge_network?, _ buffer: UnsafeMutableRawPointer?, _ capacity: UInt,
                                 _ out_size: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_save_to_buffer") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        // Written straight into the caller's buffer: neither the size query nor the copy allocates.
        try encodeIntoCallerBuffer(buffer, capacity, out_size, size: { () throws(NudgeError) in try ModelFile.encodedSize(net) },
                                   encode: { (b) throws(NudgeError) in try ModelFile.encode(net, into: b) })
    }
}

/// Loads a network from model file bytes in memory, with the checks of nudge_load().
/// @param[in] buffer The bytes.
/// @param[in] size Their count.
/// @param[out] out_network Receives the network.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_FORMAT, NUDGE_ERR_VERSION, NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_network and releases it with nudge_network_free(); the buffer
/// is not kept.
@_cdecl("nudge_load_from_buffer")
public func nudge_load_from_buffer(_ buffer: UnsafeRawPointer?, _ size: UInt,
                                   _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_load_from_buffer") { () throws(NudgeError) in
        let bytes = try callerBytes(buffer, size)
        let out = try required(out_network, "out_network")
        out.pointee = makeHandle(try ModelFile.decode(bytes, source: "buffer"), .network)
    }
}
