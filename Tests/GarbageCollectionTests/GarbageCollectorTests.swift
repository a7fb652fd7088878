import Foundation
import GarbageCollection
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// Plans and sweeps on the in-memory driver. The same behaviour is checked against the real
/// registry in the integration tests.
@Suite struct GarbageCollectorTests {
    let old = Date(timeIntervalSince1970: 1_600_000_000)
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func collector(_ storage: InMemoryStorage, deleteUntagged: Bool = false, grace: String = "1h", allowBroken: Bool = false) -> GarbageCollector {
        var options = GCOptions()
        options.deleteUntagged = deleteUntagged
        options.gracePeriod = TimeSpan(grace)!
        options.allowBroken = allowBroken
        options.jobs = 2
        let now = now
        return GarbageCollector(storage: storage, options: options, now: { now })
    }

    /// A store with tagged, retagged, deleted, multi-arch, referrer and orphan content.
    struct Fixture {
        let storage = InMemoryStorage()
        var tagged: StoreBuilder.Image!
        var untagged: StoreBuilder.Image!
        var deleted: StoreBuilder.Image!
        var children: [StoreBuilder.Image] = []
        var index: Digest!
        var untaggedChildren: [StoreBuilder.Image] = []
        var untaggedIndex: Digest!
        var signature: StoreBuilder.Image!
        var orphanSignature: StoreBuilder.Image!
        var orphan: Digest!
        var shared: Data = layerBytes("shared")

        init(modified: Date) throws {
            let builder = StoreBuilder(storage: storage)
            tagged = try builder.image("app", tag: "v1", layers: [shared, layerBytes("app-1")], modified: modified)
            // Retagging moves `latest`: the first image stays as an untagged revision.
            untagged = try builder.image("app", tag: "latest", layers: [layerBytes("app-old")], modified: modified, seed: "old")
            let newer = try builder.image("app", tag: nil, layers: [shared, layerBytes("app-2")], modified: modified, seed: "new")
            try builder.tag("latest", in: "app", to: newer.manifest, modified: modified)
            deleted = try builder.image("app", tag: nil, layers: [layerBytes("gone")], modified: modified, seed: "deleted")
            try builder.deleteManifest(deleted.manifest, in: "app")
            children = try ["amd64", "arm64"].map {
                try builder.image("multi/arch", tag: nil, layers: [layerBytes($0)], mediaType: .dockerManifest, modified: modified, seed: $0)
            }
            index = try builder.index("multi/arch", tag: "1.0", children: children.map(\.manifest), mediaType: .dockerManifestList, modified: modified)
            untaggedChildren = try ["ppc", "s390"].map {
                try builder.image("multi/arch", tag: nil, layers: [layerBytes($0)], modified: modified, seed: $0)
            }
            untaggedIndex = try builder.index("multi/arch", tag: nil, children: untaggedChildren.map(\.manifest), modified: modified)
            signature = try builder.image("multi/arch", tag: nil, layers: [layerBytes("sig")], subject: index, modified: modified, seed: "sig")
            orphanSignature = try builder.image("multi/arch", tag: nil, layers: [layerBytes("sig2")], subject: untaggedIndex, modified: modified, seed: "sig2")
            orphan = try builder.blob(layerBytes("orphan"), modified: modified)
        }
    }

    @Test func plainGCSweepsOnlyWhatNoRevisionReferences() async throws {
        let fixture = try Fixture(modified: old)
        let plan = try await collector(fixture.storage).plan()
        #expect(plan.broken.isEmpty)
        #expect(Set(plan.blobs.map(\.digest)) == fixture.deleted.blobs.union([fixture.orphan]))
        #expect(plan.manifests.isEmpty)
        // The deleted image's layer link now points at a blob the sweep removes.
        #expect(Set(plan.links.map(\.digest)) == Set(fixture.deleted.layers + [fixture.deleted.config]))

        let before = try await blobDigests(in: fixture.storage)
        let result = try await SweepExecutor(testing: fixture.storage).execute(plan)
        #expect(result.failures.isEmpty)
        #expect(try await blobDigests(in: fixture.storage) == before.subtracting(plan.blobs.map(\.digest)))
        #expect(try await collector(fixture.storage).plan().isEmpty, "a second run finds nothing")
    }

