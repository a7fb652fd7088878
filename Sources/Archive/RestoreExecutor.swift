internal import CSystemShims
import Foundation
import RegistryModel
import RegistryStore
import TarFormat

public struct RestoreOptions: Sendable {
    /// Add what the target lacks instead of refusing a non-empty target.
    public var merge = false
    /// Only these repositories and the blobs they need; nil restores everything.
    public var repositories: Set<RepositoryName>?
    /// Read and check every member as a restore does, and tell what it would restore and,
    /// with `merge`, what it would keep of the target's; write nothing.
    public var dryRun = false
    /// The largest member a plain tar archive (which has no index to declare sizes) may hold;
    /// a regkeeper archive's members are bounded by its index instead.
    public var maxPlainMemberSize: UInt64 = RestoreOptions.defaultMaxPlainMemberSize

    /// Larger than the layers registries commonly hold (a few hundred MiB, rarely a few GiB);
    /// `--max-member-size` raises it for a store that has larger ones.
    public static let defaultMaxPlainMemberSize: UInt64 = 4 << 30
    /// A link holds one digest (`sha512:` and 128 hex digits at most).
    static let maxLinkSize: UInt64 = 4096

    public init(merge: Bool = false, repositories: Set<RepositoryName>? = nil, dryRun: Bool = false) {
        self.merge = merge
        self.repositories = repositories
        self.dryRun = dryRun
    }
}

/// What a restore put in place, and what it left alone.
public struct RestoreResult: Sendable, Encodable {
    public var archives: [String]
    public var blobs = 0
    public var blobBytes: Int64 = 0
    public var links = 0
    public var otherFiles = 0
    /// `--merge`: files the target already had with other content; the target's were kept.
    public var conflicts: [String] = []
    /// Members not restored: outside the layout, or corrupt when they were archived.
    public var skipped: [String] = []
}

/// Restores a chain of archives (or one plain tar) into a target root: members are streamed
/// into a staging area on the target's filesystem, each blob checked against its digest and
/// each member against the index as it is written, link mtimes kept; only then is the tree
/// moved into place. A refused archive leaves the target as it was.
public struct RestoreExecutor {
    public let target: String
    public var options: RestoreOptions
    /// Test seam: called after each member is staged, with the count so far.
    public var afterMember: (Int) throws -> Void = { _ in }
    /// Phases `restore` (archive bytes read, of all the chain's files), `sync` and `place`.
    public var reporter: any ProgressReporter = SilentReporter()

    public init(target: String, options: RestoreOptions = RestoreOptions()) {
        self.target = URL(fileURLWithPath: target).standardizedFileURL.path
        self.options = options
    }

    /// Refuses a target that is not a directory, or that lies inside another store's
    /// `docker/` tree (`--root /srv/registry/docker/registry/v2` would nest a store in the
    /// live one, which its registry then serves as garbage).
    public static func checkTarget(_ target: String) throws(ArchiveError) {
        var info = stat()
        if stat(target, &info) == 0, info.st_mode & S_IFMT != S_IFDIR { throw .targetNotADirectory(path: target) }
        // The deepest existing ancestor, with symbolic links resolved, then the rest as given.
        var existing = target
        var rest: [String] = []
        while realpath(existing, nil) == nil, existing != "/" {
            rest.insert((existing as NSString).lastPathComponent, at: 0)
            existing = (existing as NSString).deletingLastPathComponent
        }
        guard let resolved = realpath(existing, nil) else { return }
        defer { free(resolved) }
        let components = (String(cString: resolved).split(separator: "/").map(String.init) + rest)
        let store = Layout.registryRoot.components
        for start in components.indices where components[start...].starts(with: store.prefix(1)) {
            let ancestor = "/" + components[..<start].joined(separator: "/")
            let registry = ancestor + (ancestor == "/" ? "" : "/") + store.joined(separator: "/")
            var registryInfo = stat()
            if stat(registry, &registryInfo) == 0, registryInfo.st_mode & S_IFMT == S_IFDIR {
                throw .targetInsideStore(target: target, store: ancestor)
            }
        }
    }

    private var dockerPath: String { target + "/" + (Layout.registryRoot.components.first ?? "docker") }

