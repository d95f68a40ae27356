// Checkpoints: the whole trainer in a model file of format version 3 (docs/FORMAT.md, "Checkpoints"),
// so a stopped run goes on exactly where it was. The network part is an ordinary model file, which
// every reader of version 3 loads as a plain network; the trainer section follows its parameters.

/// A run as a checkpoint keeps it: where it is, what it has measured, the weights it can fall back
/// on, and the order of its samples. Written from a live run, or read from a file into a trainer,
/// whose next training call continues it.
struct SavedRun {
    /// The run ended (its summary says why); a training call then only reports it.
    var finished: Bool
    var epoch: Int
    var nextBatch: Int
    var steps: Int
    var partial: Trainer.EpochTraining
    var bestLoss: Double
    var sinceBest: Int
    var summary: TrainingSummary
    var history: [EpochReport]
    /// The run's samples (global: the whole group's), whether its targets are labels, and whether it
    /// was given validation data: a call that continues it must give the same.
    var globalRows: Int
    /// A hash of the data's first and last samples (``Trainer/dataFingerprint``), whatever the layout.
    var fingerprint: UInt64 = 0
    var labels: Bool
    var givenValidation: Bool
    /// The run was given sample weights: its checkpoint then has a `WGHT` chunk, with the epoch's
    /// weighted sums so far, and a call that continues it must give the same weights.
    var weighted = false
    var order: HeapBuffer<Int>
    var lastGood: FloatBuffer
    /// The best epoch's weights, with early stopping; empty otherwise.
    var best: FloatBuffer
    /// The options of the trainer that saved it.
    var options = TrainingOptions()

    init(run: Trainer.Run, summary: TrainingSummary, reason: StopReason?) {
        finished = reason != nil
        epoch = run.epoch
        nextBatch = run.nextBatch
        steps = run.steps
        partial = run.partial
        bestLoss = run.bestLoss
        sinceBest = run.sinceBest
        self.summary = summary
        history = run.history
        globalRows = run.partition.globalRows
        fingerprint = run.fingerprint
        if case .labels = run.targets { labels = true } else { labels = false }
        givenValidation = run.validation != nil
        weighted = run.weights != nil
        order = run.order
        lastGood = run.lastGood
        best = run.best
    }

    init(finished: Bool, epoch: Int, nextBatch: Int, steps: Int, partial: Trainer.EpochTraining, bestLoss: Double,
         sinceBest: Int, summary: TrainingSummary, history: [EpochReport], globalRows: Int, labels: Bool,
         givenValidation: Bool, order: HeapBuffer<Int>, lastGood: FloatBuffer, best: FloatBuffer) {
        (self.finished, self.epoch, self.nextBatch, self.steps, self.partial) = (finished, epoch, nextBatch, steps, partial)
        (self.bestLoss, self.sinceBest, self.summary, self.history) = (bestLoss, sinceBest, summary, history)
        (self.globalRows, self.labels, self.givenValidation) = (globalRows, labels, givenValidation)
        (self.order, self.lastGood, self.best) = (order, lastGood, best)
    }

    /// Checks that a call continues this run on the same data, as far as the trainer can tell.
    func check(partition: Partition, targets: Targets, validation: Bool, weights: Bool,
               fingerprint given: UInt64) throws(NudgeError) {
        guard partition.globalRows == globalRows else {
            throw .invalid("the checkpoint's run trains on \(globalRows) samples, this call gives \(partition.globalRows); continue it with the same data")
        }
        let givenLabels: Bool = if case .labels = targets { true } else { false }
        guard givenLabels == labels else {
            throw .invalid("the checkpoint's run was given \(labels ? "class labels" : "target rows"), this call \(givenLabels ? "class labels" : "target rows"); continue it with the same data")
        }
        guard validation == givenValidation else {
            throw .invalid("the checkpoint's run was \(givenValidation ? "" : "not ")given validation data, this call \(validation ? "is" : "is not"); continue it as it was started")
        }
        guard weights == weighted else {
            throw .invalid("the checkpoint's run was \(weighted ? "" : "not ")given sample weights, this call \(weights ? "is" : "is not"); continue it as it was started")
        }
        guard given == fingerprint else {
            throw .invalid("the checkpoint's run trains on other data: the first or last samples differ from this call's; continue it with the same data, in the same order")
        }
    }