    @Test func deleteUntaggedKeepsChildrenAndReferrersOfTaggedIndexes() async throws {
        let fixture = try Fixture(modified: old)
        let plan = try await collector(fixture.storage, deleteUntagged: true).plan()
        let removed = Set(plan.manifests.map(\.digest))
        #expect(removed == Set([fixture.untagged.manifest, fixture.untaggedIndex, fixture.orphanSignature.manifest] + fixture.untaggedChildren.map(\.manifest)))
        let expectedBlobs = fixture.untagged.blobs.union(fixture.orphanSignature.blobs)
            .union(fixture.untaggedChildren.flatMap(\.blobs)).union([fixture.untaggedIndex, fixture.orphan])
            .union(fixture.deleted.blobs)
        #expect(Set(plan.blobs.map(\.digest)) == expectedBlobs)
        // The untagged `latest` history entry goes with its manifest.
        #expect(plan.manifests.first { $0.digest == fixture.untagged.manifest }?.tagHistory == ["latest"])

        _ = try await SweepExecutor(testing: fixture.storage).execute(plan)
        let scanner = StoreScanner(storage: fixture.storage)
        let multi = scanner.scanRepository("multi/arch").state
        #expect(Set(multi.revisions.keys) == Set([fixture.index, fixture.signature.manifest] + fixture.children.map(\.manifest)))
        let app = scanner.scanRepository("app").state
        #expect(app.tags["latest"]?.history?.contains(fixture.untagged.manifest) == false)
        #expect(app.layers.keys.allSatisfy { try! fixture.storage.status(Layout.blobData($0)) != nil }, "no dangling layer links")
        #expect(try await collector(fixture.storage, deleteUntagged: true).plan().isEmpty)
    }

    @Test func gracePeriodProtectsYoungBlobs() async throws {
        let fixture = try Fixture(modified: now.addingTimeInterval(-60))
        let plan = try await collector(fixture.storage, grace: "1h").plan()
        #expect(plan.blobs.isEmpty)
        #expect(plan.counts.blobsInGracePeriod == fixture.deleted.blobs.count + 1)
        #expect(try await collector(fixture.storage, grace: "0").plan().blobs.count == fixture.deleted.blobs.count + 1)
    }

