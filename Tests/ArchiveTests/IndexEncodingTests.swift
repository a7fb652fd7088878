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

    @Test func matchesJSONEncoderByteForByte() throws {
        let created = Date(timeIntervalSince1970: 1_780_000_000)
        let parent = ArchiveID.make(at: created.addingTimeInterval(-86_400))
        let metadata = ArchiveMetadata(
            toolVersion: "0.0.0-test", id: ArchiveID.make(at: created), createdAt: created, sourceRoot: "/srv/\"registry\"",
            kind: .incremental, chain: [ChainLink(id: parent, file: "full \\ 1.tar.zst")], includesGarbage: true)
        let odd = "docker/registry/v2/repositories/app/_uploads/q\"uote\\back\u{1}ctl\u{8}\u{c}\n\r\t\u{1f}/é✓/startedat"
        let members = [
            IndexedMember(path: ".regkeeper-archive/metadata.json", size: 310, digest: digest("metadata")),
            IndexedMember(path: "docker/registry/v2/blobs/sha256/ab/\(digest("a").hex)/data", size: UInt64.max, digest: digest("a")),
            IndexedMember(path: odd, size: 0, digest: digest("odd")),
        ]
        let blobs = [
            SnapshotBlob(digest: digest("a"), size: Int64.max, archive: metadata.id),
            SnapshotBlob(digest: digest("b"), size: 0, archive: parent),
        ]
        let repositories = [
            RepositoryBlobs(name: "app", blobs: [0, 1]),
            RepositoryBlobs(name: "team/empty", blobs: []),
        ]
        let excluded = [ExcludedBlob(digest: digest("c"), actual: digest("d"))]
        let index = ArchiveIndex(metadata: metadata, members: members, blobs: blobs, repositories: repositories, excluded: excluded)
        let expected = Array(try ArchiveIndex.encoder().encode(index))
        #expect(String(decoding: try index.encoded(), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(try ArchiveIndex.decoder().decode(ArchiveIndex.self, from: Data(try index.encoded())) == index)

        let empty = ArchiveIndex(metadata: metadata, members: [], blobs: [], repositories: [], excluded: [])
        #expect(try empty.encoded() == Array(try ArchiveIndex.encoder().encode(empty)))
    }
}
