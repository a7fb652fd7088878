import Foundation
import RegistryModel
import RegistryStore

/// One `regkeeper backup`: read the snapshot, subtract what the catalog's chain already
/// carries (incremental), write the archive, record it. The caller holds the shared lock.
public struct Backup: Sendable {
    public let storage: any StoreStorage
    public let catalogDirectory: String
    public var incremental = false
    public var includeGarbage = false
    public var level = 1
    public var jobs = 2
    public var toolVersion: String
    public var sourceRoot: String
    public var hooks = BackupHooks()
    public var reporter: any ProgressReporter = SilentReporter()

    public init(storage: any StoreStorage, catalogDirectory: String, toolVersion: String, sourceRoot: String) {
        self.storage = storage
        self.catalogDirectory = catalogDirectory
        self.toolVersion = toolVersion
        self.sourceRoot = sourceRoot
    }

    /// The snapshot and what an archive of it would hold, written nowhere: `--dry-run` prints
    /// it, `run` writes it. A dry run of an incremental backup reads the catalog but never
    /// creates one.
    public func plan() async throws -> BackupPlan {
        try await plan(catalog: incremental ? existingCatalog() : nil)
    }

    public func run(output: String) async throws -> BackupResult {
        try Self.checkOutput(output, storeRoot: sourceRoot)
        let catalog = try BackupCatalog.open(directory: catalogDirectory)
        let plan = try await plan(catalog: incremental ? catalog : nil)
        let hidden = plan.findings.compactMap { finding -> StoreFinding? in
            if case .store(let found) = finding, found.hidesContent { return found }
            return nil
        }
        guard hidden.isEmpty else { throw ArchiveError.incompleteStore(hidden) }
        try await hooks.afterSnapshot()
        var writer = ArchiveWriter(storage: storage, toolVersion: toolVersion, sourceRoot: sourceRoot)
        writer.level = level
        writer.jobs = jobs
        writer.hooks = hooks
        writer.reporter = reporter
        let result = try await writer.write(plan, to: output)
        try await catalog.record(result.index, path: result.path, archiveBytes: result.archiveBytes)
        return result
    }

    /// Refuses an output whose directory is missing (named, rather than the hidden partial
    /// file that could not be created), or lies in the registry tree of the store being
    /// backed up: the registry would see the archive's partial file as store content, and the
    /// store's disk is the one a backup must survive.
    static func checkOutput(_ output: String, storeRoot: String) throws(ArchiveError) {
        let directory = URL(fileURLWithPath: output).deletingLastPathComponent().path
        guard let resolved = realpath(directory, nil) else { throw .outputDirectoryMissing(path: directory) }
        defer { free(resolved) }
        guard let root = realpath(storeRoot, nil) else { return }
        defer { free(root) }
        let tree = String(cString: root) + "/" + (Layout.registryRoot.components.first ?? "docker")
        let outputDirectory = String(cString: resolved)
        if outputDirectory == tree || outputDirectory.hasPrefix(tree + "/") {
            throw .outputInsideStore(output: output, store: storeRoot)
        }
    }

    /// - Parameter catalog: the chain to build on, for an incremental backup.
    private func plan(catalog: BackupCatalog?) async throws -> BackupPlan {
        var chain: [ChainLink] = []
        var archived: [Digest: ArchiveID] = [:]
        if let catalog {
            let entries = try await catalog.chain()
            chain = entries.map { ChainLink(id: $0.id, file: URL(fileURLWithPath: $0.path).lastPathComponent) }
            archived = try await catalog.blobs(in: entries.map(\.id))
        }
        var planner = BackupPlanner(storage: storage)
        planner.includeGarbage = includeGarbage
        planner.jobs = jobs
        return try await reporter.phase("snapshot") { try await planner.plan(chain: chain, archived: archived) }.0
    }

    private func existingCatalog() throws(ArchiveError) -> BackupCatalog {
        let path = URL(fileURLWithPath: catalogDirectory).appendingPathComponent(BackupCatalog.fileName).path
        guard FileManager.default.fileExists(atPath: path) else { throw .noFullBackup(catalog: path) }
        return try BackupCatalog.open(directory: catalogDirectory)
    }
}