    public func restore(_ chain: ArchiveChain) throws -> RestoreResult {
        let needed = try chain.neededBlobs(repositories: options.repositories)
        if !options.merge, try holdsFiles(dockerPath) { throw ArchiveError.targetNotEmpty(path: target) }
        var staging: StagingArea?
        var rehearsal: MergeRehearsal?
        if options.dryRun {
            rehearsal = options.merge ? try MergeRehearsal(target: target) : nil
        } else {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            try checkSpace(chain, needed: needed)
            StagingArea.removeAbandoned(in: target)
            staging = try StagingArea(target: target, merge: options.merge)
        }
        defer { staging?.remove() }

        var result = try reporter.phase("restore") {
            try stage(chain, needed: needed, into: staging, rehearsal: rehearsal)
        }.0
        guard let staging else {
            result.conflicts = rehearsal?.conflicts ?? []
            return result
        }
        try reporter.phase("sync") { try staging.sync() }
        // A merge that could not read part of the target would stop there half-way: refuse now.
        if let unreadable = staging.unreadableTarget { throw ArchiveError.targetUnreadable(path: unreadable.path, errno: unreadable.errno) }
        try reporter.phase("place") {
            if options.merge {
                result.conflicts = try StagedTreeMerge(staging: staging.root, target: target).run()
            } else {
                try moveWhole(staging)
            }
        }
        return result
    }

    /// Streams the chain's members into `staging` (or, for a dry run, through `rehearsal`),
    /// checking each; returns the counts. Nothing is kept per member: the staged tree itself
    /// is what is placed.
    private func stage(_ chain: ArchiveChain, needed: [Digest: ArchiveID], into staging: StagingArea?,
                       rehearsal: MergeRehearsal?) throws -> RestoreResult {
        var result = RestoreResult(archives: chain.readers.map(\.path))
        var staged = 0
        var written = Set<Digest>()
        let totalBytes = chain.readers.reduce(Int64(0)) { $0 + $1.fileSize }
        var bytesBefore: Int64 = 0
        for reader in chain.readers {
            let isLast = reader === chain.last
            let id = reader.index?.metadata.id
            var blobsOfThisArchive = Set<Digest>()
            try reader.forEachMember(consumed: { [reporter] in
                reporter.progress("restore", done: bytesBefore + $0, total: totalBytes, unit: .bytes)
            }) { member in
                // Files beside the registry's tree (a plain tar of a whole root holds the state
                // directory) are left out; anything else in `docker/` must be the layout's.
                guard let path = member.storePath, path.components.first == Layout.registryRoot.components.first else {
                    result.skipped.append(member.entry.path.escapedForTerminal + ": outside docker/registry/v2")
                    return
                }
                guard path.hasPrefix(Layout.registryRoot), path != Layout.registryRoot else {
                    throw ArchiveError.outsideLayout(archive: reader.path, member: member.entry.path)
                }
                switch member.role {
                case .blob(let digest):
                    // Twice in one archive is damage (which copy would tar -x keep?); across
                    // archives of a chain it is the same blob carried again.
                    guard blobsOfThisArchive.insert(digest).inserted else {
                        throw ArchiveError.duplicateMember(archive: reader.path, member: member.entry.path)
                    }
                    let wanted = chain.isPlain || (needed[digest] == id && !written.contains(digest))
                    guard wanted, written.insert(digest).inserted else { return }
                    if chain.isPlain, let repositories = options.repositories, !repositories.isEmpty {
                        // A plain archive has no index to tell which blobs a repository needs.
                        throw ArchiveError.notAnArchive(archive: reader.path, reason: "--repository needs a regkeeper archive with an index")
                    }
                    result.blobs += 1
                    result.blobBytes += Int64(member.entry.size)
                case .link(let repository, _), .upload(let repository):
                    guard isLast, options.repositories?.contains(repository) ?? true else { return }
                    if case .link = member.role { result.links += 1 } else { result.otherFiles += 1 }
                case .other:
                    throw ArchiveError.outsideLayout(archive: reader.path, member: member.entry.path)
                }
                try checkBounds(member, in: reader, isPlain: chain.isPlain)
                if let staging {
                    let alike = options.merge ? StagingArea.Alike(role: member.role, size: member.entry.size) : nil
                    try staging.write(path, mtime: member.entry.mtime, archive: reader.path, alike: alike) { sink in try member.readContent(sink) }
                } else {
                    try rehearsal?.check(member, at: path) ?? member.readContent { _ in }
                }
                staged += 1
                try afterMember(staged)
            }
            if let index = reader.index {
                result.skipped += index.excluded.map { "blob \($0.digest): corrupt when archived (hashed to \($0.actual))" }
            }
            bytesBefore += reader.fileSize
        }
        // forEachMember checked each blob as it was written; drop any the last archive's
        // snapshot does not need (a blob written twice is impossible: `written` guards it).
        if let missing = needed.keys.first(where: { !written.contains($0) }) {
            throw ArchiveError.missingBlob(digest: missing, archive: needed[missing]!)
        }
        return result
    }

