import Foundation

/// The maintenance lock in the state directory. Writers (gc, retain, restore, quarantine) take
/// it exclusively and readers (backup, verify, report) shared, so a backup never races a sweep.
/// `flock` dies with its process, so a crashed run never leaves the lock itself behind.
///
/// Each holder also leaves a note `lock.<pid>` (command and start) so that a refused run can
/// say who holds the lock; notes of processes that no longer exist are ignored and removed.
public final class StoreLock: Sendable {
    public enum Mode: Sendable {
        case shared
        case exclusive
    }

    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case held(path: String, holder: String)
        /// The state directory (or a directory above it) could not be created; `errno` says
        /// why, so that a caller can tell a read-only filesystem or a permission from the rest.
        case stateDirectoryUnavailable(path: String, errno: Errno)
        case unavailable(path: String, errno: Errno)

        public var description: String {
            switch self {
            case .held(let path, let holder): "the store is locked by another regkeeper run (\(holder)); lock file \(path)"
            case .stateDirectoryUnavailable(let path, let errno): "cannot create state directory \(path): \(errno)"
            case .unavailable(let path, let errno): "cannot take the lock \(path): \(errno)"
            }
        }
    }

    private let descriptor: Int32
    private let note: String
    public let path: String

    /// Takes the lock, failing at once when another run holds it, or waiting up to `wait`.
    public init(stateDirectory: String, mode: Mode, command: String, wait: Duration = .zero) throws(Error) {
        // Everything is decided in locals: once every stored property is set, a throw would run
        // deinit, which would close the descriptor a second time (by then perhaps another
        // thread's file) and remove the note of another holder in this process.
        let path = stateDirectory + "/lock"
        let note = path + ".\(getpid())"
        do throws(Errno) {
            try Self.createDirectory(stateDirectory)
        } catch {
            throw .stateDirectoryUnavailable(path: stateDirectory, errno: error)
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { throw .unavailable(path: path, errno: .current) }
        let operation = (mode == .exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
        let deadline = ContinuousClock.now + wait
        while flock(descriptor, operation) != 0 {
            let failure = Errno.current
            guard failure.rawValue == EWOULDBLOCK || failure.rawValue == EINTR else {
                close(descriptor)
                throw .unavailable(path: path, errno: failure)
            }
            if ContinuousClock.now >= deadline {
                close(descriptor)
                throw .held(path: path, holder: Self.holders(stateDirectory: stateDirectory))
            }
            usleep(100_000)
        }
        self.path = path
        self.note = note
        self.descriptor = descriptor
        let kind = mode == .exclusive ? "exclusive" : "shared"
        Self.writeNote(note, "pid \(getpid()), \(command), \(kind) since \(Date().formatted(.iso8601))")
    }

    /// One `write` of a few dozen bytes, best effort: the note only names the holder. Neither
    /// ICU's date formatter nor an atomic write's temporary file, which together took 2-3 ms of
    /// every run's start, before any of its work could begin.
    private static func writeNote(_ path: String, _ text: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { return }
        var text = text
        _ = text.withUTF8 { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }

    deinit {
        unlink(note)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// `mkdir -p` that keeps the errno: FileManager's error prints as a dump of NSError fields.
    /// An existing directory is fine even on a read-only filesystem (`mkdir` says EEXIST first).
    private static func createDirectory(_ path: String) throws(Errno) {
        if mkdir(path, 0o755) == 0 { return }
        var failure = Errno.current
        if failure == .noSuchFile {
            let parent = (path as NSString).deletingLastPathComponent
            guard !parent.isEmpty, parent != path else { throw failure }
            try createDirectory(parent)
            if mkdir(path, 0o755) == 0 { return }
            failure = Errno.current
        }
        guard failure.rawValue == EEXIST else { throw failure }
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { throw Errno(ENOTDIR) }
    }

    /// The notes of live holders; those of dead processes are stale and removed.
    private static func holders(stateDirectory: String) -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []
        var live: [String] = []
        for name in names where name.hasPrefix("lock.") {
            let notePath = stateDirectory + "/" + name
            guard let pid = Int32(name.dropFirst("lock.".count)) else { continue }
            if kill(pid, 0) != 0, errno == ESRCH {
                unlink(notePath)
                continue
            }
            if let text = try? String(contentsOfFile: notePath, encoding: .utf8) { live.append(text) }
        }
        return live.isEmpty ? "holder unknown" : live.sorted().joined(separator: "; ")
    }
}
