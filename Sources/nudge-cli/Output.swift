import Glibc
import Nudge

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

/// Where a command's data goes: standard output (no path, `-`, or a name of it such as
/// `/dev/stdout`), a character device or FIFO the user named (written in place, as a stream), or a
/// file that appears complete or not at all. A file is written under a temporary name in its
/// folder, which is created at once (so a command fails before its work, not after, when the
/// folder is not writable) and renamed onto the path by ``commit()``; a run that fails removes it
/// and leaves any earlier file as it was. A symbolic link means the file it points to, and any
/// other kind of node (a directory, a socket) is refused, as for a model (``SaveTarget``).
final class TextOutput {
    private enum Destination {
        case standardOutput
        case stream(String)
        case file(SaveTarget, SaveTarget.Temporary)
    }

    /// The names of standard output that mean it rather than a file.
    static let standardOutputNames: Set<String> = ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]

    private let destination: Destination
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var done = false

    init(path: String?) throws(Failure) {
        buffer.reserveCapacity(1 << 16)
        guard let path, !Self.standardOutputNames.contains(path) else {
            destination = .standardOutput
            fd = STDOUT_FILENO
            return
        }
        var info = stat()
        if stat(path, &info) == 0, [S_IFCHR, S_IFIFO].contains(info.st_mode & S_IFMT) {
            // No O_CREAT, no O_TRUNC: the node itself is written, never replaced.
            let fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(.cannotCreate, "cannot open \(path) for writing: \(systemError())") }
            destination = .stream(path)
            self.fd = fd
            return
        }
        let (target, temporary) = try creating { () throws(NudgeError) in
            let target = try SaveTarget(path)
            return (target, try target.createTemporary())
        }
        // mkstemp makes rw-------; an output file keeps the mode of the file it replaces, or gets the usual one.
        let mask = umask(0)
        umask(mask)
        _ = fchmod(temporary.fd, target.mode ?? (0o666 & ~mask))
        destination = .file(target, temporary)
        fd = temporary.fd
    }

    deinit {
        guard !done else { return }
        switch destination {
        case .standardOutput: break
        case .stream: close(fd)
        case .file(_, let temporary):
            close(fd)
            unlink(temporary.path)
            temporary.release()
        }
    }

    /// What "cannot write ..." names.
    private var name: String {
        switch destination {
        case .standardOutput: "to standard output"
        case .stream(let path): path
        case .file(let target, _): target.given
        }
    }

    func write(_ text: String) throws(Failure) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws(Failure) {
        var written = 0
        while written < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { errno = EIO }
            guard n > 0 else { throw Failure(.ioError, "cannot write \(name): \(StandardOutput.reason(fd: fd))") }
            written += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and, for a file, moves it into place.
    func commit() throws(Failure) {
        try flush()
        switch destination {
        case .standardOutput:
            return
        case .stream:
            done = true
            guard close(fd) == 0 else { throw Failure(.ioError, "cannot write \(name): \(systemError())") }
        case .file(let target, let temporary):
            done = true
            defer { temporary.release() }
            do throws(Failure) {
                guard close(fd) == 0 else { throw Failure(.ioError, "cannot write \(name): \(systemError())") }
                try creating { () throws(NudgeError) in try target.recheck() }
                guard rename(temporary.path, target.path) == 0 else {
                    throw Failure(.ioError, "cannot rename the temporary file onto \(name): \(systemError())")
                }
            } catch {
                unlink(temporary.path)
                throw error
            }
        }
    }
}

/// Runs a library call that creates an output, turning its error into `cannot_create` (73).
func creating<T>(_ body: () throws(NudgeError) -> T) throws(Failure) -> T {
    do {
        return try body()
    } catch {
        throw Failure(error.kind == .invalidArgument ? .usage : .cannotCreate, error.message)
    }
}

/// Fails with `cannot_create` unless the model can be saved at `path`: it must be a regular file
/// or a new name (not a directory, device, FIFO or socket), and a file can be created next to it;
/// so that a long run learns at its start that its result could not be saved.
func checkWritable(_ path: String) throws(Failure) {
    let target = try creating { () throws(NudgeError) in try SaveTarget(path) }
    var template = Array((target.path + ".tmp-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { throw Failure(.cannotCreate, "cannot create \(path): \(systemError())") }
    close(fd)
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
}

/// Fails with a usage error when the output `path` is one of the `inputs` (flag, path): the same
/// file by device and inode, however it is named (a symbolic link, `./`), so that a run never
/// overwrites what it reads. Only an existing regular file can be both.
func checkNotAnInput(_ path: String, flag: String, inputs: [(String, String?)]) throws(Failure) {
    var output = stat()
    guard stat(path, &output) == 0, (output.st_mode & S_IFMT) == S_IFREG else { return }
    for case let (inputFlag, input?) in inputs {
        var info = stat()
        if stat(input, &info) == 0, info.st_dev == output.st_dev, info.st_ino == output.st_ino {
            throw Failure(.usage, "\(flag) \(path) is the same file as \(inputFlag) \(input); writing it would destroy that input, so give another \(flag)")
        }
    }
}

/// Standard output, written straight to descriptor 1 (not through C's buffered `stdout`, whose
/// failures would show only at exit), so that a report that cannot be written fails its command
/// with 74, before any other outcome.
enum StandardOutput {
    /// Whether the process started with descriptor 1 closed (`>&-`).
    nonisolated(unsafe) private static var startedClosed = false

    /// Keeps descriptors 0 to 2 taken: one the process started without is opened, read-only, on the
    /// root folder, so that writes to it fail (EBADF) as they would have, and no file the command
    /// opens (a model, a temporary file) gets its number and receives what was meant for it.
    static func reserveDescriptors() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            if fd == STDOUT_FILENO { startedClosed = true }
            let reserved = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if reserved >= 0 && reserved != fd {
                dup2(reserved, fd)
                close(reserved)
            }
        }
    }

    /// Why a write to `fd` failed.
    static func reason(fd: Int32) -> String {
        fd == STDOUT_FILENO && startedClosed ? "standard output is closed" : systemError()
    }

    /// Writes `text` whole, or fails with 74.
    static func write(_ text: String) throws(Failure) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { errno = EIO }
            guard n > 0 else { throw Failure(.ioError, "cannot write to standard output: \(reason(fd: STDOUT_FILENO))") }
            bytes = bytes.dropFirst(n)
        }
    }
}

/// The system's reason for the last failed call.
func systemError() -> String {
    String(cString: strerror(errno))
}
