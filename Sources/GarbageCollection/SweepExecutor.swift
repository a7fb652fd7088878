import Foundation
import RegistryModel
import RegistryStore

/// Test seams inside a run; not user flags.
public struct SweepHooks: Sendable {
    /// Runs after the plan is made and before anything is taken out, where a concurrent push lands.
    public var beforeSweep: @Sendable () async throws -> Void
    /// Runs after each item is taken out of the store, so a test can stop the run at any point.
    public var afterEachItem: @Sendable (String) async throws -> Void

    public init(
        beforeSweep: @escaping @Sendable () async throws -> Void = {},
        afterEachItem: @escaping @Sendable (String) async throws -> Void = { _ in }
    ) {
        self.beforeSweep = beforeSweep
        self.afterEachItem = afterEachItem
    }
}

/// A deletion that did not happen: the item, where it is, and the error that stopped it.
public struct SweepFailure: Sendable, Hashable, Encodable, CustomStringConvertible {
    public var item: String
    public var path: StorePath
    public var reason: String

    public var description: String { "\(item) (\(path)): \(reason)" }

    private enum CodingKeys: String, CodingKey { case item, path, reason }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(item, forKey: .item)
        try container.encode(path.description, forKey: .path)
        try container.encode(reason, forKey: .reason)
    }
}

/// What a sweep did: the plan as applied (only what is really gone), what pushes during the
/// run saved, what failed.
public struct GCResult: Sendable, Encodable {
    public var applied: GCPlan
    /// Blobs and manifests put back because links written during the run use them.
    public var protectedBlobs: [Digest] = []
    public var protectedManifests: [GCPlan.ManifestRemoval] = []
    /// Deletions that did not happen; the run went on with the rest.
    public var failures: [SweepFailure] = []
    /// How long doomed items stayed out of sight before the re-read (the settle interval).
    public var settleSeconds: Int64 = 0
}

/// Applies a plan so that no push the registry acknowledges can lose what it links, while the
/// registry keeps serving:
///
/// 1. **detach**: every doomed item (untagged revisions and their tag-history entries, blobs,
///    dangling links, old uploads) is renamed into a sweep area. From then on the registry
///    cannot see it: a mount falls back to an upload, an upload writes a fresh copy, a
///    manifest PUT that names it is refused.
/// 2. **settle**: wait longer than any request that checked an item's existence before the
///    rename may take to write its link.
/// 3. **re-read**: every link written since the mark began, in the store and inside the sweep
///    area (a link rewritten just before its directory was moved), is walked like the mark.
/// 4. **put back** every item those links need; where the registry wrote a fresh copy, the
///    copy wins.
/// 5. **delete** the rest, or move the area into the trash.
///
/// Killed anywhere, the area is left behind and `SweepArea.recover` puts it all back.
public struct SweepExecutor: Sendable {
    public let storage: any StoreStorage
    public let area: SweepArea
    /// How long doomed items stay out of sight before links are re-read.
    public let settle: TimeSpan
    public let reporter: any ProgressReporter
    public let hooks: SweepHooks
    /// A trash area (`Trash.area`) to move swept items into, or nil to delete them.
    public let trashArea: String?

    public init(
        storage: any StoreStorage, area: SweepArea, settle: TimeSpan, reporter: any ProgressReporter = SilentReporter(),
        hooks: SweepHooks = SweepHooks(), trashArea: String? = nil
    ) {
        self.storage = storage
        self.area = area
        self.settle = settle
        self.reporter = reporter
        self.hooks = hooks
        self.trashArea = trashArea
    }

    /// Links whose mtime is this close to the mark's start count as written during the run:
    /// filesystems round times, and a push may have begun just before the mark.
    static let clockSlack: TimeInterval = 2

    /// One planned deletion and the store paths it takes out.
    private enum Item {
        case manifest(GCPlan.ManifestRemoval)
        case blob(GCPlan.BlobDeletion)
        case link(GCPlan.LinkRemoval)
        case upload(GCPlan.UploadPurge)

        var name: String {
            switch self {
            case .manifest(let removal): "manifest \(removal.repository)@\(removal.digest)"
            case .blob(let blob): "blob \(blob.digest)"
            case .link(let link): "\(link.kind) link \(link.repository)@\(link.digest)"
            case .upload(let upload): "upload \(upload.repository) \(upload.uuid)"
            }
        }

        /// Tag-history entries before the revision, so a kill in between leaves no history
        /// entry whose revision is gone unnoticed by the next run.
        var paths: [StorePath] {
            switch self {
            case .manifest(let removal):
                removal.tagHistory.map { Layout.tagIndexEntryDirectory(removal.repository, $0, removal.digest) }
                    + [Layout.revisionDirectory(removal.repository, removal.digest)]
            case .blob(let blob): [Layout.blobDirectory(blob.digest)]
            case .link(let link):
                [link.kind == .layer ? Layout.layerLinkDirectory(link.repository, link.digest) : Layout.revisionDirectory(link.repository, link.digest)]
            case .upload(let upload): Layout.uploadDirectory(upload.repository, uuid: upload.uuid).map { [$0] } ?? []
            }
        }

