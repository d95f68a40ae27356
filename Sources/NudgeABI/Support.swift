// The plumbing every thunk shares: handles, the thread-local error message, argument checks.
// No numerics live here.
import Glibc
import Nudge

// MARK: Thread-local error message

/// Each thread's last error message, a malloc'd C string owned by the library. It is replaced only by
/// the next failure on the same thread, and freed when the thread ends.
private let errorKey: pthread_key_t? = {
    var key = pthread_key_t()
    guard pthread_key_create(&key, { free($0) }) == 0 else { return nil }
    return key
}()

private let noError: StaticString = ""
/// Shown only if the process has run out of thread-specific keys, which no caller can fix.
private let noKey: StaticString = "error messages are unavailable: the process has no thread-specific keys left"

func setLastError(_ message: String) {
    guard let errorKey else { return }
    let old = pthread_getspecific(errorKey)
    pthread_setspecific(errorKey, strdup(message))
    free(old)
}

var lastErrorPointer: UnsafePointer<CChar> {
    guard let errorKey else { return UnsafeRawPointer(noKey.utf8Start).assumingMemoryBound(to: CChar.self) }
    if let p = pthread_getspecific(errorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafeRawPointer(noError.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Runs a thunk body: a thrown NudgeError becomes its status and the thread's error message.
@inline(__always)
func guarded(_ function: StaticString, _ body: () throws(NudgeError) -> Void) -> nudge_status {
    do {
        try body()
        return NUDGE_OK
    } catch {
        setLastError("\(function): \(error.message(naming: cName, references: { cName($0).replacing("options->", with: "") }))")
        return error.kind.status
    }
}

// MARK: Handles

/// Every live handle, so that a NULL, freed or wrong-kind handle is an error rather than a crash.
/// A handle is a token, not the object's address: tokens are never reused, so a freed handle stays
/// invalid even after new objects are created. Lookups take a shared lock, so threads predicting
/// at once do not wait for each other, and return a strong reference, so an object freed by one
/// thread stays alive until another thread's call on it returns.
private final class HandleRegistry: @unchecked Sendable {
    enum Kind: String { case network, trainer, dataset }
    private var live: [UInt: (kind: Kind, object: AnyObject)] = [:]
    /// Multiples of 16 from 2^32 up: they look like aligned pointers and are never dereferenced.
    private var lastToken: UInt = 1 << 32
    private let lock: UnsafeMutablePointer<pthread_rwlock_t> = {
        let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
        return lock
    }()

    func insert(_ object: AnyObject, _ kind: Kind) -> UInt {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        lastToken += 16
        live[lastToken] = (kind, object)
        return lastToken
    }

    /// Removes `token` if it is a live handle of `kind`; returns whether it was.
    func remove(_ token: UInt, _ kind: Kind) -> Bool {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard live[token]?.kind == kind else { return false }
        live[token] = nil
        return true
    }

    func lookup(_ token: UInt) -> (kind: Kind, object: AnyObject)? {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return live[token]
    }
}

private let registry = HandleRegistry()

/// Hands `object` to C as a new handle, owned by the caller until the matching `_free`.
func makeHandle(_ object: AnyObject, _ kind: HandleKind) -> OpaquePointer {
    // Tokens are far from zero, so the pointer is never NULL.
    OpaquePointer(bitPattern: registry.insert(object, kind.registryKind))!
}

/// Releases a handle from `makeHandle`; NULL and unknown handles are ignored.
func releaseHandle(_ handle: OpaquePointer?, _ kind: HandleKind) {
    guard let handle else { return }
    _ = registry.remove(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle))), kind.registryKind)
}

/// Borrows the object behind a handle, failing for NULL, freed or other kinds of handles.
func borrow<T: AnyObject>(_ handle: OpaquePointer?, _ kind: HandleKind, as type: T.Type, _ name: String) throws(NudgeError) -> T {
    guard let handle else { throw NudgeError(.invalidArgument, "\(name) is NULL") }
    guard let found = registry.lookup(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))) else {
        throw NudgeError(.invalidArgument, "\(name) is not a live nudge_\(kind.registryKind.rawValue) (already freed, or never created)")
    }
    guard found.kind == kind.registryKind, let object = found.object as? T else {
        throw NudgeError(.invalidArgument, "\(name) is a nudge_\(found.kind.rawValue), not a nudge_\(kind.registryKind.rawValue)")
    }
    return object
}

enum HandleKind {
    case network, trainer, dataset
    fileprivate var registryKind: HandleRegistry.Kind {
        switch self {
        case .network: .network
        case .trainer: .trainer
        case .dataset: .dataset
        }
    }
}

