import Glibc

/// The file an atomic save replaces, found and checked before anything is written; every save goes
/// through it (``ModelFile/save(_:to:)``, checkpoints, the `nudge` tool's outputs). The rules
/// (docs/RELIABILITY.md, "Saves onto links, devices and left-over temporary files"):
///
/// - A path that exists and is not a regular file (a directory, character or block device, FIFO or
///   socket, directly or through symbolic links) is refused with `io`, "PATH is not a regular file
///   (it is a FIFO)", and left exactly as it was: a save never renames over it.
/// - A symbolic link means the file it points to: the chain of links of the path's last component
///   is followed, the temporary file is written next to the file at its end, and that file is
///   replaced, so the links stay as they were. A dangling link creates the file it points to (as the
///   shell's `>` does).
/// - A temporary file is locked (`flock`) from its creation until it has been renamed into place or
///   removed. Before writing its own, a save removes the temporary files of earlier saves to the
///   same file that were killed mid-way: those named exactly `NAME.tmp-` and six letters or digits,
///   regular files, that no process holds locked.
package struct SaveTarget {
    /// The path as the caller gave it, for messages.
    package let given: String
    /// The file that is replaced: `given`, or the file at the end of its chain of links.
    package let path: String
    /// The permission bits of the file being replaced; nil when there is none yet.
    package let mode: mode_t?

    /// The longest chain of links followed, as the kernel's limit (ELOOP beyond).
    static let maxLinks = 40

    /// Finds and checks the file that a save to `path` replaces.
    ///
    /// - Throws: `invalidArgument` (an empty path), `io` (not a regular file; a link that cannot be
    ///   followed; the system's reason when the path cannot be looked up).
    package init(_ path: String) throws(NudgeError) {
        guard !path.isEmpty else { throw .invalid("path is empty") }
        given = path
        // Through every link, as the kernel sees it (this also sees through /proc's links to pipes).
        var info = stat()
        let exists = stat(path, &info) == 0
        guard exists || errno == ENOENT else { throw ioError("cannot save to \(path)") }
        if exists { try Self.requireRegular(info, path) }
        var resolved = path
        for hop in 0...Self.maxLinks {
            guard lstat(resolved, &info) == 0 else {
                // Missing: a new file, unless the kernel reached a file that has no name to replace.
                guard errno == ENOENT else { throw ioError("cannot save to \(path)") }
                guard !exists else { throw NudgeError(.io, "cannot save to \(path): it links to \(resolved), which is not a file name that can be replaced") }
                mode = nil
                self.path = resolved
                return
            }
            guard (info.st_mode & S_IFMT) == S_IFLNK else { break }
            guard hop < Self.maxLinks else { errno = ELOOP; throw ioError("cannot save to \(path)") }
            resolved = try Self.follow(resolved)
        }
        try Self.requireRegular(info, path)
        mode = info.st_mode & 0o7777
        self.path = resolved
    }

    /// Where the symbolic link `link` points, as a path: relative targets are taken from the link's folder.
    private static func follow(_ link: String) throws(NudgeError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(link, &buffer, buffer.count - 1)
        guard n > 0 else { throw ioError("cannot read the symbolic link \(link)") }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix("/") { return target }
        let folder = folder(of: link)
        return folder == "/" ? "/" + target : folder + "/" + target
    }

    /// Fails unless `info` describes a regular file.
    private static func requireRegular(_ info: stat, _ path: String) throws(NudgeError) {
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a directory"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFIFO: kind = "a FIFO"
        case S_IFSOCK: kind = "a socket"
        default: kind = "neither a file nor a directory"
        }
        throw NudgeError(.io, "\(path) is not a regular file (it is \(kind)); a save replaces only a regular file or creates a new one")
    }

    /// Fails if something that is not a regular file took the place of the file since the checks,
    /// so that the rename does not replace it.
    package func recheck() throws(NudgeError) {
        var info = stat()
        if lstat(path, &info) == 0 { try Self.requireRegular(info, given) }
    }

    /// The folder that holds ``path``.
    package var folder: String { Self.folder(of: path) }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The file name of ``path``, which its temporary files begin with.
    private var name: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    // MARK: Temporary files

    /// A temporary file next to the target, open for writing and locked until ``release()``.
    package struct Temporary {
        /// The descriptor to write, flush and close.
        package let fd: Int32
        /// Its name, to rename onto the target or to unlink.
        package let path: String
        /// A second descriptor of the same open file, which holds the lock after `fd` is closed, until
        /// the rename is done; -1 when none could be made.
        let holder: Int32

        /// Lets a later save remove the file, if it is still there. Call it once `fd` is closed.
        package func release() {
            if holder >= 0 { close(holder) }
        }
    }

    /// Creates `PATH.tmp-XXXXXX` next to the target, locked, with permissions rw------- (set them
    /// before the rename). Removes the stale temporary files of earlier saves to the target first.
    ///
    /// - Throws: `io` with the system's reason.
    package func createTemporary() throws(NudgeError) -> Temporary {
        removeStaleTemporaries()
        while true {
            var template = Array((path + ".tmp-XXXXXX").utf8CString)
            // mkostemp(O_CLOEXEC) is not in Glibc's Swift overlay; setting the flag right after is as
            // good unless the host forks in that instant.
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw ioError("cannot create a temporary file next to \(given)") }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let name = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // A file system without locks (flock fails) saves as well, without this protection.
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
            // Between mkstemp and flock, another save may have taken the file for a stale one and
            // removed it (it unlinks only what it has locked): then make another.
            var info = stat()
            if fstat(fd, &info) == 0 && info.st_nlink == 0 {
                close(fd)
                continue
            }
            return Temporary(fd: fd, path: name, holder: fcntl(fd, F_DUPFD_CLOEXEC, 0))
        }
    }

    /// Removes the temporary files of earlier saves to the target that were killed mid-way: regular
    /// files named exactly `NAME.tmp-` and six letters or digits (mkstemp's), that no process holds
    /// locked (a save in progress holds its own). Best effort: anything that fails is left alone.
    package func removeStaleTemporaries() {
        guard let directory = opendir(folder) else { return }
        defer { closedir(directory) }
        let prefix = Array((name + ".tmp-").utf8)
        while let entry = readdir(directory) {
            // readdir's record ends after the name's NUL, not at the end of d_name: read up to the
            // NUL in place (strlen), never the whole array, whose tail is uninitialised memory.
            let entryName = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: 1) { text in
                    Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
                }
            }
            guard entryName.count == prefix.count + 6, entryName.starts(with: prefix),
                  entryName[prefix.count...].allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
            else { continue }
            let folder = folder
            Self.removeIfStale((folder == "/" ? "/" : folder + "/") + String(decoding: entryName, as: UTF8.self))
        }
    }

    /// Unlinks `candidate` if it is a regular file that this process can lock, and still has that name.
    private static func removeIfStale(_ candidate: String) {
        let fd = open(candidate, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var opened = stat(), named = stat()
        guard fstat(fd, &opened) == 0, (opened.st_mode & S_IFMT) == S_IFREG,
              flock(fd, LOCK_EX | LOCK_NB) == 0,
              // A save that finished between open and flock renamed it into place: leave it.
              lstat(candidate, &named) == 0, named.st_dev == opened.st_dev, named.st_ino == opened.st_ino
        else { return }
        unlink(candidate)
    }
}