    /// Refuses, before a byte of it is written, a member larger than a restore may write: a
    /// link of more than one digest, or a plain tar's member over `maxPlainMemberSize` (a
    /// regkeeper archive's sizes are checked against its index by the reader, and their sum
    /// against the free space before staging begins).
    private func checkBounds(_ member: ArchiveReader.Member, in reader: ArchiveReader, isPlain: Bool) throws(ArchiveError) {
        let size = member.entry.size
        if case .link = member.role, size > RestoreOptions.maxLinkSize {
            throw .memberTooLarge(archive: reader.path, member: member.entry.path, size: size, limit: RestoreOptions.maxLinkSize,
                                  reason: "a link holds one digest")
        }
        if isPlain, size > options.maxPlainMemberSize {
            throw .memberTooLarge(archive: reader.path, member: member.entry.path, size: size, limit: options.maxPlainMemberSize,
                                  reason: "the largest member a plain tar archive may hold; raise it with --max-member-size")
        }
    }

    /// Bytes the chain's indexes declare a restore writes, each file rounded up to whole
    /// blocks (a link of 71 bytes takes a block): the blobs needed, and the last archive's
    /// other members. Nil for a plain tar, whose size is known only by reading it.
    static func declaredBytes(_ chain: ArchiveChain, needed: [Digest: ArchiveID], block: UInt64) -> UInt64? {
        guard let last = chain.last.index else { return nil }
        let listed = chain.last.listed
        func blocks(_ size: UInt64) -> UInt64 { size / block &* block &+ (size % block == 0 ? 0 : block) }
        var total: UInt64 = 0
        for position in 0..<listed.count where !listed.isBlobData(at: position) { total &+= blocks(listed.size(at: position)) }
        for blob in last.blobs where needed[blob.digest] != nil { total &+= blocks(UInt64(max(blob.size, 0))) }
        return total
    }

    /// Refuses a chain whose declared content does not fit in the target's filesystem, before
    /// anything is staged there: with --merge that filesystem is the live registry's.
    private func checkSpace(_ chain: ArchiveChain, needed: [Digest: ArchiveID]) throws(ArchiveError) {
        var info = statvfs()
        guard statvfs(target, &info) == 0 else { throw .io(path: target, operation: "statvfs", errno: .current) }
        guard let declared = Self.declaredBytes(chain, needed: needed, block: max(UInt64(info.f_bsize), 512)) else { return }
        let available = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        if declared > available { throw .notEnoughSpace(target: target, needed: declared, available: available) }
    }

    /// True if `directory` exists and holds any non-directory entry at any depth.
    private func holdsFiles(_ directory: String) throws -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else { return false }
        guard isDirectory.boolValue, let walker = FileManager.default.enumerator(atPath: directory) else { return true }
        while walker.nextObject() != nil {
            if walker.fileAttributes?[.type] as? FileAttributeType != .typeDirectory { return true }
        }
        return false
    }

    /// An empty target gets the staged tree with one rename: a restore is all there or absent.
    private func moveWhole(_ staging: StagingArea) throws {
        let source = staging.root + "/" + (Layout.registryRoot.components.first ?? "docker")
        guard FileManager.default.fileExists(atPath: source) else { return }
        // Only empty directories can be here (checked before staging).
        if FileManager.default.fileExists(atPath: dockerPath) { try FileManager.default.removeItem(atPath: dockerPath) }
        guard regkeeper_rename_noreplace(AT_FDCWD, source, AT_FDCWD, dockerPath) == 0 else {
            throw ArchiveError.io(path: dockerPath, operation: "rename from \(source)", errno: .current)
        }
        let descriptor = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor >= 0 {
            fsync(descriptor)
            close(descriptor)
        }
    }

    /// How much of the target's link or other file a merge compares.
    static let comparedBytes = 4096

    /// What `--merge` reports for a file the target already holds: a blob of another size, or
    /// a link or other file with other content (the target's is kept); nil when they agree or
    /// the target lacks the file.
    fileprivate static func conflict(at path: StorePath, in storage: LocalStorage, ourSize: Int64?, ourContent: () -> Data?) throws -> String? {
        if case .blob = MemberRole(path) {
            guard let theirs = try storage.status(path)?.size, ourSize != theirs else { return nil }
            return "\(path): the target's blob has \(theirs) bytes, the archive's other (kept the target's)"
        }
        let theirs: Data
        do {
            theirs = try storage.read(path, limit: comparedBytes)
        } catch .notFound {
            return nil
        }
        guard theirs != ourContent() else { return nil }
        return "\(path): the target holds '\(String(decoding: theirs.prefix(80), as: UTF8.self))' (kept it)"
    }
}

