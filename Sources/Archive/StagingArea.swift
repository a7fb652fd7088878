internal import CSystemShims
import Foundation
import RegistryStore
import TarFormat

/// A directory beside the target store (`<root>/.regkeeper-restore-<id>`, same filesystem)
/// where a restore lays out files as `<staging>/docker/registry/v2/…`. Nothing in the target's
/// `docker/` changes until every member has been written and checked; then the tree is
/// renamed into place whole, or, for `--merge`, file by file in placement order.
final class StagingArea {
    static let prefix = ".regkeeper-restore-"
    let root: String
    private var createdDirectories: Set<String> = []

    init(target: String) throws(ArchiveError) {
        root = target + "/" + Self.prefix + "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        guard mkdir(root, 0o755) == 0 else { throw .io(path: root, operation: "mkdir", errno: .current) }
    }

    /// Staging directories of restores that died; callers hold the target's exclusive lock.
    static func removeAbandoned(in target: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: target) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            try? FileManager.default.removeItem(atPath: target + "/" + entry)
        }
    }

    func path(_ storePath: StorePath) -> String { root + "/" + storePath.description }

    /// Creates the file (never replacing one: member paths are unique in a valid archive),
    /// fills it through `content`, sets its mtime.
    func write(_ storePath: StorePath, mtime: TarTimestamp,
               content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let full = path(storePath)
        try makeParents(of: storePath)
        let descriptor = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ArchiveError.io(path: full, operation: "create", errno: .current) }
        defer { close(descriptor) }
        try content { chunk in
            var done = 0
            while done < chunk.count {
                let n = Foundation.write(descriptor, chunk.baseAddress! + done, chunk.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError.io(path: full, operation: "write", errno: .current)
                }
                done += n
            }
        }
        var times = [timespec(tv_sec: Int(mtime.seconds), tv_nsec: Int(mtime.nanoseconds)),
                     timespec(tv_sec: Int(mtime.seconds), tv_nsec: Int(mtime.nanoseconds))]
        guard futimens(descriptor, &times) == 0 else { throw ArchiveError.io(path: full, operation: "set times", errno: .current) }
    }

    private func makeParents(of storePath: StorePath) throws(ArchiveError) {
        var current = root
        for component in storePath.components.dropLast() {
            current += "/" + component
            if createdDirectories.contains(current) { continue }
            if mkdir(current, 0o755) != 0, errno != EEXIST { throw .io(path: current, operation: "mkdir", errno: .current) }
            createdDirectories.insert(current)
        }
    }

    /// One `syncfs` makes every staged file durable before anything is moved into place,
    /// instead of an fsync per file.
    func sync() throws(ArchiveError) {
        let descriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(path: root, operation: "open", errno: .current) }
        defer { close(descriptor) }
        guard regkeeper_syncfs(descriptor) == 0 else { throw .io(path: root, operation: "syncfs", errno: .current) }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }
}
