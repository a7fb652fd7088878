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
    ///
    /// Repositories are scanned and marked one at a time per worker and only their marks are
    /// kept, so memory grows with the number of blobs, not with every link in the store.
    public func plan() async throws -> GCPlan {
        let markStartedAt = now()
        let scanner = StoreScanner(storage: storage)
        let jobs = options.jobs
        var plan = GCPlan(
            options: .init(
                deleteUntagged: options.deleteUntagged, gracePeriod: options.gracePeriod.description,
                uploadMaxAge: options.uploadMaxAge.description, allowBroken: options.allowBroken),
            markStartedAt: markStartedAt)
        let uploadCutoff = markStartedAt.addingTimeInterval(-TimeInterval(options.uploadMaxAge.seconds))

        var marking = DigestSet.Builder()
        var repositories: [RepositoryName] = []
        try await reporter.phase("mark") {
            let (names, findings) = scanner.repositories()
            repositories = names
            plan.findings += findings
            if try storage.status(Layout.repositoriesRoot) == nil, try !scanner.shardDirectories().shards.isEmpty {
                plan.incomplete.append(.unreadable(
                    path: Layout.repositoriesRoot, reason: "absent while blobs/ holds data (an unmounted or half-restored volume?)"))
            }
            let storage = storage
            let deleteUntagged = options.deleteUntagged
            var done: Int64 = 0
            try await boundedForEach(names, jobs: jobs) { name in
                let (state, scanFindings) = scanner.scanRepository(name, depth: .marking)
                var findings = scanFindings
                var mark = MarkPhase(loader: ManifestLoader(storage: storage), deleteUntagged: deleteUntagged).mark(state)
                if !mark.broken.isEmpty {
                    // Its blobs are unknown: keep everything the repository could reference.
                    // A listing that fails makes the mark incomplete: nothing would keep them.
                    for algorithm in Digest.Algorithm.allCases {
                        mark.marked.formUnion(scanner.digestDirectories(Layout.layersDirectory(name, algorithm), algorithm, &findings))
                    }
                }
                let removals = mark.untagged.map { digest in
                    GCPlan.ManifestRemoval(
                        repository: name, digest: digest, tagHistory: tagHistory(of: digest, state), reason: "untagged")
                }
                let uploads = state.uploads.filter { $0.startedAt < uploadCutoff }.sorted { $0.uuid < $1.uuid }
                return (mark, removals, findings, uploads, state.revisions.count)
            } consume: { mark, removals, findings, uploads, revisions in
                marking.insert(contentsOf: mark.marked)
                plan.manifests += removals
                plan.broken += mark.broken
                plan.findings += findings
                plan.counts.manifestsTraversed += mark.kept.count
                plan.counts.manifests += revisions
                plan.links += mark.missingRevisions.map {
                    .init(repository: mark.repository, digest: $0, kind: .revision, reason: "manifest blob is missing")
                }
                plan.uploads += uploads.map {
                    .init(repository: mark.repository, uuid: $0.uuid, startedAt: $0.startedAt, bytes: $0.bytes)
                }
                done += 1
                reporter.progress("mark", done: done, total: Int64(names.count), unit: .items)
            }
        }
        let marked = marking.build()
        plan.counts.repositories = repositories.count
        plan.incomplete += plan.findings.filter(\.hidesContent)
        plan.findings.removeAll(where: \.hidesContent)
        // What a mark that did not see everything leaves unmarked says nothing: plan no deletions.
        guard plan.incomplete.isEmpty else { return plan.refusingToSweep() }

        let graceCutoff = markStartedAt.addingTimeInterval(-TimeInterval(options.gracePeriod.seconds))
        var unmarked: Set<Digest> = []
        try await reporter.phase("plan") {
            let (candidates, present, findings) = try await scanner.unmarkedBlobs(marked, jobs: jobs)
            plan.findings += findings
            plan.counts.blobs = present
            for (digest, status, hasData) in candidates {
                unmarked.insert(digest)
                guard let status, status.modified < graceCutoff else {
                    plan.counts.blobsInGracePeriod += 1
                    continue
                }
                plan.blobs.append(.init(
                    digest: digest, bytes: hasData ? status.size : 0,
                    reason: hasData ? "unreferenced" : "blob directory without data"))
            }
            plan.blobs.sort { $0.digest < $1.digest }
            plan.counts.blobsMarked = present - candidates.count
            let (dangling, listingFindings) = try await danglingLayerLinks(
                repositories, marked: marked, unmarked: unmarked, deleted: Set(plan.blobs.map(\.digest)))
            plan.links += dangling
            plan.incomplete += listingFindings
        }
        guard plan.incomplete.isEmpty else { return plan.refusingToSweep() }
        plan.manifests.sort { ($0.repository, $0.digest) < ($1.repository, $1.digest) }
        plan.links.sort { ($0.repository, $0.kind.rawValue, $0.digest) < ($1.repository, $1.kind.rawValue, $1.digest) }
        plan.uploads.sort { ($0.repository, $0.uuid) < ($1.repository, $1.uuid) }
        return plan
    }

    /// Tags whose history lists a manifest: their `index/` entries go with it. A marking scan
    /// does not list histories, so each tag's entry is probed (untagged manifests are few).
    private func tagHistory(of digest: Digest, _ state: RepositoryState) -> [Tag] {
        state.tags.filter { tag, tagState in
            if let history = tagState.history { return history.contains(digest) }
            return (try? storage.status(Layout.tagIndexEntryDirectory(state.name, tag, digest))) != nil
        }.map(\.key).sorted()
    }

    /// `_layers` links whose blob is swept now or absent already. A link's directory names its
    /// digest, so only directories are listed. A marked blob that is absent is a damaged image,
    /// which verify reports; gc leaves its links alone.
    private func danglingLayerLinks(
        _ repositories: [RepositoryName], marked: DigestSet, unmarked: Set<Digest>, deleted: Set<Digest>
    ) async throws -> (links: [GCPlan.LinkRemoval], findings: [StoreFinding]) {
        let scanner = StoreScanner(storage: storage)
        var links: [GCPlan.LinkRemoval] = []
        var findings: [StoreFinding] = []
        try await boundedForEach(repositories, jobs: options.jobs) { name in
            var links: [GCPlan.LinkRemoval] = []
            var findings: [StoreFinding] = []
            for algorithm in Digest.Algorithm.allCases {
                for digest in scanner.digestDirectories(Layout.layersDirectory(name, algorithm), algorithm, &findings) {
                    if deleted.contains(digest) {
                        links.append(.init(repository: name, digest: digest, kind: .layer, reason: "blob swept by this run"))
                    } else if !marked.contains(digest), !unmarked.contains(digest) {
                        links.append(.init(repository: name, digest: digest, kind: .layer, reason: "blob is missing"))
                    }
                }
            }
            return (links, findings)
        } consume: {
            links += $0.0
            findings += $0.1
        }
        return (links, findings)
    }
}

struct ManifestKey: Hashable, Sendable {
    var repository: RepositoryName
    var digest: Digest
}
