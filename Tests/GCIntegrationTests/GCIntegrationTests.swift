import Foundation
import GarbageCollection
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Synchronization
import Testing

/// gc against stores written by Debian's docker-registry, checked by pulling every tag back
/// with skopeo and against the peer's own `garbage-collect`.
@Suite(.serialized) struct GCIntegrationTests {
    func options(deleteUntagged: Bool) -> GCOptions {
        var options = GCOptions()
        options.deleteUntagged = deleteUntagged
        options.gracePeriod = TimeSpan(seconds: 0)
        options.uploadMaxAge = TimeSpan(seconds: 0)
        options.jobs = 2
        return options
    }

    /// Links are written in the same second as the plan in these tests; the sweep's re-read
    /// would protect them all. Ageing the store by an hour makes it look as it does in production.
    func age(_ root: URL) throws {
        let old = Date().addingTimeInterval(-3600)
        let enumerator = FileManager.default.enumerator(atPath: root.path)!
        while let relative = enumerator.nextObject() as? String {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: root.appendingPathComponent(relative).path)
        }
    }

    func expectEveryTagPulls(_ store: SampleStore, _ server: RegistryServer) async throws {
        for (repository, tag) in store.tagReferences {
            try await Skopeo.pull(server: server, repository: repository, reference: tag)
        }
    }

    func digests(_ strings: Set<String>) -> Set<Digest> { Set(strings.compactMap { Digest($0) }) }

    @Test func plainGCDeletesExactlyWhatThePeerWould() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            try age(server.root)
            let peer = try PeerGarbageCollector.run(configPath: server.configPath, dryRun: true, deleteUntagged: false)
            let storage = try LocalStorage(root: server.root.path)
            let plan = try await GarbageCollector(storage: storage, options: options(deleteUntagged: false)).plan()
            #expect(Set(plan.blobs.map(\.digest)) == digests(peer.blobsEligible))
            #expect(Set(plan.blobs.map(\.digest)) == digests(store.deleted.allBlobDigests.subtracting(store.blobsOfTaggedImages).union([store.orphan.digest])))
            #expect(plan.uploads.map(\.uuid) == [store.abandonedUpload.uuid])

            let result = try await SweepExecutor(testing: storage).execute(plan)
            #expect(result.failures.isEmpty)
            #expect(Set(result.applied.blobs) == Set(plan.blobs), "the dry-run plan is what the run applied")
            try await expectEveryTagPulls(store, server)
            #expect(try await Skopeo.pullSucceeds(server: server, repository: "signed/app", reference: store.untagged.digest) == false)
            #expect(try await Skopeo.pullSucceeds(server: server, repository: "library/app", reference: store.untagged.digest), "untagged revisions stay without --delete-untagged")
            let again = try await GarbageCollector(storage: storage, options: options(deleteUntagged: false)).plan()
            #expect(again.isEmpty, "a second run deletes nothing")
        }
    }

    @Test func deleteUntaggedKeepsMultiArchChildrenAndReferrers() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            try age(server.root)
            // The peer would delete the children of both tagged indexes and the signature.
            let peer = try PeerGarbageCollector.run(configPath: server.configPath, dryRun: true, deleteUntagged: true)
            let children = store.tagged.flatMap(\.children).map(\.digest)
            #expect(Set(children + [store.referrer.digest]).isSubset(of: peer.manifestsEligible))

            let storage = try LocalStorage(root: server.root.path)
            let plan = try await GarbageCollector(storage: storage, options: options(deleteUntagged: true)).plan()
            #expect(Set(plan.manifests.map(\.digest)) == digests([store.untagged.digest]))
            let result = try await SweepExecutor(testing: storage).execute(plan)
            #expect(result.failures.isEmpty)

            try await expectEveryTagPulls(store, server)
            try await Skopeo.pull(server: server, repository: "signed/app", reference: store.referrer.digest)
            #expect(try await blobDigests(in: storage) == digests(store.blobsOfTaggedImages))
            let scanner = StoreScanner(storage: storage)
            for name in scanner.repositories().names {
                let state = scanner.scanRepository(name).state
                #expect(state.uploads.isEmpty)
                for link in Array(state.layers.values) + Array(state.revisions.values) {
                    #expect(try storage.status(Layout.blobData(link.target)) != nil, "dangling link to \(link.target) in \(name)")
                }
            }
            #expect(try await GarbageCollector(storage: storage, options: options(deleteUntagged: true)).plan().isEmpty)
        }
    }

    @Test func pushDuringTheRunSurvivesTheSweep() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            try age(server.root)
            let storage = try LocalStorage(root: server.root.path)
            let plan = try await GarbageCollector(storage: storage, options: options(deleteUntagged: true)).plan()
            #expect(plan.blobs.contains { $0.digest.description == store.orphan.digest })
            // Between mark and sweep a client pushes an image whose layer is the orphan blob
            // (the registry skips the upload: the blob exists) and re-tags the untagged image.
            let pushed = Mutex<PushedImage?>(nil)
            let hooks = SweepHooks(beforeSweep: {
                var builder = ImageBuilder(client: client, seed: 99)
                let image = try await builder.pushImage(repository: "late/push", tag: "new", sharedLayers: [store.orphan])
                pushed.withLock { $0 = image }
                _ = try await builder.retag(store.untagged, as: "revived")
            })
            let result = try await SweepExecutor(testing: storage, hooks: hooks).execute(plan)
            #expect(result.protectedBlobs.contains { $0.description == store.orphan.digest })
            try await Skopeo.pull(server: server, repository: "late/push", reference: "new")
            try await Skopeo.pull(server: server, repository: "library/app", reference: "revived")
            try await expectEveryTagPulls(store, server)
            _ = pushed
        }
    }

    /// Stops the sweep after each prefix of its deletions, as kill -9 would (every deletion is
    /// one synchronous system call), reruns gc, and checks the registry still serves every tag.
    @Test func sweepCutShortAnywhereLeavesAServableStore() async throws {
        try await withTemporaryDirectory { directory in
            let source = directory.appendingPathComponent("source")
            let server = try await RegistryServer.start(root: source)
            let store = try await SampleStore.push(to: RegistryClient(server: server))
            server.stop()
            try age(source)
            let total = try await GarbageCollector(storage: LocalStorage(root: source.path), options: options(deleteUntagged: true)).plan()
            let steps = total.blobs.count + total.manifests.count + total.links.count + total.uploads.count
            for cut in Set([1, steps / 3, 2 * steps / 3, steps - 1]).sorted() {
                let copy = directory.appendingPathComponent("cut-\(cut)")
                // cp -a keeps the mtimes that make the copy look aged (FileManager's copy does not).
                try ProcessRunner.runBlocking("/bin/cp", ["-a", source.path, copy.path])
                let storage = try LocalStorage(root: copy.path)
                let plan = try await GarbageCollector(storage: storage, options: options(deleteUntagged: true)).plan()
                let count = Mutex(0)
                let hooks = SweepHooks(afterEachItem: { _ in
                    if count.withLock({ $0 += 1; return $0 }) == cut { throw CancellationError() }
                })
                await #expect(throws: CancellationError.self) { try await SweepExecutor(testing: storage, hooks: hooks).execute(plan) }
                let served = try await RegistryServer.start(root: copy)
                defer { served.stop() }
                try await expectEveryTagPulls(store, served)
                // What the next exclusive run does first: every item taken out goes back.
                let recovery = try SweepArea(stateDirectory: copy.path + "/.regkeeper").recover(into: storage)
                #expect(recovery.runs.count == 1 && recovery.restored >= cut, "cut after \(cut) of \(steps)")
                try await expectEveryTagPulls(store, served)
                let rerun = try await GarbageCollector(storage: storage, options: options(deleteUntagged: true)).plan()
                _ = try await SweepExecutor(testing: storage).execute(rerun)
                try await expectEveryTagPulls(store, served)
                #expect(try await blobDigests(in: storage) == digests(store.blobsOfTaggedImages), "cut after \(cut) of \(steps)")
            }
        }
    }

    /// The store the unit tests write by hand is one the real registry serves.
    @Test func handBuiltStoreIsServedByTheRegistry() async throws {
        try await withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("store")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let builder = StoreBuilder(storage: try LocalStorage(root: root.path))
            let image = try builder.image("hand/made", tag: "v1", layers: [layerBytes("a"), layerBytes("b")])
            let docker = try builder.image("hand/made", tag: nil, layers: [layerBytes("c")], mediaType: .dockerManifest, seed: "d")
            try builder.index("hand/made", tag: "multi", children: [image.manifest])
            _ = try builder.image("hand/made", tag: nil, layers: [layerBytes("s")], subject: image.manifest, seed: "sig")
            let server = try await RegistryServer.start(root: root)
            defer { server.stop() }
            for tag in ["v1", "multi"] { try await Skopeo.pull(server: server, repository: "hand/made", reference: tag) }
            try await Skopeo.pull(server: server, repository: "hand/made", reference: docker.manifest.description)
        }
    }
}

extension SweepExecutor {
    /// The sweep area in the store's default state directory, on its filesystem.
    init(testing storage: LocalStorage, hooks: SweepHooks = SweepHooks()) {
        self.init(storage: storage, area: SweepArea(stateDirectory: storage.rootPath + "/.regkeeper"), settle: TimeSpan(seconds: 0), hooks: hooks)
    }
}
