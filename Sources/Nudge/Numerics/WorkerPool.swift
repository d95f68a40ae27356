import Glibc
import Synchronization

/// The library's own threads. Training splits each large matrix product across them, and prediction
/// splits large batches; BLAS itself runs single-threaded inside each part, because on the batch
/// sizes of training, a BLAS's own threading costs more than it gains.
///
/// Workers stay alive between parallel regions and spin for a while before they sleep, so a
/// region costs about a microsecond rather than a thread fork and join. Only one region runs at a
/// time: a caller that finds the pool busy (another thread training or predicting) runs its parts
/// itself, one after the other, so concurrent callers never multiply the thread count.
public final class WorkerPool: @unchecked Sendable {
    /// The pool every network uses.
    public static let shared = WorkerPool()

    /// The most threads accepted.
    public static let maxThreads = 256

    /// The environment variable that sets the thread count at start-up.
    public static let environmentVariable = "NUDGE_NUM_THREADS"

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let requested = Atomic<Int>(0)
    private let busy: UnsafeMutablePointer<pthread_mutex_t>
    private let sleep: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private var sleepers = 0
    private var workers = 0
    private var task: Region?
    private var context: UnsafeMutableRawPointer?
    private var parts = 1

    private init() {
        busy = .allocate(capacity: 1)
        sleep = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(busy, nil)
        pthread_mutex_init(sleep, nil)
        pthread_cond_init(wake, nil)
        requested.store(WorkerPool.defaultThreadCount(), ordering: .relaxed)
        // A forked child has only the forking thread: forget the workers (and any lock a worker or
        // another thread held at the fork), so that the child starts its own when it needs them.
        pthread_atfork(nil, nil) { WorkerPool.shared.forgetWorkersAfterFork() }
        LinearAlgebra.useOneBLASThread()
    }

    private func forgetWorkersAfterFork() {
        pthread_mutex_init(busy, nil)
        pthread_mutex_init(sleep, nil)
        pthread_cond_init(wake, nil)
        workers = 0
        sleepers = 0
        task = nil
        context = nil
        pending.store(0, ordering: .relaxed)
    }

    /// Threads a parallel region uses, the calling thread included (at least 1).
    public var threadCount: Int { requested.load(ordering: .relaxed) }

    /// Sets the number of threads (1 runs everything on the calling thread); 0 restores the default:
    /// $NUDGE_NUM_THREADS, or else the processors this process may run on. May be called at any
    /// time; running computations keep the count they started with.
    ///
    /// ```swift
    /// try WorkerPool.shared.setThreadCount(1)   // a host that runs its own threads
    /// ```
    ///
    /// - Throws: `invalidArgument` for a count outside 0 to ``maxThreads``.
    public func setThreadCount(_ count: Int) throws(NudgeError) {
        guard (0...WorkerPool.maxThreads).contains(count) else {
            throw .invalid("thread count is \(count); it must be 0 (the default) to \(WorkerPool.maxThreads)")
        }
        requested.store(count == 0 ? WorkerPool.defaultThreadCount() : count, ordering: .relaxed)
    }

