import Foundation
import RegistryModel
import RegistryStore

/// Test seams inside a run; not user flags.
public struct SweepHooks: Sendable {
    /// Runs after the plan is made and before the late re-read, where a concurrent push lands.
    public var beforeSweep: @Sendable () async throws -> Void
    /// Runs after each deletion, so a test can stop the process at any point.
    public var afterDeletion: @Sendable (String) async throws -> Void

    public init(
        beforeSweep: @escaping @Sendable () async throws -> Void = {},
        afterDeletion: @escaping @Sendable (String) async throws -> Void = { _ in }
    ) {
        self.beforeSweep = beforeSweep
        self.afterDeletion = afterDeletion
    }
}

/// What a sweep did: the plan as applied, what a concurrent push saved, what failed.
public struct GCResult: Sendable, Encodable {
    public var applied: GCPlan
    /// Blobs and manifests dropped from the plan because links written during the run use them.
    public var protectedBlobs: [Digest] = []
    public var protectedManifests: [String] = []
    /// Deletions that failed; the run continued with the rest.
    public var failures: [String] = []
}

/// Applies a plan in an order that keeps the store consistent if it stops anywhere: first the
/// links of manifests no longer kept (so nothing reachable points at what follows), then
/// blobs, then links left dangling, then uploads, then the directories that became empty.
public struct SweepExecutor: Sendable {
    public let storage: any StoreStorage
    public let reporter: any ProgressReporter
    public let hooks: SweepHooks
    /// A trash area (`Trash.area`) to move swept items into, or nil to delete them.
    public let trashArea: String?

    public init(
        storage: any StoreStorage, reporter: any ProgressReporter = SilentReporter(), hooks: SweepHooks = SweepHooks(),
        trashArea: String? = nil
    ) {
        self.storage = storage
        self.reporter = reporter
        self.hooks = hooks
        self.trashArea = trashArea
    }

    /// Deletes, or moves into the trash area; a path already gone is not an error.
    private func dispose(_ path: StorePath) throws(StorageError) {
        guard let trashArea else {
            try storage.remove(path)
            return
        }
        do {
            try storage.detach(path, into: trashArea)
        } catch .notFound {
            return
        }
    }

    /// Links whose mtime is this close to the mark's start count as written during the run:
    /// filesystems round times, and a push may have begun just before the mark.
    static let clockSlack: TimeInterval = 2

    public func execute(_ plan: GCPlan) async throws -> GCResult {
        guard plan.sweepAllowed else { throw GCError.brokenManifests(plan.broken) }
        try await hooks.beforeSweep()
        let (fresh, _) = try reporter.phase("re-read") { try recentlyLinked(since: plan.markStartedAt) }

        var result = GCResult(applied: plan)
        result.applied.blobs = plan.blobs.filter { !fresh.blobs.contains($0.digest) }
        result.applied.manifests = plan.manifests.filter {
            !fresh.manifests.contains(ManifestKey(repository: $0.repository, digest: $0.digest))
        }
        result.applied.links = plan.links.filter { !fresh.blobs.contains($0.digest) }
        result.protectedBlobs = plan.blobs.map(\.digest).filter { fresh.blobs.contains($0) }
        result.protectedManifests = plan.manifests
            .filter { fresh.manifests.contains(ManifestKey(repository: $0.repository, digest: $0.digest)) }
            .map { "\($0.repository)@\($0.digest)" }

        var touched: [StorePath] = []
        var relinked: Set<GCPlan.LinkRemoval> = []
        try await reporter.phase("sweep") {
            var done: Int64 = 0
            let total = Int64(result.applied.manifests.count + result.applied.blobs.count + result.applied.links.count + result.applied.uploads.count)
            func step(_ what: String, _ path: StorePath, _ action: () throws(StorageError) -> Void) async throws {
                do {
                    try action()
                    touched.append(path)
                } catch {
                    result.failures.append("\(what): \(error)")
                }
                done += 1
                if done % 1024 == 0 || done == total { reporter.progress("sweep", done: done, total: total, unit: .items) }
                try await hooks.afterDeletion(what)
            }
            for removal in result.applied.manifests {
                let revision = Layout.revisionDirectory(removal.repository, removal.digest)
                try await step("manifest \(removal.repository)@\(removal.digest)", revision) { () throws(StorageError) in
                    for tag in removal.tagHistory {
                        try dispose(Layout.tagIndexEntryDirectory(removal.repository, tag, removal.digest))
                    }
                    try dispose(revision)
                }
            }
            for blob in result.applied.blobs {
                try await step("blob \(blob.digest)", Layout.blobDirectory(blob.digest)) { () throws(StorageError) in
                    try dispose(Layout.blobDirectory(blob.digest))
                }
            }
            for link in result.applied.links {
                let path = link.kind == .layer
                    ? Layout.layerLinkDirectory(link.repository, link.digest)
                    : Layout.revisionDirectory(link.repository, link.digest)
                // A blob pushed again since the plan makes the link valid again: keep it.
                guard try storage.status(Layout.blobData(link.digest)) == nil else {
                    relinked.insert(link)
                    continue
                }
                try await step("\(link.kind) link \(link.repository)@\(link.digest)", path) { () throws(StorageError) in
                    try dispose(path)
                }
            }
            for upload in result.applied.uploads {
                guard let path = Layout.uploadDirectory(upload.repository, uuid: upload.uuid) else { continue }
                try await step("upload \(upload.repository) \(upload.uuid)", path) { () throws(StorageError) in
                    try dispose(path)
                }
            }
        }
        result.applied.links.removeAll { relinked.contains($0) }
        pruneEmptyParents(of: touched)
        let repositories = Set(result.applied.manifests.map(\.repository) + result.applied.links.map(\.repository)
            + result.applied.uploads.map(\.repository))
        for repository in repositories.sorted() { removeIfHoldsNoFiles(Layout.repositoryDirectory(repository)) }
        return result
    }

