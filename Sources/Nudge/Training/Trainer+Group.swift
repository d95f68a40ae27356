// A run over a group of processes (Collective.swift): which samples each computes, how they agree
// that a call can start, and how rank 0's starting point reaches every process.

/// Which samples of a run this process computes. Alone, all of them. In a group the run's samples
/// have global indices: with replicated data they are every process's own rows, and each process
/// computes its share of every batch (an even split of the batch's positions); with sharded data
/// they are the shards in rank order, and each process computes the batch's samples in its shard.
/// Either way the batches are those of one process training on all the samples with the same seed.
struct Partition {
    let group: Collective?
    /// The samples this process passes.
    let localRows: Int
    /// The samples of the whole run.
    let globalRows: Int
    /// With sharded data, the global index of this process's first sample.
    let offset: Int

    /// The rows this process computes of `count` samples with global indices at `indices`, as rows of
    /// its own data; sharded data's go into `scratch`.
    func rows(of indices: UnsafePointer<Int>, count: Int, scratch: UnsafeMutablePointer<Int>) -> Rows {
        rows(of: indices, count: count, scratch: scratch, places: nil).rows
    }

    /// The rows, and where each sits among the `count` (for dropout draws); sharded data's places go
    /// into `places` when given.
    func rows(of indices: UnsafePointer<Int>, count: Int, scratch: UnsafeMutablePointer<Int>,
              places: UnsafeMutablePointer<Int>?) -> (rows: Rows, places: Dropout.RowPlaces) {
        guard let group else { return (.indices(indices, count: count), Dropout.RowPlaces()) }
        switch group.layout {
        case .replicated:
            let low = count * group.rank / group.size, high = count * (group.rank + 1) / group.size
            return (.indices(indices + low, count: high - low), Dropout.RowPlaces(first: low))
        case .sharded:
            var kept = 0
            for i in 0..<count {
                let local = indices[i] - offset
                if local >= 0 && local < localRows {
                    scratch[kept] = local
                    places?[kept] = i
                    kept += 1
                }
            }
            return (.indices(scratch, count: kept), Dropout.RowPlaces(places: places.map { UnsafePointer($0) }))
        }
    }

    /// This process's part of the given validation data (`rows` of its own): a share of it with
    /// replicated data, all of it with sharded data.
    func validationRows(_ rows: Int) -> Rows {
        guard let group, group.layout == .replicated else { return .range(start: 0, count: rows) }
        let low = rows * group.rank / group.size, high = rows * (group.rank + 1) / group.size
        return .range(start: low, count: high - low)
    }
}

extension Trainer {
    /// What every process of a group brings to a call, summed so that each sees all: whether it failed
    /// its checks, its sample counts, a checksum of its options, where its loaded run stands, and
    /// whether it gives sample weights and validation weights.
    private static let agreementSlots = 13

    /// Agrees with the group that the call can start, and returns which samples this process computes.
    /// A process that failed its checks throws its own error; the others throw a `collective` error
    /// naming it, so no process is left waiting in a sum. Alone, throws `failure` if there is one.
    /// `weighted`: whether this process gives weights for its samples and for its validation data; a
    /// group weighs all its samples or none (a step's sums would mix weighted and unweighted parts).
    func agree(_ failure: NudgeError?, rows: Int, validationRows: Int, weighted: (samples: Bool, validation: Bool) = (false, false),
               plan: TrainingOptions) throws(NudgeError) -> Partition {
        guard let group = collective else {
            if let failure { throw failure }
            return Partition(group: nil, localRows: rows, globalRows: rows, offset: 0)
        }
        let slots = Trainer.agreementSlots
        let buffer = try FloatBuffer(count: slots * group.size)
        let mine = buffer.pointer + slots * group.rank
        mine[0] = failure == nil ? 0 : 1
        FloatPieces.put(rows, mine + 1)
        FloatPieces.put(validationRows, mine + 3)
        FloatPieces.put(UInt64(optionsChecksum(plan)), mine + 5)
        FloatPieces.put(pending.map { $0.steps + 1 } ?? 0, mine + 9)
        (mine[11], mine[12]) = (weighted.samples ? 1 : 0, weighted.validation ? 1 : 0)
        try group.reduce(buffer.pointer, buffer.count)
        if let failure { throw failure }
        let slot = { (r: Int) in UnsafePointer(buffer.pointer + slots * r) }
        if let r = (0..<group.size).first(where: { slot($0)[0] > 0 }) {
            throw NudgeError(.collective, "the process of rank \(r) (of \(group.size)) cannot start this training call; its own error says why")
        }
        var offset = 0, total = 0
        for r in 0..<group.size {
            let s = slot(r), first = slot(0)
            let (n, v, n0, v0) = (FloatPieces.int(s + 1), FloatPieces.int(s + 3), FloatPieces.int(first + 1), FloatPieces.int(first + 3))
            if FloatPieces.uint64(s + 5) != FloatPieces.uint64(first + 5) {
                throw NudgeError(.collective, "rank \(r) trains with other options than rank 0; every process of a group must give the same options")
            }
            if FloatPieces.int(s + 9) != FloatPieces.int(first + 9) {
                throw NudgeError(.collective, "rank \(r) and rank 0 are not at the same point of a run (a checkpoint loaded by some processes only, or different checkpoints); every process must load the same one")
            }
            for (k, what) in [(11, "sample weights"), (12, "validation weights")] where s[k] != first[k] {
                throw .invalid("rank \(r) \(s[k] > 0 ? "gives" : "does not give") \(what) and rank 0 \(first[k] > 0 ? "does" : "does not"); every process gives the weights of its samples, or none does")
            }
            if group.layout == .replicated && (n != n0 || v != v0) {
                throw .invalid("with replicated data every process passes the same samples, but rank \(r) passes \(n) (and \(v) for validation) and rank 0 \(n0) (and \(v0)); pass the same arrays, or use sharded data")
            }
            if group.layout == .sharded && (v > 0) != (v0 > 0) {
                throw .invalid("rank \(r) \(v > 0 ? "gives" : "does not give") validation data and rank 0 \(v0 > 0 ? "does" : "does not"); with sharded data every process gives its part of the validation data, or none does")
            }
            if r < group.rank { offset += n }
            total += n
        }
        let globalRows = group.layout == .replicated ? rows : total
        return Partition(group: group, localRows: rows, globalRows: globalRows, offset: group.layout == .replicated ? 0 : offset)
    }

