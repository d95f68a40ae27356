import Glibc
import CZlib

/// The model file format (docs/FORMAT.md): little-endian, versioned, CRC-32 protected.
/// A file is written in the oldest version that holds everything in it: version 1 without input
/// normalisation, version 2 with it, so older readers keep reading most files; version 3 only for
/// checkpoints, whose trainer section follows the parameters (``Trainer/save(to:)``).
///
/// ```swift
/// try ModelFile.save(net, to: "model.nudge")          // atomically
/// let loaded = try ModelFile.load(from: "model.nudge")
/// let bytes = try ModelFile.encode(net)                // [UInt8], for a database or a socket
/// let copy = try ModelFile.decode(bytes)
/// ```
///
/// ```
/// offset  size  field
///  0       8    magic 89 4E 44 47 0D 0A 1A 0A ("\x89NDG\r\n\x1a\n")
///  8       4    format version (1, 2 or 3)
/// 12       4    flags (0; reserved)
/// 16       8    total file size in bytes, CRC included
/// 24       4    L, the number of layer sizes (input included)
/// 28       4    M, the number of metadata entries
/// 32       8    P, the number of parameters
/// 40      4L    layer sizes (u32)
///   4(L-1)      activations (i32 codes: ``ModelFile/activationCodes``)
///          4    versions 2 and 3: K, the normalisation's length (0, 1 or the input size)
///          8    version 3 only: S, the trainer section's size
///               M x (u32 key length, key UTF-8, u32 value length, value UTF-8)
///         8K    versions 2 and 3: K offsets, then K scales (binary32)
///         4P    parameters (IEEE-754 binary32), in parameter order
///          S    version 3 only: the trainer section (tagged chunks)
/// end-4    4    CRC-32 (zlib polynomial) of every byte before it
/// ```
public enum ModelFile {
    /// The first 8 bytes of every model file.
    public static let magic: [UInt8] = [0x89, 0x4E, 0x44, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The newest version this library reads and writes.
    public static let formatVersion: UInt32 = 3
    /// The file's activation codes: an activation's position here is its code (docs/FORMAT.md).
    /// Codes are part of the format and never change; new activations are appended.
    static let activationCodes: [Activation] = [.identity, .sigmoid, .tanh, .relu, .leakyRelu, .softmax]

    private static func code(of activation: Activation) -> UInt32 {
        switch activation {
        case .identity: 0
        case .sigmoid: 1
        case .tanh: 2
        case .relu: 3
        case .leakyRelu: 4
        case .softmax: 5
        }
    }
    static let headerSize = 40
    /// The largest model file read.
    public static let maxFileSize = 1 << 34

    // MARK: Writing

    /// The size in bytes of the network's model file.
    ///
    /// - Throws: `outOfMemory` when the size overflows.
    public static func encodedSize(_ network: Network) throws(NudgeError) -> Int {
        try encodedSize(network, checkpoint: nil)
    }

    /// The size with a checkpoint's trainer section of `checkpoint` bytes (version 3), or without one.
    static func encodedSize(_ network: Network, checkpoint: Int?) throws(NudgeError) -> Int {
        var size = headerSize + 4 * network.layerSizes.count + 4 * network.activations.count + 4
        if let n = network.normalization { size += 4 + 8 * n.count } else if checkpoint != nil { size += 4 }
        if let checkpoint { size += 8 + checkpoint }
        for e in network.entries { size += 8 + e.key.count + e.value.count }
        return try size + checkedProduct(network.parameterCount, 4, "parameter bytes")
    }

    /// The network as model file bytes, which `decode(_:source:)` turns back into an
    /// identical network. Reads the network only.
    ///
    /// - Throws: `outOfMemory`.
    public static func encode(_ network: Network) throws(NudgeError) -> [UInt8] {
        let size = try encodedSize(network)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            writeBytes(network, into: UnsafeMutableRawBufferPointer(buffer))
            count = size
        }
    }

