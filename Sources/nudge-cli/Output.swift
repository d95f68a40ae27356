import Glibc

/// Writes a line to standard error.
func printError(_ line: String) {
    writeError(line + "\n")
}

/// Writes text to standard error at once, unbuffered.
func writeError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        bytes = bytes.dropFirst(n)
    }
}

/// Where a command's data goes: standard output, or a file that appears complete or not at all.
/// A file is written under a temporary name in its folder, which is created at once (so a command
/// fails before its work, not after, when the folder is not writable) and renamed onto the path
/// by ``commit()``; a run that fails removes it and leaves any earlier file as it was.
final class TextOutput {
    private let path: String?
    private let temporary: String?
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var committed = false

    /// Standard output when `path` is nil or `-`.
    init(path: String?) throws(Failure) {
        guard let path, path != "-" else {
            self.path = nil
            temporary = nil
            fd = STDOUT_FILENO
            return
        }
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Failure(.cannotCreate, "cannot create \(path): \(systemError())") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // mkstemp makes rw-------; an output file gets the usual permissions.
        let mask = umask(0)
        umask(mask)
        _ = fchmod(fd, 0o666 & ~mask)
        self.path = path
        self.fd = fd
        temporary = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        buffer.reserveCapacity(1 << 16)
    }

    deinit {
        if let temporary, !committed {
            close(fd)
            unlink(temporary)
        }
    }

    func write(_ text: String) throws(Failure) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws(Failure) {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(.ioError, "cannot write \(path ?? "standard output"): \(systemError())") }
            done += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and, for a file, moves it into place.
    func commit() throws(Failure) {
        try flush()
        guard let path, let temporary else { return }
        committed = true
        let failure: Failure? = close(fd) != 0 ? Failure(.ioError, "cannot write \(path): \(systemError())")
            : rename(temporary, path) != 0 ? Failure(.ioError, "cannot rename the temporary file onto \(path): \(systemError())")
            : nil
        if let failure {
            unlink(temporary)
            throw failure
        }
    }
}

/// Fails with `cannot_create` unless a file can be created next to `path`, so that a long run
/// learns at its start that its result could not be saved.
func checkWritable(_ path: String) throws(Failure) {
    var template = Array((path + ".tmp-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { throw Failure(.cannotCreate, "cannot create \(path): \(systemError())") }
    close(fd)
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
}

/// The system's reason for the last failed call.
func systemError() -> String {
    String(cString: strerror(errno))
}
