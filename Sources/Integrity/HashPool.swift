import Dispatch
import Foundation
import RegistryModel
import RegistryStore
import Synchronization

/// The hashing threads of a verify run, fed while the scan still runs: the first large blob
/// is hashed as soon as a shard holding one is listed, and the scan, the reference graph and
/// the bookkeeping of results share the cores with hashing instead of running before it.
///
/// Threads of their own rather than tasks: a thread hashes a 64 MiB blob for tens of
/// milliseconds without a suspension point, and on a 2-core machine two such tasks would hold
/// the whole cooperative pool, leaving the scan (whose results decide every finding) to wait
/// for the end. The kernel shares the cores between these threads and the pool's instead.
final class HashPool: Sendable {
    enum Order: Sendable {
        /// Blobs larger than one read as the scan finds them, which keeps the cores busy from
        /// the start; the small ones (configs, manifests, small layers) once the scan is done,
        /// after every large one and largest first, so that the run ends on the shortest work
        /// and no core idles while the other finishes a long last blob.
        case largeFirst
        /// As added (the schedule's order, least recently verified first), so that a run cut
        /// short by `deadline` has hashed a prefix of it.
        case asAdded
    }

    struct Result: Sendable {
        var blob: BlobStatus
        var outcome: HashOutcome
    }

    private struct Queue {
        /// Taken in order: everything with `.asAdded`; with `.largeFirst`, the large blobs.
        var first: [BlobStatus] = []
        var nextFirst = 0
        /// `.largeFirst`'s small blobs, taken once adding is done and `first` is empty.
        var last: [BlobStatus] = []
        var nextLast = 0
        var addingDone = false
        var stopped = false
        var taken = 0
        /// `.largeFirst`'s large blobs each thread holds (index by thread): a thread that holds
        /// one is handed no small blob (see `next`).
        var largeHeld: [Int] = []
    }

    private let storage: any StoreStorage
    private let inLanes: Bool
    /// Hashes blobs one at a time where the CPU lacks SHA extensions.
    private let hasher: BlobHasher
    private let order: Order
    private let deadline: ContinuousClock.Instant?
    private let jobs: Int
    /// Guards `state` (hence `nonisolated(unsafe)`); threads wait on it for work.
    private let condition = NSCondition()
    private nonisolated(unsafe) var state = Queue()
    private let running: Atomic<Int>
    private let threads = DispatchGroup()
    private let meter: HashMeter
    private let continuation: AsyncStream<[Result]>.Continuation
    /// Every blob's outcome, in batches: each thread hands over what it hashed every
    /// `batchSize` small blobs, after each large one, and before it waits or stops. One by
    /// one, waking the consumer for each of thousands of configs and manifests cost more
    /// than hashing them. Ends when the last thread has stopped.
    let results: AsyncStream<[Result]>
    static let batchSize = 64

    init(storage: any StoreStorage, jobs: Int, order: Order, deadline: ContinuousClock.Instant?, inLanes: Bool, reporter: any ProgressReporter) {
        self.storage = storage
        self.inLanes = inLanes
        hasher = BlobHasher(storage: storage)
        self.order = order
        self.deadline = deadline
        self.jobs = max(1, jobs)
        running = Atomic(self.jobs)
        state.largeHeld = Array(repeating: 0, count: self.jobs)
        meter = HashMeter(reporter: reporter)
        (results, continuation) = AsyncStream.makeStream(of: [Result].self, bufferingPolicy: .unbounded)
    }

    /// Larger than one read: `.largeFirst` hands these out first, and each one's outcome is
    /// handed over as soon as it is known.
    private static func isLarge(_ blob: BlobStatus) -> Bool { blob.size >= BlobHasher.chunkSize }

    /// Starts the threads; they wait for blobs.
    func start() {
        for index in 0..<jobs {
            threads.enter()
            let thread = Thread { [self] in
                work(thread: index)
                threads.leave()
            }
            thread.name = "regkeeper-hash-\(index)"
            thread.start()
        }
    }

    func add(_ blobs: [BlobStatus]) {
        guard !blobs.isEmpty else { return }
        meter.expect(blobs)
        locked { state in
            for blob in blobs {
                if order == .largeFirst, !Self.isLarge(blob) { state.last.append(blob) } else { state.first.append(blob) }
            }
        }
        condition.broadcast()
    }

    /// No more blobs will come: the threads finish what is queued and stop.
    func finishAdding() {
        locked { state in
            state.addingDone = true
            let bySize = { (lhs: BlobStatus, rhs: BlobStatus) in (lhs.size, rhs.digest) > (rhs.size, lhs.digest) }
            if order == .largeFirst {
                state.first[state.nextFirst...].sort(by: bySize)
                state.last.sort(by: bySize)
            }
        }
        condition.broadcast()
    }

