import Glibc

/// A fixed-size block of trivial values from malloc. Unlike an Array, a failed allocation is an
/// error the caller sees (`out_of_memory`), not a crash of the host process; every buffer whose
/// size a caller or a file decides is one of these.
///
/// A large buffer is kept only if ``memoryMarginBytes`` more could still be had after it
/// (``hasMemoryMargin()``): the small allocations that follow it (Swift objects, an error message)
/// come from the Swift runtime, which ends the process when it cannot have them, so a large buffer
/// that would leave memory nearly exhausted is refused as out of memory instead.
package final class HeapBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    package let pointer: UnsafeMutablePointer<Element>
    package let count: Int

    package init(count: Int, zeroed: Bool = true) throws(NudgeError) {
        let bytes = try checkedProduct(max(count, 1), MemoryLayout<Element>.stride, "buffer of \(count) \(Element.self) values")
        // More than the machine has can never succeed: refuse it without asking (an allocator may
        // abort on such a request, as sanitizers' do, rather than return NULL).
        guard bytes <= physicalMemoryBytes else {
            throw NudgeError(.outOfMemory, "\(count) \(Element.self) values need \(bytes) bytes, more than the \(physicalMemoryBytes) bytes of memory of this machine")
        }
        guard let raw = zeroed ? calloc(1, bytes) : malloc(bytes) else {
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(count) \(Element.self) values")
        }
        guard bytes < memoryMarginBytes / 32 || hasMemoryMargin() else {
            free(raw)
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(count) \(Element.self) values and keep \(memoryMarginBytes) bytes free")
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

    package var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }
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

/// Reserves room for `count` elements in a Swift array, whose memory comes from the Swift runtime,
/// which ends the process when it cannot have it: the size (and the margin) is first mapped, so that a
/// count taken from a file or a caller that the memory left cannot hold gives `outOfMemory`. For
/// the few values that must stay Swift arrays; buffers are ``HeapBuffer``s.
func reserveChecked<T>(_ array: inout [T], _ count: Int, _ what: String) throws(NudgeError) {
    let bytes = try checkedProduct(max(count, 1), MemoryLayout<T>.stride, what)
    guard bytes <= physicalMemoryBytes - memoryMarginBytes, canMap(bytes + memoryMarginBytes) else {
        throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(what)")
    }
    array.reserveCapacity(count)
}

/// What a large checked allocation leaves free, at least, for the small allocations after it.
package let memoryMarginBytes = 2 << 20

/// Whether ``memoryMarginBytes`` can still be allocated.
package func hasMemoryMargin() -> Bool { canMap(memoryMarginBytes) }

/// Whether `bytes` of address space can still be mapped: a mapping is made and removed at once,
/// without touching it. (Not malloc and free: the optimiser may remove an unused pair of them.)
package func canMap(_ bytes: Int) -> Bool {
    let probe = mmap(nil, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    guard let probe, probe != UnsafeMutableRawPointer(bitPattern: -1) else { return false }
    munmap(probe, bytes)
    return true
}
