/// A group of processes that train one network together (data-parallel), given by the caller: an MPI
/// communicator, say, whose allreduce sums float buffers across the group. The trainer needs nothing
/// else from the engine, so any engine that can sum floats will do.
///
/// Every process of the group makes the same training calls with the same options. Rank 0's
/// weights, input normalisation and generator state are given to all at the start of a run; each
/// step's gradient and every sum behind a report are summed across the group, so every process makes
/// the same decisions (schedule, early stopping, divergence, callbacks asking to stop) and ends with
/// the same weights and reports. ``TrainingOptions/batchSize`` is global: a step uses that many
/// samples across the group, so N processes give the run of one process, to float rounding.
public struct Collective {
    /// How the processes hold the training data.
    public enum DataLayout: Sendable, CaseIterable {
        /// Every process passes the same arrays; each computes its part of every batch.
        case replicated
        /// Each process passes its own samples; the data set is the shards in rank order.
        case sharded
    }

    /// This process, 0 to `size - 1`.
    public let rank: Int
    /// The processes in the group.
    public let size: Int
    public let layout: DataLayout
    /// Sums the buffer element-wise across the group, in place; returns false when it failed. Every
    /// process calls it with the same count in the same order.
    public let allreduce: (UnsafeMutableBufferPointer<Float>) -> Bool

    /// - Throws: `invalidArgument` when `rank` is not in `0..<size` or `size` is not 1 to 65536.
    public init(rank: Int, size: Int, layout: DataLayout = .replicated,
                allreduce: @escaping (UnsafeMutableBufferPointer<Float>) -> Bool) throws(NudgeError) {
        guard size >= 1, size <= Collective.maxSize else {
            throw .invalid("size is \(size); a group has 1 to \(Collective.maxSize) processes")
        }
        guard rank >= 0, rank < size else { throw .invalid("rank is \(rank); it must be 0 to \(size - 1) in a group of \(size)") }
        self.rank = rank
        self.size = size
        self.layout = layout
        self.allreduce = allreduce
    }

    /// The largest group.
    public static let maxSize = 1 << 16

    /// Sums `count` floats at `buffer` across the group.
    func reduce(_ buffer: UnsafeMutablePointer<Float>, _ count: Int) throws(NudgeError) {
        guard allreduce(UnsafeMutableBufferPointer(start: buffer, count: count)) else {
            throw NudgeError(.collective, "the allreduce callback failed (rank \(rank) of \(size))")
        }
    }
}

// MARK: Exact integers and doubles in float sums

/// Integers and doubles travel through a float sum in pieces that add exactly: an integer below
/// 2^36 as two floats of 12 and 24 bits, 16-bit pieces for 64-bit values, and a double as a float
/// plus the float of what it left out (a sum of such pairs keeps about 48 bits).
enum FloatPieces {
    static func put(_ value: Int, _ p: UnsafeMutablePointer<Float>) {
        p[0] = Float(value >> 12)
        p[1] = Float(value & 0xFFF)
    }

    static func int(_ p: UnsafePointer<Float>) -> Int { Int(p[0]) << 12 + Int(p[1]) }

    static func put(_ value: UInt64, _ p: UnsafeMutablePointer<Float>) {
        for i in 0..<4 { p[i] = Float((value >> (16 * UInt64(i))) & 0xFFFF) }
    }

    static func uint64(_ p: UnsafePointer<Float>) -> UInt64 {
        (0..<4).reduce(0) { $0 | UInt64(p[$1]) << (16 * UInt64($1)) }
    }

    static func put(_ value: Double, _ p: UnsafeMutablePointer<Float>) {
        let high = Float(value)
        p[0] = high
        p[1] = value.isFinite && high.isFinite ? Float(value - Double(high)) : 0
    }

    static func double(_ p: UnsafePointer<Float>) -> Double { Double(p[0]) + Double(p[1]) }
}
