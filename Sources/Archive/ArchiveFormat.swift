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

/// What a store path inside an archive is, as far as a restore is concerned.
enum MemberRole: Equatable {
    case blob(Digest)
    case link(RepositoryName, LinkKind)
    case upload(RepositoryName)
    case other

    enum LinkKind: Int, Comparable {
        case layer, revision, tagHistory, tagCurrent
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Classifies by the layout's shape; `Layout` builds the expected path again, so a name that
    /// merely looks right in one place cannot pass.
    init(_ path: StorePath) {
        self = .other
        let c = path.components
        let registry = Layout.registryRoot.components.count
        guard c.count > registry + 1, path.hasPrefix(Layout.registryRoot) else { return }
        if c[registry] == "blobs", c.count == registry + 5, let algorithm = Digest.Algorithm(name: c[registry + 1]),
           let digest = Digest(algorithm: algorithm, hex: c[registry + 3]), Layout.blobData(digest) == path {
            self = .blob(digest)
            return
        }
        guard c[registry] == "repositories",
              let marker = c.firstIndex(where: { $0.hasPrefix("_") }), marker > registry + 1,
              let name = RepositoryName(c[(registry + 1)..<marker].joined(separator: "/")) else { return }
        let rest = Array(c[marker...])
        switch rest.first {
        case Layout.layersDirectoryName:
            if rest.count == 4, let digest = Self.digest(rest[1], rest[2]), Layout.layerLink(name, digest) == path {
                self = .link(name, .layer)
            }
        case Layout.manifestsDirectoryName:
            if rest.count == 5, rest[1] == "revisions", let digest = Self.digest(rest[2], rest[3]),
               Layout.revisionLink(name, digest) == path {
                self = .link(name, .revision)
            } else if rest.count >= 5, rest[1] == "tags", let tag = Tag(rest[2]) {
                if Layout.tagCurrentLink(name, tag) == path {
                    self = .link(name, .tagCurrent)
                } else if rest.count == 7, let digest = Self.digest(rest[4], rest[5]), Layout.tagIndexLink(name, tag, digest) == path {
                    self = .link(name, .tagHistory)
                }
            }
        case Layout.uploadsDirectoryName:
            if rest.count >= 3 { self = .upload(name) }
        default:
            break
        }
    }

    private static func digest(_ algorithm: String, _ hex: String) -> Digest? {
        Digest.Algorithm(name: algorithm).flatMap { Digest(algorithm: $0, hex: hex) }
    }

    /// Position in the order a store is put in place: blobs, `_layers`, revisions, tag history,
    /// tags, uploads; anything a link names is there before the link.
    var placementRank: Int {
        switch self {
        case .blob: 0
        case .link(_, let kind): 1 + kind.rawValue
        case .upload: 5
        case .other: 6
        }
    }

    var repository: RepositoryName? {
        switch self {
        case .link(let name, _), .upload(let name): name
        case .blob, .other: nil
        }
    }
}

extension ArchiveIndex {
    /// The bytes `encoder()` writes for this index, produced directly: through `Encodable`,
    /// JSONEncoder spent about 4 µs a member (a tenth of a second per 25,000, several seconds
    /// for a store of millions of files) between the last frame of blobs and the archive's
    /// rename. Only the small metadata object still goes through the encoder.
    func encoded() throws -> [UInt8] {
        var json = JSONText()
        json.append("{\"blobs\":")
        json.array(blobs) { ["archive": .string($0.archive.rawValue), "digest": .string($0.digest.description), "size": .number($0.size)] }
        json.append(",\"excluded\":")
        json.array(excluded) { ["actual": .string($0.actual.description), "digest": .string($0.digest.description)] }
        json.append(",\"members\":")
        json.array(members) { ["digest": .string($0.digest.description), "path": .string($0.path), "size": .unsigned($0.size)] }
        json.append(",\"metadata\":")
        json.bytes.append(contentsOf: try Self.encoder().encode(metadata))
        json.append(",\"repositories\":")
        json.array(repositories) { ["blobs": .numbers($0.blobs), "name": .string($0.name.description)] }
        json.append("}")
        return json.bytes
    }
}

extension ArchiveIndex {
    /// Reads an index as JSONDecoder would (keys in any order, unknown keys skipped, every
    /// field required), without a container per member: JSONDecoder spent about 3 µs a member
    /// before a restore or verify could read its first byte. The small metadata object still
    /// goes through the decoder.
    static func decode(_ data: Data) throws(JSONScanner.Failure) -> ArchiveIndex {
        try data.withUnsafeBytes { raw in
            Result { () throws(JSONScanner.Failure) in try decode(raw.bindMemory(to: UInt8.self)) }
        }.get()
    }

