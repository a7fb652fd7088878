import Foundation
import RegistryModel
import RegistryStore

/// Mark and sweep over one store: `plan()` reads and decides, `SweepExecutor` deletes.
public struct GarbageCollector: Sendable {
    public let storage: any StoreStorage
    public let options: GCOptions
    public let reporter: any ProgressReporter
    /// Injected clock, so that tests can age blobs and uploads without sleeping.
    public let now: @Sendable () -> Date

    public init(
        storage: any StoreStorage, options: GCOptions, reporter: any ProgressReporter = SilentReporter(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.storage = storage
        self.options = options
        self.reporter = reporter
        self.now = now
    }

    /// Scans the store, marks what is reachable and lists what the sweep would delete.
    public func plan() async throws -> GCPlan {
        let markStartedAt = now()
        let scanner = StoreScanner(storage: storage)
        let loader = ManifestLoader(storage: storage)
        let jobs = options.jobs
        var plan = GCPlan(
            options: .init(
                deleteUntagged: options.deleteUntagged, gracePeriod: options.gracePeriod.description,
                uploadMaxAge: options.uploadMaxAge.description, allowBroken: options.allowBroken),
            markStartedAt: markStartedAt)

        let ((repositories, blobs), _) = try await reporter.phase("scan") {
            let (names, repositoryFindings) = try scanner.repositories()
            plan.findings += repositoryFindings
            let scanned = try await boundedMap(names, jobs: jobs) { scanner.scanRepository($0) }
            let (blobs, blobFindings) = try await scanner.blobs(jobs: jobs)
            plan.findings += scanned.flatMap(\.findings) + blobFindings
            return (scanned.map(\.state), blobs)
        }

        let (marks, _) = try await reporter.phase("mark") {
            let markPhase = MarkPhase(loader: loader, deleteUntagged: options.deleteUntagged)
            return try await boundedMap(repositories, jobs: jobs) { markPhase.mark($0) }
        }
        var marked: Set<Digest> = []
        for (state, mark) in zip(repositories, marks) {
            marked.formUnion(mark.marked)
            plan.manifests += mark.removals
            plan.broken += mark.broken
            plan.counts.manifestsTraversed += mark.kept.count
            if !mark.broken.isEmpty {
                // Its blobs are unknown: keep everything the repository could reference.
                marked.formUnion(state.layers.values.map(\.target))
            }
        }
        plan.counts.repositories = repositories.count
        plan.counts.manifests = repositories.reduce(0) { $0 + $1.revisions.count }
        plan.counts.blobs = blobs.count
        plan.counts.blobsMarked = blobs.count { marked.contains($0.digest) }

        try await reporter.phase("plan") {
            try await planBlobDeletions(blobs, marked: marked, into: &plan)
        }
        let deleted = Set(plan.blobs.map(\.digest))
        let present = Set(blobs.lazy.filter(\.hasData).map(\.digest))
        let removedManifests = Set(plan.manifests.map { ManifestKey(repository: $0.repository, digest: $0.digest) })
        let cutoff = markStartedAt.addingTimeInterval(-TimeInterval(options.uploadMaxAge.seconds))
        for state in repositories {
            for (digest, link) in state.layers.sorted(by: { $0.key < $1.key })
            where !present.contains(link.target) || deleted.contains(link.target) {
                plan.links.append(.init(
                    repository: state.name, digest: digest, kind: .layer,
                    reason: deleted.contains(link.target) ? "blob swept by this run" : "blob is missing"))
            }
            for (digest, link) in state.revisions.sorted(by: { $0.key < $1.key })
            where !present.contains(link.target)
                && !removedManifests.contains(ManifestKey(repository: state.name, digest: digest)) {
                plan.links.append(.init(repository: state.name, digest: digest, kind: .revision, reason: "manifest blob is missing"))
            }
            for upload in state.uploads.sorted(by: { $0.uuid < $1.uuid }) where upload.startedAt < cutoff {
                plan.uploads.append(.init(repository: state.name, uuid: upload.uuid, startedAt: upload.startedAt, bytes: upload.bytes))
            }
        }
        return plan
    }

    /// Unmarked blobs older than the grace period; the stat happens only for candidates.
    private func planBlobDeletions(_ blobs: [BlobEntry], marked: Set<Digest>, into plan: inout GCPlan) async throws {
        let candidates = blobs.filter { !marked.contains($0.digest) }
        let storage = storage
        let graceCutoff = plan.markStartedAt.addingTimeInterval(-TimeInterval(options.gracePeriod.seconds))
        let decided = try await boundedMap(chunked(candidates, jobs: options.jobs), jobs: options.jobs) { chunk in
            try chunk.map { blob throws(StorageError) -> GCPlan.BlobDeletion? in
                let path = blob.hasData ? Layout.blobData(blob.digest) : Layout.blobDirectory(blob.digest)
                guard let status = try storage.status(path), status.modified < graceCutoff else { return nil }
                return GCPlan.BlobDeletion(
                    digest: blob.digest, bytes: blob.hasData ? status.size : 0,
                    reason: blob.hasData ? "unreferenced" : "blob directory without data")
            }
        }.flatMap { $0 }
        plan.blobs = decided.compactMap { $0 }.sorted { $0.digest < $1.digest }
        plan.counts.blobsInGracePeriod = candidates.count - plan.blobs.count
    }
}

struct ManifestKey: Hashable, Sendable {
    var repository: RepositoryName
    var digest: Digest
}