func borrowNetwork(_ handle: OpaquePointer?, _ name: String = "network") throws(NudgeError) -> Network {
    try borrow(handle, .network, as: Network.self, name)
}

// MARK: Arguments

/// How a C caller names an option: the field of its options struct.
func cName(_ subject: NudgeError.Subject) -> String {
    switch subject {
    case .option(let field): "options->\(field.cName)"
    case .entry(let field, let index): "options->\(field.cName)[\(index)]"
    }
}

/// A caller's pointer that must not be NULL.
func required<P>(_ pointer: P?, _ name: String) throws(NudgeError) -> P {
    guard let pointer else { throw NudgeError(.invalidArgument, "\(name) is NULL") }
    return pointer
}

/// A caller's size as an Int, refusing values that do not fit.
func callerCount(_ value: UInt, _ name: String) throws(NudgeError) -> Int {
    guard value <= UInt(Int.max) else { throw NudgeError(.invalidArgument, "\(name) is \(value), which is too large") }
    return Int(value)
}

/// A caller's sample_count where at least one sample is needed (`purpose`: "training").
func requiredSamples(_ value: UInt, for purpose: String) throws(NudgeError) -> Int {
    guard value > 0 else { throw NudgeError(.invalidArgument, "sample_count is 0; \(purpose) needs at least one sample") }
    return try callerCount(value, "sample_count")
}

/// `rows x width` elements, refusing products that overflow.
func elements(_ rows: Int, _ width: Int, _ name: String) throws(NudgeError) -> Int {
    let (n, overflow) = rows.multipliedReportingOverflow(by: width)
    guard !overflow else { throw NudgeError(.invalidArgument, "\(name): \(rows) x \(width) elements overflows") }
    return n
}

/// Fails unless a caller's buffer of `capacity` elements holds `needed`.
func checkCapacity(_ capacity: UInt, _ needed: Int, _ name: String, _ unit: String = "elements") throws(NudgeError) {
    guard capacity >= UInt(needed) else {
        throw NudgeError(.capacity, "\(name) is \(capacity) \(unit), \(needed) are needed")
    }
}

/// Copies UTF-8 bytes and a NUL into a caller's buffer; a NULL buffer only asks the length.
func copyBytes(_ value: UnsafeBufferPointer<UInt8>, into buffer: UnsafeMutablePointer<CChar>?, capacity: UInt,
               length: UnsafeMutablePointer<UInt>?, _ name: String) throws(NudgeError) {
    if let buffer {
        try checkCapacity(capacity, value.count + 1, "\(name) capacity", "bytes")
        if let base = value.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: value.count) }
        buffer[value.count] = 0
    }
    length?.pointee = UInt(value.count)
}

/// A caller's NUL-terminated UTF-8 string, read in place and checked, without a copy.
func utf8Bytes(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(NudgeError) -> UnsafeBufferPointer<UInt8> {
    let p = try required(pointer, name)
    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
    guard isValidUTF8(bytes) else { throw NudgeError(.invalidArgument, "\(name) is not valid UTF-8") }
    return bytes
}

/// At most the first 64 bytes of a caller's string, for an error message (a key may be 1 MiB long).
func excerpt(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    guard bytes.count > 64 else { return String(decoding: bytes, as: UTF8.self) }
    return String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<64]), as: UTF8.self) + "... (\(bytes.count) bytes)"
}

