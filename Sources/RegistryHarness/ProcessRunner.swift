import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public enum ProcessError: Error, CustomStringConvertible {
    case launchFailed(command: [String], reason: String)
    case nonZeroExit(command: [String], status: Int32, stderr: String)
    case timedOut(command: [String], seconds: Double, stderr: String)

    public var description: String {
        switch self {
        case let .launchFailed(command, reason):
            return "could not launch `\(command.joined(separator: " "))`: \(reason)"
        case let .nonZeroExit(command, status, stderr):
            return "`\(command.joined(separator: " "))` exited with status \(status): \(stderr)"
        case let .timedOut(command, seconds, stderr):
            return "`\(command.joined(separator: " "))` did not finish within \(seconds) s and was killed: \(stderr)"
        }
    }
}

/// Runs external tools (the registry, skopeo, the peer's gc) and captures their output.
///
/// Output goes to temporary files rather than pipes so that a chatty child can never block
/// on a full pipe while we wait for it to exit.
public enum ProcessRunner {
    /// Runs to completion, blocking the calling thread, for synchronous callers such as
    /// `PeerGarbageCollector`; async code should await `run` instead.
    ///
    /// - Parameter timeout: the child is sent SIGTERM, then SIGKILL, once this many seconds pass.
    /// - Throws: `ProcessError.nonZeroExit` unless `allowFailure`, so callers that only care about
    ///   success need no status check; pass `allowFailure` to inspect a failing run's output.
    @discardableResult
    public static func runBlocking(
        _ executable: String,
        _ arguments: [String],
        timeout: Double = 60,
        allowFailure: Bool = false
    ) throws -> ProcessOutput {
        let running = try RunningProcess(executable, arguments, timeout: timeout)
        running.exited.wait()
        return try running.finish(allowFailure: allowFailure)
    }

    /// Runs to completion without holding a thread of the cooperative pool while the child runs.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        timeout: Double = 60,
        allowFailure: Bool = false
    ) async throws -> ProcessOutput {
        let running = try RunningProcess(executable, arguments, timeout: timeout)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            running.onExit { continuation.resume() }
        }
        return try running.finish(allowFailure: allowFailure)
    }

    /// Resolves a bare tool name against PATH, because `Process` needs an absolute path.
    static func resolve(_ executable: String) -> String {
        if executable.contains("/") { return executable }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return executable
    }
}

/// One launched child, shared by the blocking and async runs and by the long-lived registry.
final class RunningProcess: @unchecked Sendable {
    // @unchecked: `process` is configured in `init` and afterwards only read; the mutable
    // flags are guarded by `lock`.
    let command: [String]
    let timeout: Double?
    let exited = DispatchSemaphore(value: 0)
    private let process = Process()
    private let directory: URL
    private let lock = NSLock()
    private var hasExited = false
    private var timedOut = false
    private var exitWaiters: [@Sendable () -> Void] = []

    /// - Parameter timeout: nil for a child that runs until `terminate()`, like the registry.
    init(_ executable: String, _ arguments: [String], timeout: Double?) throws {
        command = [executable] + arguments
        self.timeout = timeout
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("process-\(UUID().uuidString)", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data().write(to: stdoutURL)
            try Data().write(to: stderrURL)
            process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
            process.standardError = try FileHandle(forWritingTo: stderrURL)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw ProcessError.launchFailed(command: command, reason: "\(error)")
        }
        process.executableURL = URL(fileURLWithPath: ProcessRunner.resolve(executable))
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        // Weak: a strong capture would make the process and this object keep each other alive.
        process.terminationHandler = { [weak self] _ in self?.markExited() }
        do {
            try withDefaultSignalMask { try process.run() }
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw ProcessError.launchFailed(command: command, reason: "\(error)")
        }
        if let timeout { armTimeout(timeout) }
    }

    /// Spawns with no signals blocked. A child inherits the spawning thread's mask, and Dispatch
    /// worker threads (which run Swift concurrency on Linux) block nearly every signal, so a
    /// child started from one would ignore SIGTERM and only die of SIGKILL.
    private func withDefaultSignalMask(_ body: () throws -> Void) rethrows {
        var empty = sigset_t()
        var previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try body()
    }

    /// Where the child's output goes while it runs (a registry's access and application logs).
    var stdoutURL: URL { directory.appendingPathComponent("stdout") }
    var stderrURL: URL { directory.appendingPathComponent("stderr") }

    /// Calls `waiter` once the child has exited, at once if it already has.
    func onExit(_ waiter: @escaping @Sendable () -> Void) {
        lock.lock()
        if hasExited {
            lock.unlock()
            waiter()
        } else {
            exitWaiters.append(waiter)
            lock.unlock()
        }
    }

    var isRunning: Bool { !lock.withLock { hasExited } }

    var processIdentifier: Int32 { process.processIdentifier }

    /// Exit status; meaningful only once `isRunning` is false.
    var status: Int32 { process.terminationStatus }

    /// What the child has written to stderr so far, for errors about a child still running.
    var stderrSoFar: String {
        String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
    }

    /// Sends SIGTERM, escalates to SIGKILL after `grace` seconds, and returns once it exited.
    func terminate(grace: Double = 5) {
        guard isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if exited.wait(timeout: .now() + grace) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            exited.wait()
        }
        // Leave the semaphore signalled for any later waiter.
        exited.signal()
    }

    /// Removes the captured output; the child must have exited.
    func discardOutput() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Reads the captured output and removes it from disk; call only after exit.
    func finish(allowFailure: Bool) throws -> ProcessOutput {
        defer { discardOutput() }
        let output = ProcessOutput(
            status: process.terminationStatus,
            stdout: (try? Data(contentsOf: stdoutURL)) ?? Data(),
            stderr: (try? Data(contentsOf: stderrURL)) ?? Data()
        )
        if let timeout, lock.withLock({ timedOut }) {
            throw ProcessError.timedOut(command: command, seconds: timeout, stderr: output.stderrText)
        }
        if output.status != 0 && !allowFailure {
            throw ProcessError.nonZeroExit(command: command, status: output.status, stderr: output.stderrText)
        }
        return output
    }

    private func markExited() {
        let waiters = lock.withLock {
            hasExited = true
            defer { exitWaiters = [] }
            return exitWaiters
        }
        exited.signal()
        waiters.forEach { $0() }
    }

    private func armTimeout(_ timeout: Double) {
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
            guard let self else { return }
            let stillRunning = lock.withLock {
                if !hasExited { timedOut = true }
                return !hasExited
            }
            guard stillRunning else { return }
            kill(pid, SIGTERM)
            // A child that ignores SIGTERM must still not hang the caller.
            DispatchQueue.global().asyncAfter(deadline: .now() + 2) { [weak self] in
                if let self, !lock.withLock({ hasExited }) { kill(pid, SIGKILL) }
            }
        }
    }
}