    /// Runs `body`; in a group, then agrees on whether every process succeeded, so that a failure on
    /// one (out of memory, say) ends the call on all instead of leaving the others waiting.
    func together<T>(_ body: () throws(NudgeError) -> T) throws(NudgeError) -> T {
        var result: T?
        var failure: NudgeError?
        do { result = try body() } catch { failure = error }
        if let group = collective {
            let flags = try FloatBuffer(count: group.size)
            flags.pointer[group.rank] = failure == nil ? 0 : 1
            try group.reduce(flags.pointer, flags.count)
            if let failure { throw failure }
            if let r = (0..<group.size).first(where: { flags.pointer[$0] > 0 }) {
                throw NudgeError(.collective, "the process of rank \(r) (of \(group.size)) could not prepare the run; its own error says why")
            }
        }
        if let failure { throw failure }
        return result!
    }

    /// In a group, gives every process rank 0's weights, input normalisation and generator state (an
    /// exact copy: the others add zeros). Alone, does nothing.
    func shareStart() throws(NudgeError) {
        guard let group = collective else { return }
        let p = network.parameterCount, width = network.inputSize
        let buffer = try FloatBuffer(count: p + 1 + 2 * width + 16)
        let b = buffer.pointer
        if group.rank == 0 {
            b.update(from: network.storage.pointer, count: p)
            if let n = network.normalization {
                b[p] = Float(n.count)
                (b + p + 1).update(from: n.offsets, count: n.count)
                (b + p + 1 + width).update(from: n.scales, count: n.count)
            }
            for (i, word) in rng.state.enumerated() { FloatPieces.put(word, b + p + 1 + 2 * width + 4 * i) }
        }
        try group.reduce(b, buffer.count)
        let k = Int(b[p])
        let normalization = k == 0 ? nil
            : try InputNormalization(offset: UnsafeBufferPointer(start: b + p + 1, count: k),
                                     scale: UnsafeBufferPointer(start: b + p + 1 + width, count: k))
        network.storage.pointer.update(from: b, count: p)
        try network.setNormalization(normalization)
        rng = SeededGenerator(state: (0..<4).map { FloatPieces.uint64(b + p + 1 + 2 * width + 4 * $0) })
    }

    /// A hash of the data's first and last 64 samples (inputs, targets and weights if any), by their
    /// global index, summed over the processes that hold them: the same value alone, replicated or
    /// sharded, on any number of processes, so that a checkpoint can tell when a call continues its run
    /// on other data (weights included: a run with weights continues only with the same weights).
    func dataFingerprint(_ inputs: UnsafePointer<Float>, targets: Targets, weights: UnsafePointer<Float>? = nil,
                         partition: Partition) throws(NudgeError) -> UInt64 {
        let n = partition.globalRows, width = network.inputSize, outputs = network.outputSize
        var total: UInt64 = 0
        func add(_ g: Int) {
            let local: Int
            switch partition.group?.layout {
            case nil: local = g
            case .replicated?: guard partition.group!.rank == 0 else { return }; local = g
            case .sharded?:
                local = g - partition.offset
                guard local >= 0 && local < partition.localRows else { return }
            }
            var crc = ModelFile.crc(UnsafeRawBufferPointer(start: inputs + local * width, count: 4 * width))
            switch targets {
            case .dense(let y): crc = ModelFile.crc(UnsafeRawBufferPointer(start: y + local * outputs, count: 4 * outputs), seed: crc)
            case .labels(let y): crc = ModelFile.crc(UnsafeRawBufferPointer(start: y + local, count: 4), seed: crc)
            }
            if let weights { crc = ModelFile.crc(UnsafeRawBufferPointer(start: weights + local, count: 4), seed: crc) }
            total &+= splitMix(UInt64(crc) | UInt64(truncatingIfNeeded: g) << 32)
        }
        for g in 0..<min(64, n) { add(g) }
        for g in stride(from: max(64, n - 64), to: n, by: 1) { add(g) }
        guard let group = collective else { return total }
        // Eight 8-bit pieces: their sums stay exact in a float for up to 65,536 processes.
        var pieces = [Float](repeating: 0, count: 8)
        for i in 0..<8 { pieces[i] = Float((total >> (8 * UInt64(i))) & 0xFF) }
        try pieces.withUnsafeMutableBufferPointer { (p) throws(NudgeError) in try group.reduce(p.baseAddress!, 8) }
        return (0..<8).reduce(UInt64(0)) { $0 &+ (UInt64(pieces[$1]) << (8 * UInt64($1))) }
    }
}
