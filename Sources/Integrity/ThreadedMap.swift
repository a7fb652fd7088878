import Foundation
import Synchronization

/// Runs `body` over `items` on `threads` threads of their own and returns the results in
/// input order; the first error stops the others from starting new items and is thrown once
/// all have stopped.
///
/// For the scan's blocking reads. With a cold page cache every link, directory and manifest
/// is a disk read whose latency, not the CPU, sets the pace, so more reads must be in flight
/// than the cooperative pool has threads (one per core). With a warm cache the threads only
/// share the cores with hashing, which they would have done as tasks too.
func threadedMap<Item: Sendable, Result: Sendable>(
    _ items: [Item], threads: Int, name: String, _ body: @escaping @Sendable (Item) throws -> Result
) async throws -> [Result] {
    guard !items.isEmpty else { return [] }
    let work = ThreadedWork(items: items, body: body)
    await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for index in 0..<max(1, min(threads, items.count)) {
                group.enter()
                let thread = Thread {
                    work.run()
                    group.leave()
                }
                thread.name = "regkeeper-\(name)-\(index)"
                thread.start()
            }
            group.notify(queue: .global()) { continuation.resume() }
        }
    } onCancel: {
        work.fail(CancellationError())
    }
    return try work.results()
}

/// Items are claimed with one atomic increment and each thread keeps its results until it
/// stops, so that the threads, many more than the cores, take no lock per item: a holder
/// preempted mid-item would keep the others spinning.
private final class ThreadedWork<Item: Sendable, Result: Sendable>: Sendable {
    private let items: [Item]
    private let body: @Sendable (Item) throws -> Result
    private let next = Atomic(0)
    private let stopped = Atomic(false)
    private let failure = Mutex<(any Error)?>(nil)
    /// Each thread's results with their indices, handed over once as the thread stops.
    private let finished = Mutex<[[(Int, Result)]]>([])

    init(items: [Item], body: @escaping @Sendable (Item) throws -> Result) {
        self.items = items
        self.body = body
    }

    func run() {
        var done: [(Int, Result)] = []
        defer { finished.withLock { $0.append(done) } }
        while !stopped.load(ordering: .acquiring) {
            let index = next.add(1, ordering: .relaxed).oldValue
            guard index < items.count else { return }
            do {
                done.append((index, try body(items[index])))
            } catch {
                fail(error)
            }
        }
    }

    func fail(_ error: any Error) {
        failure.withLock { if $0 == nil { $0 = error } }
        stopped.store(true, ordering: .releasing)
    }

    /// Called once every thread has stopped.
    func results() throws -> [Result] {
        if let error = failure.withLock({ $0 }) { throw error }
        var slots = [Result?](repeating: nil, count: items.count)
        for part in finished.withLock({ $0 }) {
            for (index, result) in part { slots[index] = result }
        }
        return slots.map { $0! }
    }
}
