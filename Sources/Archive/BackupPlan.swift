import Foundation
import RegistryModel
import RegistryStore

/// What one backup writes: the snapshot's links with the content and times they had when
/// read, the blobs they need, and which of those an earlier archive already carries.
public struct BackupPlan: Sendable {
    public struct LinkFile: Sendable, Hashable {
        /// The link's path under the root, as its archive member is named: one string that the
        /// member and the index share, where a `StorePath`'s components and a joined copy cost
        /// a million-link backup about 260 MB more.
        public var path: String
        public var target: Digest
        public var modified: Date

        public init(path: StorePath, target: Digest, modified: Date) {
            self.path = path.description
            self.target = target
            self.modified = modified
        }
    }

    public struct BlobFile: Sendable, Hashable, Encodable {
        public var digest: Digest
        public var size: Int64
        public var modified: Date
    }

    public var createdAt: Date
    /// Every link of the snapshot, in placement order (`_layers`, revisions, tag history, tags).
    public var links: [LinkFile]
    /// Every blob the snapshot needs, sorted by digest.
    public var blobs: [BlobFile]
    /// Blobs an earlier archive of the chain carries, and which one.
    public var inherited: [Digest: ArchiveID]
    /// Per repository, the blobs its tags and revisions need.
    public var repositories: [RepositoryName: Set<Digest>]
    /// Upload files and garbage blobs, only with `includeGarbage`.
    public var extraFiles: [StorePath]
    public var garbageBlobs: [BlobFile]
    /// The archives this one builds on, the full one first; empty for a full backup.
    public var chain: [ChainLink]
    public var findings: [BackupFinding]

    public var kind: ArchiveKind { chain.isEmpty ? .full : .incremental }

    /// Blobs this archive writes: the snapshot's blobs no earlier archive has, then garbage.
    public var blobsToWrite: [BlobFile] {
        blobs.filter { inherited[$0.digest] == nil } + garbageBlobs
    }

    public var bytesToWrite: Int64 { blobsToWrite.reduce(0) { $0 + $1.size } }
}

/// `backup --dry-run --json`: every blob the archive would carry, with the counts of the rest.
extension BackupPlan: Encodable {
    private enum CodingKeys: String, CodingKey {
        case kind, parent, blobsToWrite, bytesToWrite, links, inheritedBlobs, garbageBlobs, uploadFiles, findings
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encodeIfPresent(chain.last?.id, forKey: .parent)
        try container.encode(blobsToWrite, forKey: .blobsToWrite)
        try container.encode(bytesToWrite, forKey: .bytesToWrite)
        try container.encode(links.count, forKey: .links)
        try container.encode(inherited.count, forKey: .inheritedBlobs)
        try container.encode(garbageBlobs.count, forKey: .garbageBlobs)
        try container.encode(extraFiles.count, forKey: .uploadFiles)
        try container.encode(findings, forKey: .findings)
    }
}

/// Damage met while planning; the backup goes on without what it names.
public enum BackupFinding: Sendable, Hashable, CustomStringConvertible, Encodable {
    case store(StoreFinding)
    /// A link or manifest names a blob that is not in the store.
    case missingBlob(Digest, referencedBy: String)
    case unparsableManifest(Digest, reason: String)
    /// The blob's bytes do not hash to its name; it was not carried into the archive.
    case corruptBlob(Digest, actual: Digest)
    case unreadableBlob(Digest, reason: String)

    public var description: String {
        switch self {
        case .store(let finding): finding.description
        case .missingBlob(let digest, let via): "missing blob \(digest) (referenced by \(via))"
        case .unparsableManifest(let digest, let reason): "manifest \(digest) cannot be walked: \(reason)"
        case .corruptBlob(let digest, let actual): "corrupt blob \(digest): content hashes to \(actual); left out of the archive"
        case .unreadableBlob(let digest, let reason): "unreadable blob \(digest): \(reason)"
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
