/// Runs `body` over `items` with at most `jobs` tasks in flight, returning results in input order.
///
/// The store's work is many small blocking system calls; a fixed window keeps the cooperative
/// pool from being flooded by a task per repository or blob.
public func boundedMap<Item: Sendable, Result: Sendable>(
    _ items: [Item], jobs: Int, _ body: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: items.count)
        var next = 0
        for _ in 0..<min(max(jobs, 1), items.count) {
            let index = next
            group.addTask { (index, try await body(items[index])) }
            next += 1
        }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < items.count {
                try Task.checkCancellation()
                let index = next
                group.addTask { (index, try await body(items[index])) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}

/// Splits work into about `jobs × 4` chunks so per-task overhead stays small on large inputs.
public func chunked<Item>(_ items: [Item], jobs: Int) -> [ArraySlice<Item>] {
    guard !items.isEmpty else { return [] }
    let size = max(1, (items.count + jobs * 4 - 1) / (jobs * 4))
    return stride(from: 0, to: items.count, by: size).map { items[$0..<min($0 + size, items.count)] }
}

/// Like `boundedMap`, but hands each result to `consume` as soon as it is ready (on the
/// caller's task, one at a time), so a pass over thousands of repositories never holds all
/// their intermediate state at once.
public func boundedForEach<Item: Sendable, Result: Sendable>(
    _ items: [Item], jobs: Int, _ body: @escaping @Sendable (Item) async throws -> Result,
    consume: (Result) throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Result.self) { group in
        var next = 0
        for _ in 0..<min(max(jobs, 1), items.count) {
            let item = items[next]
            group.addTask { try await body(item) }
            next += 1
        }
        while let result = try await group.next() {
            try consume(result)
            if next < items.count {
                try Task.checkCancellation()
                let item = items[next]
                group.addTask { try await body(item) }
                next += 1
            }
        }
    }
}
