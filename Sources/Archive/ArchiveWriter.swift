import Foundation
import RegistryModel
import RegistryStore
import TarFormat
import Zstd

/// Test seams: what a test does while a backup runs (push images, stop it at a point).
public struct BackupHooks: Sendable {
    /// After the snapshot is read, before any member is written.
    public var afterSnapshot: @Sendable () async throws -> Void
    /// After each member; its argument counts members written so far. Optional because the
    /// archive threads must stop and wait for it after every member while one is set.
    public var afterMember: (@Sendable (Int) async throws -> Void)?

    public init(afterSnapshot: @escaping @Sendable () async throws -> Void = {},
                afterMember: (@Sendable (Int) async throws -> Void)? = nil) {
        self.afterSnapshot = afterSnapshot
        self.afterMember = afterMember
    }
}

/// What a finished backup wrote.
public struct BackupResult: Sendable, Encodable {
    public var path: String
    public var index: ArchiveIndex
    public var archiveBytes: UInt64
    public var blobsWritten: Int
    public var blobBytesWritten: Int64
    public var linksWritten: Int
    public var inheritedBlobs: Int
    public var findings: [BackupFinding]

    public var id: ArchiveID { index.metadata.id }

    private enum CodingKeys: String, CodingKey {
        case path, id, kind, parent, archiveBytes, blobsWritten, blobBytesWritten, linksWritten, inheritedBlobs, findings
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(id, forKey: .id)
        try container.encode(index.metadata.kind, forKey: .kind)
        try container.encodeIfPresent(index.metadata.parent, forKey: .parent)
        try container.encode(archiveBytes, forKey: .archiveBytes)
        try container.encode(blobsWritten, forKey: .blobsWritten)
        try container.encode(blobBytesWritten, forKey: .blobBytesWritten)
        try container.encode(linksWritten, forKey: .linksWritten)
        try container.encode(inheritedBlobs, forKey: .inheritedBlobs)
        try container.encode(findings, forKey: .findings)
    }
}

/// Writes a plan as an archive: metadata, blobs, links, index, then the index again in a
/// skippable frame. Each blob is hashed as its bytes go into the stream; one that does not
/// match its name is listed as excluded in the index (its header was already written), so
/// neither a restore nor a later incremental relies on it. The files go through
/// `ArchivePipeline`, `jobs` threads each hashing and compressing its own frames.
public struct ArchiveWriter: Sendable {
    public let storage: any StoreStorage
    public var level = 1
    /// Threads reading, hashing and compressing; each holds about two `chunkSize` buffers.
    public var jobs = 2
    public var toolVersion: String
    public var sourceRoot: String
    public var hooks = BackupHooks()
    public var reporter: any ProgressReporter = SilentReporter()

    public init(storage: any StoreStorage, toolVersion: String, sourceRoot: String) {
        self.storage = storage
        self.toolVersion = toolVersion
        self.sourceRoot = sourceRoot
    }

    /// Tar bytes per frame: large enough that per-chunk hand-offs cost nothing, small enough to
    /// stay in cache between hashing and compressing and to lose little ratio to frame starts.
    static let chunkSize = 1 << 20

