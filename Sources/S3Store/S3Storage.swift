import Foundation
import RegistryStore
import Synchronization

/// A store in an S3 bucket, laid out key for key as Distribution's `s3` driver writes it:
/// `<rootdirectory>/docker/registry/v2/...`.
///
/// S3 has no directories: a directory is a key prefix that some key has, so it exists exactly
/// while it holds a file, and an empty one cannot be seen (`removeIfEmpty` is true). There is
/// no rename either: moves are server-side copies followed by deletes, copying everything
/// before deleting anything, so no content is ever absent from both places.
///
/// Times: S3 sets LastModified itself, so a write with a time (a restore) and every move
/// record the file's own time as `x-amz-meta-mtime`, which HEAD and GET report; listings can
/// only report LastModified, which is never older. Where gc and retention compare ages, a
/// newer time only keeps more.
///
/// Detaching (gc's "out of sight") copies into `<rootdirectory>/_regkeeper/detached/<area>/`
/// in the same bucket, where the registry never looks, then deletes the originals. A registry
/// write racing that delete can be lost, but every item gc detaches is content-addressed: a
/// concurrent push writes the very bytes the area holds and then a link naming them, which the
/// sweep re-reads after its settle interval and answers by putting the item back.
public final class S3Storage: StoreStorage {
    public let client: S3Client
    /// Key prefix of the store: empty, or ending in `/`.
    public let rootPrefix: String
    /// Key prefix of the detached areas, beside the registry tree.
    let detachedPrefix: String
    /// Copies and deletes of many keys run on this many threads at once.
    let workers: Int
    /// Objects above this size are written with a multipart upload, in parts of this size.
    let multipartThreshold: Int

    /// - Parameter rootDirectory: the registry's `storage.s3.rootdirectory` (`/`, `""` or e.g. `/registry`).
    public convenience init(client: S3Client, rootDirectory: String, workers: Int = 8, multipartThreshold: Int = 64 * 1024 * 1024) {
        let trimmed = rootDirectory.split(separator: "/").joined(separator: "/")
        self.init(client: client, rootPrefix: trimmed.isEmpty ? "" : trimmed + "/", workers: workers, multipartThreshold: multipartThreshold)
    }

    private init(client: S3Client, rootPrefix: String, workers: Int, multipartThreshold: Int) {
        self.client = client
        self.rootPrefix = rootPrefix
        detachedPrefix = rootPrefix + "_regkeeper/detached/"
        self.workers = max(1, workers)
        self.multipartThreshold = max(S3Client.minimumPartSize, multipartThreshold)
    }

    /// `s3://bucket/prefix/path`, for messages.
    public func url(_ path: StorePath) -> String { "s3://\(client.endpoint.bucket)/\(key(path))" }

    func key(_ path: StorePath) -> String { rootPrefix + path.description }

    /// The prefix every key below `path` has.
    func directoryPrefix(_ path: StorePath) -> String { path.components.isEmpty ? rootPrefix : key(path) + "/" }

    private func failure(_ error: S3Error, _ path: StorePath) -> StorageError {
        error.isNotFound ? .notFound(path) : .objectStore(path: path, reason: error.description)
    }

    // MARK: Reading

    public func list(_ path: StorePath) throws(StorageError) -> [DirectoryEntry] {
        let prefix = directoryPrefix(path)
        var entries: [DirectoryEntry] = []
        var sawKey = false
        do {
            try client.listAllPages(prefix: prefix, delimiter: "/") { page in
                for directory in page.commonPrefixes {
                    sawKey = true
                    let name = directory.dropFirst(prefix.count).dropLast()
                    if StorePath.isValidComponent(name) { entries.append(DirectoryEntry(name: String(name), kind: .directory)) }
                }
                for object in page.objects {
                    sawKey = true
                    // A key ending in "/" (a console's "folder" marker) names no file.
                    let name = object.key.dropFirst(prefix.count)
                    if StorePath.isValidComponent(name) { entries.append(DirectoryEntry(name: String(name), kind: .file)) }
                }
            }
        } catch {
            throw failure(error, path)
        }
        guard sawKey || path.components.isEmpty else { throw .notFound(path) }
        return entries
    }

