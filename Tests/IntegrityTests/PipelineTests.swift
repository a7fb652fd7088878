import Foundation
@testable import Integrity
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport
import Testing

/// Hashing runs beside the scan, small blobs on one path and blobs larger than one read on
/// another: whatever the number of threads, every blob is hashed once, recorded once, and
/// judged against the whole reference graph; the same with blobs hashed in lanes and
/// one at a time (CPUs without SHA extensions).
@Suite struct PipelineTests {
    @Test(arguments: [1, 2, 5], [true, false])
    func largeAndSmallBlobsAreEachHashedAndRecordedOnce(_ jobs: Int, _ inLanes: Bool) async throws {
        guard !inLanes || SHA256Blocks.isAvailable else { return }
        let fixture = try Fixture(.local)
        // Larger than one read, so they take the large blobs' path; one of them shared.
        let big = (0..<3).map { layerBytes("big-\($0)", size: BlobHasher.chunkSize * 2 + 1000 * $0) }
        let first = try fixture.builder.image("big/one", tag: "v1", layers: [big[0], big[1]])
        let second = try fixture.builder.image("big/two", tag: "v2", layers: [big[1], big[2]])
        let sharedBig = first.layers[1]
        try fixture.damage(sharedBig) { $0[BlobHasher.chunkSize + 7] ^= 0x80 }
        let smallLayer = fixture.other.layers[1]
        try fixture.damage(smallLayer) { $0[3] ^= 0x01 }

        var options = VerifyOptions()
        options.jobs = jobs
        let consumed = Consumed()
        var verifier = Verifier(storage: fixture.storage, state: try fixture.state(), options: options, findings: { consumed.append($0) })
        verifier.hashesInLanes = inLanes
        let report = try await verifier.run()

        let all = fixture.allBlobs.union(first.blobs).union(second.blobs)
        #expect(report.seen == [
            Seen(.corrupt, Layout.blobData(sharedBig), sharedBig, ["big/one:v1", "big/two:v2"]),
            Seen(.corrupt, Layout.blobData(smallLayer), smallLayer, ["team/other:latest"]),
        ].sorted { $0.path < $1.path })
        #expect(consumed.all.count == 2)
        #expect(report.counts.blobsHashed == all.count)
        #expect(report.counts.blobs == all.count)
        let records = try await fixture.state().verificationRecords()
        #expect(Set(records.keys) == Set(all.map(\.description)))
        #expect(Set(records.values.filter { $0.result == .corrupt }.map(\.digest)) == [sharedBig.description, smallLayer.description])
        var bytes: Int64 = 0
        for digest in all { bytes += try #require(try fixture.storage.status(Layout.blobData(digest))).size }
        #expect(report.counts.bytesHashed == bytes)
        #expect(report.counts.bytes == bytes)
    }

    @Test func aStateDatabaseThatFailsToOpenFailsTheRunBeforeAnyFinding() async throws {
        let fixture = try Fixture(.inMemory)
        try fixture.damage(fixture.app.layers[1]) { $0[0] ^= 1 }
        try fixture.storage.remove(Layout.blobDirectory(fixture.other.config))
        struct Refused: Error {}
        let consumed = Consumed()
        let opening = Task<StateStore, any Error> { throw Refused() }
        await #expect(throws: Refused.self) {
            try await Verifier(storage: fixture.storage, opening: opening, options: VerifyOptions(), findings: { consumed.append($0) }).run()
        }
        #expect(consumed.all.isEmpty)
    }

    @Test func maxAgeSkipsWhatWasJustVerifiedWhileHashingTheRest() async throws {
        let fixture = try Fixture(.local)
        _ = try await fixture.verify()
        let added = try fixture.builder.image("late", tag: "v1", layers: [layerBytes("late", size: BlobHasher.chunkSize + 1)])
        let report = try await fixture.verify(maxAge: TimeSpan(seconds: 3600))
        #expect(report.seen == [])
        #expect(report.counts.recentlyVerified == fixture.allBlobs.count)
        #expect(report.counts.blobsHashed == added.blobs.subtracting(fixture.allBlobs).count)
        #expect(report.stoppedBy == nil)
    }
}