    /// Puts the run's state into a freshly prepared run.
    func restore(into run: inout Trainer.Run) throws(NudgeError) {
        guard order.count == run.order.count, lastGood.count == run.lastGood.count, best.count == run.best.count,
              nextBatch <= run.batchCount else {
            throw .format("the checkpoint's run does not fit these options and data (its order holds \(order.count) samples, this run \(run.order.count))")
        }
        run.order.copy(from: order)
        run.lastGood.copy(from: lastGood)
        run.best.copy(from: best)
        (run.epoch, run.nextBatch, run.steps, run.partial) = (epoch, nextBatch, steps, partial)
        if !weighted {
            // Without weights the epoch's count so far is its batches' samples, which the file does not repeat.
            run.partial.weight = Double(min(nextBatch * options.batchSize, run.trainCount))
        }
        (run.bestLoss, run.sinceBest, run.summary, run.history) = (bestLoss, sinceBest, summary, history)
        run.secondsBefore = summary.seconds
    }
}

extension Trainer {
    // MARK: Saving

    /// Writes the whole trainer to a checkpoint file, atomically (as ``ModelFile/save(_:to:)``): the
    /// network, the options, the optimiser's state, the generator's state and, when it holds a run
    /// loaded from a checkpoint that it has not continued yet, that run. ``ModelFile/load(from:)``
    /// reads the file as a plain network; ``load(from:)`` as a trainer.
    ///
    /// Training calls write checkpoints themselves, with the run in progress, when ``checkpoint`` is set.
    ///
    /// - Throws: `invalidArgument` (an empty path), `io`, `outOfMemory`.
    public func save(to path: String) throws(NudgeError) {
        try ModelFile.save(network, checkpoint: try encodeState(pending), to: path)
    }

    /// The trainer's state and `run` as a checkpoint's trainer section.
    func saveCheckpoint(_ run: SavedRun, to path: String) throws(NudgeError) {
        try ModelFile.save(network, checkpoint: try encodeState(run), to: path)
    }

    /// A checksum of the options, which every process of a group compares with rank 0's.
    func optionsChecksum(_ plan: TrainingOptions) -> UInt32 {
        SectionWriter.checksum { $0.options(plan) }
    }

    /// The trainer section: tagged chunks (docs/FORMAT.md).
    private func encodeState(_ run: SavedRun?) throws(NudgeError) -> HeapBuffer<UInt8> {
        try SectionWriter.write { w in
            w.chunk("OPTS") { $0.options(options) }
            w.chunk("OPTM") { w in
                w.text(state.kind.name)
                w.u64(UInt64(state.steps))
                w.floats(state.first)
                w.floats(state.second)
            }
            w.chunk("RNG ") { w in for word in rng.state { w.u64(word) } }
            if let run { w.chunk("RUN ") { $0.run(run) } }
            if let run, run.weighted {
                w.chunk("WGHT") { w in
                    w.f64(run.partial.correct)
                    w.f64(run.partial.weight)
                }
            }
        }
    }

    // MARK: Loading

    /// A trainer, and its network, from a checkpoint written by ``save(to:)`` or by a training call.
    /// When the checkpoint was taken during a run, the next training call on the same data (with the
    /// run's options, or none) continues that run where it was: with the same thread count, it ends
    /// with the weights an uninterrupted run ends with, bit for bit. When the run had ended, that
    /// call reports it without training.
    ///
    /// - Throws: `io`, `format` (not a checkpoint, corrupted, or a plain model file), `version`,
    ///   `outOfMemory`.
    public static func load(from path: String) throws(NudgeError) -> Trainer {
        let (network, section) = try ModelFile.loadCheckpoint(from: path)
        return try Trainer(network: network, section: UnsafeRawBufferPointer(section.buffer), source: path)
    }