    public func write(_ plan: BackupPlan, to path: String) async throws -> BackupResult {
        let items = ArchivePipeline.Items(blobs: plan.blobsToWrite, links: plan.links, extras: plan.extraFiles)
        let pipeline = ArchivePipeline(
            storage: storage, items: items, output: try OutputFile(path: path), level: level, jobs: jobs,
            chunkSize: Self.chunkSize, membersBefore: 1, totalBytes: plan.bytesToWrite, reporter: reporter,
            afterMember: hooks.afterMember)
        // Metadata and index are written here, around the pipeline's frames, in frames of their own.
        let compressor = try ZstdCompressor(level: level, bufferSize: Self.chunkSize) { bytes in
            try pipeline.output.value.write(bytes)
        }
        let tar = TarWriter(bufferSize: Self.chunkSize) { bytes in try compressor.write(bytes) }
        // Whole seconds: the index stores ISO 8601, and the catalog must equal what reindex reads back.
        let created = Date(timeIntervalSince1970: plan.createdAt.timeIntervalSince1970.rounded(.down))
        let metadata = ArchiveMetadata(
            toolVersion: toolVersion, id: ArchiveID.make(at: created), createdAt: created,
            sourceRoot: sourceRoot, kind: plan.kind, chain: plan.chain, includesGarbage: !plan.garbageBlobs.isEmpty || !plan.extraFiles.isEmpty)

        let metadataBytes = Array(try ArchiveIndex.encoder().encode(metadata))
        try tar.addFile(ArchiveFormat.metadataMember, mtime: Self.timestamp(created), contents: metadataBytes)
        try tar.flush()
        try compressor.finish()

        reporter.phaseStarted("archive")
        let started = ContinuousClock.now
        var outcome = try await pipeline.run()
        reporter.phaseFinished("archive", elapsed: ContinuousClock.now - started)
        pipeline.output.value.syncAhead()
        outcome.members.insert(IndexedMember(path: ArchiveFormat.metadataMember, size: UInt64(metadataBytes.count),
                                             digest: ContentHasher.digest(metadataBytes)), at: 0)

        let index = Self.index(plan, metadata: metadata, members: outcome.members, excluded: outcome.excluded, carried: outcome.carried)
        // The index is rendered three times (counted, then into the tar, then into the table of
        // contents) rather than held: it is a quarter GiB for a store of a million links.
        let indexSize = try index.encodedCount()
        try tar.addRenderedFile(ArchiveFormat.indexMember, mtime: Self.timestamp(created), size: UInt64(indexSize)) { write in
            try index.encode(into: write)
        }
        try tar.finish()
        // The table of contents: the index again, its length, the magic.
        var trailer = withUnsafeBytes(of: UInt64(indexSize).littleEndian) { Array($0) }
        trailer.append(contentsOf: ArchiveFormat.tocMagic)
        try compressor.writeSkippableFrame(size: indexSize + trailer.count) { write in
            try index.encode(into: write)
            try trailer.withUnsafeBytes { try write($0) }
        }
        try compressor.finish()
        let output = pipeline.output.value
        try output.commit()
        return BackupResult(
            path: output.finalPath, index: index, archiveBytes: output.bytesWritten,
            blobsWritten: outcome.carried.count, blobBytesWritten: outcome.blobBytes, linksWritten: plan.links.count,
            inheritedBlobs: plan.inherited.count, findings: plan.findings + outcome.findings)
    }

    private static func index(_ plan: BackupPlan, metadata: ArchiveMetadata, members: [IndexedMember],
                              excluded: [ExcludedBlob], carried: Set<Digest>) -> ArchiveIndex {
        // Needed blobs that neither an earlier archive nor this one carries are findings already.
        let blobs = plan.blobs.compactMap { blob -> SnapshotBlob? in
            if let archive = plan.inherited[blob.digest] { return SnapshotBlob(digest: blob.digest, size: blob.size, archive: archive) }
            return carried.contains(blob.digest) ? SnapshotBlob(digest: blob.digest, size: blob.size, archive: metadata.id) : nil
        } + plan.garbageBlobs.filter { carried.contains($0.digest) }.map {
            SnapshotBlob(digest: $0.digest, size: $0.size, archive: metadata.id)
        }
        var position: [Digest: Int] = [:]
        for (offset, blob) in blobs.enumerated() { position[blob.digest] = offset }
        let repositories = plan.repositories.keys.sorted().map { name in
            RepositoryBlobs(name: name, blobs: plan.repositories[name]!.compactMap { position[$0] }.sorted())
        }
        return ArchiveIndex(metadata: metadata, members: members, blobs: blobs, repositories: repositories, excluded: excluded)
    }

    static func timestamp(_ date: Date) -> TarTimestamp {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let nanoseconds = UInt32(min(max((date.timeIntervalSince1970 - seconds) * 1e9, 0), 999_999_999))
        return TarTimestamp(seconds: Int64(seconds), nanoseconds: nanoseconds)
    }
}
