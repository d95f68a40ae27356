// MARK: - Checkpoints, groups of processes, and steps by hand
// A trainer's whole state in a file (docs/FORMAT.md), training spread over processes through a sum
// the caller provides (docs/DISTRIBUTED.md), and the two halves of a step for callers who drive it.
import Nudge

// @c-section trainer

/// Sums `count` floats element-wise across every process of the group, in place: on return each
/// process's buffer holds the same sums. Every process calls it with the same count, in the same
/// order. With MPI: `MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, comm)`.
/// Return 0 on success, non-zero on failure (the training call then fails with NUDGE_ERR_COLLECTIVE).
public typealias nudge_allreduce_fn = @convention(c) (_ buffer: UnsafeMutablePointer<Float>?, _ count: UInt,
                                                      _ context: UnsafeMutableRawPointer?) -> Int32

/// How the processes of a group hold the training data (nudge_collective.data).
public typealias nudge_data_layout = Int32
/// Every process passes the same arrays; each computes its share of every batch.
public let NUDGE_DATA_REPLICATED: nudge_data_layout = 0
/// Each process passes its own samples (its shard); the data set is the shards in rank order.
public let NUDGE_DATA_SHARDED: nudge_data_layout = 1

/// A group of processes that train one network together. Start from nudge_collective_init(), then
/// set the fields.
public struct nudge_collective {
    /// Set by nudge_collective_init() to sizeof(nudge_collective).
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_collective>.stride)
    /// This process, 0 to size - 1. Default 0.
    public var rank: Int32 = 0
    /// The processes in the group, 1 to 65536. Default 1.
    public var size: Int32 = 1
    /// A NUDGE_DATA_ value. Default NUDGE_DATA_REPLICATED.
    public var data: nudge_data_layout = 0
    /// The sum across the group; required.
    public var allreduce: nudge_allreduce_fn? = nil
    /// Passed to allreduce. Default NULL.
    public var context: UnsafeMutableRawPointer? = nil
}

extension nudge_collective: SizedCStruct {
    static let fieldOffsets: [Int] = {
        let fields: [PartialKeyPath<nudge_collective>] = [\.struct_size, \.rank, \.size, \.data, \.allreduce, \.context]
        return fields.map { MemoryLayout<nudge_collective>.offset(of: $0)! }
    }()
}

/// Sets every field of a group struct to its default, and struct_size to the size both sides know:
/// `nudge_collective_init(&group, sizeof group);`
/// @param[out] collective The struct to fill.
/// @c-param collective nudge_collective *
/// @param[in] collective_size sizeof(nudge_collective) in the caller's header; at least 8, and not
///            ending inside a field.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT (collective is NULL, or collective_size is too
///         small or ends inside a field).
@_cdecl("nudge_collective_init")
public func nudge_collective_init(_ collective: UnsafeMutableRawPointer?, _ collective_size: UInt) -> nudge_status {
    guarded("nudge_collective_init") { () throws(NudgeError) in
        try initializeOptions(collective, collective_size, nudge_collective(), "nudge_collective", parameter: "collective")
    }
}

