import RegistryHarness
import Synchronization
import Testing

/// How many tasks are inside a section now, and the most that ever were at once.
final class Occupancy: Sendable {
    private let counts = Mutex((now: 0, most: 0))

    func enter() {
        counts.withLock { counts in
            counts.now += 1
            counts.most = max(counts.most, counts.now)
        }
    }

    func leave() { counts.withLock { $0.now -= 1 } }

    var now: Int { counts.withLock { $0.now } }
    var most: Int { counts.withLock { $0.most } }
}

@Suite(.timeLimit(.minutes(1))) struct AsyncSemaphoreTests {
    @Test func noMoreThanTheLimitHoldASlotAtOnce() async throws {
        let semaphore = AsyncSemaphore(limit: 2)
        let occupancy = Occupancy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await semaphore.withSlot {
                        occupancy.enter()
                        try await Task.sleep(for: .milliseconds(20))
                        occupancy.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(occupancy.most == 2)
    }

    /// A body that throws still frees its slot; otherwise the next caller would wait forever.
    @Test func aFailingHolderFreesItsSlot() async throws {
        struct Failure: Error {}
        let semaphore = AsyncSemaphore(limit: 1)
        await #expect(throws: Failure.self) { try await semaphore.withSlot { throw Failure() } }
        #expect(await semaphore.withSlot { 42 } == 42)
    }
}
