import Foundation
import RegistryModel
import RegistryStore

/// One `regkeeper backup`: read the snapshot, subtract what the catalog's chain already
/// carries (incremental), write the archive, record it. The caller holds the shared lock.
public struct Backup: Sendable {
    public let catalogDirectory: String
    public var incremental = false
    public var includeGarbage = false
    /// What the archive is written with (store, compression level, threads, hooks, progress);
    /// the snapshot reads the same store with the same threads, hooks and progress.
    public var writer: ArchiveWriter

    public var storage: any StoreStorage { writer.storage }

    public init(storage: any StoreStorage, catalogDirectory: String, toolVersion: String, sourceRoot: String) {
        self.catalogDirectory = catalogDirectory
        writer = ArchiveWriter(storage: storage, toolVersion: toolVersion, sourceRoot: sourceRoot)
    }

    /// The snapshot and what an archive of it would hold, written nowhere: `--dry-run` prints
    /// it, `run` writes it. A dry run of an incremental backup reads the catalog but never
    /// creates one.
    public func plan() async throws -> BackupPlan {
        try await plan(catalog: incremental ? existingCatalog() : nil)
    }

    public func run(output: String) async throws -> BackupResult {
        try Self.checkOutput(output, storeRoot: writer.sourceRoot)
        let catalog = try BackupCatalog.open(directory: catalogDirectory)
        let plan = try await plan(catalog: incremental ? catalog : nil)
        let hidden = plan.findings.compactMap { finding -> StoreFinding? in
            if case .store(let found) = finding, found.hidesContent { return found }
            return nil
        }
        guard hidden.isEmpty else { throw ArchiveError.incompleteStore(hidden) }
        try await writer.hooks.afterSnapshot()
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
        planner.jobs = writer.jobs
        return try await writer.reporter.phase("snapshot") { try await planner.plan(chain: chain, archived: archived) }.0
    }

    private func existingCatalog() throws(ArchiveError) -> BackupCatalog {
        let path = URL(fileURLWithPath: catalogDirectory).appendingPathComponent(BackupCatalog.fileName).path
        guard FileManager.default.fileExists(atPath: path) else { throw .noFullBackup(catalog: path) }
        return try BackupCatalog.open(directory: catalogDirectory)
    }
}
