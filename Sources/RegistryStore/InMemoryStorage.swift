import Foundation
import Synchronization

/// A store held in memory, so that collectors and planners are tested without a disk and the
/// storage contract is pinned by running one conformance suite against both drivers.
public final class InMemoryStorage: StoreStorage {
    private enum Node {
        case file(Data, modified: Date)
        case directory(modified: Date)
        case symlink
    }

    private let nodes = Mutex<[StorePath: Node]>([.root: .directory(modified: Date())])
    /// Files detached out of the store, by trash directory then store path.
    private let detached = Mutex<[String: [StorePath: Node]]>([:])

    public init() {}

    /// Places a symlink, to test that walkers refuse it.
    public func addSymlink(_ path: StorePath) {
        nodes.withLock { nodes in
            Self.createParents(of: path, in: &nodes)
            nodes[path] = .symlink
        }
    }

    /// Sets a file's or directory's modification time, as tests age tags and blobs.
    public func setModified(_ path: StorePath, _ date: Date) {
        nodes.withLock { nodes in
            switch nodes[path] {
            case .file(let data, _): nodes[path] = .file(data, modified: date)
            case .directory: nodes[path] = .directory(modified: date)
            default: break
            }
        }
    }

    public func list(_ path: StorePath) throws(StorageError) -> [DirectoryEntry] {
        try nodes.withLock { nodes throws(StorageError) in
            guard case .directory = nodes[path] else { throw .notFound(path) }
            let depth = path.components.count + 1
            return nodes.compactMap { key, node in
                guard key.components.count == depth, key.hasPrefix(path) else { return nil }
                let kind: FileKind = switch node {
                case .file: .file
                case .directory: .directory
                case .symlink: .symlink
                }
                return DirectoryEntry(name: key.lastComponent!, kind: kind)
            }
        }
    }

    public func status(_ path: StorePath) throws(StorageError) -> FileStatus? {
        nodes.withLock { nodes in
            switch nodes[path] {
            case .file(let data, let modified)?: FileStatus(kind: .file, size: Int64(data.count), modified: modified)
            case .directory(let modified)?: FileStatus(kind: .directory, size: 0, modified: modified)
            case .symlink?: FileStatus(kind: .symlink, size: 0, modified: Date())
            case nil: nil
            }
        }
    }

    public func readWithStatus(_ path: StorePath, limit: Int) throws(StorageError) -> (data: Data, status: FileStatus) {
        let (data, modified) = try nodes.withLock { nodes throws(StorageError) -> (Data, Date) in
            switch nodes[path] {
            case .file(let data, let modified)?: return (data, modified)
            case .symlink?: throw .symlinkRefused(path)
            default: throw .notFound(path)
            }
        }
        guard data.count <= limit else {
            throw .system(operation: "read (file larger than \(limit) bytes)", path: path, errno: Errno(EFBIG))
        }
        return (data, FileStatus(kind: .file, size: Int64(data.count), modified: modified))
    }

    public func readChunks(_ path: StorePath, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let data = try read(path, limit: .max)
        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let end = min(offset + chunkSize, buffer.count)
                try body(UnsafeRawBufferPointer(rebasing: buffer[offset..<end]))
                offset = end
            }
        }
    }

    public func writeAtomically(_ path: StorePath, _ data: Data, modified: Date?) throws(StorageError) {
        try checkWritable(path)
        nodes.withLock { nodes in
            Self.createParents(of: path, in: &nodes)
            nodes[path] = .file(data, modified: modified ?? Date())
        }
    }

    public func rename(_ source: StorePath, to destination: StorePath) throws(StorageError) {
        try checkWritable(source)
        try checkWritable(destination)
        try nodes.withLock { nodes throws(StorageError) in
            guard nodes[source] != nil else { throw .notFound(source) }
            Self.createParents(of: destination, in: &nodes)
            for (key, node) in nodes where key.hasPrefix(source) {
                nodes[key] = nil
                nodes[StorePath(trusted: destination.components + key.components.dropFirst(source.components.count))] = node
            }
        }
    }

    public func detach(_ path: StorePath, into directory: String) throws(StorageError) {
        try checkWritable(path)
        let moved = try nodes.withLock { nodes throws(StorageError) -> [StorePath: Node] in
            guard nodes[path] != nil else { throw .notFound(path) }
            var moved: [StorePath: Node] = [:]
            for (key, node) in nodes where key.hasPrefix(path) {
                nodes[key] = nil
                if case .file = node { moved[key] = node }
            }
            return moved
        }
        detached.withLock { $0[directory, default: [:]].merge(moved) { $1 } }
    }

    public func reattach(_ path: StorePath, from directory: String) throws(StorageError) {
        try checkWritable(path)
        guard let node = detached.withLock({ $0[directory]?[path] }) else { throw .notFound(path) }
        try nodes.withLock { nodes throws(StorageError) in
            guard nodes[path] == nil else { throw .alreadyExists(path) }
            Self.createParents(of: path, in: &nodes)
            nodes[path] = node
        }
        detached.withLock { $0[directory]?[path] = nil }
    }

    public func detachedFiles(in directory: String) throws(StorageError) -> [StorePath] {
        detached.withLock { ($0[directory].map { Array($0.keys) } ?? []).sorted() }
    }

    public func detachedArea(_ directory: String) throws(StorageError) -> any StoreStorage {
        let area = InMemoryStorage()
        let files = detached.withLock { $0[directory] ?? [:] }
        area.nodes.withLock { nodes in
            for (path, node) in files {
                Self.createParents(of: path, in: &nodes)
                nodes[path] = node
            }
        }
        return area
    }

    public func detachedAreas(under parent: String) throws(StorageError) -> [String] {
        detached.withLock { areas in
            areas.keys.compactMap { key in
                guard key.hasPrefix(parent + "/") else { return nil }
                let name = key.dropFirst(parent.count + 1)
                return name.contains("/") ? nil : String(name)
            }.sorted()
        }
    }

    public func moveDetached(from directory: String, to destination: String) throws(StorageError) {
        try detached.withLock { areas throws(StorageError) in
            guard areas[destination] == nil else { throw .rootUnavailable(path: destination, errno: Errno(EEXIST)) }
            areas[destination] = areas.removeValue(forKey: directory) ?? [:]
        }
    }

    public func discardDetached(in directory: String) throws(StorageError) {
        _ = detached.withLock { $0.removeValue(forKey: directory) }
    }

    @discardableResult
    public func remove(_ path: StorePath) throws(StorageError) -> Bool {
        try checkWritable(path)
        return nodes.withLock { nodes in
            guard nodes[path] != nil else { return false }
            for key in nodes.keys where key.hasPrefix(path) { nodes[key] = nil }
            return true
        }
    }

    @discardableResult
    public func removeIfEmpty(_ path: StorePath) throws(StorageError) -> Bool {
        try checkWritable(path)
        return nodes.withLock { nodes in
            guard case .directory = nodes[path] else { return false }
            let depth = path.components.count + 1
            guard !nodes.keys.contains(where: { $0.components.count == depth && $0.hasPrefix(path) }) else { return false }
            nodes[path] = nil
            return true
        }
    }

    private static func createParents(of path: StorePath, in nodes: inout [StorePath: Node]) {
        var parent = path.parent
        while let directory = parent, nodes[directory] == nil {
            nodes[directory] = .directory(modified: Date())
            parent = directory.parent
        }
    }
}
