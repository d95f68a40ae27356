import Glibc

// The Protocol Buffers wire format, as much of it as ONNX files use: varints, 32-bit fixed values and
// length-delimited fields (strings, bytes, packed numbers, nested messages). Written from the wire
// format's specification (protobuf.dev/programming-guides/encoding); no generated code, no runtime.

/// A message being written: its fields in order and its encoded size, known before a byte is written,
/// so that a whole file is encoded into one buffer of exactly its size. Large byte fields (tensors)
/// are referenced, not copied: the memory they point to must outlive the encoding.
struct ProtoMessage {
    private enum Field {
        case varint(Int, UInt64)
        case fixed32(Int, UInt32)
        case bytes(Int, [UInt8])
        case borrowed(Int, UnsafeRawBufferPointer)
        case message(Int, ProtoMessage)
    }

    private var fields: [Field] = []
    /// The encoded size in bytes.
    private(set) var size = 0

    /// An unsigned integer, or a signed one in two's complement (int32, int64 and enums are encoded
    /// that way: a negative value takes ten bytes).
    mutating func varint(_ field: Int, _ value: Int) {
        varint(field, UInt64(bitPattern: Int64(value)))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        fields.append(.varint(field, value))
        size += Self.varintSize(UInt64(field << 3)) + Self.varintSize(value)
    }

    mutating func float(_ field: Int, _ value: Float) {
        fields.append(.fixed32(field, value.bitPattern))
        size += Self.varintSize(UInt64(field << 3 | 5)) + 4
    }

    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        fields.append(.bytes(field, value))
        size += Self.delimitedSize(field, value.count)
    }

    /// Bytes that are not copied (a tensor's values): they must stay valid until the message is encoded.
    mutating func borrowedBytes(_ field: Int, _ value: UnsafeRawBufferPointer) {
        fields.append(.borrowed(field, value))
        size += Self.delimitedSize(field, value.count)
    }

    mutating func message(_ field: Int, _ value: ProtoMessage) {
        fields.append(.message(field, value))
        size += Self.delimitedSize(field, value.size)
    }

    /// Writes the message to `out`, which has room for ``size`` bytes; returns the end.
    @discardableResult
    func encode(into out: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var p = out
        func put(_ value: UInt64) {
            var v = value
            while v >= 0x80 {
                p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, as: UInt8.self)
                p += 1
                v >>= 7
            }
            p.storeBytes(of: UInt8(v), as: UInt8.self)
            p += 1
        }
        func copy(_ bytes: UnsafeRawBufferPointer) {
            if let base = bytes.baseAddress, !bytes.isEmpty { p.copyMemory(from: base, byteCount: bytes.count) }
            p += bytes.count
        }
        for field in fields {
            switch field {
            case .varint(let f, let v):
                put(UInt64(f << 3))
                put(v)
            case .fixed32(let f, let v):
                put(UInt64(f << 3 | 5))
                p.storeBytes(of: v.littleEndian, as: UInt32.self)
                p += 4
            case .bytes(let f, let v):
                put(UInt64(f << 3 | 2))
                put(UInt64(v.count))
                v.withUnsafeBytes { copy($0) }
            case .borrowed(let f, let v):
                put(UInt64(f << 3 | 2))
                put(UInt64(v.count))
                copy(v)
            case .message(let f, let m):
                put(UInt64(f << 3 | 2))
                put(UInt64(m.size))
                p = m.encode(into: p)
            }
        }
        return p
    }

    static func varintSize(_ value: UInt64) -> Int {
        (64 - value.leadingZeroBitCount + 6) / 7 + (value == 0 ? 1 : 0)
    }

    private static func delimitedSize(_ field: Int, _ count: Int) -> Int {
        varintSize(UInt64(field << 3 | 2)) + varintSize(UInt64(count)) + count
    }
}

/// Reads the fields of one message from bytes in memory, checking every length against the bytes
/// there are; a hostile file gets a `format` error naming the byte where it goes wrong, never a read
/// out of bounds. Nested messages are read with a reader of their own over their byte range.
struct ProtoReader {
    /// The whole file; ranges are offsets into it.
    let bytes: UnsafeRawBufferPointer
    /// Names the file in messages.
    let source: String
    private(set) var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, source: String, range: Range<Int>? = nil) {
        self.bytes = bytes
        self.source = source
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    /// The wire types: varint, 64-bit, length-delimited, start group, end group, 32-bit.
    enum Wire: Int { case varint = 0, fixed64 = 1, delimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5 }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func next() throws(NudgeError) -> (field: Int, wire: Wire)? {
        guard position < end else { return nil }
        let at = position
        let key = try varint()
        guard let wire = Wire(rawValue: Int(key & 7)), wire != .startGroup, wire != .endGroup else {
            throw failure("wire type \(key & 7) at byte \(at), which ONNX files do not use (not a valid ONNX file, or a damaged one)")
        }
        let field = key >> 3
        guard field >= 1 && field <= 0x1FFF_FFFF else { throw failure("field number \(field) at byte \(at) is out of range (not a valid ONNX file, or a damaged one)") }
        return (Int(field), wire)
    }

    mutating func varint() throws(NudgeError) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<10 {
            guard position < end else { throw failure("the data ends inside a number at byte \(position) (a truncated file?)") }
            let byte = bytes[position]
            position += 1
            if i == 9 && byte > 1 { throw failure("a number at byte \(position - 10) is longer than 64 bits") }
            value |= UInt64(byte & 0x7F) << (7 * UInt64(i))
            if byte < 0x80 { return value }
        }
        throw failure("a number at byte \(position - 10) is longer than 10 bytes")
    }

    /// A varint read as a signed 64-bit integer (int64, int32 and enum fields).
    mutating func int() throws(NudgeError) -> Int64 { Int64(bitPattern: try varint()) }

    mutating func fixed32() throws(NudgeError) -> UInt32 {
        guard end - position >= 4 else { throw failure("the data ends inside a 32-bit value at byte \(position)") }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    /// The byte range of a length-delimited field (a string, bytes, packed numbers or a message).
    mutating func delimited() throws(NudgeError) -> Range<Int> {
        let at = position
        let length = try varint()
        guard length <= UInt64(end - position) else {
            throw failure("a field at byte \(at) claims \(length) bytes, but only \(end - position) remain (a truncated file?)")
        }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    /// The longest string read (a name): longer ones are refused rather than copied.
    static let maxStringBytes = 1 << 16

    mutating func string() throws(NudgeError) -> String {
        let at = position
        let range = try delimited()
        guard range.count <= Self.maxStringBytes else { throw failure("a name at byte \(at) is \(range.count) bytes long, more than the \(Self.maxStringBytes) a name may have") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// Skips a field this reader does not use.
    mutating func skip(_ wire: Wire) throws(NudgeError) {
        switch wire {
        case .varint: _ = try varint()
        case .fixed64:
            guard end - position >= 8 else { throw failure("the data ends inside a 64-bit value at byte \(position)") }
            position += 8
        case .delimited: _ = try delimited()
        case .fixed32: _ = try fixed32()
        case .startGroup, .endGroup: throw failure("a group at byte \(position)")
        }
    }

    /// Requires `wire` for field `name`, the way the schema declares it.
    func expect(_ wire: Wire, _ got: Wire, _ name: String) throws(NudgeError) {
        guard wire == got else { throw failure("\(name) has wire type \(got.rawValue) where \(wire.rawValue) was expected (not a valid ONNX file, or a damaged one)") }
    }

    func failure(_ message: String) -> NudgeError { .format("\(source): \(message)") }
}