/// Makes the trainer's training calls (nudge_trainer_train(), nudge_trainer_train_labels())
/// data-parallel across a group of processes, each with its own trainer. At the start of each call
/// every process agrees that it can start (bad data on one ends the call on all: that process gets
/// its own error, the others NUDGE_ERR_COLLECTIVE naming its rank) and takes rank 0's weights, input
/// normalisation and generator state. Every step's gradient and every sum behind a report are then
/// summed across the group, so all processes make the same decisions and end with the same weights
/// and reports. batch_size is global: a step uses batch_size samples across the group, so N
/// processes give the run of one process with the same options and data, to float rounding.
/// Every process must make the same calls with the same options; callbacks run on every process
/// (a stop request from any one stops all at the next sum). With a checkpoint, rank 0 writes it.
/// @param[in,out] trainer The trainer.
/// @param[in] collective The group (copied), or NULL to train alone again.
/// @c-param collective const nudge_collective *
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT (a field out of range, allreduce NULL).
@_cdecl("nudge_trainer_set_collective")
public func nudge_trainer_set_collective(_ trainer: nudge_trainer?, _ collective: UnsafeRawPointer?) -> nudge_status {
    guarded("nudge_trainer_set_collective") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        guard let collective else {
            t.collective = nil
            return
        }
        var c = nudge_collective()
        let size = Int(collective.load(as: UInt32.self))
        guard size >= MemoryLayout<UInt32>.size, size <= 1 << 16 else {
            throw NudgeError(.invalidArgument, "collective->struct_size is \(size); call nudge_collective_init() first")
        }
        try checkStructSize(size, nudge_collective.fieldOffsets, nudge_collective.self, "collective", "nudge_collective_init")
        withUnsafeMutableBytes(of: &c) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: collective, count: min(size, MemoryLayout<nudge_collective>.size)))
        }
        let sum = try required(c.allreduce, "collective->allreduce")
        let layout: Collective.DataLayout
        switch c.data {
        case NUDGE_DATA_REPLICATED: layout = .replicated
        case NUDGE_DATA_SHARDED: layout = .sharded
        default: throw NudgeError(.invalidArgument, "collective->data is \(c.data), not a NUDGE_DATA_ value (0 or 1)")
        }
        let context = c.context
        do throws(NudgeError) {
            t.collective = try Collective(rank: Int(c.rank), size: Int(c.size), layout: layout) { buffer in
                sum(buffer.baseAddress, UInt(buffer.count), context) == 0
            }
        } catch {
            throw NudgeError(.invalidArgument, "collective->" + error.message)
        }
    }
}

/// Makes the trainer's training calls write checkpoints to `path`: atomically, every `every_steps`
/// steps (0: only at the end of each epoch), at the end of every epoch and when the call ends. A
/// checkpoint holds the whole trainer and where its run is (see nudge_trainer_load()); a run stopped
/// at any point (a killed process, a lost node, a callback) goes on from the last one. With a
/// group, rank 0 writes. A checkpoint that cannot be written fails the training call (NUDGE_ERR_IO, or
/// NUDGE_ERR_OUT_OF_MEMORY when the memory to write it cannot be had; the network keeps the weights
/// it has).
/// @param[in,out] trainer The trainer.
/// @param[in] path A UTF-8 file path, or NULL to stop writing checkpoints.
/// @param[in] every_steps Steps between checkpoints; 0 for the end of each epoch only.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_trainer_set_checkpoint")
public func nudge_trainer_set_checkpoint(_ trainer: nudge_trainer?, _ path: UnsafePointer<CChar>?, _ every_steps: UInt64) -> nudge_status {
    guarded("nudge_trainer_set_checkpoint") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        guard let path else {
            t.checkpoint = nil
            return
        }
        guard every_steps <= UInt64(Int32.max) else {
            throw NudgeError(.invalidArgument, "every_steps is \(every_steps); at most \(Int32.max)")
        }
        t.checkpoint = try CheckpointPlan(path: try string(path, "path"), everySteps: Int(every_steps))
    }
}

/// Writes the trainer to a checkpoint file now, atomically (as nudge_save()): the network, the
/// options, the optimiser's state (momentum, Adam's moments and step count), the generator's state,
/// and a run loaded by nudge_trainer_load() that has not been continued yet. nudge_load() reads the
/// file as a plain network.
/// @param[in] trainer The trainer.
/// @param[in] path A UTF-8 file path.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_OUT_OF_MEMORY.
@_cdecl("nudge_trainer_save")
public func nudge_trainer_save(_ trainer: nudge_trainer?, _ path: UnsafePointer<CChar>?) -> nudge_status {
    guarded("nudge_trainer_save") { () throws(NudgeError) in
        try borrowTrainer(trainer).save(to: try string(path, "path"))
    }
}