    static func defaultThreadCount() -> Int {
        if let text = getenv(environmentVariable), let value = Int(String(cString: text)), value >= 1 {
            return min(value, maxThreads)
        }
        return max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), maxThreads))
    }

    /// A region's work: called once per part with the caller's context. A C function pointer and a
    /// raw context, rather than a closure, because handing a closure to other threads would allocate
    /// its captures on the heap on every region, and training runs thousands of regions a second.
    typealias Region = @convention(c) (_ context: UnsafeMutableRawPointer, _ part: Int, _ parts: Int) -> Void

    /// Runs `region(context, part, parts)` for every part, each part on its own thread when the pool
    /// is free, and returns when all have finished. `region` must not start another region.
    func run(parts wanted: Int, _ context: UnsafeMutableRawPointer, _ region: Region) {
        let parts = min(max(wanted, 1), threadCount)
        guard parts > 1, pthread_mutex_trylock(busy) == 0 else {
            for part in 0..<parts { region(context, part, parts) }
            return
        }
        defer { pthread_mutex_unlock(busy) }
        guard ensureWorkers(parts - 1) else {
            for part in 0..<parts { region(context, part, parts) }
            return
        }
        task = region
        self.context = context
        self.parts = parts
        // Every worker reports for every region, also those without a part, so that none can still be
        // reading `task` or `parts` when the next region changes them.
        pending.store(workers, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        pthread_mutex_lock(sleep)
        if sleepers > 0 { pthread_cond_broadcast(wake) }
        pthread_mutex_unlock(sleep)
        region(context, 0, parts)
        // Spin briefly, then yield: on a machine busier than its cores, a worker that is waiting for a
        // core must not find this thread spinning on it for a whole time slice.
        var spins = 0
        while pending.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 2_000 { sched_yield() }
        }
        task = nil
    }

    /// Runs a region whose parameters are the value `arguments`, passed to `region` by address.
    @inline(__always)
    func run<Arguments>(parts: Int, _ arguments: Arguments, _ region: Region) {
        var arguments = arguments
        withUnsafeMutableBytes(of: &arguments) { run(parts: parts, $0.baseAddress!, region) }
    }

    /// How many threads a region over `work` multiply-adds should use: one when the work is too small
    /// to pay for the hand-over.
    func parts(forWork work: Int) -> Int {
        work >= 1 << 17 ? threadCount : 1
    }

    private func ensureWorkers(_ count: Int) -> Bool {
        while workers < count {
            let index = workers + 1
            var thread = pthread_t()
            // The worker starts from the current generation, so it takes part in the very next region
            // even when that region begins before the thread first runs.
            let start = generation.load(ordering: .acquiring)
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index, start: start)).toOpaque()
            guard pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.work(index: context.index, seen: context.start)
                return nil
            }, context) == 0 else {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                return false
            }
            pthread_detach(thread)
            workers += 1
        }
        return true
    }

    /// A worker's life: wait for a new region, do its part if it has one, report, repeat.
    private func work(index: Int, seen start: Int) {
        var seen = start
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 2_000 { continue }
                // Still spinning, but giving way to any other thread that wants this core.
                if spins < 20_000 {
                    sched_yield()
                    continue
                }
                pthread_mutex_lock(sleep)
                sleepers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, sleep) }
                sleepers -= 1
                pthread_mutex_unlock(sleep)
            }
            seen += 1
            if index < parts, let task, let context { task(context, index, parts) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerContext {
    let pool: WorkerPool
    let index: Int
    let start: Int
    init(pool: WorkerPool, index: Int, start: Int) {
        self.pool = pool
        self.index = index
        self.start = start
    }
}

/// Memory each thread keeps for itself between calls (prediction's hidden activations), so that
/// concurrent predictions neither share buffers nor allocate on every call. Freed when the thread ends.
enum ThreadScratch {
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        guard pthread_key_create(&key, { free($0) }) == 0 else { return nil }
        return key
    }()

    /// The header before the floats: the capacity, padded to a cache line.
    private static let header = 64

    /// At least `count` floats, valid until the next call on this thread; nil if memory is short.
    static func floats(_ count: Int) -> UnsafeMutablePointer<Float>? {
        guard let key else { return nil }
        if let block = pthread_getspecific(key), block.load(as: Int.self) >= count {
            return (block + header).assumingMemoryBound(to: Float.self)
        }
        let capacity = max(count, 1024)
        let (bytes, overflow) = capacity.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, bytes <= physicalMemoryBytes else { return nil }
        var block: UnsafeMutableRawPointer?
        guard posix_memalign(&block, 64, header + bytes) == 0, let block else { return nil }
        // As HeapBuffer: a large block must leave room for the small allocations after it.
        guard bytes < memoryMarginBytes / 32 || hasMemoryMargin() else {
            free(block)
            return nil
        }
        block.storeBytes(of: capacity, as: Int.self)
        free(pthread_getspecific(key))
        pthread_setspecific(key, block)
        return (block + header).bindMemory(to: Float.self, capacity: capacity)
    }
}