    public func status(_ path: StorePath) throws(StorageError) -> FileStatus? {
        if path.components.isEmpty { return FileStatus(kind: .directory, size: 0, modified: Date()) }
        do {
            if let head = try client.headObject(key(path)) {
                return FileStatus(kind: .file, size: head.size, modified: head.modified)
            }
            let page = try client.listObjects(prefix: directoryPrefix(path), maxKeys: 1)
            // A directory is as old as the first key S3 lists under it.
            return page.objects.first.map { FileStatus(kind: .directory, size: 0, modified: $0.lastModified) }
        } catch {
            throw failure(error, path)
        }
    }

    public func readWithStatus(_ path: StorePath, limit: Int) throws(StorageError) -> (data: Data, status: FileStatus) {
        var data = Data()
        let head: S3ObjectHead
        do {
            head = try client.getObject(key(path)) { bytes in
                guard data.count + bytes.count <= limit else { throw ReadLimitExceeded() }
                data.append(contentsOf: bytes)
            }
        } catch let error as S3Error {
            throw failure(error, path)
        } catch {
            throw .system(operation: "read (file larger than \(limit) bytes)", path: path, errno: Errno(EFBIG))
        }
        return (data, FileStatus(kind: .file, size: head.size, modified: head.modified))
    }

    private struct ReadLimitExceeded: Error {}

    public func readChunks(_ path: StorePath, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        // libcurl hands out what the socket had; callers count on chunks of `chunkSize`.
        var pending = Data()
        pending.reserveCapacity(chunkSize)
        do {
            _ = try client.getObject(key(path)) { bytes in
                var rest = bytes[...]
                while !rest.isEmpty {
                    let take = min(chunkSize - pending.count, rest.count)
                    pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
                    rest = rest.dropFirst(take)
                    if pending.count == chunkSize {
                        try pending.withUnsafeBytes(body)
                        pending.removeAll(keepingCapacity: true)
                    }
                }
            }
        } catch let error as S3Error {
            throw failure(error, path)
        }
        if !pending.isEmpty { try pending.withUnsafeBytes(body) }
    }

    public var prefersRecursiveListing: Bool { true }

    public func listRecursively(_ directory: StorePath) throws(StorageError) -> [StoreFile] {
        let prefix = directoryPrefix(directory)
        var files: [StoreFile] = []
        do {
            try client.listAllPages(prefix: prefix) { page in
                for object in page.objects {
                    guard let path = Self.path(object.key.dropFirst(prefix.count), under: directory) else { continue }
                    files.append(StoreFile(path: path, status: FileStatus(kind: .file, size: object.size, modified: object.lastModified)))
                }
            }
        } catch {
            throw failure(error, directory)
        }
        guard !files.isEmpty || directory.components.isEmpty else { throw .notFound(directory) }
        return files
    }

    /// One flat listing of the directory answers for every child's probe (e.g. all
    /// `revisions/sha256/*/link` of a repository in one request instead of one HEAD each).
    /// The probe's time is its LastModified, never older than a recorded mtime: wherever gc
    /// and retention compare ages, a newer time only keeps more.
    public func list(_ directory: StorePath, probing probe: String) throws(StorageError) -> [ProbedEntry] {
        let prefix = directoryPrefix(directory)
        var directories: [String: FileStatus?] = [:]
        var files: [String] = []
        do {
            try client.listAllPages(prefix: prefix) { page in
                for object in page.objects {
                    let rest = object.key.dropFirst(prefix.count)
                    guard let slash = rest.firstIndex(of: "/") else {
                        if StorePath.isValidComponent(rest) { files.append(String(rest)) }
                        continue
                    }
                    let name = String(rest[..<slash])
                    guard StorePath.isValidComponent(name) else { continue }
                    if rest[rest.index(after: slash)...] == probe {
                        directories[name] = FileStatus(kind: .file, size: object.size, modified: object.lastModified)
                    } else if directories[name] == nil {
                        directories[name] = .some(nil)
                    }
                }
            }
        } catch {
            throw failure(error, directory)
        }
        guard !files.isEmpty || !directories.isEmpty || directory.components.isEmpty else { throw .notFound(directory) }
        return files.map { ProbedEntry(entry: DirectoryEntry(name: $0, kind: .file), probe: nil) }
            + directories.map { ProbedEntry(entry: DirectoryEntry(name: $0.key, kind: .directory), probe: $0.value) }
    }

    /// The flat listing probes every child anyway; the selection only hides the others' probes.
    public func list(_ directory: StorePath, probing probe: String, where select: (String) -> Bool) throws(StorageError) -> [ProbedEntry] {
        try list(directory, probing: probe).map { probed in
            select(probed.entry.name) ? probed : ProbedEntry(entry: probed.entry, probe: nil)
        }
    }

