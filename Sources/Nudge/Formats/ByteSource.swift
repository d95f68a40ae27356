import Glibc
import CZlib

/// The bytes of a data file, plain or gzip-compressed (recognised by its first two bytes, 1F 8B),
/// read front to back. The data readers (IDX, CSV) read through it.
///
/// A gzip file is decompressed here with zlib's inflate, member by member: several gzip members
/// one after the other (what `cat a.gz b.gz` writes) are one stream, as gzip(1) reads them. Bytes
/// after the last member that do not start another one (padding, an appended file, a damaged end)
/// are refused, so that a damaged file cannot pass for a complete one. Every member's CRC-32 and
/// length are checked by inflate.
final class ByteSource {
    let path: String
    private let file: OpenFile
    /// The size of the file on disk (compressed, for gzip).
    var fileSize: Int { file.size }
    /// Whether the file is gzip-compressed.
    let isGzip: Bool
    /// Bytes of the file read so far (compressed bytes, for gzip).
    private var offset = 0
    /// gzip: the inflate state (at a fixed address, as zlib requires), the compressed bytes read
    /// and not yet inflated, and whether the file has no more of them.
    private var stream: UnsafeMutablePointer<z_stream>?
    private var input: HeapBuffer<UInt8>?
    private var atFileEnd = false
    /// The decompressed data has ended (the last member's trailer was checked).
    private var finished = false
    private static let inputSize = 1 << 17

    /// Opens `path` (a regular file; `what` names it in messages, such as "CSV file").
    init(path: String, what: String) throws(NudgeError) {
        self.path = path
        let opened = try OpenFile(path, what: what)
        file = opened
        var magic: (UInt8, UInt8) = (0, 0)
        let got = withUnsafeMutableBytes(of: &magic) { pread(opened.fd, $0.baseAddress, 2, 0) }
        guard got >= 0 else { throw ioError("cannot read \(path)") }
        isGzip = got == 2 && magic == (0x1F, 0x8B)
        if isGzip { try startInflating() }
    }

    deinit {
        if let stream {
            inflateEnd(stream)
            stream.deallocate()
        }
    }

    private func startInflating() throws(NudgeError) {
        let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        s.initialize(to: z_stream())
        // 15 + 16: a window of 32 KiB, and a gzip wrapper (header, CRC-32 and length checked).
        guard inflateInit2_(s, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            s.deallocate()
            throw NudgeError(.outOfMemory, "could not allocate zlib's state to decompress \(path)")
        }
        stream = s
        input = try HeapBuffer<UInt8>(count: ByteSource.inputSize, zeroed: false)
    }

    /// Reads up to `count` bytes of data into `destination`; fewer only at the end of the data.
    func read(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(NudgeError) -> Int {
        guard count > 0 else { return 0 }
        guard isGzip else { return try readFile(into: destination, count: count) }
        var done = 0
        while done < count && !finished {
            done += try inflateSome(into: destination + done, count: count - done)
        }
        return done
    }

    /// Reads from the file itself, up to `count` bytes; fewer only at its end.
    private func readFile(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(NudgeError) -> Int {
        var got = 0
        while got < count {
            let n = Glibc.read(file.fd, destination + got, count - got)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ioError("cannot read \(path)") }
            if n == 0 { break }
            got += n
        }
        offset += got
        return got
    }

    /// Refills the compressed input once it is used up; false at the end of the file.
    private func refillInput() throws(NudgeError) -> Bool {
        let s = stream.unsafelyUnwrapped
        if s.pointee.avail_in > 0 { return true }
        if atFileEnd { return false }
        let got = try readFile(into: input.unsafelyUnwrapped.pointer, count: ByteSource.inputSize)
        if got == 0 { atFileEnd = true }
        s.pointee.next_in = input.unsafelyUnwrapped.pointer
        s.pointee.avail_in = UInt32(got)
        return got > 0
    }

    /// One call of inflate into `destination`; returns the bytes it wrote. At the end of a member,
    /// goes on to the next one, or finishes when the file ends there.
    private func inflateSome(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(NudgeError) -> Int {
        let s = stream.unsafelyUnwrapped
        guard try refillInput() else {
            throw .format("\(path): the gzip data ends early (the file is truncated)")
        }
        let room = UInt32(min(count, Int(UInt32.max)))
        s.pointee.next_out = destination
        s.pointee.avail_out = room
        let status = inflate(s, Z_NO_FLUSH)
        let wrote = Int(room - s.pointee.avail_out)
        switch status {
        case Z_OK, Z_BUF_ERROR:
            return wrote
        case Z_STREAM_END:
            try afterMember()
            return wrote
        case Z_MEM_ERROR:
            throw NudgeError(.outOfMemory, "zlib ran out of memory decompressing \(path)")
        default:
            let reason = s.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
            throw .format("\(path): corrupt gzip data (\(reason))")
        }
    }

    /// After a member's trailer: the end of the file, or another member (its first two bytes are
    /// 1F 8B); anything else is refused.
    private func afterMember() throws(NudgeError) {
        let s = stream.unsafelyUnwrapped
        // The member's end, as an offset in the file, for the message.
        let end = offset - Int(s.pointee.avail_in)
        guard try refillInput() else {
            finished = true
            return
        }
        if s.pointee.avail_in == 1 {
            // The second byte of a magic number may be in the next read.
            let first = s.pointee.next_in![0]
            input.unsafelyUnwrapped.pointer[0] = first
            let more = try readFile(into: input.unsafelyUnwrapped.pointer + 1, count: ByteSource.inputSize - 1)
            if more == 0 { atFileEnd = true }
            s.pointee.next_in = input.unsafelyUnwrapped.pointer
            s.pointee.avail_in = UInt32(1 + more)
        }
        let next = s.pointee.next_in!
        guard s.pointee.avail_in >= 2, next[0] == 0x1F, next[1] == 0x8B else {
            let trailing = fileSize - end
            throw .format("\(path): \(trailing) byte\(trailing == 1 ? "" : "s") after the end of the gzip data (at byte \(end) of \(fileSize)) that are not another gzip member; the file is damaged or has something appended")
        }
        inflateReset(s)
    }
}