    /// Decodes all but the members, which go to `listing` as fingerprints and sizes: what a
    /// reader checks the stream against, at 17 bytes a member instead of its path and digest
    /// (a store of a million links has an index of a quarter GiB, held once, here, briefly).
    /// The index returned has no `members`.
    /// - Parameter read: told, after each member, how many bytes of the index were read.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, listing: inout ListedMembers,
                       read: (Int) -> Void) throws(JSONScanner.Failure) -> ArchiveIndex {
        var collected: ListedMembers? = ListedMembers()
        let index = try decode(bytes, listing: &collected, read: read)
        listing = collected ?? ListedMembers()
        return index
    }

    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONScanner.Failure) -> ArchiveIndex {
        var unused: ListedMembers?
        return try decode(bytes, listing: &unused, read: { _ in })
    }

    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>, listing: inout ListedMembers?,
                               read: (Int) -> Void) throws(JSONScanner.Failure) -> ArchiveIndex {
        var scanner = JSONScanner(bytes)
        var metadata: ArchiveMetadata?
        var members: [IndexedMember]?
        var blobs: [SnapshotBlob]?
        var repositories: [RepositoryBlobs]?
        var excluded: [ExcludedBlob]?
        try scanner.object(field: "index") { scanner, key throws(JSONScanner.Failure) in
            switch key {
            case "metadata":
                let bytes = try scanner.rawValue()
                do {
                    metadata = try decoder().decode(ArchiveMetadata.self, from: Data(bytes))
                } catch {
                    throw .type(expected: "archive metadata (\(error))", field: key)
                }
            case "members":
                var decoded: [IndexedMember] = []
                try scanner.array(field: key) { scanner, position throws(JSONScanner.Failure) in
                    let field = "members[\(position)]"
                    var path: String?, size: UInt64?, digest: Digest?
                    try scanner.object(field: field) { scanner, key throws(JSONScanner.Failure) in
                        switch key {
                        case "path": path = try scanner.string(field: field + ".path")
                        case "size": size = try scanner.integer(field: field + ".size", as: UInt64.self)
                        case "digest": digest = try Self.digest(&scanner, field + ".digest")
                        default: try scanner.skip()
                        }
                    }
                    let member = IndexedMember(path: try required(path, field + ".path"), size: try required(size, field + ".size"),
                                               digest: try required(digest, field + ".digest"))
                    if listing != nil { listing?.append(member) } else { decoded.append(member) }
                    read(scanner.offset)
                }
                members = decoded
            case "blobs":
                blobs = try Self.list(&scanner, key) { scanner, field throws(JSONScanner.Failure) in
                    var digest: Digest?, size: Int64?, archive: String?
                    try scanner.object(field: field) { scanner, key throws(JSONScanner.Failure) in
                        switch key {
                        case "digest": digest = try Self.digest(&scanner, field + ".digest")
                        case "size": size = try scanner.integer(field: field + ".size")
                        case "archive": archive = try scanner.string(field: field + ".archive")
                        default: try scanner.skip()
                        }
                    }
                    return SnapshotBlob(digest: try required(digest, field + ".digest"), size: try required(size, field + ".size"),
                                        archive: ArchiveID(rawValue: try required(archive, field + ".archive")))
                }
            case "repositories":
                repositories = try Self.list(&scanner, key) { scanner, field throws(JSONScanner.Failure) in
                    var name: RepositoryName?, positions: [Int]?
                    try scanner.object(field: field) { scanner, key throws(JSONScanner.Failure) in
                        switch key {
                        case "name":
                            let text = try scanner.string(field: field + ".name")
                            guard let parsed = RepositoryName(text) else { throw .type(expected: "repository name", field: field + ".name") }
                            name = parsed
                        case "blobs":
                            positions = try Self.list(&scanner, field + ".blobs") { scanner, field throws(JSONScanner.Failure) in
                                try scanner.integer(field: field, as: Int.self)
                            }
                        default: try scanner.skip()
                        }
                    }
                    return RepositoryBlobs(name: try required(name, field + ".name"), blobs: try required(positions, field + ".blobs"))
                }
            case "excluded":
                excluded = try Self.list(&scanner, key) { scanner, field throws(JSONScanner.Failure) in
                    var digest: Digest?, actual: Digest?
                    try scanner.object(field: field) { scanner, key throws(JSONScanner.Failure) in
                        switch key {
                        case "digest": digest = try Self.digest(&scanner, field + ".digest")
                        case "actual": actual = try Self.digest(&scanner, field + ".actual")
                        default: try scanner.skip()
                        }
                    }
                    return ExcludedBlob(digest: try required(digest, field + ".digest"), actual: try required(actual, field + ".actual"))
                }
            default:
                try scanner.skip()
            }
        }
        try scanner.end()
        return ArchiveIndex(
            metadata: try required(metadata, "metadata"), members: try required(members, "members"),
            blobs: try required(blobs, "blobs"), repositories: try required(repositories, "repositories"),
            excluded: try required(excluded, "excluded"))
    }

    private static func list<Element>(
        _ scanner: inout JSONScanner, _ field: String,
        _ element: (inout JSONScanner, String) throws(JSONScanner.Failure) -> Element
    ) throws(JSONScanner.Failure) -> [Element] {
        var elements: [Element] = []
        try scanner.array(field: field) { scanner, position throws(JSONScanner.Failure) in
            elements.append(try element(&scanner, "\(field)[\(position)]"))
        }
        return elements
    }

    private static func digest(_ scanner: inout JSONScanner, _ field: String) throws(JSONScanner.Failure) -> Digest {
        guard let digest = Digest(try scanner.string(field: field)) else { throw .type(expected: "digest", field: field) }
        return digest
    }
}