/// `--merge --dry-run`: for each member the target already holds, the conflict the merge
/// would report, listed in the order the merge places files.
private final class MergeRehearsal {
    /// One byte more of ours than the merge compares tells a longer file apart.
    private static let compared = RestoreExecutor.comparedBytes
    private let storage: LocalStorage?
    private var found: [MergeConflict] = []

    init(target: String) throws {
        storage = FileManager.default.fileExists(atPath: target) ? try LocalStorage(root: target) : nil
    }

    var conflicts: [String] { MergeConflict.ordered(found) }

    func check(_ member: ArchiveReader.Member, at path: StorePath) throws {
        var head = Data()
        try member.readContent { chunk in
            if head.count <= Self.compared { head.append(contentsOf: chunk.prefix(Self.compared + 1 - head.count)) }
        }
        guard let storage else { return }
        if let conflict = try RestoreExecutor.conflict(at: path, in: storage, ourSize: Int64(member.entry.size), ourContent: { head }) {
            found.append(MergeConflict(path: path, message: conflict))
        }
    }
}

/// A file the target holds with other content than the archive's, kept; listed in placement
/// order (blobs, `_layers`, revisions, tag history, tags, uploads), then by path, by the merge
/// and its rehearsal alike.
struct MergeConflict {
    var path: StorePath
    var message: String

    static func ordered(_ conflicts: [MergeConflict]) -> [String] {
        conflicts.map { (MemberRole($0.path).placementRank, $0) }
            .sorted { ($0.0, $0.1.path.description) < ($1.0, $1.1.path.description) }
            .map(\.1.message)
    }
}

/// `--merge`: moves the staged tree into the target's. A directory the target lacks moves
/// whole, with one rename (a repository, a blob's directory, a tag's); one it has is entered;
/// a file moves unless the target has one, which is kept and compared. Cost is one rename per
/// directory or file the target lacks, through descriptors opened once per directory; files
/// the target held alike when they were read were never staged (`StagingArea`), so a merge
/// into a store that still has most of the archive costs about what a restore into an empty
/// root does.
///
/// Order keeps the registry's view whole at every step: the blob tree before the repositories,
/// and within a directory entries in name order (`_layers` < `_manifests` < `_uploads`,
/// `revisions` < `tags`) except that a tag's `current` comes after its `index`. A merge cut
/// short leaves whole files and no link to an absent blob or revision; running it again moves
/// the rest, finding what was placed equal.
private struct StagedTreeMerge {
    let staging: String
    let target: String
    let storage: LocalStorage
    /// Renames done: files, or directories moved whole.
    private var placed = 0
    private var conflicts: [MergeConflict] = []

    init(staging: String, target: String) throws {
        self.staging = staging
        self.target = target
        storage = try LocalStorage(root: target)
    }

    /// The conflicts found, in placement order.
    consuming func run() throws(ArchiveError) -> [String] {
        let top = Layout.registryRoot.components.first ?? "docker"
        let source = try Self.openDirectory(AT_FDCWD, staging, for: staging)
        defer { close(source) }
        let destination = try Self.openDirectory(AT_FDCWD, target, for: target)
        defer { close(destination) }
        var info = stat()
        if fstatat(source, top, &info, AT_SYMLINK_NOFOLLOW) == 0 {
            try place(top, from: source, into: destination, at: [])
        }
        return MergeConflict.ordered(conflicts)
    }