    /// Writes the network's model file into `buffer`, which needs room for ``encodedSize(_:)``
    /// bytes, and returns that size: for memory the caller manages (a mapped file, say).
    ///
    /// - Throws: `capacity` when `buffer` is too small (nothing is written); `outOfMemory`.
    public static func encode(_ network: Network, into buffer: UnsafeMutableRawBufferPointer) throws(NudgeError) -> Int {
        let size = try encodedSize(network)
        guard buffer.count >= size else {
            throw NudgeError(.capacity, "buffer has room for \(buffer.count) bytes; the model file needs \(size)")
        }
        writeBytes(network, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
        return size
    }

    /// Writes the model file into `out`, which holds exactly ``encodedSize(_:)`` bytes; allocates nothing.
    static func writeBytes(_ network: Network, checkpoint: HeapBuffer<UInt8>? = nil, into out: UnsafeMutableRawBufferPointer) {
        var offset = 0
        func put<T: FixedWidthInteger>(_ value: T) {
            out.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
        }
        func put(_ bytes: HeapBuffer<UInt8>, length: Bool = true) {
            if length { put(UInt32(bytes.count)) }
            (out.baseAddress! + offset).copyMemory(from: bytes.pointer, byteCount: bytes.count)
            offset += bytes.count
        }
        for byte in magic { put(byte) }
        let version: UInt32 = checkpoint != nil ? 3 : network.normalization == nil ? 1 : 2
        put(version)
        put(UInt32(0))
        put(UInt64(out.count))
        put(UInt32(network.layerSizes.count))
        put(UInt32(network.entries.count))
        put(UInt64(network.parameterCount))
        for s in network.layerSizes { put(UInt32(s)) }
        for a in network.activations { put(code(of: a)) }
        if version >= 2 { put(UInt32(network.normalization?.count ?? 0)) }
        if let checkpoint { put(UInt64(checkpoint.count)) }
        for e in network.entries {
            put(e.key)
            put(e.value)
        }
        if let n = network.normalization {
            for i in 0..<n.count { put(n.offsets[i].bitPattern) }
            for i in 0..<n.count { put(n.scales[i].bitPattern) }
        }
        let p = network.storage.pointer
        for i in 0..<network.parameterCount { put(p[i].bitPattern) }
        if let checkpoint { put(checkpoint, length: false) }
        put(crc(UnsafeRawBufferPointer(rebasing: out[0..<offset])))
    }

    /// Writes the network to `path` atomically: a temporary file in the same folder is written,
    /// flushed to disk and renamed over `path`, so a failed or interrupted save leaves the old file
    /// intact; then the folder is flushed, so that the rename survives a power loss. Only a failure
    /// of that last flush is reported after `path` already holds the new file (its message says so).
    /// A path that exists and is not a regular file (a device, FIFO, socket or directory) is refused
    /// and left as it was; a symbolic link means the file it points to, which is replaced (the link
    /// stays). A save killed mid-way (kill -9, a crash) can leave a temporary file `path.tmp-XXXXXX`
    /// behind, which the next save to `path` removes (``SaveTarget`` has the rules).
    /// Reads the network only.
    ///
    /// - Throws: `invalidArgument` (an empty path), `io` (not a regular file; the message gives the
    ///   system's reason), `outOfMemory`.
    public static func save(_ network: Network, to path: String) throws(NudgeError) {
        try save(network, checkpoint: nil, to: path)
    }

    /// Writes a model file, with a checkpoint's trainer section when given, atomically (as `save(_:to:)`).
    static func save(_ network: Network, checkpoint: HeapBuffer<UInt8>?, to path: String) throws(NudgeError) {
        let target = try SaveTarget(path)
        let bytes = try HeapBuffer<UInt8>(count: encodedSize(network, checkpoint: checkpoint?.count), zeroed: false)
        writeBytes(network, checkpoint: checkpoint, into: UnsafeMutableRawBufferPointer(bytes.buffer))
        try target.write(UnsafeRawBufferPointer(bytes.buffer))
    }

    // MARK: Reading

    /// Reads a model file. Every field and size is checked before anything is allocated for it, so a
    /// bad file gives an error, never a partly built network.
    ///
    /// - Throws: `invalidArgument` (an empty path), `io` (cannot open or read, not a regular file),
    ///   `format` (not a model file, truncated or corrupted), `version` (written by a newer library),
    ///   `outOfMemory`.
    public static func load(from path: String) throws(NudgeError) -> Network {
        let bytes = try readModelFile(path)
        return try decode(UnsafeRawBufferPointer(bytes.buffer), source: path)
    }

    /// A checkpoint's network and a copy of its trainer section (see ``Trainer/load(from:)``).
    static func loadCheckpoint(from path: String) throws(NudgeError) -> (Network, HeapBuffer<UInt8>) {
        let bytes = try readModelFile(path)
        let (network, section) = try decodeParts(UnsafeRawBufferPointer(bytes.buffer), source: path)
        guard let section else {
            throw .format("\(path) is a model file without a trainer: a checkpoint is written by a trainer (nudge_trainer_save, a training call with a checkpoint)")
        }
        let copy = try HeapBuffer<UInt8>(count: section.count, zeroed: false)
        copy.pointer.update(from: bytes.pointer + section.lowerBound, count: section.count)
        return (network, copy)
    }

    /// Reads a model file after checking, from its first bytes, that it is one and that its
    /// declared size is its real size, so a wrong or huge file is refused before it is read.
    private static func readModelFile(_ path: String) throws(NudgeError) -> HeapBuffer<UInt8> {
        let file = try OpenFile(path, what: "model file")
        guard file.size <= maxFileSize else {
            throw .format("\(path) is \(file.size) bytes, larger than a model file may be (\(maxFileSize))")
        }
        let head = try HeapBuffer<UInt8>(count: min(file.size, headerSize), zeroed: false)
        try file.read(into: head.pointer, count: head.count, at: 0)
        // decode() reports whatever is wrong with a short or foreign file, naming the first problem.
        if head.count < headerSize || !(0..<8).allSatisfy({ head.pointer[$0] == magic[$0] }) {
            return head
        }
        let declared = UInt64(littleEndian: UnsafeRawPointer(head.pointer).loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        guard declared == UInt64(file.size) else {
            // The header's checks, in their order, against the file's real size: the version or flags
            // if they are wrong, else the size ("truncated or padded"), not the size of `head`.
            var reader = Reader(bytes: UnsafeRawBufferPointer(head.buffer), source: path)
            _ = try readHeader(&reader, fileSize: file.size)
            return head
        }
        let bytes = try HeapBuffer<UInt8>(count: file.size, zeroed: false)
        try file.read(into: bytes.pointer, count: file.size, at: 0)
        return bytes
    }

    /// Builds a network from model file bytes, with the checks of ``load(from:)``; `source` names
    /// them in error messages.
    ///
    /// - Throws: `format`, `version`, `outOfMemory`.
    public static func decode(_ bytes: [UInt8], source: String = "buffer") throws(NudgeError) -> Network {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(NudgeError) in try decode(raw, source: source) }
        }.get()
    }

