import Foundation
import GarbageCollection
import RegistryModel
import RegistryStore

/// Store statistics from one pass: what is there, what gc would reclaim, who holds the bytes.
public struct StoreReport: Sendable, Encodable {
    public struct Manifests: Sendable, Encodable {
        public var total = 0
        public var tagged = 0
        public var untagged = 0
        public var indexChildren = 0
        public var referrers = 0
    }

    public struct Reclaimable: Sendable, Encodable {
        public var blobs = 0
        public var bytes: Int64 = 0
    }

    public struct RepositoryUsage: Sendable, Encodable {
        public var repository: RepositoryName
        public var tags: Int
        public var manifests: Int
        /// Bytes of every blob the repository's manifests reference.
        public var bytes: Int64
        /// Bytes that only this repository keeps alive: deleting it frees them.
        public var exclusiveBytes: Int64
        public var sharedBytes: Int64 { bytes - exclusiveBytes }
    }

    public var repositories = 0
    public var tags = 0
    public var manifests = Manifests()
    public var blobs = 0
    public var bytes: Int64 = 0
    /// What `gc` (every revision kept) would delete, ignoring the grace period.
    public var reclaimable = Reclaimable()
    /// What `gc --delete-untagged` would delete, ignoring the grace period.
    public var reclaimableUntagged = Reclaimable()
    public var uploads = 0
    public var uploadBytes: Int64 = 0
    /// Uploads older than the abandonment age (gc's --upload-max-age).
    public var abandonedUploads = 0
    public var abandonedUploadBytes: Int64 = 0
    public var topRepositories: [RepositoryUsage] = []
    public var findings: [StoreFinding] = []
    /// Paths that could not be read (unreadable, symbolic links): what they hide is unknown,
    /// so nothing is claimed reclaimable while they stand (gc refuses to sweep too).
    public var unreadable: [StoreFinding] = []
    /// Set by the caller from the state database when registry logs were imported.
    public var unpulled: UnpulledTags?

    /// Whether the reclaimable figures mean anything.
    public var reclaimableIsKnown: Bool { unreadable.isEmpty }
}

/// Builds a `StoreReport`. Each repository is scanned once and marked twice (all revisions,
/// then tagged only) from the same parsed manifests.
public struct StoreReporter: Sendable {
    public let storage: any StoreStorage
    public var jobs: Int
    public var top: Int
    public var uploadMaxAge: TimeSpan
    public let now: @Sendable () -> Date

    public init(storage: any StoreStorage, jobs: Int, top: Int = 10, uploadMaxAge: TimeSpan = TimeSpan(seconds: 168 * 3600), now: @escaping @Sendable () -> Date = { Date() }) {
        self.storage = storage
        self.jobs = jobs
        self.top = top
        self.uploadMaxAge = uploadMaxAge
        self.now = now
    }

    private struct RepositoryFacts: Sendable {
        var name: RepositoryName
        var tags: Int
        var revisions: Int
        var tagged: Int
        var children: Int
        var referrers: Int
        /// Every blob the repository keeps alive, with its size when known (see `sizes`).
        var everything: [(digest: Digest, size: Int64?)]
        var taggedOnly: Set<Digest>
        var uploads: [Upload]
        var findings: [StoreFinding]
    }

    /// A blob's size and which repository keeps it alive (`shared` when more than one does).
    private struct BlobUsage {
        static let unreferenced: Int32 = -1
        static let shared: Int32 = -2
        var size: Int64?
        var holder: Int32 = unreferenced

        /// One more repository keeps this blob alive; `size` is what that one knows of it.
        mutating func account(size known: Int64?, holder repository: Int32) {
            if size == nil { size = known }
            holder = holder == Self.unreferenced ? repository : Self.shared
        }
    }

