@testable import Archive
import Foundation
import RegistryModel
import StoreTestSupport
import Testing

/// The index is written without JSONEncoder; readers decode it with JSONDecoder and compare
/// the index member with the table of contents byte for byte, so it must be exactly what the
/// encoder would have written.
@Suite struct IndexEncodingTests {
    func digest(_ seed: String) -> Digest { StoreBuilder.digest(of: Data(seed.utf8)) }

    func sample() -> ArchiveIndex {
        let created = Date(timeIntervalSince1970: 1_780_000_000)
        let parent = ArchiveID.make(at: created.addingTimeInterval(-86_400))
        let metadata = ArchiveMetadata(
            toolVersion: "0.0.0-test", id: ArchiveID.make(at: created), createdAt: created, sourceRoot: "/srv/\"registry\"",
            kind: .incremental, chain: [ChainLink(id: parent, file: "full \\ 1.tar.zst")], includesGarbage: true)
        let odd = "docker/registry/v2/repositories/app/_uploads/q\"uote\\back\u{1}ctl\u{8}\u{c}\n\r\t\u{1f}/é✓/startedat"
        return ArchiveIndex(
            metadata: metadata,
            members: [
                IndexedMember(path: ".regkeeper-archive/metadata.json", size: 310, digest: digest("metadata")),
                IndexedMember(path: "docker/registry/v2/blobs/sha256/ab/\(digest("a").hex)/data", size: UInt64.max, digest: digest("a")),
                IndexedMember(path: odd, size: 0, digest: digest("odd")),
            ],
            blobs: [SnapshotBlob(digest: digest("a"), size: Int64.max, archive: metadata.id), SnapshotBlob(digest: digest("b"), size: 0, archive: parent)],
            repositories: [RepositoryBlobs(name: "app", blobs: [0, 1]), RepositoryBlobs(name: "team/empty", blobs: [])],
            excluded: [ExcludedBlob(digest: digest("c"), actual: digest("d"))])
    }

    /// The index is read without JSONDecoder too: it must read back what it reads, keys in
    /// any order and unknown keys skipped, and refuse what JSONDecoder refuses.
    @Test func decodesAsJSONDecoderDoes() throws {
        let index = sample()
        let bytes = Data(try index.encoded())
        #expect(try ArchiveIndex.decode(bytes) == index)
        let reordered = Data(#"{"future":{"x":[1,2]},"repositories":[{"blobs":[1],"name":"app","also":null}],"excluded":[],"members":[{"size":7,"path":"p","digest":"\#(digest("p"))"}],"blobs":[],"metadata":"#.utf8)
            + Data(try ArchiveIndex.encoder().encode(index.metadata)) + Data("}".utf8)
        #expect(try ArchiveIndex.decode(reordered) == ArchiveIndex.decoder().decode(ArchiveIndex.self, from: reordered))

        let text = String(decoding: bytes, as: UTF8.self)
        let damaged = [
            text.replacingOccurrences(of: #""size":310"#, with: #""size":-310"#),
            text.replacingOccurrences(of: #","size":310"#, with: ""),
            text.replacingOccurrences(of: digest("a").description, with: "sha256:zz"),
            text.replacingOccurrences(of: #""name":"app""#, with: #""name":"App/../x""#),
            text.replacingOccurrences(of: #","excluded":[{"#, with: #","excluded":[{"digest":1,"#),
            String(text.dropLast()),
            text + "{}",
            text.replacingOccurrences(of: #""formatVersion":1"#, with: #""formatVersion":"one""#),
        ]
        for (number, variant) in damaged.enumerated() {
            #expect(variant != text, "variant \(number) changes nothing")
            #expect(throws: (any Error).self, "variant \(number)") { try ArchiveIndex.decoder().decode(ArchiveIndex.self, from: Data(variant.utf8)) }
            #expect(throws: JSONScanner.Failure.self, "variant \(number)") { try ArchiveIndex.decode(Data(variant.utf8)) }
        }
    }

    @Test func matchesJSONEncoderByteForByte() throws {
        let index = sample()
        let expected = Array(try ArchiveIndex.encoder().encode(index))
        #expect(String(decoding: try index.encoded(), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(try ArchiveIndex.decoder().decode(ArchiveIndex.self, from: Data(try index.encoded())) == index)

        let empty = ArchiveIndex(metadata: index.metadata, members: [], blobs: [], repositories: [], excluded: [])
        #expect(try empty.encoded() == Array(try ArchiveIndex.encoder().encode(empty)))
    }

    /// An archive's index is rendered in pieces, never whole (the tar member, then the table
    /// of contents): the pieces of an index many times their size join into exactly what
    /// JSONEncoder writes, none is much more than a piece, and the count agrees.
    @Test func piecesJoinIntoTheWholeIndex() throws {
        var index = sample()
        index.members += (0..<3_000).map {
            IndexedMember(path: "docker/registry/v2/repositories/team-\($0 % 7)/app/_layers/sha256/\(digest("l\($0)").hex)/link",
                          size: UInt64($0), digest: digest("l\($0)"))
        }
        index.blobs += (0..<500).map { SnapshotBlob(digest: digest("b\($0)"), size: Int64($0), archive: index.metadata.id) }
        index.repositories += (0..<400).map { RepositoryBlobs(name: RepositoryName("team-\($0 % 7)/app-\($0)")!, blobs: Array(0..<$0 % 50)) }
        var pieces: [[UInt8]] = []
        try index.encode { pieces.append(Array($0)) }
        let expected = Array(try ArchiveIndex.encoder().encode(index))
        #expect(pieces.count > 5)
        #expect(pieces.flatMap { $0 } == expected)
        #expect(pieces.allSatisfy { $0.count < JSONText.pieceSize + 4096 })
        #expect(try index.encodedCount() == expected.count)
    }
}
