import CSystemShims
import Foundation

/// The local-filesystem driver: every path is opened beneath the root's descriptor with
/// symlinks refused (openat2 `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so a store that holds a
/// link to `/etc` cannot make a tool read or delete there.
public final class LocalStorage: StoreStorage {
    public let rootPath: String
    private let rootDescriptor: Int32
    /// `docker/registry/v2` when it exists at open: nearly every path is below it, and
    /// resolving three components fewer per call is measurable over millions of files.
    private let registryDescriptor: Int32?

    public init(root: String) throws(StorageError) {
        let descriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .rootUnavailable(path: root, errno: .current) }
        rootPath = root
        rootDescriptor = descriptor
        let registry = regkeeper_open_beneath(descriptor, Layout.registryRoot.description, O_RDONLY | O_DIRECTORY, 0)
        registryDescriptor = registry >= 0 ? registry : nil
    }

    deinit {
        close(rootDescriptor)
        if let registryDescriptor { close(registryDescriptor) }
    }

    /// The descriptor to resolve `path` from, and the path relative to it.
    private func base(_ path: StorePath) -> (Int32, String) {
        let prefix = Layout.registryRoot.components.count
        if let registryDescriptor, path.components.count > prefix, path.hasPrefix(Layout.registryRoot) {
            return (registryDescriptor, path.components[prefix...].joined(separator: "/"))
        }
        return (rootDescriptor, path.description)
    }

    /// Absolute path of a store path, for messages and for tools that hand paths to others.
    public func absolutePath(_ path: StorePath) -> String {
        path.components.isEmpty ? rootPath : rootPath + "/" + path.description
    }

    // MARK: Descriptors

    private func openBeneath(_ path: StorePath, _ flags: Int32, mode: mode_t = 0, operation: String) throws(StorageError) -> Int32 {
        if path.components.isEmpty {
            let descriptor = dup(rootDescriptor)
            guard descriptor >= 0 else { throw .system(operation: operation, path: path, errno: .current) }
            return descriptor
        }
        let (base, relative) = base(path)
        let descriptor = regkeeper_open_beneath(base, relative, flags, UInt32(mode))
        guard descriptor >= 0 else { throw Self.error(operation, path, .current) }
        return descriptor
    }

    private static func error(_ operation: String, _ path: StorePath, _ errno: Errno) -> StorageError {
        switch errno.rawValue {
        case ENOENT: .notFound(path)
        case ELOOP, EXDEV: .symlinkRefused(path)
        default: .system(operation: operation, path: path, errno: errno)
        }
    }

    private func withParent<T>(
        of path: StorePath, creating: Bool = false, operation: String,
        _ body: (Int32, String) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        guard let parent = path.parent, let name = path.lastComponent else { throw .outsideRegistryTree(path) }
        if creating { try makeDirectories(parent) }
        let descriptor = try openBeneath(parent, O_RDONLY | O_DIRECTORY, operation: operation)
        defer { close(descriptor) }
        return try body(descriptor, name)
    }

    private func makeDirectories(_ path: StorePath) throws(StorageError) {
        var prefix = StorePath.root
        var descriptor = try openBeneath(prefix, O_RDONLY | O_DIRECTORY, operation: "open")
        defer { close(descriptor) }
        for component in path.components {
            prefix = prefix.appending(trusted: component)
            if mkdirat(descriptor, component, 0o755) != 0, errno != EEXIST {
                throw Self.error("mkdir", prefix, .current)
            }
            let next = openat(descriptor, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                let failure = Errno.current
                var info = stat()
                if fstatat(descriptor, component, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFLNK {
                    throw .symlinkRefused(prefix)
                }
                throw Self.error("open", prefix, failure)
            }
            close(descriptor)
            descriptor = next
        }
    }

    // MARK: StoreStorage

    public func list(_ path: StorePath) throws(StorageError) -> [DirectoryEntry] {
        try withDirectory(path) { _, entries in entries }
    }

    /// One directory read plus one `fstatat` per child relative to the open directory: the
    /// child is known to be a directory (not a symlink) from the listing itself.
    public func list(_ directory: StorePath, probing probe: String) throws(StorageError) -> [ProbedEntry] {
        try withDirectory(directory) { descriptor, entries in
            let path = directory
            return entries.map { entry in
                guard entry.kind == .directory else { return ProbedEntry(entry: entry, probe: nil) }
                var info = stat()
                guard fstatat(descriptor, entry.name + "/" + probe, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                    let failure = Errno.current
                    let file = path.appending(trusted: entry.name, probe)
                    return ProbedEntry(entry: entry, probe: nil, probeFailure: failure == .noSuchFile ? nil : Self.error("stat", file, failure))
                }
                return ProbedEntry(entry: entry, probe: FileStatus(
                    kind: Self.kind(info.st_mode), size: Int64(info.st_size), modified: Self.date(info.st_mtim)))
            }
        }
    }

    private static let directoryEntryNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    /// A readdir record is only as long as its name: copying `d_name` (256 bytes) out of it
    /// can read past the end of readdir's buffer and fault, so the name is read in place.
    private static func name(of entry: UnsafeMutablePointer<dirent>) -> String {
        String(cString: UnsafeRawPointer(entry).advanced(by: directoryEntryNameOffset).assumingMemoryBound(to: CChar.self))
    }

    private func withDirectory<T>(
        _ path: StorePath, _ body: (Int32, [DirectoryEntry]) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        let descriptor = try openBeneath(path, O_RDONLY | O_DIRECTORY, operation: "opendir")
        guard let directory = fdopendir(descriptor) else {
            let failure = Errno.current
            close(descriptor)
            throw Self.error("opendir", path, failure)
        }
        defer { closedir(directory) }
        var entries: [DirectoryEntry] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { throw Self.error("readdir", path, .current) }
                break
            }
            let name = Self.name(of: entry)
            if name == "." || name == ".." { continue }
            var kind: FileKind
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_REG): kind = .file
            case Int32(DT_DIR): kind = .directory
            case Int32(DT_LNK): kind = .symlink
            case Int32(DT_UNKNOWN):
                var info = stat()
                kind = fstatat(dirfd(directory), name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? Self.kind(info.st_mode) : .other
            default: kind = .other
            }
            entries.append(DirectoryEntry(name: name, kind: kind))
        }
        return try body(dirfd(directory), entries)
    }

    public func status(_ path: StorePath) throws(StorageError) -> FileStatus? {
        var info = stat()
        let (base, relative) = base(path)
        let result = path.components.isEmpty ? fstat(rootDescriptor, &info) : regkeeper_stat_beneath(base, relative, &info)
        guard result == 0 else {
            let failure = Errno.current
            if failure == .noSuchFile { return nil }
            throw Self.error("stat", path, failure)
        }
        return FileStatus(kind: Self.kind(info.st_mode), size: Int64(info.st_size), modified: Self.date(info.st_mtim))
    }

    /// Opening for reading never waits: a FIFO (or device) placed where a file belongs would
    /// otherwise hold the open, and the run, until a writer came. Such a file is then refused
    /// as not a regular file, naming its path.
    private static let readFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK

    public func readWithStatus(_ path: StorePath, limit: Int) throws(StorageError) -> (data: Data, status: FileStatus) {
        let descriptor = try openBeneath(path, Self.readFlags, operation: "open")
        defer { close(descriptor) }
        return try Self.readWhole(descriptor, path, limit: limit)
    }

    public func list(_ directory: StorePath, reading file: String, limit: Int) throws(StorageError) -> [ReadEntry] {
        try withDirectory(directory) { descriptor, entries in
            entries.map { entry in
                guard entry.kind == .directory else { return ReadEntry(entry: entry, file: nil) }
                let opened = regkeeper_open_beneath(descriptor, entry.name + "/" + file, Self.readFlags, 0)
                guard opened >= 0 else { return ReadEntry(entry: entry, file: nil) }
                defer { close(opened) }
                return ReadEntry(entry: entry, file: try? Self.readWhole(opened, directory.appending(trusted: entry.name, file), limit: limit))
            }
        }
    }

    /// The status of an open file, which must be a regular one to be read.
    private static func regularFileStatus(_ descriptor: Int32, _ path: StorePath) throws(StorageError) -> stat {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.error("stat", path, .current) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw .system(operation: "read (not a regular file)", path: path, errno: Errno(EINVAL))
        }
        return info
    }

    /// The content of an open regular file of at most `limit` bytes, and its status.
    private static func readWhole(_ descriptor: Int32, _ path: StorePath, limit: Int) throws(StorageError) -> (data: Data, status: FileStatus) {
        let info = try regularFileStatus(descriptor, path)
        guard Int(info.st_size) <= limit else {
            throw .system(operation: "read (file larger than \(limit) bytes)", path: path, errno: Errno(EFBIG))
        }
        var data = Data(count: Int(info.st_size))
        let read: Result<Int, Errno> = data.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) in try SystemCall.readFully(descriptor, into: buffer) }
        }
        let filled: Int
        switch read {
        case .success(let count): filled = count
        case .failure(let failure): throw Self.error("read", path, failure)
        }
        return (data.prefix(filled), FileStatus(kind: Self.kind(info.st_mode), size: Int64(filled), modified: Self.date(info.st_mtim)))
    }

    public func readChunks(_ path: StorePath, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let descriptor = try openBeneath(path, Self.readFlags, operation: "open")
        defer { close(descriptor) }
        _ = try Self.regularFileStatus(descriptor, path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count: Int
            do {
                count = try SystemCall.retrying { Foundation.read(descriptor, buffer.baseAddress!, chunkSize) }
            } catch {
                throw Self.error("read", path, error)
            }
            if count == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    public func openForReading(_ path: StorePath) throws(StorageError) -> any StoreReadableFile {
        let descriptor = try openBeneath(path, Self.readFlags, operation: "open")
        let info: stat
        do throws(StorageError) {
            info = try Self.regularFileStatus(descriptor, path)
        } catch {
            close(descriptor)
            throw error
        }
        return DescriptorReadableFile(path: path, descriptor: descriptor, status: FileStatus(
            kind: Self.kind(info.st_mode), size: Int64(info.st_size), modified: Self.date(info.st_mtim)))
    }

    public func writeAtomically(_ path: StorePath, _ data: Data, modified: Date?) throws(StorageError) {
        try checkWritable(path)
        try withParent(of: path, creating: true, operation: "write") { (parent, name) throws(StorageError) in
            let temporary = ".\(name).regkeeper-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let descriptor = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw Self.error("create", path, .current) }
            var failure: Errno? = data.withUnsafeBytes { buffer in
                do throws(Errno) {
                    try SystemCall.writeAll(descriptor, buffer)
                } catch {
                    return error
                }
                return fsync(descriptor) == 0 ? nil : .current
            }
            if failure == nil, let modified {
                var times = [Self.timespec(modified), Self.timespec(modified)]
                if futimens(descriptor, &times) != 0 { failure = .current }
            }
            close(descriptor)
            if failure == nil, renameat(parent, temporary, parent, name) != 0 { failure = .current }
            if let failure {
                unlinkat(parent, temporary, 0)
                throw Self.error("write", path, failure)
            }
            fsync(parent)
        }
    }

    public func rename(_ source: StorePath, to destination: StorePath) throws(StorageError) {
        try checkWritable(source)
        try checkWritable(destination)
        try withParent(of: source, operation: "rename") { (sourceParent, sourceName) throws(StorageError) in
            try withParent(of: destination, creating: true, operation: "rename") { (destinationParent, destinationName) throws(StorageError) in
                guard renameat(sourceParent, sourceName, destinationParent, destinationName) == 0 else {
                    throw Self.error("rename to \(destination)", source, .current)
                }
            }
        }
    }

    public func detach(_ path: StorePath, into directory: String) throws(StorageError) {
        try checkWritable(path)
        let destination = directory + "/" + path.description
        do {
            try FileManager.default.createDirectory(
                atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw .system(operation: "create trash directory \(directory)", path: path, errno: Errno(EIO))
        }
        try withParent(of: path, operation: "detach") { (parent, name) throws(StorageError) in
            guard regkeeper_rename_noreplace(parent, name, AT_FDCWD, destination) == 0 else {
                let failure = Errno.current
                // Here EXDEV is a rename across filesystems, not a refused symlink.
                if failure.rawValue == EXDEV {
                    throw .system(operation: "move to \(destination) (it must be on the store's filesystem)", path: path, errno: failure)
                }
                throw Self.error("move to \(destination)", path, failure)
            }
        }
    }

    public func reattach(_ path: StorePath, from directory: String) throws(StorageError) {
        try checkWritable(path)
        let source = directory + "/" + path.description
        try withParent(of: path, creating: true, operation: "reattach") { (parent, name) throws(StorageError) in
            guard regkeeper_rename_noreplace(AT_FDCWD, source, parent, name) == 0 else {
                let failure = Errno.current
                if failure.rawValue == EEXIST { throw .alreadyExists(path) }
                if failure.rawValue == EXDEV { throw .system(operation: "move back from \(source)", path: path, errno: failure) }
                throw Self.error("move back from \(source)", path, failure)
            }
        }
    }

    public func detachedFiles(in directory: String) throws(StorageError) -> [StorePath] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [StorePath] = []
        while let relative = walker.nextObject() as? String {
            if walker.fileAttributes?[.type] as? FileAttributeType != .typeDirectory, let path = StorePath(relative: relative) {
                files.append(path)
            }
        }
        return files.sorted()
    }

    public func detachedArea(_ directory: String) throws(StorageError) -> any StoreStorage {
        try LocalStorage(root: directory)
    }

    public func detachedAreas(under parent: String) throws(StorageError) -> [String] {
        guard let directory = opendir(parent) else {
            if errno == ENOENT { return [] }
            throw .rootUnavailable(path: parent, errno: .current)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = Self.name(of: entry)
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func moveDetached(from directory: String, to destination: String) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(
                atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw .rootUnavailable(path: destination, errno: Errno(EIO))
        }
        guard regkeeper_rename_noreplace(AT_FDCWD, directory, AT_FDCWD, destination) == 0 else {
            throw .rootUnavailable(path: "\(directory) -> \(destination)", errno: .current)
        }
    }

    public func discardDetached(in directory: String) throws(StorageError) {
        let parent = open((directory as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else {
            if errno == ENOENT { return }
            throw .rootUnavailable(path: directory, errno: .current)
        }
        defer { close(parent) }
        _ = try Self.removeTree(parent: parent, name: (directory as NSString).lastPathComponent, path: StorePath.root)
    }

    @discardableResult
    public func remove(_ path: StorePath) throws(StorageError) -> Bool {
        try checkWritable(path)
        do {
            return try withParent(of: path, operation: "remove") { (parent, name) throws(StorageError) in
                try Self.removeTree(parent: parent, name: name, path: path)
            }
        } catch .notFound {
            return false
        }
    }

    @discardableResult
    public func removeIfEmpty(_ path: StorePath) throws(StorageError) -> Bool {
        try checkWritable(path)
        do {
            return try withParent(of: path, operation: "rmdir") { (parent, name) throws(StorageError) in
                if unlinkat(parent, name, AT_REMOVEDIR) == 0 { return true }
                switch errno {
                case ENOTEMPTY, EEXIST, ENOENT: return false
                default: throw Self.error("rmdir", path, .current)
                }
            }
        } catch .notFound {
            return false
        }
    }

    /// Depth-first removal through directory descriptors; a symlink is unlinked, never followed.
    private static func removeTree(parent: Int32, name: String, path: StorePath) throws(StorageError) -> Bool {
        if unlinkat(parent, name, 0) == 0 { return true }
        let refusal = Errno.current
        switch refusal.rawValue {
        case ENOENT: return false
        case EISDIR: break
        case EPERM:
            // Linux answers EPERM for a directory, and for a file it may not unlink (immutable,
            // sticky directory): only a directory is worth descending into.
            var info = stat()
            guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw error("unlink", path, refusal)
            }
        default: throw error("unlink", path, refusal)
        }
        let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw error("open", path, .current) }
        guard let directory = fdopendir(descriptor) else {
            let failure = Errno.current
            close(descriptor)
            throw error("opendir", path, failure)
        }
        var children: [String] = []
        while let entry = readdir(directory) {
            let child = Self.name(of: entry)
            if child != "." && child != ".." { children.append(child) }
        }
        defer { closedir(directory) }
        for child in children {
            _ = try removeTree(parent: dirfd(directory), name: child, path: path.appending(trusted: child))
        }
        guard unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT else { throw error("rmdir", path, .current) }
        return true
    }

    // MARK: Conversions

    private static func kind(_ mode: mode_t) -> FileKind {
        switch mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        default: .other
        }
    }

    static func date(_ time: timespec) -> Date {
        Date(timeIntervalSince1970: TimeInterval(time.tv_sec) + TimeInterval(time.tv_nsec) / 1e9)
    }

    static func timespec(_ date: Date) -> Glibc.timespec {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int((date.timeIntervalSince1970 - seconds) * 1e9))
    }
}
