import Dispatch
import Foundation
import RegistryModel
import RegistryStore
import Synchronization

/// The hashing threads of a verify run, fed while the scan still runs: the first blob is
/// hashed as soon as the first shard is listed, and the scan, the reference graph and the
/// bookkeeping of results share the cores with hashing instead of running before it.
///
/// Threads of their own rather than tasks: a thread hashes a 64 MiB blob for tens of
/// milliseconds without a suspension point, and on a 2-core machine two such tasks would hold
/// the whole cooperative pool, leaving the scan (whose results decide every finding) to wait
/// for the end. The kernel shares the cores between these threads and the pool's instead.
final class HashPool: Sendable {
    enum Order: Sendable {
        /// As the scan finds them (which keeps the cores busy from the start); once everything
        /// is added, those left go largest first, so that the run ends on the smallest of them
        /// and no core idles through a long last blob.
        case found
        /// As added (the schedule's order, least recently verified first), so that a run cut
        /// short by `deadline` has hashed a prefix of it.
        case asAdded
    }

    struct Result: Sendable {
        var blob: BlobStatus
        var outcome: HashOutcome
    }

    private struct Queue {
        var blobs: [BlobStatus] = []
        var next = 0
        var stopped = false
    }

    private let hasher: BlobHasher
    private let order: Order
    private let deadline: ContinuousClock.Instant?
    private let jobs: Int
    private let queue = Mutex(Queue())
    /// One signal per blob added, and `jobs` more when adding is done or the run stops, so
    /// that every thread wakes once more to see there is nothing left.
    private let available = DispatchSemaphore(value: 0)
    private let running: Atomic<Int>
    private let threads = DispatchGroup()
    private let meter: HashMeter
    private let continuation: AsyncStream<Result>.Continuation
    /// Every blob's outcome as it is hashed; ends when the last thread has stopped.
    let results: AsyncStream<Result>

    init(storage: any StoreStorage, jobs: Int, order: Order, deadline: ContinuousClock.Instant?, reporter: any ProgressReporter) {
        hasher = BlobHasher(storage: storage)
        self.order = order
        self.deadline = deadline
        self.jobs = max(1, jobs)
        running = Atomic(self.jobs)
        meter = HashMeter(reporter: reporter)
        (results, continuation) = AsyncStream.makeStream(of: Result.self, bufferingPolicy: .unbounded)
    }

    /// Starts the threads; they wait for blobs.
    func start() {
        for index in 0..<jobs {
            threads.enter()
            let thread = Thread { [self] in
                work()
                threads.leave()
            }
            thread.name = "regkeeper-hash-\(index)"
            thread.start()
        }
    }

    func add(_ blobs: [BlobStatus]) {
        guard !blobs.isEmpty else { return }
        queue.withLock { $0.blobs += blobs }
        meter.expect(blobs)
        for _ in blobs { available.signal() }
    }

    /// Hashes `blob` on the calling thread and reports it with the threads' results: the
    /// scan's threads hash blobs of one read as they list them, which spares each a trip
    /// through the queue and, with a cold cache, keeps many small reads in flight.
    func hashHere(_ blob: BlobStatus) {
        meter.expect([blob])
        hash(blob)
    }

    /// No more blobs will come: the threads finish what is queued and stop.
    func finishAdding() {
        if order == .found {
            queue.withLock { queue in queue.blobs[queue.next...].sort { ($0.size, $1.digest) > ($1.size, $0.digest) } }
        }
        for _ in 0..<jobs { available.signal() }
    }

    /// Starts no further blob (an error, or the run's task was cancelled); blobs being hashed
    /// are finished and still reported.
    func stop() {
        queue.withLock { $0.stopped = true }
        for _ in 0..<jobs { available.signal() }
    }

    /// Returns once every thread has ended: after `stop`, the blobs they were hashing done.
    func threadsFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            threads.notify(queue: .global()) { continuation.resume() }
        }
    }

    /// Blobs handed to a thread from the queue: with `.asAdded`, a prefix of those added.
    var taken: Int { queue.withLock { $0.next } }

    private func next() -> BlobStatus? {
        available.wait()
        return queue.withLock { queue -> BlobStatus? in
            if queue.stopped { return nil }
            if let deadline, ContinuousClock.now >= deadline {
                queue.stopped = true
                return nil
            }
            guard queue.next < queue.blobs.count else { return nil }
            queue.next += 1
            return queue.blobs[queue.next - 1]
        }
    }

    private func hash(_ blob: BlobStatus) {
        let outcome = hasher.hash(blob.digest, size: blob.size) { meter.add(bytes: $0) }
        meter.finishedFile()
        continuation.yield(Result(blob: blob, outcome: outcome))
    }

    private func work() {
        while let blob = next() { hash(blob) }
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
