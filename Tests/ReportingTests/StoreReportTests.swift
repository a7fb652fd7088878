import Foundation
import GarbageCollection
import RegistryModel
import RegistryStore
import Reporting
import StoreTestSupport
import Testing

@Suite struct StoreReportTests {
    let old = Date(timeIntervalSince1970: 1_600_000_000)
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func countsSharesAndAgreesWithGC() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let shared = layerBytes("shared", size: 1000)
        let a = try builder.image("team/a", tag: "v1", layers: [shared, layerBytes("a", size: 300)], modified: old)
        let b = try builder.image("team/b", tag: "v1", layers: [shared, layerBytes("b", size: 200)], modified: old)
        let untagged = try builder.image("team/b", tag: nil, layers: [layerBytes("untagged", size: 50)], modified: old, seed: "u")
        let child = try builder.image("multi", tag: nil, layers: [layerBytes("c", size: 10)], modified: old, seed: "c")
        try builder.index("multi", tag: "1.0", children: [child.manifest], modified: old)
        try builder.image("multi", tag: nil, layers: [layerBytes("sig", size: 5)], subject: child.manifest, modified: old, seed: "s")
        try builder.blob(layerBytes("orphan", size: 77), modified: old)
        try builder.upload("team/a", uuid: "old", startedAt: now.addingTimeInterval(-30 * 86_400), data: Data(count: 11))
        try builder.upload("team/a", uuid: "new", startedAt: now, data: Data(count: 3))

        let now = now
        let report = try await StoreReporter(storage: storage, jobs: 2, now: { now }).report()
        #expect(report.repositories == 3)
        #expect(report.tags == 3)
        #expect(report.manifests.total == 6)
        #expect(report.manifests.tagged == 3)
        #expect(report.manifests.untagged == 3)
        #expect(report.manifests.indexChildren == 1)
        #expect(report.manifests.referrers == 1)
        #expect((report.uploads, report.uploadBytes, report.abandonedUploads, report.abandonedUploadBytes) == (2, 14, 1, 11))

        var options = GCOptions()
        options.gracePeriod = TimeSpan(seconds: 0)
        let plain = try await GarbageCollector(storage: storage, options: options, now: { now }).plan()
        #expect(report.reclaimable.blobs == plain.blobs.count)
        #expect(report.reclaimable.bytes == plain.blobs.reduce(0) { $0 + $1.bytes })
        options.deleteUntagged = true
        let untaggedPlan = try await GarbageCollector(storage: storage, options: options, now: { now }).plan()
        #expect(report.reclaimableUntagged.blobs == untaggedPlan.blobs.count)
        #expect(report.reclaimableUntagged.bytes == untaggedPlan.blobs.reduce(0) { $0 + $1.bytes })
        #expect(untaggedPlan.blobs.map(\.digest).contains(untagged.manifest))

        let usageA = try #require(report.topRepositories.first { $0.repository == "team/a" })
        let size = { (digest: Digest) in (try storage.status(Layout.blobData(digest)))?.size ?? 0 }
        #expect(usageA.bytes == (try a.blobs.map(size).reduce(0, +)))
        #expect(usageA.sharedBytes == 1000, "the shared layer")
        let usageB = try #require(report.topRepositories.first { $0.repository == "team/b" })
        #expect(usageB.exclusiveBytes == (try b.blobs.union(untagged.blobs).map(size).reduce(0, +)) - 1000)
        #expect(report.blobs == (try await blobDigests(in: storage)).count)
    }

    /// Sizes come from descriptors where there are some; schema1 layers have none and are
    /// stat'ed, and a blob directory without data is not counted as a blob.
    @Test func sizesWithoutDescriptorsAreStatted() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let layer = try builder.blob(layerBytes("schema1 layer", size: 4321))
        try builder.linkLayer("legacy", layer)
        let manifest = Data(#"{"schemaVersion":1,"name":"legacy","tag":"old","fsLayers":[{"blobSum":"\#(layer)"}],"history":[]}"#.utf8)
        _ = try builder.manifest(manifest, in: "legacy", tag: "old")
        let hollow = StoreBuilder.digest(of: Data("no data".utf8))
        try storage.writeAtomically(try #require(Layout.blobDirectory(hollow).appending("stray")), Data("x".utf8), modified: nil)

        let report = try await StoreReporter(storage: storage, jobs: 2).report()
        #expect(report.blobs == 2)
        #expect(report.bytes == 4321 + Int64(manifest.count))
        let usage = try #require(report.topRepositories.first)
        #expect((usage.bytes, usage.exclusiveBytes) == (4321 + Int64(manifest.count), 4321 + Int64(manifest.count)))
        #expect(report.reclaimable.blobs == 0)
    }
}