/// A trainer and its network from a checkpoint (nudge_trainer_save(), or one written during
/// training). If the checkpoint was written during a run, the next nudge_trainer_train() or
/// nudge_trainer_train_labels() call on the same data, with the run's options (or NULL options),
/// continues that run where it was: it first reports the run's finished epochs to the progress
/// callback, then goes on, and with the same thread count ends with exactly the weights of an
/// uninterrupted run. If the run had ended, that call returns its report without training.
/// @param[in] path A UTF-8 file path.
/// @param[out] out_trainer Receives the trainer; nudge_trainer_get_network() gives its network.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT (not a checkpoint,
///         a plain model file, truncated or corrupted), NUDGE_ERR_VERSION, NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_trainer and releases it with nudge_trainer_free().
@_cdecl("nudge_trainer_load")
public func nudge_trainer_load(_ path: UnsafePointer<CChar>?, _ out_trainer: UnsafeMutablePointer<nudge_trainer?>?) -> nudge_status {
    guarded("nudge_trainer_load") { () throws(NudgeError) in
        let p = try string(path, "path")
        let out = try required(out_trainer, "out_trainer")
        out.pointee = makeHandle(try Trainer.load(from: p), .trainer)
    }
}

/// A new handle on the trainer's network (the same network, not a copy): for predicting or saving
/// after nudge_trainer_load().
/// @param[in] trainer The trainer.
/// @param[out] out_network Receives the handle.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
/// Ownership: the caller owns *out_network and releases it with nudge_network_free(); the network
/// lives on while the trainer or any handle holds it.
@_cdecl("nudge_trainer_get_network")
public func nudge_trainer_get_network(_ trainer: nudge_trainer?, _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_trainer_get_network") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        let out = try required(out_network, "out_network")
        out.pointee = makeHandle(t.network, .network)
    }
}

/// Where a trainer's run stands (nudge_trainer_get_position()).
public struct nudge_trainer_position {
    /// Set it to sizeof(nudge_trainer_position) before the call.
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_trainer_position>.stride)
    /// 1 when the trainer holds a run loaded from a checkpoint that its next training call continues.
    public var in_run: Int32 = 0
    /// 1 when that run had ended (the next call only reports it).
    public var finished: Int32 = 0
    /// The run's epochs finished so far.
    public var epochs_done: UInt32 = 0
    /// The run's steps taken so far.
    public var steps: UInt64 = 0
}

/// Where the trainer's loaded run stands, for a program to say "resuming at epoch 3".
/// @param[in] trainer The trainer.
/// @param[out] out_position Receives the position; set out_position->struct_size first.
/// @c-param out_position nudge_trainer_position *
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_trainer_get_position")
public func nudge_trainer_get_position(_ trainer: nudge_trainer?, _ out_position: UnsafeMutableRawPointer?) -> nudge_status {
    guarded("nudge_trainer_get_position") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        let out = try required(out_position, "out_position")
        let size = out.load(as: UInt32.self)
        guard size >= UInt32(MemoryLayout<UInt32>.size), size <= 1 << 16 else {
            throw NudgeError(.invalidArgument, "out_position->struct_size is \(size); set it to sizeof(nudge_trainer_position)")
        }
        var p = nudge_trainer_position()
        if let run = t.position {
            p.in_run = 1
            p.finished = run.finished ? 1 : 0
            p.epochs_done = UInt32(clamping: run.epochsDone)
            p.steps = UInt64(run.steps)
        }
        p.struct_size = size
        withUnsafeBytes(of: &p) { src in out.copyMemory(from: src.baseAddress!, byteCount: min(Int(size), src.count)) }
    }
}

// MARK: Steps by hand