    /// `directory` extended by a key's remainder; nil for a remainder no store path can name
    /// (empty components, `..`), which the registry never writes.
    private static func path(_ relative: Substring, under directory: StorePath) -> StorePath? {
        var path = directory
        for component in relative.split(separator: "/", omittingEmptySubsequences: false) {
            guard let next = path.appending(component) else { return nil }
            path = next
        }
        return path == directory ? nil : path
    }

    // MARK: Writing

    public func writeAtomically(_ path: StorePath, _ data: Data, modified: Date?) throws(StorageError) {
        try checkWritable(path)
        do {
            if data.count <= multipartThreshold {
                try client.putObject(key(path), data, modified: modified)
            } else {
                let partSize = multipartThreshold
                var offset = 0
                try client.putObjectMultipart(key(path), modified: modified) {
                    guard offset < data.count else { return nil }
                    defer { offset += partSize }
                    return data.subdata(in: offset..<min(offset + partSize, data.count))
                }
            }
        } catch let error as S3Error {
            throw failure(error, path)
        } catch {
            throw .objectStore(path: path, reason: "\(url(path)): multipart upload failed: \(error)")
        }
    }

    public func rename(_ source: StorePath, to destination: StorePath) throws(StorageError) {
        try checkWritable(source)
        try checkWritable(destination)
        try move(keysOf: source, from: rootPrefix, to: rootPrefix, at: destination)
    }

    @discardableResult
    public func remove(_ path: StorePath) throws(StorageError) -> Bool {
        try checkWritable(path)
        let keys = try keys(of: path, in: rootPrefix)
        do {
            try client.deleteObjects(keys)
        } catch {
            throw failure(error, path)
        }
        return try abortUploads(under: path) || !keys.isEmpty
    }

    /// A registry upload's data is an open multipart upload, not a key: removing or detaching
    /// an upload's directory aborts it (an upload is never put back). Returns whether there was one.
    private func abortUploads(under path: StorePath) throws(StorageError) -> Bool {
        guard path.components.contains(Layout.uploadsDirectoryName) else { return false }
        do {
            let uploads = try client.listMultipartUploads(prefix: directoryPrefix(path))
            try forEachConcurrently(uploads) { upload throws(S3Error) in try client.abortMultipartUpload(upload) }
            return !uploads.isEmpty
        } catch {
            throw failure(error, path)
        }
    }

    @discardableResult
    public func removeIfEmpty(_ path: StorePath) throws(StorageError) -> Bool {
        try checkWritable(path)
        do {
            guard try client.listObjects(prefix: directoryPrefix(path), maxKeys: 1).objects.isEmpty else { return false }
            return try client.headObject(key(path)) == nil
        } catch {
            throw failure(error, path)
        }
    }

    // MARK: Detached areas

    /// The key prefix of a detached area named by a state-directory path such as
    /// `/var/lib/regkeeper/sweep/<run>`.
    func areaPrefix(_ directory: String) -> String {
        let name = directory.split(separator: "/").joined(separator: "/")
        return name.isEmpty ? detachedPrefix : detachedPrefix + name + "/"
    }

    public func detach(_ path: StorePath, into directory: String) throws(StorageError) {
        try checkWritable(path)
        let aborted = try abortUploads(under: path)
        do {
            try move(keysOf: path, from: rootPrefix, to: areaPrefix(directory), at: path)
        } catch .notFound where aborted {
            return
        }
    }

    public func reattach(_ path: StorePath, from directory: String) throws(StorageError) {
        try checkWritable(path)
        let detachedKey = areaPrefix(directory) + path.description
        do {
            guard let detached = try client.headObject(detachedKey) else { throw StorageError.notFound(path) }
            guard try client.headObject(key(path)) == nil else { throw StorageError.alreadyExists(path) }
            try client.copyObject(from: detachedKey, to: key(path), modified: detached.modified)
            try client.deleteObject(detachedKey)
        } catch let error as S3Error {
            throw failure(error, path)
        } catch let error as StorageError {
            throw error
        } catch {
            preconditionFailure("\(error)")
        }
    }

    public func detachedFiles(in directory: String) throws(StorageError) -> [StorePath] {
        let prefix = areaPrefix(directory)
        var paths: [StorePath] = []
        do {
            try client.listAllPages(prefix: prefix) { page in
                paths += page.objects.compactMap { StorePath(relative: $0.key.dropFirst(prefix.count)) }
            }
        } catch {
            throw .objectStore(path: .root, reason: error.description)
        }
        return paths.sorted()
    }