    /// Builds a network from model file bytes in memory the caller manages, without copying them;
    /// the bytes are not kept.
    ///
    /// - Throws: As the array form.
    public static func decode(_ bytes: UnsafeRawBufferPointer, source: String = "buffer") throws(NudgeError) -> Network {
        try decodeParts(bytes, source: source).network
    }

    /// The network, and where a checkpoint's trainer section lies in `bytes` (version 3).
    private static func decodeParts(_ bytes: UnsafeRawBufferPointer, source: String) throws(NudgeError) -> (network: Network, section: Range<Int>?) {
        // The steps follow the file's order; each checks its fields before anything is allocated for them.
        var reader = Reader(bytes: bytes, source: source)
        let version = try readHeader(&reader)
        let layout = try readArchitecture(&reader)
        let normalizationCount = try version >= 2 ? readNormalizationLength(&reader, inputSize: layout.sizes[0]) : 0
        let sectionSize = try version >= 3 ? reader.u64("trainer section size") : 0
        guard sectionSize <= UInt64(maxFileSize) else { throw .format("\(source): the trainer section size \(sectionSize) is too large") }
        let metadata = try readMetadata(&reader, count: layout.metadataCount)
        let normalization = try readNormalization(&reader, count: normalizationCount)
        let network = try readParameters(&reader, layout, trailing: Int(sectionSize))
        for (key, value) in metadata { try network.appendMetadata(value, forKey: key) }
        try network.setNormalization(normalization)
        return (network, version >= 3 ? (reader.end - Int(sectionSize))..<reader.end : nil)
    }

