import Foundation
import RegistryModel
import RegistryStore

/// What a regkeeper archive holds besides the store's own files, and where.
///
/// ```
/// zstd frame(s) holding one pax tar stream:
///   .regkeeper-archive/metadata.json    first: who wrote it, when, from where, what it builds on
///   docker/registry/v2/blobs/…/data     blobs this archive carries (all of them, or the new ones)
///   docker/registry/v2/repositories/…   _layers links, revision links, tag history, tag links
///   .regkeeper-archive/index.json       last: every member with size and digest, the snapshot's
///                                       blobs with the archive holding each, per repository
/// skippable frame (0x184D2A5E):         the same index bytes + 8-byte length + "RKTOC001",
///                                       so a reader can seek to it before streaming
/// ```
/// Member paths are the store's own, so `tar --zstd -xf` of a full archive is a store the
/// registry serves; `zstd -d` and `tar` pass over the skippable frame.
public enum ArchiveFormat {
    public static let formatName = "regkeeper-backup"
    public static let version = 1
    public static let metadataMember = ".regkeeper-archive/metadata.json"
    public static let indexMember = ".regkeeper-archive/index.json"
    static let tocMagic: [UInt8] = Array("RKTOC001".utf8)
    /// Length field plus magic at the very end of the file.
    static let tocTrailerSize = 16
    /// A larger index means a damaged length field, not a real store.
    static let maxIndexSize = 1 << 30
}

/// Names one archive for its whole life: in chains, in the catalog, in error messages.
public struct ArchiveID: RawRepresentable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Sortable by creation time, unique through the random suffix.
    public static func make(at date: Date) -> ArchiveID {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return ArchiveID(rawValue: formatter.string(from: date) + "-" + String(repeating: "0", count: 8 - suffix.count) + suffix)
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

public enum ArchiveKind: String, Sendable, Codable, Hashable {
    case full
    case incremental
}

/// An archive an incremental one builds on, with the file name it had when the child was
/// written, so that a missing one can be named.
public struct ChainLink: Sendable, Codable, Hashable {
    public var id: ArchiveID
    public var file: String

    public init(id: ArchiveID, file: String) {
        self.id = id
        self.file = file
    }
}

/// The first member: enough to tell what an archive is without reading the rest.
public struct ArchiveMetadata: Sendable, Codable, Hashable {
    public var format = ArchiveFormat.formatName
    public var formatVersion = ArchiveFormat.version
    public var toolVersion: String
    public var id: ArchiveID
    public var createdAt: Date
    public var sourceRoot: String
    public var kind: ArchiveKind
    /// The archive this one builds on (nil for a full one).
    public var parent: ArchiveID?
    /// Every archive this one builds on, the full one first; empty for a full archive.
    public var chain: [ChainLink]
    public var includesGarbage: Bool

    public init(toolVersion: String, id: ArchiveID, createdAt: Date, sourceRoot: String, kind: ArchiveKind,
                chain: [ChainLink], includesGarbage: Bool) {
        self.toolVersion = toolVersion
        self.id = id
        self.createdAt = createdAt
        self.sourceRoot = sourceRoot
        self.kind = kind
        self.parent = chain.last?.id
        self.chain = chain
        self.includesGarbage = includesGarbage
    }
}

/// One tar member as written: its size and the digest of its content (a blob's own algorithm
/// for blob data, SHA-256 for everything else).
public struct IndexedMember: Sendable, Codable, Hashable {
    public var path: String
    public var size: UInt64
    public var digest: Digest

    public init(path: String, size: UInt64, digest: Digest) {
        self.path = path
        self.size = size
        self.digest = digest
    }
}

/// A blob the snapshot needs, and the archive of the chain that carries it.
public struct SnapshotBlob: Sendable, Codable, Hashable {
    public var digest: Digest
    public var size: Int64
    public var archive: ArchiveID

    public init(digest: Digest, size: Int64, archive: ArchiveID) {
        self.digest = digest
        self.size = size
        self.archive = archive
    }
}

/// Blobs one repository's tags and revisions need, as positions in `ArchiveIndex.blobs`.
public struct RepositoryBlobs: Sendable, Codable, Hashable {
    public var name: RepositoryName
    public var blobs: [Int]
}

/// A blob whose content did not match its digest when it was archived: its bytes are in the
/// stream (the tar header was already written) but no restore uses them.
public struct ExcludedBlob: Sendable, Codable, Hashable {
    public var digest: Digest
    public var actual: Digest
}

/// The last member, repeated in the trailing skippable frame.
public struct ArchiveIndex: Sendable, Codable, Hashable {
    public var metadata: ArchiveMetadata
    /// Every member but the index itself, in stream order.
    public var members: [IndexedMember]
    /// Every blob the snapshot needs, whichever archive of the chain holds it.
    public var blobs: [SnapshotBlob]
    public var repositories: [RepositoryBlobs]
    public var excluded: [ExcludedBlob]

    /// Blobs this archive itself carries and a restore may use.
    public var carriedBlobs: [SnapshotBlob] {
        let excluded = Set(excluded.map(\.digest))
        return blobs.filter { $0.archive == metadata.id && !excluded.contains($0.digest) }
    }

    /// Blobs the given repositories need; all of them when `names` is nil.
    public func blobsNeeded(by names: Set<RepositoryName>?) -> [SnapshotBlob] {
        guard let names else { return blobs }
        var positions = Set<Int>()
        for repository in repositories where names.contains(repository.name) { positions.formUnion(repository.blobs) }
        return positions.sorted().compactMap { blobs.indices.contains($0) ? blobs[$0] : nil }
    }
}

extension ArchiveIndex {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