    /// Rebuilds a trainer from its network and the checkpoint's trainer section.
    private convenience init(network: Network, section: UnsafeRawBufferPointer, source: String) throws(NudgeError) {
        var r = SectionReader(bytes: section, source: source)
        let chunks = try r.chunks()
        guard let opts = chunks["OPTS"], let optm = chunks["OPTM"], let rngChunk = chunks["RNG "] else {
            throw .format("\(source): the checkpoint lacks its options, optimiser or generator state")
        }
        var o = SectionReader(bytes: opts, source: source)
        let options = try o.options()
        do { try self.init(network: network, options: options) } catch {
            throw NudgeError(.format, [.text("\(source): the checkpoint's options do not fit its network: ")] + error.parts)
        }
        var m = SectionReader(bytes: optm, source: source)
        guard try m.text("optimizer") == options.optimizer.name else {
            throw .format("\(source): the optimiser state is not of the options' optimizer")
        }
        // Bounded as the run's counts are: Int(_:) of a larger u64 would trap, and so would the next step's += 1.
        state.steps = try m.count("optimizer steps", limit: 1 << 48)
        try m.floats(into: state.first, "optimizer velocity or first moment")
        try m.floats(into: state.second, "optimizer second moment")
        var g = SectionReader(bytes: rngChunk, source: source)
        rng = SeededGenerator(state: try (0..<4).map { (_: Int) throws(NudgeError) in try g.u64("generator state") })
        if let runChunk = chunks["RUN "] {
            var u = SectionReader(bytes: runChunk, source: source)
            var saved = try u.run(parameterCount: network.parameterCount)
            saved.options = options
            if let weightChunk = chunks["WGHT"] {
                var w = SectionReader(bytes: weightChunk, source: source)
                saved.weighted = true
                saved.partial.correct = try w.f64("weighted correct")
                saved.partial.weight = try w.f64("weight so far")
            }
            pending = saved
        } else if chunks["WGHT"] != nil {
            throw .format("\(source): the checkpoint has sample weights' sums without a run")
        }
    }
}

// MARK: - The section's encoding

/// Writes little-endian fields: a first pass only counts the bytes, a second writes them into a
/// buffer of that size from the checked allocator (the section holds the optimiser's state, several
/// times the parameters' size, so it is never a growing array).
struct SectionWriter {
    /// Where the bytes go; nil while counting.
    private let out: UnsafeMutablePointer<UInt8>?
    /// The bytes written (or counted) so far.
    private(set) var count = 0
    /// The CRC-32 of the bytes so far, when asked for (``checksum(_:)``).
    private var crc: UInt32?

    private init(out: UnsafeMutablePointer<UInt8>?) { self.out = out }

    /// The CRC-32 of the bytes that `body` writes (no chunks), computed as they go, without storing them.
    static func checksum(_ body: (inout SectionWriter) -> Void) -> UInt32 {
        var writer = SectionWriter(out: nil)
        writer.crc = 0
        body(&writer)
        return writer.crc!
    }

    /// The bytes that `body` writes, in a buffer of exactly their size.
    static func write(_ body: (inout SectionWriter) -> Void) throws(NudgeError) -> HeapBuffer<UInt8> {
        var counter = SectionWriter(out: nil)
        body(&counter)
        let bytes = try HeapBuffer<UInt8>(count: counter.count, zeroed: false)
        var writer = SectionWriter(out: bytes.pointer)
        body(&writer)
        precondition(writer.count == bytes.count, "SectionWriter: the two passes differ")
        return bytes
    }

    private mutating func raw(_ source: UnsafeRawBufferPointer) {
        if let out, source.count > 0 { UnsafeMutableRawPointer(out + count).copyMemory(from: source.baseAddress!, byteCount: source.count) }
        if let crc { self.crc = ModelFile.crc(source, seed: crc) }
        count += source.count
    }

