import Glibc

/// A fixed-size block of trivial values from malloc. Unlike an Array, a failed allocation is an
/// error the caller sees (`out_of_memory`), not a crash of the host process; every buffer whose
/// size a caller or a file decides is one of these.
final class HeapBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int, zeroed: Bool = true) throws(NudgeError) {
        let bytes = try checkedProduct(max(count, 1), MemoryLayout<Element>.stride, "buffer of \(count) \(Element.self) values")
        // More than the machine has can never succeed: refuse it without asking (an allocator may
        // abort on such a request, as sanitizers' do, rather than return NULL).
        guard bytes <= physicalMemoryBytes else {
            throw NudgeError(.outOfMemory, "\(count) \(Element.self) values need \(bytes) bytes, more than the \(physicalMemoryBytes) bytes of memory of this machine")
        }
        guard let raw = zeroed ? calloc(1, bytes) : malloc(bytes) else {
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(count) \(Element.self) values")
        }
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        self.count = count
    }

    /// Takes ownership of `pointer`: malloc'd memory holding `count` initialised values, freed
    /// when the buffer is released. Readers that grow their output with realloc hand it over this way.
    init(adopting pointer: UnsafeMutablePointer<Element>, count: Int) {
        self.pointer = pointer
        self.count = count
    }

    convenience init(copying other: HeapBuffer) throws(NudgeError) {
        try self.init(count: other.count, zeroed: false)
        pointer.update(from: other.pointer, count: count)
    }

    deinit { free(pointer) }

    func copy(from other: HeapBuffer) {
        precondition(other.count == count, "HeapBuffer.copy: sizes differ")
        pointer.update(from: other.pointer, count: count)
    }

    func zero() { UnsafeMutableRawPointer(pointer).initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<Element>.stride) }

    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

typealias FloatBuffer = HeapBuffer<Float>

/// The machine's physical memory in bytes (Int.max when the system does not say): no single
/// allocation larger than this is attempted.
let physicalMemoryBytes: Int = {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, pageSize > 0 else { return Int.max }
    let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
    return overflow ? Int.max : bytes
}()