/// `backup reindex DIR`: rebuilds the catalog from the indexes of the archives in a directory.
///
/// Every file of the directory but hidden ones (partial archives) and the catalog's own is
/// taken for an archive: one whose table of contents cannot be read (cut short, empty, not an
/// archive at all) is named in the outcome and recorded in the catalog as unreadable, so that
/// `restore --latest` refuses instead of quietly restoring the chain before it.
public struct Reindex {
    public init() {}

    public struct Outcome: Sendable, Encodable {
        public var archives: [String] = []
        /// Files that should be archives but could not be read, each with why.
        public var unreadable: [UnreadableArchive] = []
    }

    public func run(directory: String, catalogDirectory: String) async throws -> Outcome {
        var outcome = Outcome()
        var found: [(index: ArchiveIndex, path: String, bytes: UInt64)] = []
        guard let listing = opendir(directory) else { throw ArchiveError.io(path: directory, operation: "open directory", errno: .current) }
        closedir(listing)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        for name in names where !name.hasPrefix(".") && !BackupCatalog.ownsFile(named: name) {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            do throws(ArchiveError) {
                let reader = try ArchiveReader(path: path)
                guard let index = reader.index else {
                    throw ArchiveError.truncated(archive: path, reason: "no table of contents at its end (cut short, or a plain tar archive, which a catalog cannot hold)")
                }
                found.append((index, path, UInt64(reader.fileSize)))
                outcome.archives.append(path)
            } catch {
                outcome.unreadable.append(UnreadableArchive(path: path, reason: error.description))
            }
        }
        try await BackupCatalog.open(directory: catalogDirectory).replaceAll(with: found, unreadable: outcome.unreadable)
        return outcome
    }
}

/// `backup verify FILE…`: reads every member of every archive and checks it against its index,
/// each blob against its digest, and, when several are given, that they form one chain.
public struct ArchiveVerifier {
    public init() {}

    public struct ArchiveReport: Sendable, Encodable {
        public var path: String
        public var id: ArchiveID?
        public var kind: ArchiveKind?
        public var members = 0
        public var bytes: UInt64 = 0
        public var excludedBlobs: [String] = []
        public var error: String?
    }

    public struct Report: Sendable, Encodable {
        public var archives: [ArchiveReport] = []
        public var chainError: String?
        public var isValid: Bool { chainError == nil && archives.allSatisfy { $0.error == nil } }
    }

    public func verify(_ paths: [String]) -> Report {
        var report = Report()
        var readers: [ArchiveReader] = []
        for path in paths {
            var archive = ArchiveReport(path: path)
            do {
                let reader = try ArchiveReader(path: path)
                archive.id = reader.index?.metadata.id
                archive.kind = reader.index?.metadata.kind
                archive.excludedBlobs = reader.index?.excluded.map { "\($0.digest) (hashed to \($0.actual))" } ?? []
                var blobMembers = Set<Digest>()
                try reader.forEachMember { member in
                    archive.members += 1
                    archive.bytes += member.entry.size
                    if let digest = member.blobDigest { blobMembers.insert(digest) }
                    try member.readContent { _ in }
                }
                if let index = reader.index {
                    if let absent = index.carriedBlobs.first(where: { !blobMembers.contains($0.digest) }) {
                        throw ArchiveError.indexMismatch(archive: path, reason: "blob \(absent.digest) is listed as carried but is no member")
                    }
                }
                readers.append(reader)
            } catch {
                archive.error = "\(error)"
            }
            report.archives.append(archive)
        }
        if readers.count == paths.count, !readers.isEmpty, readers.count > 1 || readers[0].index?.metadata.kind == .full {
            do {
                _ = try ArchiveChain(readers).neededBlobs(repositories: nil)
            } catch {
                report.chainError = "\(error)"
            }
        }
        return report
    }
}