private func required<Value>(_ value: Value?, _ field: String) throws(JSONScanner.Failure) -> Value {
    guard let value else { throw .missing(field: field) }
    return value
}

/// Compact JSON output with JSONEncoder's escaping under `.withoutEscapingSlashes`.
private struct JSONText {
    enum Value {
        case string(String)
        case number(Int64)
        case unsigned(UInt64)
        case numbers([Int])
    }

    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(1 << 16) }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// An array of objects, each given as its fields in the order written (sorted, as
    /// `.sortedKeys` writes them).
    mutating func array<Element>(_ elements: [Element], _ fields: (Element) -> KeyValuePairs<StaticString, Value>) {
        append("[")
        for (position, element) in elements.enumerated() {
            if position > 0 { append(",") }
            append("{")
            for (offset, (key, value)) in fields(element).enumerated() {
                if offset > 0 { append(",") }
                append("\"")
                append(key)
                append("\":")
                self.value(value)
            }
            append("}")
        }
        append("]")
    }

    mutating func value(_ value: Value) {
        switch value {
        case .string(let text): string(text)
        case .number(let number): bytes.append(contentsOf: String(number).utf8)
        case .unsigned(let number): bytes.append(contentsOf: String(number).utf8)
        case .numbers(let numbers):
            append("[")
            for (offset, number) in numbers.enumerated() {
                if offset > 0 { append(",") }
                bytes.append(contentsOf: String(number).utf8)
            }
            append("]")
        }
    }

    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case 0x08: append("\\b")
            case 0x0C: append("\\f")
            case UInt8(ascii: "\n"): append("\\n")
            case UInt8(ascii: "\r"): append("\\r")
            case UInt8(ascii: "\t"): append("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                append("\\u00")
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// The members an index lists, as a reader checks the stream against them: per member its
/// size (checked before its content is written), whether it is blob data, and 64-bit
/// fingerprints of its path (checked from the header) and digest (checked once its content
/// is hashed): 25 bytes a member instead of its path and digest. Fingerprints are of this
/// process (the hasher is seeded per process) and never stored.
public struct ListedMembers: Sendable {
    private var sizes: [UInt64] = []
    private var paths: [Int] = []
    private var digests: [Int] = []
    private var blobData: [Bool] = []

    public init() {}

    public var count: Int { sizes.count }
    public func size(at position: Int) -> UInt64 { sizes[position] }
    public func isBlobData(at position: Int) -> Bool { blobData[position] }
    func lists(path: String, at position: Int) -> Bool { paths[position] == path.hashValue }
    func lists(digest: Digest, at position: Int) -> Bool { digests[position] == digest.hashValue }

    mutating func append(_ member: IndexedMember) {
        sizes.append(member.size)
        paths.append(member.path.hashValue)
        digests.append(member.digest.hashValue)
        blobData.append(member.path.hasPrefix(Self.blobsPrefix))
    }

    static let blobsPrefix = Layout.registryRoot.description + "/blobs/"
}