        /// Whether links written during the run need this item back.
        func isNeeded(by fresh: FreshLinks) -> Bool {
            switch self {
            case .manifest(let removal): fresh.manifests.contains(ManifestKey(repository: removal.repository, digest: removal.digest))
            case .blob(let blob): fresh.blobs.contains(blob.digest)
            case .link(let link):
                fresh.blobs.contains(link.digest) || fresh.manifests.contains(ManifestKey(repository: link.repository, digest: link.digest))
            case .upload: false
            }
        }
    }

    public func execute(_ plan: GCPlan) async throws -> GCResult {
        if let refusal = plan.refusal { throw refusal }
        try await hooks.beforeSweep()
        let items: [Item] = plan.manifests.map(Item.manifest) + plan.blobs.map(Item.blob) + plan.links.map(Item.link)
            + plan.uploads.map(Item.upload)
        let run = area.newRun(at: Date())
        var result = GCResult(applied: plan, settleSeconds: settle.seconds)

        // 1. Out of the registry's sight.
        var detached: [(item: Item, paths: [StorePath])] = []
        var failed: [(item: Item, paths: [StorePath])] = []
        try await reporter.phase("detach") {
            var done: Int64 = 0
            for item in items {
                var moved: [StorePath] = []
                do throws(StorageError) {
                    for path in item.paths {
                        do throws(StorageError) {
                            try storage.detach(path, into: run)
                            moved.append(path)
                        } catch .notFound {
                            continue
                        }
                    }
                    if !moved.isEmpty { detached.append((item, moved)) }
                } catch {
                    result.failures.append(SweepFailure(item: item.name, path: item.paths.last ?? Layout.registryRoot, reason: error.description))
                    failed.append((item, moved))
                }
                done += 1
                if done % 1024 == 0 || done == Int64(items.count) {
                    reporter.progress("detach", done: done, total: Int64(items.count), unit: .items)
                }
                try await hooks.afterEachItem(item.name)
            }
        }
        var fresh = FreshLinks()
        if !detached.isEmpty {
            // 2. Requests that saw an item before it left finish writing their links.
            try await reporter.phase("settle") { try await Task.sleep(for: .seconds(settle.seconds)) }

            // 3. What links written since the mark began need.
            (fresh, _) = try reporter.phase("re-read") { () throws -> FreshLinks in
                try recentlyLinked(
                    since: plan.markStartedAt, detachedInto: run, doomedBlobs: Set(plan.blobs.map(\.digest) + plan.links.map(\.digest)))
            }
        }

        // 4. Put those items back, and what could not be taken out whole.
        let returning = detached.filter { fresh.everything || $0.item.isNeeded(by: fresh) } + failed.filter { !$0.paths.isEmpty }
        let kept = detached.filter { !(fresh.everything || $0.item.isNeeded(by: fresh)) }
        var stranded = false
        reporter.phase("put back") {
            guard !returning.isEmpty else { return }
            do {
                let area = try storage.detachedArea(run)
                let files = try returning.flatMap(\.paths).flatMap { path throws(StorageError) in try Self.files(under: path, in: area) }
                _ = try SweepArea.putBack(files, from: run, into: storage)
            } catch {
                stranded = true
                result.failures.append(SweepFailure(
                    item: "put back", path: Layout.registryRoot,
                    reason: "\(error); everything this run took out stays in \(run) and the next run that takes the lock puts it back"))
            }
        }
        for (item, _) in returning where item.isNeeded(by: fresh) {
            switch item {
            case .manifest(let removal): result.protectedManifests.append(removal)
            case .blob(let blob): result.protectedBlobs.append(blob.digest)
            case .link, .upload: break
            }
        }
        guard !stranded else {
            result.applied.clearDeletions()
            return result
        }

        // 5. The rest is dead: delete it, or keep it as trash.
        var gone = kept
        reporter.phase(trashArea == nil ? "delete" : "trash") {
            do throws(StorageError) {
                if let trashArea {
                    try storage.moveDetached(from: run, to: trashArea)
                } else {
                    try storage.discardDetached(in: run)
                }
            } catch {
                // What is still in the area was not deleted; the next run puts it back.
                let left = Set((try? storage.detachedFiles(in: run)) ?? [])
                gone = kept.filter { entry in !left.contains { file in entry.paths.contains { file.hasPrefix($0) } } }
                for entry in kept where !gone.contains(where: { $0.item.name == entry.item.name }) {
                    result.failures.append(SweepFailure(
                        item: entry.item.name, path: entry.paths.last ?? Layout.registryRoot,
                        reason: "\(error); left in \(run), the next run that takes the lock puts it back"))
                }
            }
        }
        result.applied.clearDeletions()
        for (item, _) in gone {
            switch item {
            case .manifest(let removal): result.applied.manifests.append(removal)
            case .blob(let blob): result.applied.blobs.append(blob)
            case .link(let link): result.applied.links.append(link)
            case .upload(let upload): result.applied.uploads.append(upload)
            }
        }
        pruneEmptyParents(of: gone.flatMap(\.paths))
        let repositories = Set(result.applied.manifests.map(\.repository) + result.applied.links.map(\.repository)
            + result.applied.uploads.map(\.repository))
        for repository in repositories.sorted() { removeIfHoldsNoFiles(Layout.repositoryDirectory(repository)) }
        return result
    }