/// The mean gradient of the trainer's loss (with its label smoothing, and dropout masks drawn from
/// its generator) over the samples, in parameter order (as nudge_gradient()); the network is not
/// changed. With nudge_trainer_apply_gradient(), a caller can drive steps itself: sum the gradients
/// of several processes, say, then apply their mean.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] targets sample_count rows of output size floats.
/// @param[in] sample_count Samples, 1 to 1048576.
/// @param[out] gradient Receives the gradient; untouched on failure.
/// @param[in] gradient_count Floats gradient holds: at least the parameter count.
/// @param[out] out_loss Receives the samples' mean loss; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY, NUDGE_ERR_NOT_FINITE, NUDGE_ERR_OUT_OF_MEMORY.
@_cdecl("nudge_trainer_gradient")
public func nudge_trainer_gradient(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                   _ sample_count: UInt, _ gradient: UnsafeMutablePointer<Float>?, _ gradient_count: UInt,
                                   _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_trainer_gradient") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        try trainerGradient(t, inputs, .dense(try required(targets, "targets")), sample_count, gradient, gradient_count, out_loss)
    }
}

/// nudge_trainer_gradient() for samples with class labels.
/// @param[in,out] trainer The trainer.
/// @param[in] inputs sample_count rows of input size floats.
/// @param[in] labels sample_count class indices.
/// @param[in] sample_count Samples, 1 to 1048576.
/// @param[out] gradient Receives the gradient; untouched on failure.
/// @param[in] gradient_count Floats gradient holds: at least the parameter count.
/// @param[out] out_loss Receives the samples' mean loss; may be NULL.
/// @return As nudge_trainer_gradient(); labels out of range give NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_trainer_gradient_labels")
public func nudge_trainer_gradient_labels(_ trainer: nudge_trainer?, _ inputs: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                          _ sample_count: UInt, _ gradient: UnsafeMutablePointer<Float>?, _ gradient_count: UInt,
                                          _ out_loss: UnsafeMutablePointer<Double>?) -> nudge_status {
    guarded("nudge_trainer_gradient_labels") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        try trainerGradient(t, inputs, .labels(try required(labels, "labels")), sample_count, gradient, gradient_count, out_loss)
    }
}

private func trainerGradient(_ t: Trainer, _ inputs: UnsafePointer<Float>?, _ targets: Targets, _ sampleCount: UInt,
                             _ gradient: UnsafeMutablePointer<Float>?, _ gradientCount: UInt,
                             _ outLoss: UnsafeMutablePointer<Double>?) throws(NudgeError) {
    let x = try required(inputs, "inputs")
    let g = try required(gradient, "gradient")
    let rows = try requiredSamples(sampleCount, for: "a gradient")
    guard rows <= TrainingOptions.maxBatchSize else {
        throw NudgeError(.invalidArgument, "sample_count is \(rows); one gradient takes at most \(TrainingOptions.maxBatchSize) samples")
    }
    try checkCapacity(gradientCount, t.network.parameterCount, "gradient_count")
    let loss = try t.gradient(x, targets: targets, rows: rows, into: g)
    outLoss?.pointee = loss
}

/// One optimiser step with a given gradient (parameter order), with the trainer's optimizer, its
/// state, learning_rate (the schedule is not applied), weight_decay and clip_norm.
/// @param[in,out] trainer The trainer.
/// @param[in] gradient gradient_count floats.
/// @param[in] gradient_count The parameter count.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (a wrong count), NUDGE_ERR_NOT_FINITE (a NaN or
///         infinite entry, or a step that is not finite: the weights are then unchanged and the
///         optimiser state restarts), NUDGE_ERR_OUT_OF_MEMORY.
@_cdecl("nudge_trainer_apply_gradient")
public func nudge_trainer_apply_gradient(_ trainer: nudge_trainer?, _ gradient: UnsafePointer<Float>?,
                                         _ gradient_count: UInt) -> nudge_status {
    guarded("nudge_trainer_apply_gradient") { () throws(NudgeError) in
        let t = try borrowTrainer(trainer)
        let g = try required(gradient, "gradient")
        guard gradient_count == UInt(t.network.parameterCount) else {
            throw NudgeError(.invalidArgument, "gradient_count is \(gradient_count); the network has \(t.network.parameterCount) parameters")
        }
        try t.apply(gradient: g)
    }
}
