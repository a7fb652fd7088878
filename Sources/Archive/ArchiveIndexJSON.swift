import Foundation
import RegistryModel
import RegistryStore

extension ArchiveIndex {
    /// The bytes `encoder()` writes for this index, produced directly: through `Encodable`,
    /// JSONEncoder spent about 4 µs a member (a tenth of a second per 25,000, several seconds
    /// for a store of millions of files) between the last frame of blobs and the archive's
    /// rename. Only the small metadata object still goes through the encoder.
    func encoded() throws -> [UInt8] {
        var bytes: [UInt8] = []
        try encode { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// The length of `encoded()`, rendered and not kept: what a tar header and a skippable
    /// frame must declare before the index is written into them.
    func encodedCount() throws -> Int {
        var count = 0
        try encode { count += $0.count }
        return count
    }

    /// `encoded()`'s bytes handed to `sink` in pieces of about 64 KiB as they are rendered, so
    /// that writing an archive never holds its index whole: a quarter GiB for a million links,
    /// written twice (the index member and the table of contents).
    func encode(into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        func drain(_ json: inout JSONText) throws {
            guard json.bytes.count >= JSONText.pieceSize else { return }
            try json.bytes.withUnsafeBytes(sink)
            json.bytes.removeAll(keepingCapacity: true)
        }
        var json = JSONText()
        json.append("{\"blobs\":")
        try json.array(blobs, between: drain) {
            ["archive": .string($0.archive.rawValue), "digest": .string($0.digest.description), "size": .number($0.size)]
        }
        json.append(",\"excluded\":")
        try json.array(excluded, between: drain) { ["actual": .string($0.actual.description), "digest": .string($0.digest.description)] }
        json.append(",\"members\":")
        try json.array(members, between: drain) {
            ["digest": .string($0.digest.description), "path": .string($0.path), "size": .unsigned($0.size)]
        }
        json.append(",\"metadata\":")
        json.bytes.append(contentsOf: try Self.encoder().encode(metadata))
        json.append(",\"repositories\":")
        try json.array(repositories, between: drain) { ["blobs": .numbers($0.blobs), "name": .string($0.name.description)] }
        json.append("}")
        try json.bytes.withUnsafeBytes(sink)
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
struct JSONText {
    enum Value {
        case string(String)
        case number(Int64)
        case unsigned(UInt64)
        case numbers([Int])
    }

    /// What `ArchiveIndex.encode(into:)` lets gather before handing it on.
    static let pieceSize = 1 << 16

    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(Self.pieceSize + 4096) }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// An array of objects, each given as its fields in the order written (sorted, as
    /// `.sortedKeys` writes them); `between` runs between two objects, to hand on what has
    /// gathered.
    mutating func array<Element>(
        _ elements: [Element], between: (inout JSONText) throws -> Void, _ fields: (Element) -> KeyValuePairs<StaticString, Value>
    ) rethrows {
        append("[")
        for (position, element) in elements.enumerated() {
            if position > 0 {
                try between(&self)
                append(",")
            }
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
