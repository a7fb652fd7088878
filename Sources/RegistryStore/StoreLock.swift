import Foundation

/// The maintenance lock in the state directory. Writers (gc, retain, restore, quarantine) take
/// it exclusively and readers (backup, verify, report) shared, so a backup never races a sweep.
/// `flock` dies with its process, so a crashed run never leaves a lock behind.
public final class StoreLock: Sendable {
    public enum Mode: Sendable {
        case shared
        case exclusive
    }

    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case held(path: String, holder: String)
        case unavailable(path: String, reason: String)

        public var description: String {
            switch self {
            case .held(let path, let holder): "the store is locked by another regkeeper run (\(holder)); lock file \(path)"
            case .unavailable(let path, let reason): "cannot take the lock \(path): \(reason)"
            }
        }
    }

    private let descriptor: Int32
    public let path: String

    /// Takes the lock, failing at once when another run holds it, or waiting up to `wait`.
    public init(stateDirectory: String, mode: Mode, command: String, wait: Duration = .zero) throws(Error) {
        path = stateDirectory + "/lock"
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw .unavailable(path: path, reason: "\(error)")
        }
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { throw .unavailable(path: path, reason: Errno.current.description) }
        let operation = (mode == .exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
        let deadline = ContinuousClock.now + wait
        while flock(descriptor, operation) != 0 {
            let failure = Errno.current
            guard failure.rawValue == EWOULDBLOCK || failure.rawValue == EINTR else {
                close(descriptor)
                throw .unavailable(path: path, reason: failure.description)
            }
            if ContinuousClock.now >= deadline {
                let holder = Self.readHolder(descriptor)
                close(descriptor)
                throw .held(path: path, holder: holder)
            }
            usleep(100_000)
        }
        if mode == .exclusive {
            let since = ISO8601DateFormatter().string(from: Date())
            let line = "pid \(getpid()), \(command), since \(since)"
            _ = ftruncate(descriptor, 0)
            _ = line.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    private static func readHolder(_ descriptor: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return "holder unknown" }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}