    /// Starts no further blob (an error, or the run's task was cancelled); blobs being hashed
    /// are finished and still reported.
    func stop() {
        locked { $0.stopped = true }
        condition.broadcast()
    }

    /// Returns once every thread has ended: after `stop`, the blobs they were hashing done.
    func threadsFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            threads.notify(queue: .global()) { continuation.resume() }
        }
    }

    /// Blobs handed to a thread: with `.asAdded`, a prefix of those added.
    var taken: Int { locked { $0.taken } }

    private func locked<T>(_ body: (inout Queue) -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body(&state)
    }

    /// The next blob to hash; `.done` when there is none left or the run stopped. Without
    /// `wait`, `.notYet` when blobs may still be added; with it, waits for them, calling
    /// `beforeWaiting` (without the lock) first.
    private func next(thread: Int, wait: Bool, beforeWaiting: () -> Void) -> LaneHasher.Take {
        condition.lock()
        defer { condition.unlock() }
        var handedOver = false
        while true {
            if state.stopped { return .done }
            if let deadline, ContinuousClock.now >= deadline {
                state.stopped = true
                condition.broadcast()
                return .done
            }
            if state.nextFirst < state.first.count {
                state.nextFirst += 1
                state.taken += 1
                let blob = state.first[state.nextFirst - 1]
                if order == .largeFirst { state.largeHeld[thread] += 1 }
                return .blob(blob)
            }
            // Lanes advance together, as far as the shortest: a small blob beside a large one
            // would hold the large one to a few blocks a step, and a thread whose last large
            // blob is left alone would then hash it in one lane while the small blobs, done
            // already, could have kept the other core busy. Small blobs wait for its lanes.
            if state.addingDone, state.largeHeld[thread] == 0 || wait {
                guard state.nextLast < state.last.count else { return .done }
                state.nextLast += 1
                state.taken += 1
                return .blob(state.last[state.nextLast - 1])
            }
            if !wait { return .notYet }
            if !handedOver {
                condition.unlock()
                beforeWaiting()
                condition.lock()
                handedOver = true
                continue
            }
            condition.wait()
        }
    }

    private func work(thread: Int) {
        var batch: [Result] = []
        func handOver() {
            guard !batch.isEmpty else { return }
            continuation.yield(batch)
            batch.removeAll(keepingCapacity: true)
        }
        func finished(_ blob: BlobStatus, _ outcome: HashOutcome) {
            let large = Self.isLarge(blob)
            if order == .largeFirst, large { locked { $0.largeHeld[thread] -= 1 } }
            batch.append(Result(blob: blob, outcome: outcome))
            meter.finishedFile()
            if batch.count >= Self.batchSize || large { handOver() }
        }
        if inLanes {
            LaneHasher(storage: storage).run(
                take: { next(thread: thread, wait: $0, beforeWaiting: handOver) }, progress: { meter.add(bytes: $0) }, finished: finished)
        } else {
            while case .blob(let blob) = next(thread: thread, wait: true, beforeWaiting: handOver) {
                finished(blob, hasher.hash(blob.digest, size: blob.size) { meter.add(bytes: $0) })
            }
        }
        handOver()
        if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { continuation.finish() }
    }
}

/// Bytes and files hashed so far, passed to the reporter at most ten times a second from
/// whichever hashing thread gets there first. The totals grow while the scan still finds blobs.
/// Lock-free: every chunk of every thread passes here, and a lock taken that often was
/// measurably contended with a cold cache's many reading threads.
private final class HashMeter: Sendable {
    private let reporter: any ProgressReporter
    private let totalBytes = Atomic<Int64>(0)
    private let totalFiles = Atomic<Int64>(0)
    private let bytes = Atomic<Int64>(0)
    private let files = Atomic<Int64>(0)
    private let start = ContinuousClock.now
    /// Nanoseconds after `start` at which the next report is due.
    private let nextReport = Atomic<Int64>(0)

    init(reporter: any ProgressReporter) { self.reporter = reporter }

    func expect(_ blobs: [BlobStatus]) {
        totalBytes.add(blobs.reduce(0) { $0 + $1.size }, ordering: .relaxed)
        totalFiles.add(Int64(blobs.count), ordering: .relaxed)
    }

    func add(bytes count: Int) {
        bytes.add(Int64(count), ordering: .relaxed)
        reportIfDue()
    }

    func finishedFile() {
        files.add(1, ordering: .relaxed)
        reportIfDue()
    }

    private func reportIfDue() {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        let now = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let due = nextReport.load(ordering: .relaxed)
        guard now >= due, nextReport.compareExchange(expected: due, desired: now + 100_000_000, ordering: .relaxed).exchanged else { return }
        reporter.progress("hash", done: files.load(ordering: .relaxed), total: totalFiles.load(ordering: .relaxed), unit: .items)
        reporter.progress("hash", done: bytes.load(ordering: .relaxed), total: totalBytes.load(ordering: .relaxed), unit: .bytes)
    }
}
