import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport
import Testing

/// `--max-age`, `--budget` and `--time-limit`: what is rehashed, in which order, and that
/// successive budgeted runs cover the whole store.
@Suite struct ScrubScheduleTests {
    let start = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func maxAgeSkipsRecentlyVerifiedBlobsUntilTheyAgeOrChange() async throws {
        let fixture = try Fixture(.inMemory)
        let all = fixture.allBlobs.count
        #expect(try await fixture.verify(at: start).counts.blobsHashed == all)

        let dayLater = start.addingTimeInterval(86_400)
        var report = try await fixture.verify(maxAge: TimeSpan("30d")!, at: dayLater)
        #expect(report.counts.blobsHashed == 0)
        #expect(report.counts.recentlyVerified == all)
        #expect(report.seen == [])

        // A blob rewritten since (same bytes, new mtime) is due again.
        let touched = fixture.app.layers[0]
        (fixture.storage as! InMemoryStorage).setModified(Layout.blobData(touched), dayLater)
        report = try await fixture.verify(maxAge: TimeSpan("30d")!, at: dayLater)
        #expect(report.counts.blobsHashed == 1)

        report = try await fixture.verify(maxAge: TimeSpan("30d")!, at: start.addingTimeInterval(31 * 86_400))
        #expect(report.counts.blobsHashed == all - 1, "all but the one rehashed a day later")
    }

    @Test func corruptBlobsAreRehashedEvenWhenRecent() async throws {
        let fixture = try Fixture(.inMemory)
        try fixture.damage(fixture.app.config) { $0[0] ^= 0x20 }
        #expect(try await fixture.verify(at: start).seen.map(\.kind) == [.corrupt])
        let report = try await fixture.verify(maxAge: TimeSpan("30d")!, at: start.addingTimeInterval(60))
        #expect(report.seen.map(\.kind) == [.corrupt])
        #expect(report.counts.blobsHashed == 1)
    }

    @Test func budgetedRunsWalkTheWholeStoreOldestFirst() async throws {
        let fixture = try Fixture(.inMemory)
        let all = fixture.allBlobs
        var verified: Set<String> = []
        var night = 0
        while verified.count < all.count {
            let now = start.addingTimeInterval(Double(night) * 86_400)
            let report = try await fixture.verify(budget: 5000, at: now)
            #expect(report.seen == [])
            #expect(report.counts.blobsHashed >= 1)
            #expect(report.counts.bytesHashed <= 5000 || report.counts.blobsHashed == 1, "over budget only to make progress")
            let records = try await fixture.state().verificationRecords()
            let thisNight = Set(records.values.filter { $0.verifiedAt == now }.map(\.digest))
            if !thisNight.isDisjoint(with: verified) {
                #expect(verified.union(thisNight) == Set(all.map(\.description)), "never-verified blobs come before verified ones")
            }
            verified.formUnion(thisNight)
            night += 1
            #expect(night < 20)
            if night >= 20 { break }
        }
        #expect(verified == Set(all.map(\.description)))
        // Once everything was verified, the least recently verified come first.
        let records = try await fixture.state().verificationRecords()
        let oldest = records.values.filter { $0.verifiedAt == start }.map(\.digest)
        let report = try await fixture.verify(budget: 1, at: start.addingTimeInterval(Double(night) * 86_400))
        #expect(report.counts.blobsHashed == 1)
        #expect(report.stoppedBy == .budget)
        let rehashed = try await fixture.state().verificationRecords().values.filter { $0.verifiedAt > start.addingTimeInterval(Double(night - 1) * 86_400) }
        #expect(rehashed.count == 1 && oldest.contains(rehashed[0].digest))
    }

    @Test func timeLimitLeavesTheRestForLaterButStillChecksReferences() async throws {
        let fixture = try Fixture(.inMemory)
        try fixture.storage.remove(Layout.blobDirectory(fixture.index))
        let report = try await fixture.verify(timeLimit: .zero)
        #expect(report.counts.blobsHashed == 0)
        #expect(report.stoppedBy == .timeLimit)
        #expect(report.counts.deferred == fixture.allBlobs.count - 1)
        #expect(report.seen == [Seen(.missing, Layout.blobData(fixture.index), fixture.index, ["multi/arch:1.0"])])
    }

    @Test func scheduleOrdersNeverVerifiedThenOldest() {
        let digests = (0..<4).map { StoreBuilder.digest(of: Data([UInt8($0)])) }
        let blobs = digests.map { BlobStatus(digest: $0, size: 10, modified: start) }
        let records = [
            digests[0].description: VerificationRecord(digest: digests[0].description, size: 10, modified: start, verifiedAt: start.addingTimeInterval(20), result: .ok),
            digests[1].description: VerificationRecord(digest: digests[1].description, size: 10, modified: start, verifiedAt: start.addingTimeInterval(10), result: .ok),
            // Changed size since: counts as never verified.
            digests[2].description: VerificationRecord(digest: digests[2].description, size: 9, modified: start, verifiedAt: start.addingTimeInterval(30), result: .ok),
        ]
        let schedule = ScrubSchedule.plan(blobs, records: records, now: start.addingTimeInterval(40), maxAge: nil, budget: 25)
        let neverFirst = [digests[2], digests[3]].sorted()
        #expect(schedule.toHash.map(\.digest) == neverFirst)
        #expect(schedule.deferred.map(\.digest) == [digests[1], digests[0]])

        let recent = ScrubSchedule.plan(blobs, records: records, now: start.addingTimeInterval(40), maxAge: TimeSpan(seconds: 25), budget: nil)
        #expect(recent.recentlyVerified == 1)
        #expect(Set(recent.toHash.map(\.digest)) == Set([digests[1], digests[2], digests[3]]))
    }

    @Test func byteCountsParseAsOperatorsWriteThem() {
        #expect(ByteCount("50GiB")?.bytes == 50 << 30)
        #expect(ByteCount("50G")?.bytes == 50 << 30)
        #expect(ByteCount("500MB")?.bytes == 500_000_000)
        #expect(ByteCount("4096")?.bytes == 4096)
        #expect(ByteCount("1kB")?.bytes == 1000)
        #expect(ByteCount("1.5GiB") == nil)
        #expect(ByteCount("GiB") == nil)
        #expect(ByteCount("99999999999TiB") == nil)
        #expect(ByteCount("50GiB")?.description == "50GiB")
    }
}