    private mutating func place(_ name: String, from source: Int32, into destination: Int32, at parent: [String]) throws(ArchiveError) {
        let components = parent + [name]
        if regkeeper_rename_noreplace(source, name, destination, name) == 0 {
            placed += 1
            return
        }
        guard errno == EEXIST else { throw interrupted(components, "rename", .current) }
        var ours = stat(), theirs = stat()
        guard fstatat(source, name, &ours, AT_SYMLINK_NOFOLLOW) == 0 else { throw interrupted(components, "stat", .current) }
        guard fstatat(destination, name, &theirs, AT_SYMLINK_NOFOLLOW) == 0 else { throw interrupted(components, "stat", .current) }
        let oursIsDirectory = ours.st_mode & S_IFMT == S_IFDIR
        guard oursIsDirectory == (theirs.st_mode & S_IFMT == S_IFDIR) else {
            let (held, archived) = oursIsDirectory ? ("a file", "a directory") : ("a directory", "a file")
            if let path = StorePath(relative: components.joined(separator: "/")) {
                conflicts.append(MergeConflict(path: path, message: "\(path): the target holds \(held) where the archive has \(archived) (kept it)"))
            }
            return
        }
        if oursIsDirectory {
            let sourceDirectory = try Self.openDirectory(source, name, for: staging + "/" + components.joined(separator: "/"))
            defer { close(sourceDirectory) }
            let targetDirectory: Int32
            do throws(ArchiveError) {
                targetDirectory = try Self.openDirectory(destination, name, for: target + "/" + components.joined(separator: "/"))
            } catch {
                throw .mergeInterrupted(target: target, placed: placed, cause: error.description)
            }
            defer { close(targetDirectory) }
            for child in try Self.placementOrder(Self.entries(sourceDirectory, staging + "/" + components.joined(separator: "/"))) {
                try place(child, from: sourceDirectory, into: targetDirectory, at: components)
            }
            return
        }
        if Self.agree(name, source, ours, destination, theirs, isBlobData: components.count > 4 && components[3] == "blobs") { return }
        guard let path = StorePath(relative: components.joined(separator: "/")) else { return }
        let conflict: String?
        do {
            conflict = try RestoreExecutor.conflict(at: path, in: storage, ourSize: Int64(ours.st_size)) {
                FileManager.default.contents(atPath: staging + "/" + components.joined(separator: "/"))
            }
        } catch {
            throw .mergeInterrupted(target: target, placed: placed, cause: "\(error)")
        }
        if let conflict { conflicts.append(MergeConflict(path: path, message: conflict)) }
    }

    private func interrupted(_ components: [String], _ operation: String, _ errno: Errno) -> ArchiveError {
        .mergeInterrupted(target: target, placed: placed, cause: "\(operation) \(components.joined(separator: "/")): \(errno)")
    }

    /// Whether the target's file certainly agrees with ours, told through the directory
    /// descriptors at hand: a blob of the same size, or another file of the same bytes. A
    /// rerun of a merge meets every file it placed before, so this is its common case; any
    /// doubt goes to `RestoreExecutor.conflict`, which also words the report.
    private static func agree(_ name: String, _ source: Int32, _ ours: stat, _ destination: Int32, _ theirs: stat, isBlobData: Bool) -> Bool {
        guard ours.st_size == theirs.st_size else { return false }
        if isBlobData { return true }
        guard ours.st_size <= RestoreExecutor.comparedBytes, let our = head(name, in: source), let their = head(name, in: destination) else { return false }
        return our == their
    }

    /// Up to `comparedBytes` of a file, or nil if it cannot be read.
    private static func head(_ name: String, in directory: Int32) -> [UInt8]? {
        let descriptor = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: RestoreExecutor.comparedBytes)
        let filled = bytes.withUnsafeMutableBytes { buffer in try? SystemCall.readFully(descriptor, into: buffer) }
        return filled.map { Array(bytes[0..<$0]) }
    }

    /// Name order, but a tag's `current` after its `index`: a tag appears last.
    private static func placementOrder(_ names: [String]) -> [String] {
        names.sorted { ($0 == "current" ? 1 : 0, $0) < ($1 == "current" ? 1 : 0, $1) }
    }

    private static func openDirectory(_ parent: Int32, _ name: String, for path: String) throws(ArchiveError) -> Int32 {
        let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(path: path, operation: "open directory", errno: .current) }
        return descriptor
    }

    private static func entries(_ directory: Int32, _ path: String) throws(ArchiveError) -> [String] {
        let copy = dup(directory)
        guard copy >= 0, let stream = fdopendir(copy) else { throw .io(path: path, operation: "read directory", errno: .current) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }
}