    mutating func u8(_ v: UInt8) { withUnsafeBytes(of: v) { raw($0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { raw($0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { raw($0) } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u32(UInt32(utf8.count))
            raw(UnsafeRawBufferPointer(utf8))
        }
    }

    mutating func floats(_ b: FloatBuffer) {
        u64(UInt64(b.count))
        guard out != nil || crc != nil else { return count += 4 * b.count }
        for i in 0..<b.count { u32(b.pointer[i].bitPattern) }
    }

    mutating func integers(_ b: HeapBuffer<Int>) {
        u64(UInt64(b.count))
        guard out != nil || crc != nil else { return count += 8 * b.count }
        for i in 0..<b.count { u64(UInt64(b.pointer[i])) }
    }

    /// A chunk: a 4-byte tag, its payload's length (u64), the payload.
    mutating func chunk(_ tag: String, _ body: (inout SectionWriter) -> Void) {
        var t = tag
        t.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
        let at = count
        u64(0)
        body(&self)
        let length = UInt64(count - at - 8).littleEndian
        if let out { withUnsafeBytes(of: length) { UnsafeMutableRawPointer(out + at).copyMemory(from: $0.baseAddress!, byteCount: 8) } }
    }

    /// Every option by name, with a kind code and its value.
    mutating func options(_ options: TrainingOptions) {
        let values = options.storedValues
        u32(UInt32(values.count))
        for (field, value) in values {
            text(field.swiftName)
            u8(value.kindCode)
            switch value {
            case .count(let v): u64(UInt64(bitPattern: Int64(v)))
            case .flag(let v): u8(v ? 1 : 0)
            case .float(let v): f32(v)
            case .double(let v): f64(v)
            case .seed(let v): u64(v)
            case .choice(let v): text(v)
            case .floats(let v):
                u32(UInt32(v.count))
                for x in v { f32(x) }
            }
        }
    }

    mutating func run(_ r: SavedRun) {
        u8(r.finished ? 1 : 0)
        u32(UInt32(clamping: r.summary.stopReason.fileCode))
        // A weighted run's correct weight is in its WGHT chunk.
        let correct = r.weighted ? 0 : Int(r.partial.correct)
        for v in [r.epoch, r.nextBatch, r.steps, correct, r.sinceBest, r.globalRows] { u64(UInt64(v)) }
        u64(r.fingerprint)
        u8(r.labels ? 1 : 0)
        u8(r.givenValidation ? 1 : 0)
        f64(r.partial.lossSum)
        f32(r.partial.rate)
        f64(r.bestLoss)
        let s = r.summary
        for v in [s.epochsRun, s.bestEpoch] { u64(UInt64(v)) }
        for v in [s.bestLoss, s.finalTrainLoss, s.finalTrainAccuracy, s.finalValidationLoss, s.finalValidationAccuracy, s.seconds] { f64(v) }
        text(s.message)
        u32(UInt32(r.history.count))
        for e in r.history {
            u64(UInt64(e.epoch))
            u64(UInt64(e.epochs))
            for v in [e.trainLoss, e.trainAccuracy, e.validationLoss, e.validationAccuracy, e.seconds] { f64(v) }
            u8(e.improved ? 1 : 0)
            f32(e.learningRate)
        }
        integers(r.order)
        floats(r.lastGood)
        floats(r.best)
    }
}

extension StopReason {
    /// The reason's number in a checkpoint (docs/FORMAT.md).
    var fileCode: Int {
        switch self {
        case .completed: 0
        case .earlyStopped: 1
        case .cancelled: 2
        case .notFinite: 3
        }
    }
}

/// Reads the section's fields, each checked against the bytes left, with the model file's reader.
struct SectionReader {
    private var reader: ModelFile.Reader
    var bytes: UnsafeRawBufferPointer { reader.bytes }
    var source: String { reader.source }
    var offset: Int {
        get { reader.offset }
        set { reader.offset = newValue }
    }

    init(bytes: UnsafeRawBufferPointer, source: String) {
        reader = ModelFile.Reader(bytes: bytes, source: source)
    }

    func need(_ count: Int, _ what: String) throws(NudgeError) {
        try reader.need(count, "the checkpoint's \(what)")
    }

    mutating func u8(_ what: String) throws(NudgeError) -> UInt8 {
        try need(1, what)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32(_ what: String) throws(NudgeError) -> UInt32 { try reader.u32("the checkpoint's \(what)") }
    mutating func u64(_ what: String) throws(NudgeError) -> UInt64 { try reader.u64("the checkpoint's \(what)") }

    mutating func count(_ what: String, limit: Int) throws(NudgeError) -> Int {
        let v = try u64(what)
        guard v <= UInt64(limit) else { throw .format("\(source): the checkpoint's \(what) is \(v), more than \(limit)") }
        return Int(v)
    }

    mutating func f64(_ what: String) throws(NudgeError) -> Double { Double(bitPattern: try u64(what)) }
    mutating func f32(_ what: String) throws(NudgeError) -> Float { Float(bitPattern: try u32(what)) }

    mutating func text(_ what: String) throws(NudgeError) -> String {
        let length = Int(try u32(what))
        try need(length, what)
        defer { offset += length }
        guard let s = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]), as: UTF8.self) else {
            throw .format("\(source): the checkpoint's \(what) is not valid UTF-8")
        }
        return s
    }

    /// Fills `buffer` from a stored float array, which must have its size.
    mutating func floats(into buffer: FloatBuffer, _ what: String) throws(NudgeError) {
        let n = try u64(what)
        guard n == UInt64(buffer.count) else {
            throw .format("\(source): the checkpoint's \(what) holds \(n) values; the network needs \(buffer.count)")
        }
        try need(4 * buffer.count, what)
        for i in 0..<buffer.count {
            buffer.pointer[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self)))
        }
        offset += 4 * buffer.count
    }

    /// The chunks by tag; a tag this library does not know, or one given twice, is refused.
    mutating func chunks() throws(NudgeError) -> [String: UnsafeRawBufferPointer] {
        var found: [String: UnsafeRawBufferPointer] = [:]
        while offset < bytes.count {
            try need(12, "chunk header")
            let tag = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 4)]), as: UTF8.self)
            offset += 4
            let length = try count("\(tag) chunk length", limit: bytes.count - offset - 8)
            guard ["OPTS", "OPTM", "RNG ", "RUN ", "WGHT"].contains(tag), found[tag] == nil else {
                throw .format("\(source): the checkpoint has an unknown or repeated chunk \"\(tag)\"")
            }
            found[tag] = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
            offset += length
        }
        return found
    }

    /// The options: every stored option by name; options this library does not know are refused
    /// (a newer writer), options the file lacks keep their defaults (an older writer).
    mutating func options() throws(NudgeError) -> TrainingOptions {
        var options = TrainingOptions()
        let count = Int(try u32("option count"))
        for _ in 0..<count {
            let name = try text("option name")
            guard let field = TrainingOptions.Field(rawValue: name) else {
                throw NudgeError(.version, "\(source): the checkpoint has option \(name), which this library does not know; upgrade Nudge")
            }
            let value: StoredOption
            switch try u8("option kind") {
            case 0: value = .count(Int(Int64(bitPattern: try u64(name))))
            case 1: value = .flag(try u8(name) != 0)
            case 2: value = .float(try f32(name))
            case 3: value = .double(try f64(name))
            case 4: value = .seed(try u64(name))
            case 5: value = .choice(try text(name))
            case 6:
                let n = Int(try u32(name))
                guard n < Network.maxLayers else { throw .format("\(source): option \(name) has \(n) entries") }
                value = .floats(try (0..<n).map { (_: Int) throws(NudgeError) in try f32(name) })
            case let code: throw .format("\(source): option \(name) has unknown kind \(code)")
            }
            try options.setStored(value, for: field)
        }
        // The validation error's parts name the option, so each layer spells it its own way.
        do { try options.validate() } catch {
            throw NudgeError(.format, [.text("\(source): the checkpoint's options are invalid: ")] + error.parts)
        }
        return options
    }

    mutating func run(parameterCount: Int) throws(NudgeError) -> SavedRun {
        let finished = try u8("run state") != 0
        let reasonCode = Int(try u32("stop reason"))
        guard let reason = StopReason.allCases.first(where: { $0.fileCode == reasonCode }) else {
            throw .format("\(source): the checkpoint's stop reason \(reasonCode) is unknown")
        }
        let limit = 1 << 48
        let epoch = try count("epoch", limit: limit), nextBatch = try count("batch", limit: limit)
        let steps = try count("steps", limit: limit), correct = try count("correct count", limit: limit)
        let sinceBest = try count("epochs since the best", limit: limit), rows = try count("sample count", limit: limit)
        let fingerprint = try u64("data fingerprint")
        let labels = try u8("targets kind") != 0, givenValidation = try u8("validation flag") != 0
        let partial = Trainer.EpochTraining(lossSum: try f64("epoch loss"), correct: Double(correct), weight: 0,
                                            rate: try f32("learning rate"))
        let bestLoss = try f64("best loss")
        var summary = TrainingSummary()
        summary.stopReason = reason
        summary.epochsRun = try count("epochs run", limit: limit)
        summary.bestEpoch = try count("best epoch", limit: limit)
        summary.bestLoss = try f64("best loss")
        summary.finalTrainLoss = try f64("training loss")
        summary.finalTrainAccuracy = try f64("training accuracy")
        summary.finalValidationLoss = try f64("validation loss")
        summary.finalValidationAccuracy = try f64("validation accuracy")
        summary.seconds = try f64("seconds")
        summary.message = try text("message")
        let reports = Int(try u32("report count"))
        try need(reports * 61, "epoch reports")
        var history: [EpochReport] = []
        try reserveChecked(&history, reports, "the checkpoint's \(reports) epoch reports")
        for _ in 0..<reports {
            let e = try count("report epoch", limit: limit), of = try count("report epochs", limit: limit)
            let values = try (0..<5).map { (_: Int) throws(NudgeError) in try f64("report") }
            history.append(EpochReport(epoch: e, epochs: of, trainLoss: values[0], trainAccuracy: values[1],
                                       validationLoss: values[2], validationAccuracy: values[3], seconds: values[4],
                                       improved: try u8("report") != 0, learningRate: try f32("report")))
        }
        let orderCount = try count("sample order length", limit: rows)
        try need(8 * orderCount, "sample order")
        let order = try HeapBuffer<Int>(count: orderCount, zeroed: false)
        for i in 0..<orderCount {
            let v = try u64("sample order")
            guard v < UInt64(rows) else { throw .format("\(source): the checkpoint's sample order names sample \(v) of \(rows)") }
            order.pointer[i] = Int(v)
        }
        let lastGood = try FloatBuffer(count: parameterCount, zeroed: false)
        try floats(into: lastGood, "fallback weights")
        let bestCount = try count("best weights length", limit: parameterCount)
        offset -= 8
        let best = try FloatBuffer(count: bestCount, zeroed: false)
        try floats(into: best, "best weights")
        guard offset == bytes.count else { throw .format("\(source): the checkpoint's run has \(bytes.count - offset) bytes too many") }
        var saved = SavedRun(finished: finished, epoch: epoch, nextBatch: nextBatch, steps: steps, partial: partial,
                             bestLoss: bestLoss, sinceBest: sinceBest, summary: summary, history: history, globalRows: rows,
                             labels: labels, givenValidation: givenValidation, order: order, lastGood: lastGood, best: best)
        saved.fingerprint = fingerprint
        return saved
    }
}