extension SaveTarget {
    /// Replaces the file with `bytes` atomically: a temporary file in the same folder is written,
    /// flushed to disk and renamed over the file, so a failed or interrupted save leaves the old file
    /// intact; then the folder is flushed, so that the rename survives a power loss. Only a failure
    /// of that last flush is reported after the file already holds the new bytes (its message says
    /// so). The file keeps its permissions; a new file gets rw-r--r--.
    ///
    /// - Throws: `io` (the system's reason, naming the path as the caller gave it), `outOfMemory`.
    package func write(_ bytes: UnsafeRawBufferPointer) throws(NudgeError) {
        let shown = given
        let mode = self.mode ?? 0o644
        let temporary = try createTemporary()
        defer { temporary.release() }
        let fd = temporary.fd
        func fail(_ what: String) -> NudgeError {
            let error = ioError(what)
            close(fd)
            unlink(temporary.path)
            return error
        }
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            if n == 0 { errno = EIO }
            guard n > 0 else { throw fail("cannot write \(shown)") }
            written += n
        }
        guard fchmod(fd, mode) == 0 else { throw fail("cannot set the permissions of \(shown)") }
        guard fsync(fd) == 0 else { throw fail("cannot flush \(shown) to disk") }
        guard close(fd) == 0 else {
            let error = ioError("cannot close \(shown)")
            unlink(temporary.path)
            throw error
        }
        do { try recheck() } catch {
            unlink(temporary.path)
            throw error
        }
        guard rename(temporary.path, path) == 0 else {
            let error = ioError("cannot rename the temporary file onto \(shown)")
            unlink(temporary.path)
            throw error
        }
        try flushFolder()
    }

    /// Makes a save's rename durable: flushes the folder, whose entry now names the new file.
    /// A folder that cannot be opened for reading (write and search permission only: EACCES,
    /// EPERM) and a file system that cannot flush folders (EINVAL, EOPNOTSUPP) leave this undone,
    /// as there is nothing better to do; any other failure (EIO, or EMFILE when opening it) is
    /// reported, since the new file may then not survive a power loss, although it is in place
    /// at the path and complete.
    private func flushFolder() throws(NudgeError) {
        let dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd < 0 && errno != EACCES && errno != EPERM {
            throw ioError("replaced \(given), but cannot open its folder \(folder) to flush it to disk, so the new file may not survive a power loss")
        }
        if dirfd >= 0 {
            let flushed = fsync(dirfd) == 0
            let reason = errno
            close(dirfd)
            if !flushed && reason != EINVAL && reason != EOPNOTSUPP {
                errno = reason
                throw ioError("replaced \(given), but cannot flush its folder \(folder) to disk, so the new file may not survive a power loss")
            }
        }
    }
}