    public func detachedArea(_ directory: String) throws(StorageError) -> any StoreStorage {
        S3Storage(client: client, rootPrefix: areaPrefix(directory), workers: workers, multipartThreshold: multipartThreshold)
    }

    public func detachedAreas(under parent: String) throws(StorageError) -> [String] {
        let prefix = areaPrefix(parent)
        var names: [String] = []
        do {
            try client.listAllPages(prefix: prefix, delimiter: "/") { page in
                names += page.commonPrefixes.map { String($0.dropFirst(prefix.count).dropLast()) }
            }
        } catch {
            throw .objectStore(path: .root, reason: error.description)
        }
        return names.sorted()
    }

    public func moveDetached(from directory: String, to destination: String) throws(StorageError) {
        let target = areaPrefix(destination)
        do {
            guard try client.listObjects(prefix: target, maxKeys: 1).objects.isEmpty else {
                throw StorageError.rootUnavailable(path: destination, errno: Errno(EEXIST))
            }
        } catch let error as S3Error {
            throw .objectStore(path: .root, reason: error.description)
        } catch let error as StorageError {
            throw error
        } catch {
            preconditionFailure("\(error)")
        }
        let source = areaPrefix(directory)
        let files = try detachedFiles(in: directory)
        try copyThenDelete(files.map { (source + $0.description, target + $0.description) }, path: .root)
    }

    public func discardDetached(in directory: String) throws(StorageError) {
        let prefix = areaPrefix(directory)
        do {
            var keys: [String] = []
            try client.listAllPages(prefix: prefix) { page in keys += page.objects.map(\.key) }
            try client.deleteObjects(keys)
        } catch {
            throw .objectStore(path: .root, reason: error.description)
        }
    }

    // MARK: Moving keys

    /// The keys of `path` below `base`: the object named `path` itself, or every key under it.
    private func keys(of path: StorePath, in base: String) throws(StorageError) -> [String] {
        let name = base + path.description
        do {
            if try client.headObject(name) != nil { return [name] }
            var keys: [String] = []
            try client.listAllPages(prefix: name + "/") { page in keys += page.objects.map(\.key) }
            return keys
        } catch {
            throw failure(error, path)
        }
    }

    /// Moves `path` (a file, or all keys under it) from below `source` to `destination`
    /// below `target`: copies everything, then deletes the originals.
    private func move(keysOf path: StorePath, from source: String, to target: String, at destination: StorePath) throws(StorageError) {
        let keys = try keys(of: path, in: source)
        guard !keys.isEmpty else { throw .notFound(path) }
        let from = source + path.description
        let to = target + destination.description
        try copyThenDelete(keys.map { ($0, to + $0.dropFirst(from.count)) }, path: path)
    }

    private func copyThenDelete(_ moves: [(from: String, to: String)], path: StorePath) throws(StorageError) {
        do {
            try forEachConcurrently(moves) { move throws(S3Error) in
                // The source's time (its recorded mtime, else LastModified) goes with it.
                guard let source = try client.headObject(move.from) else {
                    throw .http(operation: "HeadObject", bucket: client.endpoint.bucket, key: move.from, status: 404, code: "NoSuchKey", message: "gone before it could be copied", attempts: 1)
                }
                try client.copyObject(from: move.from, to: move.to, modified: source.modified)
            }
            try client.deleteObjects(moves.map(\.from))
        } catch {
            throw failure(error, path)
        }
    }

    /// Runs `body` over `items` on at most `workers` threads and waits for all; throws the
    /// first failure after the others finish. The storage interface is synchronous, so the
    /// parallelism lives here, bounded, and joined before returning.
    private func forEachConcurrently<Item: Sendable>(_ items: [Item], _ body: @Sendable (Item) throws(S3Error) -> Void) throws(S3Error) {
        guard items.count > 1 else {
            for item in items { try body(item) }
            return
        }
        let next = Atomic<Int>(0)
        let firstFailure = Mutex<S3Error?>(nil)
        DispatchQueue.concurrentPerform(iterations: min(workers, items.count)) { _ in
            while firstFailure.withLock({ $0 == nil }) {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < items.count else { return }
                do throws(S3Error) {
                    try body(items[index])
                } catch {
                    firstFailure.withLock { $0 = $0 ?? error }
                }
            }
        }
        if let failure = firstFailure.withLock({ $0 }) { throw failure }
    }
}