    /// Manifests and blobs that links written since `since` depend on, walked like the mark.
    private func recentlyLinked(since: Date) throws -> (blobs: Set<Digest>, manifests: Set<ManifestKey>) {
        let threshold = since.addingTimeInterval(-Self.clockSlack)
        let scanner = StoreScanner(storage: storage)
        let loader = ManifestLoader(storage: storage)
        var blobs: Set<Digest> = []
        var manifests: Set<ManifestKey> = []
        for name in try scanner.repositories().names {
            let state = scanner.scanRepository(name, depth: .marking).state
            var roots = state.revisions.values.filter { $0.modified >= threshold }.map(\.target)
            roots += state.tags.values.filter { ($0.modified ?? .distantPast) >= threshold }.compactMap(\.current)
            for algorithm in Digest.Algorithm.allCases {
                let layers = try? storage.list(Layout.layersDirectory(name, algorithm), probing: "link")
                for probed in layers ?? [] where (probed.probe?.modified ?? .distantFuture) >= threshold {
                    if let digest = Digest(algorithm: algorithm, hex: probed.entry.name) { blobs.insert(digest) }
                }
            }
            var stack = roots
            var seen: Set<Digest> = []
            while let digest = stack.popLast() {
                guard seen.insert(digest).inserted else { continue }
                blobs.insert(digest)
                manifests.insert(ManifestKey(repository: name, digest: digest))
                if case .success(let manifest) = loader.load(digest) {
                    blobs.formUnion(manifest.blobReferences.map(\.digest))
                    stack += manifest.children.map(\.digest)
                    // A referrer pushed now keeps its subject's untagged revision too.
                    if let subject = manifest.subject { stack.append(subject.digest) }
                }
            }
        }
        return (blobs, manifests)
    }

    /// Removes a repository that lost its last file, directories only (rmdir), bottom-up: a push
    /// that creates a file meanwhile makes the rmdir fail and the repository stays.
    private func removeIfHoldsNoFiles(_ directory: StorePath) {
        guard let entries = try? storage.list(directory) else { return }
        for entry in entries where entry.kind == .directory {
            if let child = directory.appending(entry.name) { removeIfHoldsNoFiles(child) }
        }
        if (try? storage.removeIfEmpty(directory)) == true {
            pruneEmptyParents(of: [directory])
        }
    }

    /// Removes directories the sweep left empty, up to (not including) `blobs/` and `repositories/`.
    private func pruneEmptyParents(of paths: [StorePath]) {
        let stops: Set<StorePath> = [Layout.blobsRoot, Layout.repositoriesRoot, Layout.registryRoot]
        for path in paths {
            var parent = path.parent
            while let directory = parent, !stops.contains(directory) {
                guard (try? storage.removeIfEmpty(directory)) == true else { break }
                parent = directory.parent
            }
        }
    }
}