    /// The architecture a model file declares, checked as a network's would be.
    private struct Layout {
        let sizes: [Int]
        let activations: [Activation]
        /// The architecture's parameter count, which the header's matches.
        let parameterCount: Int
        let metadataCount: Int
    }

    /// Checks the fixed header (magic, version, flags, the declared size against the real one), then
    /// the CRC-32 of the whole file, so that every later field is read from bytes known to be intact,
    /// and a foreign, newer, truncated or corrupted file is named as such rather than by whichever field
    /// happens to look wrong. Leaves `reader` at the layer count, its end before the CRC. Returns the version.
    /// `fileSize`, when given, is the size of the file whose first bytes `reader` holds.
    private static func readHeader(_ reader: inout Reader, fileSize: Int? = nil) throws(NudgeError) -> UInt32 {
        let bytes = reader.bytes, source = reader.source, size = fileSize ?? bytes.count
        guard bytes.count >= 12 else {
            throw .format("\(source): \(bytes.count) bytes is too short for a model file (at least \(headerSize + 4))")
        }
        guard (0..<8).allSatisfy({ bytes[$0] == magic[$0] }) else {
            throw .format("\(source): not a Nudge model file (the first 8 bytes are not the model file magic)")
        }
        reader.offset = 8
        let version = try reader.u32("format version")
        guard version >= 1 else { throw .format("\(source): format version 0 is not valid") }
        guard version <= formatVersion else {
            throw NudgeError(.version, "\(source): format version \(version) is newer than this library reads (\(formatVersion)); upgrade Nudge")
        }
        guard size >= headerSize + 4 else {
            throw .format("\(source): \(size) bytes is too short for a model file (at least \(headerSize + 4))")
        }
        let flags = try reader.u32("flags")
        guard flags == 0 else { throw .format("\(source): unknown flags 0x\(String(flags, radix: 16))") }
        let declared = try reader.u64("file size")
        guard declared == UInt64(size) else {
            throw .format("\(source): the header says \(declared) bytes but there are \(size) (truncated or padded file)")
        }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self))
        let actual = crc(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 4)]))
        guard stored == actual else {
            throw .format("\(source): CRC-32 mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(actual, radix: 16))): the file is corrupted")
        }
        reader.end = bytes.count - 4
        return version
    }

    /// Reads the counts, layer sizes and activation codes, and checks them as ``Network`` checks an
    /// architecture, so that the parameter count is known good before any memory is sized by it.
    private static func readArchitecture(_ reader: inout Reader) throws(NudgeError) -> Layout {
        let source = reader.source
        let layerCount = Int(try reader.u32("layer count"))
        let metadataCount = Int(try reader.u32("metadata count"))
        let parameterCount = try reader.u64("parameter count")
        guard (2...Network.maxLayers).contains(layerCount) else {
            throw .format("\(source): layer count \(layerCount) is outside 2...\(Network.maxLayers)")
        }
        guard metadataCount <= Network.maxMetadataEntries else {
            throw .format("\(source): \(metadataCount) metadata entries is more than \(Network.maxMetadataEntries)")
        }
        try reader.need(8 * layerCount - 4, "the layer sizes and activations")
        var sizes: [Int] = []
        for i in 0..<layerCount { sizes.append(Int(try reader.u32("layer size \(i)"))) }
        var activations: [Activation] = []
        for i in 0..<(layerCount - 1) {
            let code = Int32(bitPattern: try reader.u32("activation \(i)"))
            guard activationCodes.indices.contains(Int(code)) else { throw .format("\(source): activation \(i) has unknown code \(code)") }
            activations.append(activationCodes[Int(code)])
        }
        let expected: Int
        do { expected = try Network.validate(layerSizes: sizes, activations: activations) } catch {
            throw .format("\(source): invalid architecture: \(error.message)")
        }
        guard parameterCount == UInt64(expected) else {
            throw .format("\(source): the header says \(parameterCount) parameters but layers \(sizes) have \(expected)")
        }
        return Layout(sizes: sizes, activations: activations, parameterCount: expected, metadataCount: metadataCount)
    }

    /// Version 2's normalisation length: 0 (none), 1 (global) or the input size.
    private static func readNormalizationLength(_ reader: inout Reader, inputSize: Int) throws(NudgeError) -> Int {
        let count = Int(try reader.u32("normalisation length"))
        guard count == 0 || count == 1 || count == inputSize else {
            throw .format("\(reader.source): the normalisation has \(count) values; the input size is \(inputSize) (allowed: 0, 1 or \(inputSize))")
        }
        return count
    }

    /// The metadata entries, in file order, as checked byte ranges of the file (at most
    /// ``Network/maxMetadataEntries``; nothing file-sized is copied here). Keys must be non-empty and
    /// distinct as bytes, as ``Network/setMetadata(_:forKey:)`` keeps them, so that every entry read can be set.
    private static func readMetadata(_ reader: inout Reader, count: Int) throws(NudgeError) -> [(UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>)] {
        var metadata: [(UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>)] = []
        var byHash: [Int: [Int]] = [:]
        for i in 0..<count {
            let key = try reader.string("metadata key \(i)")
            let value = try reader.string("metadata value \(i)", allowingNUL: true)
            var hasher = Hasher()
            hasher.combine(bytes: UnsafeRawBufferPointer(key))
            let hash = hasher.finalize()
            let repeated = byHash[hash, default: []].contains { metadata[$0].0.elementsEqual(key) }
            guard !key.isEmpty, !repeated else {
                throw .format("\(reader.source): metadata key \(i) is empty or repeated")
            }
            byHash[hash, default: []].append(i)
            metadata.append((key, value))
        }
        return metadata
    }

    /// The normalisation's offsets, then its scales; nil when its length is 0.
    private static func readNormalization(_ reader: inout Reader, count: Int) throws(NudgeError) -> InputNormalization? {
        guard count > 0 else { return nil }
        try reader.need(8 * count, "the normalisation")
        let values = try FloatBuffer(count: 2 * count, zeroed: false)
        for i in 0..<(2 * count) { values.pointer[i] = Float(bitPattern: try reader.u32("normalisation value")) }
        do { return try InputNormalization(adopting: values) } catch {
            throw .format("\(reader.source): invalid normalisation: \(error.message)")
        }
    }

    /// Builds the network and fills in its parameters, which must be exactly what remains before the
    /// CRC, and all finite.
    private static func readParameters(_ reader: inout Reader, _ layout: Layout, trailing: Int) throws(NudgeError) -> Network {
        let expected = layout.parameterCount
        guard reader.end - reader.offset == expected * 4 + trailing else {
            let what = trailing > 0 ? " and a trainer section of \(trailing) bytes" : ""
            throw .format("\(reader.source): \(reader.end - reader.offset) bytes remain for \(expected) parameters\(what) (need \(expected * 4 + trailing))")
        }
        let network = try Network(layerSizes: layout.sizes, activations: layout.activations, parameters: nil)
        let p = network.storage.pointer
        let base = reader.bytes.baseAddress! + reader.offset
        for i in 0..<expected {
            let v = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            guard v.isFinite else { throw .format("\(reader.source): parameter \(i) is \(v); a model's parameters are finite") }
            p[i] = v
        }
        return network
    }

    // MARK: Helpers

    /// Little-endian fields of a model file, each checked against the bytes left before it is read;
    /// a checkpoint's trainer section is read with one too (Trainer+Checkpoint.swift).
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let source: String
        var offset = 0
        var end: Int

        init(bytes: UnsafeRawBufferPointer, source: String) {
            self.bytes = bytes
            self.source = source
            end = bytes.count
        }

        func need(_ count: Int, _ what: String) throws(NudgeError) {
            guard count >= 0, count <= end - offset else {
                throw .format("\(source): truncated: \(what) needs \(count) bytes at offset \(offset), \(max(end - offset, 0)) remain")
            }
        }

        mutating func u32(_ what: String) throws(NudgeError) -> UInt32 {
            try need(4, what)
            defer { offset += 4 }
            return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }

        mutating func u64(_ what: String) throws(NudgeError) -> UInt64 {
            try need(8, what)
            defer { offset += 8 }
            return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }

        /// A length-prefixed UTF-8 string, checked in place and returned as the file's own bytes.
        mutating func string(_ what: String, allowingNUL: Bool = false) throws(NudgeError) -> UnsafeBufferPointer<UInt8> {
            let length = Int(try u32("\(what) length"))
            guard length <= Network.maxMetadataBytes else {
                throw .format("\(source): \(what) is \(length) bytes, more than \(Network.maxMetadataBytes)")
            }
            try need(length, what)
            defer { offset += length }
            let text = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]).assumingMemoryBound(to: UInt8.self)
            guard isValidUTF8(text) else {
                throw .format("\(source): \(what) is not valid UTF-8")
            }
            // A C caller names keys by NUL-terminated strings: a key with a NUL inside could be
            // neither found nor read whole. Values come back with their length, so a NUL is kept.
            guard allowingNUL || !text.contains(0) else { throw .format("\(source): \(what) contains a NUL byte") }
            return text
        }
    }

    static func crc(_ bytes: UnsafeRawBufferPointer, seed: UInt32? = nil) -> UInt32 {
        var value = seed.map { UInt($0) } ?? crc32(0, nil, 0)
        var offset = 0
        // zlib takes 32-bit lengths.
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)
            value = crc32(value, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset, UInt32(n))
            offset += n
        }
        return UInt32(truncatingIfNeeded: value)
    }
}

/// An `io` error naming the system's reason.
func ioError(_ what: String) -> NudgeError {
    NudgeError(.io, "\(what): \(String(cString: strerror(errno)))")
}

/// A regular file opened for reading; FIFOs and devices are refused without blocking on them.
final class OpenFile {
    let path: String
    let fd: Int32
    let size: Int

    init(_ path: String, what: String) throws(NudgeError) {
        guard !path.isEmpty else { throw .invalid("path is empty") }
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ioError("cannot open \(what) \(path)") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = ioError("cannot stat \(path)")
            close(fd)
            throw error
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw NudgeError(.io, "\(path) is not a regular file\((info.st_mode & S_IFMT) == S_IFDIR ? " (it is a directory)" : "")")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        size = Int(info.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset`.
    func read(into destination: UnsafeMutablePointer<UInt8>, count: Int, at offset: Int) throws(NudgeError) {
        var got = 0
        while got < count {
            let n = pread(fd, destination + got, count - got, off_t(offset + got))
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ioError("cannot read \(path)") }
            guard n > 0 else { throw .format("\(path) became shorter while it was read") }
            got += n
        }
    }
}
