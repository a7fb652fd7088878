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
            staging = try StagingArea(target: target)
        }
        defer { staging?.remove() }

        var (result, staged) = try reporter.phase("restore") {
            try stage(chain, needed: needed, into: staging, rehearsal: rehearsal)
        }.0
        guard let staging else {
            result.conflicts = rehearsal?.conflicts ?? []
            return result
        }
        try reporter.phase("sync") { try staging.sync() }
        try reporter.phase("place") {
            if options.merge {
                try merge(staged, from: staging, into: &result)
            } else {
                try moveWhole(staging)
            }
        }
        return result
    }

    /// Streams the chain's members into `staging` (or, for a dry run, through `rehearsal`),
    /// checking each; returns the counts and the files staged, in stream order.
    private func stage(_ chain: ArchiveChain, needed: [Digest: ArchiveID], into staging: StagingArea?,
                       rehearsal: MergeRehearsal?) throws -> (RestoreResult, [(StorePath, MemberRole)]) {
        var result = RestoreResult(archives: chain.readers.map(\.path))
        var staged: [(StorePath, MemberRole)] = []
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
                    try staging.write(path, mtime: member.entry.mtime, archive: reader.path) { sink in try member.readContent(sink) }
                } else {
                    try rehearsal?.check(member, at: path, order: staged.count) ?? member.readContent { _ in }
                }
                staged.append((path, member.role))
                try afterMember(staged.count)
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
        return (result, staged)
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
        let blobsPrefix = Layout.registryRoot.description + "/blobs/"
        func blocks(_ size: UInt64) -> UInt64 { size / block &* block &+ (size % block == 0 ? 0 : block) }
        var total: UInt64 = 0
        for member in last.members where !member.path.hasPrefix(blobsPrefix) { total &+= blocks(member.size) }
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

    /// Moves what the target lacks, blobs first and tags last, so a merge cut short never
    /// leaves a link to something absent; never replaces a file, and reports files that differ.
    private func merge(_ staged: [(StorePath, MemberRole)], from staging: StagingArea, into result: inout RestoreResult) throws {
        let storage = try LocalStorage(root: target)
        let ordered = staged.enumerated().sorted {
            ($0.element.1.placementRank, $0.offset) < ($1.element.1.placementRank, $1.offset)
        }
        var placed = 0
        for (_, (path, _)) in ordered {
            do {
                try storage.reattach(path, from: staging.root)
                placed += 1
                continue
            } catch {
                guard case .alreadyExists = error else {
                    throw ArchiveError.mergeInterrupted(target: target, placed: placed, cause: error.description)
                }
            }
            let ours = staging.path(path)
            let size = (try? FileManager.default.attributesOfItem(atPath: ours))?[.size] as? Int
            if let conflict = try Self.conflict(at: path, in: storage, ourSize: size.map(Int64.init), ourContent: { FileManager.default.contents(atPath: ours) }) {
                result.conflicts.append(conflict)
            }
        }
    }

    /// How much of the target's link or other file a merge compares.
    fileprivate static let comparedBytes = 4096

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
    private var found: [(rank: Int, order: Int, conflict: String)] = []

    init(target: String) throws {
        storage = FileManager.default.fileExists(atPath: target) ? try LocalStorage(root: target) : nil
    }

    var conflicts: [String] {
        found.sorted { ($0.rank, $0.order) < ($1.rank, $1.order) }.map(\.conflict)
    }

    func check(_ member: ArchiveReader.Member, at path: StorePath, order: Int) throws {
        var head = Data()
        try member.readContent { chunk in
            if head.count <= Self.compared { head.append(contentsOf: chunk.prefix(Self.compared + 1 - head.count)) }
        }
        guard let storage else { return }
        if let conflict = try RestoreExecutor.conflict(at: path, in: storage, ourSize: Int64(member.entry.size), ourContent: { head }) {
            found.append((MemberRole(path).placementRank, order, conflict))
        }
    }
}
