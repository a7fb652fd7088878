internal import CSystemShims
import Foundation
import Synchronization
import RegistryStore

/// An archive being written under a temporary name beside its final one. Only `commit`
/// (fsync, then rename without replacing, then fsync of the directory) gives it its name, so
/// a crash leaves at most a `.NAME.partial-PID-…` file that no reader mistakes for an archive.
final class OutputFile {
    let finalPath: String
    let temporaryPath: String
    private var descriptor: Int32
    private(set) var bytesWritten: UInt64 = 0
    private let ahead = SyncAhead()

    init(path: String) throws(ArchiveError) {
        let url = URL(fileURLWithPath: path)
        finalPath = url.path
        let directory = url.deletingLastPathComponent().path
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw .outputDirectoryMissing(path: directory) }
        if FileManager.default.fileExists(atPath: finalPath) { throw .outputExists(path: finalPath) }
        Self.removeAbandoned(directory: directory)
        temporaryPath = directory + "/" + Self.partialPrefix(url.lastPathComponent)
            + "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io(path: temporaryPath, operation: "create", errno: .current) }
        PartialArchives.add(temporaryPath)
    }

    deinit {
        ahead.running.wait()
        if descriptor >= 0 {
            close(descriptor)
            unlink(temporaryPath)
        }
        PartialArchives.remove(temporaryPath)
    }

    static func partialPrefix(_ name: String) -> String { "." + name + ".partial-" }

    /// Partial files of runs that died (their pid is gone), whatever archive name they were
    /// for: the documented schedule writes dated names, so a later run never reuses the name
    /// of a killed one. A live run's file is left alone; so is any name not of the form
    /// `.NAME.partial-PID-HEX`.
    private static func removeAbandoned(directory: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for entry in entries where entry.hasPrefix(".") {
            guard let marker = entry.range(of: ".partial-", options: .backwards), marker.lowerBound > entry.index(after: entry.startIndex) else { continue }
            let suffix = entry[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
            guard suffix.count == 2, let pid = Int32(suffix[0]), pid > 0, !suffix[1].isEmpty,
                  suffix[1].allSatisfy(\.isHexDigit) else { continue }
            if kill(pid, 0) != 0, errno == ESRCH {
                unlink(directory + "/" + entry)
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        do {
            try SystemCall.writeAll(descriptor, bytes)
        } catch {
            throw .io(path: temporaryPath, operation: "write", errno: error)
        }
        let before = bytesWritten
        bytesWritten += UInt64(bytes.count)
        let step = Self.writebackStep
        if bytesWritten / step != before / step {
            // Best effort: commit's fsync is what makes the archive durable.
            let end = bytesWritten / step * step
            _ = regkeeper_start_writeback(descriptor, Int64(end - step), Int64(step))
        }
    }

    /// The device writes the archive while the threads still hash and compress, instead of
    /// all of it during the final fsync; measured on the backup benchmark, 1.17–1.23 s instead
    /// of 1.24–1.41 s (32 and 128 MiB steps did the same).
    private static let writebackStep: UInt64 = 64 << 20

    /// Starts an fsync of what is written so far on a thread of its own, so that the device
    /// writes the bulk of the archive while the caller still builds its end (the index);
    /// `commit` then syncs the whole file again, cheaply.
    func syncAhead() {
        let descriptor = descriptor
        let ahead = ahead
        ahead.running.enter()
        Thread.detachNewThread {
            if fsync(descriptor) != 0 { ahead.failure.withLock { $0 = .current } }
            ahead.running.leave()
        }
    }

    func commit() throws(ArchiveError) {
        ahead.running.wait()
        // Linux reports a writeback error once per open file: if the early fsync got it, the
        // second would not, so it counts as the commit's own.
        if let failure = ahead.failure.withLock({ $0 }) { throw .io(path: temporaryPath, operation: "fsync", errno: failure) }
        guard fsync(descriptor) == 0 else { throw .io(path: temporaryPath, operation: "fsync", errno: .current) }
        close(descriptor)
        descriptor = -1
        defer { PartialArchives.remove(temporaryPath) }
        guard regkeeper_rename_noreplace(AT_FDCWD, temporaryPath, AT_FDCWD, finalPath) == 0 else {
            let failure = Errno.current
            unlink(temporaryPath)
            if failure.rawValue == EEXIST { throw .outputExists(path: finalPath) }
            throw .io(path: finalPath, operation: "rename", errno: failure)
        }
        let directory = open(URL(fileURLWithPath: finalPath).deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

/// Partial archives being written by this process, so that the executable can remove them
/// when SIGINT or SIGTERM ends it (a library installs no signal handler).
public enum PartialArchives {
    private static let paths = Mutex<Set<String>>([])

    static func add(_ path: String) { _ = paths.withLock { $0.insert(path) } }
    static func remove(_ path: String) { _ = paths.withLock { $0.remove(path) } }

    /// Unlinks every partial archive still being written; called on the way out of a signal.
    public static func removeAll() {
        paths.withLock { paths in
            for path in paths { unlink(path) }
            paths.removeAll()
        }
    }
}

/// The state of `OutputFile.syncAhead`, shared with its thread.
private final class SyncAhead: Sendable {
    /// Entered while the thread runs; the descriptor stays open until then.
    let running = DispatchGroup()
    let failure = Mutex<Errno?>(nil)
}
