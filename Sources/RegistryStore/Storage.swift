import Foundation

/// An errno value with the C library's message.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static var current: Errno { Errno(errno) }
    public var description: String { String(cString: strerror(rawValue)) }

    public static let noSuchFile = Errno(ENOENT)
    public static let permissionDenied = Errno(EACCES)
}

/// What can go wrong touching the store; every case names the path.
public enum StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    case notFound(StorePath)
    case symlinkRefused(StorePath)
    case outsideRegistryTree(StorePath)
    case system(operation: String, path: StorePath, errno: Errno)
    case rootUnavailable(path: String, errno: Errno)
    case alreadyExists(StorePath)
    /// An object store's request failed; `reason` names the bucket, key, status and S3's message.
    case objectStore(path: StorePath, reason: String)

    public var description: String {
        switch self {
        case .notFound(let path): "\(path): no such file or directory"
        case .symlinkRefused(let path): "\(path): refusing to follow a symbolic link inside the store"
        case .outsideRegistryTree(let path): "\(path): refusing to change anything outside docker/registry/v2"
        case .system(let operation, let path, let errno): "\(path): \(operation) failed: \(errno)"
        case .rootUnavailable(let path, let errno): "cannot open store root \(path): \(errno)"
        case .alreadyExists(let path): "\(path) already exists"
        case .objectStore(_, let reason): reason
        }
    }

    /// A path that is simply absent, as opposed to permission and I/O failures.
    public var isNotFound: Bool {
        if case .notFound = self { return true }
        return false
    }
}

public enum FileKind: Sendable, Hashable {
    case file
    case directory
    case symlink
    case other
}

public struct DirectoryEntry: Sendable, Hashable {
    public var name: String
    public var kind: FileKind

    public init(name: String, kind: FileKind) {
        self.name = name
        self.kind = kind
    }
}

public struct FileStatus: Sendable, Hashable {
    public var kind: FileKind
    public var size: Int64
    /// Modification time; the registry records no times itself, so tag and revision ages come from here.
    public var modified: Date

    public init(kind: FileKind, size: Int64, modified: Date) {
        self.kind = kind
        self.size = size
        self.modified = modified
    }
}

/// The narrow interface every tool uses to reach a store, so that another backend (an object
/// store, the in-memory one of the tests) can stand in without touching the tools.
///
/// Implementations never follow symbolic links, never resolve a path outside the root, and
/// refuse to remove or replace anything outside `docker/registry/v2`.
public protocol StoreStorage: Sendable {
    /// Entries of a directory, unsorted. Missing directory: `.notFound`.
    func list(_ path: StorePath) throws(StorageError) -> [DirectoryEntry]
    /// Status without following a final symlink; nil when nothing is there.
    func status(_ path: StorePath) throws(StorageError) -> FileStatus?
    /// Whole content of a small file (links, manifests) and its status from the same open;
    /// refuses files larger than `limit`.
    func readWithStatus(_ path: StorePath, limit: Int) throws(StorageError) -> (data: Data, status: FileStatus)
    /// Entries of a directory and, for each child directory, the status of its file `probe`
    /// (nil when absent): one pass over `revisions/` tells live links from deleted manifests.
    func list(_ directory: StorePath, probing probe: String) throws(StorageError) -> [ProbedEntry]
    /// Like `list(_:probing:)`, but only the children `select` picks are probed (the others'
    /// probe is nil): a blob shard's unmarked blobs, where marked ones must cost no more than
    /// their directory entry on a filesystem, and a flat listing already answers for all on S3.
    func list(_ directory: StorePath, probing probe: String, where select: (String) -> Bool) throws(StorageError) -> [ProbedEntry]
    /// Entries of a directory and, for each child directory, the content and status of its
    /// file `file` read as `readWithStatus(_:limit:)` would: a repository's `_layers/sha256/`
    /// with every link in it. A filesystem opens each from the listed directory (two path
    /// components instead of seven, for thousands of links a scan).
    func list(_ directory: StorePath, reading file: String, limit: Int) throws(StorageError) -> [ReadEntry]
    /// Streams a file's content through `body` in chunks of about `chunkSize` bytes.
    func readChunks(_ path: StorePath, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Opens a file for reads into the caller's buffer, so an archive writer can fill its own
    /// output buffer in place instead of copying every chunk `readChunks` hands out.
    func openForReading(_ path: StorePath) throws(StorageError) -> any StoreReadableFile
    /// Writes via a temporary file, fsync and rename, creating parent directories.
    func writeAtomically(_ path: StorePath, _ data: Data, modified: Date?) throws(StorageError)
    /// Renames within the store, creating the destination's parent directories.
    func rename(_ source: StorePath, to destination: StorePath) throws(StorageError)
    /// Removes a file or a whole directory tree; returns false when nothing was there.
    @discardableResult
    func remove(_ path: StorePath) throws(StorageError) -> Bool
    /// Moves a file or directory out of the store to `directory/<path>` (a trash area on the
    /// same filesystem: a rename, never a copy).
    func detach(_ path: StorePath, into directory: String) throws(StorageError)
    /// Moves a file detached into `directory` back to `path`; refuses when `path` exists again.
    func reattach(_ path: StorePath, from directory: String) throws(StorageError)
    /// Store paths of the files detached into `directory`.
    func detachedFiles(in directory: String) throws(StorageError) -> [StorePath]
    /// A read-only view of what was detached into `directory`, laid out as the store is, so
    /// that a sweep can re-read links and manifests that left the registry's sight.
    func detachedArea(_ directory: String) throws(StorageError) -> any StoreStorage
    /// Names of the areas (directories) below `parent`; none when `parent` does not exist.
    func detachedAreas(under parent: String) throws(StorageError) -> [String]
    /// Moves a whole detached area (e.g. a sweep's, into the trash); same filesystem.
    func moveDetached(from directory: String, to destination: String) throws(StorageError)
    /// Deletes everything detached into `directory`, and the area itself.
    func discardDetached(in directory: String) throws(StorageError)
    /// Removes a directory only if it is empty; returns whether it did.
    @discardableResult
    func removeIfEmpty(_ path: StorePath) throws(StorageError) -> Bool
    /// Whether one recursive listing of a large tree costs less than a listing per directory:
    /// true for object stores (a request per 1,000 keys), where walkers of `blobs/` then use
    /// `listRecursively`; false for filesystems, where it would stat every file.
    var prefersRecursiveListing: Bool { get }
    /// Every file and symlink below `directory`, at any depth, with its status, unsorted;
    /// `.notFound` when the directory is absent. An object store answers this with one paged
    /// listing (a request per 1,000 keys) instead of a request per directory.
    func listRecursively(_ directory: StorePath) throws(StorageError) -> [StoreFile]
}

/// A file found by `listRecursively`.
public struct StoreFile: Sendable, Hashable {
    public var path: StorePath
    public var status: FileStatus