/// A caller's NUL-terminated UTF-8 string (a path, a column name). A String's memory comes from the
/// Swift runtime, which ends the process when it cannot have it, so a long string's size (and the
/// margin that checked allocations keep) is first tried with malloc: a caller's string too large
/// for the memory left gives `outOfMemory`.
func string(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(NudgeError) -> String {
    let bytes = try utf8Bytes(pointer, name)
    guard bytes.count <= 4096 || canMap(bytes.count + memoryMarginBytes) else {
        throw NudgeError(.outOfMemory, "\(name) is \(bytes.count) bytes long, more than the memory left can copy")
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A C struct that starts with `uint32_t struct_size`: the offset of every field, in order, against
/// which a caller's size is checked (it must not end inside a field).
protocol SizedCStruct {
    static var fieldOffsets: [Int] { get }
}

extension nudge_csv_options: SizedCStruct {
    // Listed here, not in Dataset.swift, next to the checks that use them.
    static let fieldOffsets: [Int] = {
        let fields: [PartialKeyPath<nudge_csv_options>] = [\.struct_size, \.header, \.label_column, \.class_count, \.label_name, \.delimiter,
                                                              \.max_bytes, \.ignore_columns, \.ignore_column_count, \.ignore_names,
                                                              \.ignore_name_count, \.weight_column, \.weight_name]
        return fields.map { MemoryLayout<nudge_csv_options>.offset(of: $0)! }
    }()
}

extension nudge_idx_options: SizedCStruct {
    static let fieldOffsets: [Int] = [\nudge_idx_options.struct_size, \.max_bytes].map {
        MemoryLayout<nudge_idx_options>.offset(of: $0)!
    }
}

/// Fills a caller's options struct with `defaults`, writing no more than the `size` bytes the
/// caller's header knows of, and sets its leading `struct_size` field to the size both sides know.
/// `parameter` is the struct's parameter name in the C function (its size is `parameter`_size).
/// A size that ends inside a field is refused, as every later call would refuse the struct.
func initializeOptions<Options: SizedCStruct>(_ options: UnsafeMutableRawPointer?, _ size: UInt, _ defaults: Options,
                                              _ typeName: String, parameter: String = "options") throws(NudgeError) {
    let p = try required(options, parameter)
    guard size >= 8 else {
        throw NudgeError(.invalidArgument, "\(parameter)_size is \(size); pass sizeof(\(typeName))")
    }
    let known = min(Int(clamping: size), MemoryLayout<Options>.stride)
    if let (start, end) = fieldCut(by: known, Options.fieldOffsets, Options.self) {
        throw NudgeError(.invalidArgument, "\(parameter)_size is \(size), which ends inside a field (bytes \(start) to \(end)); pass sizeof(\(typeName))")
    }
    withUnsafeBytes(of: defaults) { p.copyMemory(from: $0.baseAddress!, byteCount: min(known, $0.count)) }
    p.storeBytes(of: UInt32(known), as: UInt32.self)
}

/// The field a size ends inside of (`offsets`: every field's offset, in order), as its first byte
/// and the byte after it; nil when the size ends on a boundary or past the last field.
private func fieldCut<Options>(by size: Int, _ offsets: [Int], _ type: Options.Type) -> (Int, Int)? {
    let known = MemoryLayout<Options>.size
    for (i, start) in offsets.enumerated() {
        let end = i + 1 < offsets.count ? offsets[i + 1] : known
        if start < size && size < end { return (start, end) }
    }
    return nil
}

/// Fails when a caller's `struct_size` ends inside one of the struct's fields (`offsets`: every
/// field's offset, in order). Every sizeof of every version of a header ends on a field boundary
/// (or in the padding after the last field), so such a size is a mistake; reading it would take
/// half a pointer, and calling or reading through that pointer would crash.
func checkStructSize<Options>(_ size: Int, _ offsets: [Int], _ type: Options.Type, _ name: String,
                              _ initFunction: String) throws(NudgeError) {
    if let (start, end) = fieldCut(by: size, offsets, type) {
        throw NudgeError(.invalidArgument, "\(name)->struct_size is \(size), which ends inside a field (bytes \(start) to \(end)); call \(initFunction)() first")
    }
}

/// The `*_to_buffer` contract (nudge_save_to_buffer, nudge_export_onnx_to_buffer): `size` bytes are
/// needed; a NULL buffer asks only for that size, otherwise `encode` writes them into the caller's
/// buffer after its capacity is checked; `out_size` receives the size either way. No buffer of the
/// encoded size is allocated: the bytes go straight into the caller's.
func encodeIntoCallerBuffer(_ buffer: UnsafeMutableRawPointer?, _ capacity: UInt, _ outSize: UnsafeMutablePointer<UInt>?,
                            size: () throws(NudgeError) -> Int,
                            encode: (UnsafeMutableRawBufferPointer) throws(NudgeError) -> Int) throws(NudgeError) {
    let out = try required(outSize, "out_size")
    let needed = try size()
    if let buffer {
        try checkCapacity(capacity, needed, "capacity", "bytes")
        _ = try encode(UnsafeMutableRawBufferPointer(start: buffer, count: needed))
    }
    out.pointee = UInt(needed)
}

/// The bytes of a `*_from_buffer` call (nudge_load_from_buffer, nudge_import_onnx_from_buffer), checked.
func callerBytes(_ buffer: UnsafeRawPointer?, _ size: UInt) throws(NudgeError) -> UnsafeRawBufferPointer {
    let bytes = try required(buffer, "buffer")
    return UnsafeRawBufferPointer(start: bytes, count: try callerCount(size, "size"))
}
