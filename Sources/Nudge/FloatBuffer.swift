#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed-size block of Float32 from malloc. Unlike an Array, a failed allocation is an error the
/// caller sees (`out_of_memory`), not a crash of the host process.
final class FloatBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int, zeroed: Bool = true) throws(NudgeError) {
        let bytes = try checkedProduct(max(count, 1), MemoryLayout<Float>.stride, "buffer of \(count) floats")
        guard let raw = zeroed ? calloc(1, bytes) : malloc(bytes) else {
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(count) floats")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    convenience init(copying other: FloatBuffer) throws(NudgeError) {
        try self.init(count: other.count, zeroed: false)
        pointer.update(from: other.pointer, count: count)
    }

    deinit { free(pointer) }

    func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer.copy: sizes differ")
        pointer.update(from: other.pointer, count: count)
    }

    func zero() { pointer.update(repeating: 0, count: count) }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