    public init(path: StorePath, status: FileStatus) {
        self.path = path
        self.status = status
    }
}

/// A listed child and what its file held, for `list(_:reading:limit:)`.
public struct ReadEntry: Sendable {
    public var entry: DirectoryEntry
    /// Content and status of the file; nil when the child is not a directory or its file
    /// could not be read as `readWithStatus` reads (absent, a symbolic link, unreadable, too
    /// large): callers that must tell these apart look again with the path.
    public var file: (data: Data, status: FileStatus)?

    public init(entry: DirectoryEntry, file: (data: Data, status: FileStatus)?) {
        self.entry = entry
        self.file = file
    }
}

public struct ProbedEntry: Sendable, Hashable {
    public var entry: DirectoryEntry
    /// Status of the probed file; nil when it is absent or could not be checked.
    public var probe: FileStatus?
    /// Why the probe could not be checked (permission, I/O): callers must not read this as absent.
    public var probeFailure: StorageError?

    public init(entry: DirectoryEntry, probe: FileStatus?, probeFailure: StorageError? = nil) {
        self.entry = entry
        self.probe = probe
        self.probeFailure = probeFailure
    }
}

extension StoreStorage {
    public func read(_ path: StorePath, limit: Int) throws(StorageError) -> Data {
        try readWithStatus(path, limit: limit).data
    }

    /// Drivers without descriptors hand out the whole content from memory.
    public func openForReading(_ path: StorePath) throws(StorageError) -> any StoreReadableFile {
        let (data, status) = try readWithStatus(path, limit: .max)
        return InMemoryReadableFile(path: path, data: data, status: status)
    }

    /// Drivers without a cheaper way stat each child's file in turn.
    public func list(_ directory: StorePath, probing probe: String) throws(StorageError) -> [ProbedEntry] {
        try list(directory).map { entry in
            guard entry.kind == .directory, let file = directory.appending(entry.name)?.appending(probe) else {
                return ProbedEntry(entry: entry, probe: nil)
            }
            do throws(StorageError) {
                return ProbedEntry(entry: entry, probe: try status(file))
            } catch {
                return ProbedEntry(entry: entry, probe: nil, probeFailure: error)
            }
        }
    }

    public var prefersRecursiveListing: Bool { false }

    /// Drivers without a cheaper way read each child's file in turn.
    public func list(_ directory: StorePath, reading file: String, limit: Int) throws(StorageError) -> [ReadEntry] {
        try list(directory).map { entry in
            guard entry.kind == .directory, let path = directory.appending(entry.name)?.appending(file) else {
                return ReadEntry(entry: entry, file: nil)
            }
            return ReadEntry(entry: entry, file: try? readWithStatus(path, limit: limit))
        }
    }

    /// Drivers without a cheaper way stat each selected child's file in turn.
    public func list(_ directory: StorePath, probing probe: String, where select: (String) -> Bool) throws(StorageError) -> [ProbedEntry] {
        try list(directory).map { entry in
            guard entry.kind == .directory, select(entry.name), let file = directory.appending(entry.name)?.appending(probe) else {
                return ProbedEntry(entry: entry, probe: nil)
            }
            do throws(StorageError) {
                return ProbedEntry(entry: entry, probe: try status(file))
            } catch {
                return ProbedEntry(entry: entry, probe: nil, probeFailure: error)
            }
        }
    }

    /// Drivers with directories walk them, one listing per directory.
    public func listRecursively(_ directory: StorePath) throws(StorageError) -> [StoreFile] {
        var files: [StoreFile] = []
        var pending = [directory]
        while let next = pending.popLast() {
            for entry in try list(next) {
                guard let child = next.appending(entry.name) else { continue }
                if entry.kind == .directory {
                    pending.append(child)
                } else if let status = try status(child) {
                    files.append(StoreFile(path: child, status: status))
                }
            }
        }
        return files
    }

    /// Refuses changes outside the registry tree: the last guard of "never delete anything else".
    public func checkWritable(_ path: StorePath) throws(StorageError) {
        guard path.hasPrefix(Layout.registryRoot), path != Layout.registryRoot else {
            throw .outsideRegistryTree(path)
        }
    }
}
