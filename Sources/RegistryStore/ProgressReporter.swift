/// How libraries tell the command line what they are doing; they never print themselves.
public protocol ProgressReporter: Sendable {
    /// A phase began (`mark`, `sweep`, `hash`, …).
    func phaseStarted(_ phase: String)
    /// A phase ended after `elapsed`.
    func phaseFinished(_ phase: String, elapsed: Duration)
    /// Work done so far in the current phase; `total` when known.
    func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit)
}

public enum ProgressUnit: Sendable {
    case items
    case bytes
}

/// For callers that want no progress (tests, `--quiet`).
public struct SilentReporter: ProgressReporter {
    public init() {}
    public func phaseStarted(_ phase: String) {}
    public func phaseFinished(_ phase: String, elapsed: Duration) {}
    public func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {}
}

extension ProgressReporter {
    /// Runs `body` as a named phase and returns its result with the time it took.
    @discardableResult
    public func phase<T>(_ name: String, _ body: () async throws -> T) async rethrows -> (T, Duration) {
        phaseStarted(name)
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await body()
        let elapsed = clock.now - start
        phaseFinished(name, elapsed: elapsed)
        return (result, elapsed)
    }

    /// `phase` for synchronous callers.
    @discardableResult
    public func phase<T>(_ name: String, _ body: () throws -> T) rethrows -> (T, Duration) {
        phaseStarted(name)
        let clock = ContinuousClock()
        let start = clock.now
        let result = try body()
        let elapsed = clock.now - start
        phaseFinished(name, elapsed: elapsed)
        return (result, elapsed)
    }
}
