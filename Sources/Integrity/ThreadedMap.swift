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

private final class ThreadedWork<Item: Sendable, Result: Sendable>: Sendable {
    private let items: [Item]
    private let body: @Sendable (Item) throws -> Result
    private let next = Atomic(0)
    private let slots: Mutex<[Result?]>
    private let failure = Mutex<(any Error)?>(nil)

    init(items: [Item], body: @escaping @Sendable (Item) throws -> Result) {
        self.items = items
        self.body = body
        slots = Mutex(Array(repeating: nil, count: items.count))
    }

    func run() {
        while failure.withLock({ $0 == nil }) {
            let index = next.add(1, ordering: .relaxed).oldValue
            guard index < items.count else { return }
            do {
                let result = try body(items[index])
                slots.withLock { $0[index] = result }
            } catch {
                fail(error)
            }
        }
    }

    func fail(_ error: any Error) {
        failure.withLock { if $0 == nil { $0 = error } }
    }

    func results() throws -> [Result] {
        if let error = failure.withLock({ $0 }) { throw error }
        return slots.withLock { $0.map { $0! } }
    }
}