    public func report() async throws -> StoreReport {
        let scanner = StoreScanner(storage: storage)
        var report = StoreReport()
        let storage = storage

        // Which blobs exist, from directory listings alone: most sizes come from the manifests
        // that reference them, so a stat per blob would double the report's system calls.
        let (shards, shardFindings) = try scanner.shardDirectories()
        report.findings = shardFindings
        var listed: [[Digest]] = []
        try await boundedForEach(shards, jobs: jobs) { algorithm, shard in
            try storage.list(shard).compactMap { $0.kind == .directory ? Digest(algorithm: algorithm, hex: $0.name) : nil }
        } consume: { listed.append($0) }
        var blobs: [Digest: BlobUsage] = [:]
        blobs.reserveCapacity(listed.reduce(0) { $0 + $1.count })
        for digest in listed.joined() { blobs[digest] = BlobUsage() }
        listed = []

        let (names, repositoryFindings) = scanner.repositories()
        report.findings += repositoryFindings
        var usages: [StoreReport.RepositoryUsage] = []
        var keptByTags = DigestSet.Builder()
        let abandonedBefore = now().addingTimeInterval(-TimeInterval(uploadMaxAge.seconds))
        try await boundedForEach(names, jobs: jobs) { name in
            let (state, findings) = scanner.scanRepository(name, depth: .marking)
            let loader = ManifestLoader(storage: storage)
            let all = MarkPhase(loader: loader, deleteUntagged: false).mark(state)
            let tagged = MarkPhase(loader: loader, deleteUntagged: true).mark(state)
            var children: Set<Digest> = []
            var referrers = 0
            for link in state.revisions.values {
                guard case .success(let manifest) = loader.load(link.target) else { continue }
                children.formUnion(manifest.children.map(\.digest))
                if manifest.subject != nil { referrers += 1 }
            }
            let revisions = Set(state.revisions.values.map(\.target))
            let sizes = Self.sizes(of: all, loader)
            return RepositoryFacts(
                name: name, tags: state.tags.count, revisions: state.revisions.count,
                tagged: revisions.intersection(state.taggedManifests).count,
                children: revisions.intersection(children).count, referrers: referrers,
                everything: all.marked.map { ($0, sizes[$0] ?? (try? storage.status(Layout.blobData($0)))?.size) },
                taggedOnly: tagged.marked, uploads: state.uploads, findings: findings)
        } consume: { fact in
            let index = Int32(usages.count)
            var usage = StoreReport.RepositoryUsage(repository: fact.name, tags: fact.tags, manifests: fact.revisions, bytes: 0, exclusiveBytes: 0)
            for (digest, size) in fact.everything {
                guard let position = blobs.index(forKey: digest) else { continue }
                blobs.values[position].account(size: size, holder: index)
                usage.bytes += blobs.values[position].size ?? 0
            }
            usages.append(usage)
            keptByTags.insert(contentsOf: fact.taggedOnly)
            report.tags += fact.tags
            report.manifests.total += fact.revisions
            report.manifests.tagged += fact.tagged
            report.manifests.untagged += fact.revisions - fact.tagged
            report.manifests.indexChildren += fact.children
            report.manifests.referrers += fact.referrers
            report.findings += fact.findings
            for upload in fact.uploads {
                report.uploads += 1
                report.uploadBytes += upload.bytes
                if upload.startedAt < abandonedBefore {
                    report.abandonedUploads += 1
                    report.abandonedUploadBytes += upload.bytes
                }
            }
        }
        report.repositories = usages.count

        // What no manifest sized: blobs nothing references, mostly. A directory without data
        // is not a blob (verify reports it as stray).
        let unsized = blobs.compactMap { $0.value.size == nil ? $0.key : nil }
        try await boundedForEach(chunked(unsized, jobs: jobs), jobs: jobs) { chunk in
            chunk.map { digest in (digest, Result { () throws(StorageError) in try storage.status(Layout.blobData(digest)) }) }
        } consume: { statuses in
            for (digest, status) in statuses {
                switch status {
                case .success(let found?): blobs[digest]?.size = found.size
                case .success(nil): blobs[digest] = nil
                case .failure(let error):
                    blobs[digest]?.size = 0
                    report.findings.append(.unreadable(path: Layout.blobData(digest), reason: error.description))
                }
            }
        }

        report.blobs = blobs.count
        let tagged = keptByTags.build()
        for (digest, blob) in blobs {
            let size = blob.size ?? 0
            report.bytes += size
            if blob.holder == BlobUsage.unreferenced {
                report.reclaimable.blobs += 1
                report.reclaimable.bytes += size
            } else if blob.holder >= 0 {
                usages[Int(blob.holder)].exclusiveBytes += size
            }
            if !tagged.contains(digest) {
                report.reclaimableUntagged.blobs += 1
                report.reclaimableUntagged.bytes += size
            }
        }
        report.topRepositories = Array(usages.sorted { ($0.bytes, $1.repository) > ($1.bytes, $0.repository) }.prefix(top))
        report.unreadable = report.findings.filter(\.hidesContent)
        report.findings.removeAll(where: \.hidesContent)
        if !report.reclaimableIsKnown {
            report.reclaimable = StoreReport.Reclaimable()
            report.reclaimableUntagged = StoreReport.Reclaimable()
        }
        return report
    }

    /// Sizes of what a mark kept, without a stat: a manifest's from the bytes the loader read,
    /// a config's, layer's or child's from the descriptor naming it (Distribution checks those
    /// on push; verify reports a blob whose size differs). Schema1 layers carry no size.
    private static func sizes(of mark: RepositoryMark, _ loader: ManifestLoader) -> [Digest: Int64] {
        var sizes: [Digest: Int64] = [:]
        for digest in mark.kept {
            if let bytes = loader.byteCount(of: digest) { sizes[digest] = bytes }
        }
        for digest in mark.kept {
            guard case .success(let manifest) = loader.load(digest) else { continue }
            for descriptor in manifest.blobReferences + manifest.children where sizes[descriptor.digest] == nil {
                if let size = descriptor.size, size >= 0 { sizes[descriptor.digest] = size }
            }
        }
        return sizes
    }
}

/// Tags no imported registry log shows pulled (by the tag, or by the digest it points to),
/// per repository: what a `pulledWithin` policy would find unused. Known only for the span
/// the imported logs cover.
public struct UnpulledTags: Sendable, Encodable {
    /// The earliest and latest entries of the imported logs.
    public var since: Date
    public var until: Date
    /// Repositories with at least one tag never pulled since `since`, by name.
    public var repositories: [Repository]
    /// Stretches inside that span no imported log covers, long enough to be a missing log
    /// rather than a quiet registry: pulls then are unknown.
    public var gaps: [DateInterval]

    public struct Repository: Sendable, Encodable {
        public var repository: RepositoryName
        public var tags: Int
        public var unpulled: [Tag]

        public init(repository: RepositoryName, tags: Int, unpulled: [Tag]) {
            self.repository = repository
            self.tags = tags
            self.unpulled = unpulled
        }
    }

    public init(since: Date, until: Date, repositories: [Repository], gaps: [DateInterval] = []) {
        self.since = since
        self.until = until
        self.repositories = repositories
        self.gaps = gaps
    }
}