    /// What links written since the mark began depend on.
    struct FreshLinks {
        var blobs: Set<Digest> = []
        var manifests: Set<ManifestKey> = []
        /// Part of the store could not be read again: every item goes back.
        var everything = false
    }

    /// Manifests and blobs that links written since `since` depend on, walked like the mark:
    /// links in the store, and links inside the sweep area that were rewritten after the mark
    /// (a push that wrote into a directory just before it was moved). Manifests are read from
    /// the store or, when taken out, from the area. A `_layers` link matters only when it
    /// names a blob this run takes out, so only those are stat'ed, not every link of the store.
    private func recentlyLinked(since: Date, detachedInto run: String, doomedBlobs: Set<Digest>) throws -> FreshLinks {
        let threshold = since.addingTimeInterval(-Self.clockSlack)
        let detached = try storage.detachedArea(run)
        let loaders = [ManifestLoader(storage: storage), ManifestLoader(storage: detached)]
        func load(_ digest: Digest) -> Manifest? {
            for loader in loaders { if case .success(let manifest) = loader.load(digest) { return manifest } }
            return nil
        }
        var fresh = FreshLinks()
        var roots: [(RepositoryName, Digest, aliases: [Digest: Digest])] = []

        let scanner = StoreScanner(storage: storage)
        let (names, listingFindings) = scanner.repositories()
        if listingFindings.contains(where: \.hidesContent) { fresh.everything = true }
        for name in names {
            let (state, findings) = scanner.scanRepository(name, depth: .marking)
            if findings.contains(where: \.hidesContent) { fresh.everything = true }
            let aliases = MarkPhase.aliases(state)
            for (digest, link) in state.revisions where link.modified >= threshold {
                roots += [(name, link.target, aliases), (name, digest, aliases)]
            }
            for tag in state.tags.values where (tag.modified ?? .distantPast) >= threshold {
                if let current = tag.current { roots.append((name, current, aliases)) }
            }
            for (digest, link) in state.layers where link.modified >= threshold { fresh.blobs.formUnion([digest, link.target]) }
            let layers = Layout.layersDirectory(name, .sha256)
            do {
                for entry in try storage.list(layers) {
                    guard let digest = Digest(algorithm: .sha256, hex: entry.name), doomedBlobs.contains(digest) else { continue }
                    let link = try storage.status(Layout.layerLink(name, digest))
                    if (link?.modified ?? .distantPast) >= threshold { fresh.blobs.insert(digest) }
                }
            } catch .notFound {
            } catch {
                fresh.everything = true
            }
        }

        let areaScanner = StoreScanner(storage: detached)
        for name in areaScanner.repositories().names {
            let state = areaScanner.scanRepository(name, depth: .complete).state
            for (digest, link) in state.revisions where link.modified >= threshold {
                roots += [(name, link.target, [:]), (name, digest, [:])]
            }
            for (digest, link) in state.layers where link.modified >= threshold { fresh.blobs.formUnion([digest, link.target]) }
        }

        for (name, root, aliases) in roots {
            var stack = [root]
            while let digest = stack.popLast() {
                guard fresh.manifests.insert(ManifestKey(repository: name, digest: digest)).inserted else { continue }
                fresh.blobs.insert(digest)
                guard let manifest = load(digest) else { continue }
                for blob in manifest.blobReferences {
                    fresh.blobs.insert(blob.digest)
                    if let alias = aliases[blob.digest] { fresh.blobs.insert(alias) }
                }
                stack += manifest.children.map(\.digest)
                // A referrer pushed now keeps its subject's untagged revision too.
                if let subject = manifest.subject { stack.append(subject.digest) }
            }
        }
        return fresh
    }

    /// The files at or below `path` in a detached area: what putting one item back moves.
    private static func files(under path: StorePath, in area: any StoreStorage) throws(StorageError) -> [StorePath] {
        guard let status = try area.status(path) else { return [] }
        guard status.kind == .directory else { return [path] }
        var files: [StorePath] = []
        for entry in try area.list(path) {
            guard let child = path.appending(entry.name) else { continue }
            files += try Self.files(under: child, in: area)
        }
        return files
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

extension GCPlan {
    /// The plan with nothing to delete; a result fills in what really went.
    mutating func clearDeletions() {
        blobs = []
        manifests = []
        links = []
        uploads = []
    }

    /// An incomplete mark plans no deletion: what it left unmarked says nothing.
    func refusingToSweep() -> GCPlan {
        var plan = self
        plan.clearDeletions()
        plan.incomplete.sort { $0.path < $1.path }
        return plan
    }
}
