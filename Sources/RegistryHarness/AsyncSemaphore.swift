/// Lets at most `limit` callers into `withSlot` at once; the others wait their turn in arrival
/// order, suspended rather than blocking a thread of the cooperative pool.
///
/// A waiter is not woken by cancellation: it still gets its slot when one frees, and its body
/// sees the cancellation then.
public actor AsyncSemaphore {
    public nonisolated let limit: Int
    private var holders = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(limit: Int) {
        precondition(limit > 0, "a semaphore needs at least one slot")
        self.limit = limit
    }

    /// Runs `body` once a slot is free, and frees it when `body` returns or throws.
    public func withSlot<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        if holders < limit {
            holders += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Hands the slot straight to the longest waiter, so that a newcomer cannot take it first.
    private func release() {
        if waiters.isEmpty {
            holders -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