    @Test func abandonedUploadsArePurgedByAge() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: old)
        try builder.upload("app", uuid: "old-upload", startedAt: now.addingTimeInterval(-8 * 86_400))
        try builder.upload("app", uuid: "fresh-upload", startedAt: now.addingTimeInterval(-3600))
        let plan = try await collector(storage).plan()
        #expect(plan.uploads.map(\.uuid) == ["old-upload"])
        _ = try await SweepExecutor(testing: storage).execute(plan)
        #expect(StoreScanner(storage: storage).scanRepository("app").state.uploads.map(\.uuid) == ["fresh-upload"])
    }

    @Test func brokenManifestsStopTheSweepUnlessAllowed() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let image = try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: old)
        let garbage = try builder.manifest(Data("{not json".utf8), in: "app", modified: old)
        try builder.linkLayer("app", try builder.blob(layerBytes("maybe-used"), modified: old), modified: old)
        let orphan = try builder.blob(layerBytes("orphan"), modified: old)
        let plan = try await collector(storage).plan()
        #expect(plan.broken.map(\.digest) == [garbage])
        #expect(plan.broken.first?.repository == "app")
        #expect(plan.refusal != nil)
        await #expect(throws: GCError.self) { try await SweepExecutor(testing: storage).execute(plan) }
        #expect(try await blobDigests(in: storage).contains(orphan), "nothing deleted")

        // Allowed: everything the repository links is kept; only the unlinked orphan goes.
        let allowed = try await collector(storage, allowBroken: true).plan()
        #expect(allowed.blobs.map(\.digest) == [orphan])
        _ = try await SweepExecutor(testing: storage).execute(allowed)
        #expect(try await blobDigests(in: storage).isSuperset(of: image.blobs))
    }

    @Test func unreadableTagLinkFailsClosed() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let first = try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: old)
        let second = try builder.image("app", tag: nil, layers: [layerBytes("b")], modified: old, seed: "2")
        try builder.tag("v1", in: "app", to: second.manifest, modified: old)
        try storage.writeAtomically(Layout.tagCurrentLink("app", "v1"), Data(), modified: old)
        let plan = try await collector(storage, deleteUntagged: true).plan()
        #expect(plan.manifests.isEmpty, "both manifests in the tag's history stay")
        #expect(plan.blobs.isEmpty)
        #expect(plan.findings.contains { $0.path == Layout.tagCurrentLink("app", "v1") })
        _ = first
    }

    @Test func missingManifestBlobIsBrokenAndItsLinkDangling() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let image = try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: old)
        try storage.remove(Layout.blobDirectory(image.manifest))
        let plan = try await collector(storage, allowBroken: true).plan()
        #expect(plan.broken.map(\.reason) == ["manifest blob is missing"])
        #expect(plan.links.map(\.kind) == [.revision])
        _ = try await SweepExecutor(testing: storage).execute(plan)
        #expect(try storage.status(Layout.revisionLink("app", image.manifest)) == nil)
        #expect(try await blobDigests(in: storage) == Set([image.config] + image.layers), "its layers are kept: the repository links them")
    }

    @Test func pushDuringTheRunSurvives() async throws {
        let fixture = try Fixture(modified: old)
        let plan = try await collector(fixture.storage, deleteUntagged: true).plan()
        let storage = fixture.storage
        // Between plan and sweep, a push re-uses the untagged image by tagging it again.
        let untagged = fixture.untagged.manifest
        let hooks = SweepHooks(beforeSweep: {
            try StoreBuilder(storage: storage).tag("again", in: "app", to: untagged, modified: Date())
            try StoreBuilder(storage: storage).link(Layout.revisionLink("app", untagged), to: untagged, modified: Date())
        })
        let result = try await SweepExecutor(testing: storage, hooks: hooks).execute(plan)
        #expect(result.protectedManifests.map { "\($0.repository)@\($0.digest)" } == ["app@\(untagged)"])
        #expect(Set(result.protectedBlobs) == fixture.untagged.blobs)
        #expect(try await blobDigests(in: storage).isSuperset(of: fixture.untagged.blobs))
        #expect(try storage.status(Layout.revisionLink("app", untagged)) != nil)
    }

    @Test func emptiedRepositoriesAndShardsAreRemoved() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let image = try builder.image("gone/app", tag: nil, layers: [layerBytes("a")], modified: old)
        try builder.deleteManifest(image.manifest, in: "gone/app")
        try storage.remove(Layout.revisionDirectory("gone/app", image.manifest))
        try builder.image("kept", tag: "v1", layers: [layerBytes("b")], modified: old)
        let plan = try await collector(storage).plan()
        _ = try await SweepExecutor(testing: storage).execute(plan)
        #expect(StoreScanner(storage: storage).repositories().names == ["kept"])
        #expect(try storage.status(Layout.repositoryDirectory("gone/app")) == nil)
        #expect(try storage.status(Layout.blobShardDirectory(.sha256, shard: image.layers[0].shard)) == nil
            || image.layers[0].shard == image.config.shard)
    }
}

extension SweepExecutor {
    /// The in-memory driver keeps detached items under any name; no push races these tests.
    init(testing storage: any StoreStorage, hooks: SweepHooks = SweepHooks()) {
        self.init(storage: storage, area: SweepArea(stateDirectory: "/state"), settle: TimeSpan(seconds: 0), hooks: hooks)
    }
}
