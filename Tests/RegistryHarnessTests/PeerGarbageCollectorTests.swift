import Foundation
import RegistryHarness
import Testing

@Suite struct PeerGarbageCollectorTests {
    @Test func dryRunListsOnlyTheDeletedImagesBlobs() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 11)
            let a = try await builder.pushImage(repository: "gc/app", tag: "a")
            try await builder.delete(a)
            let b = try await builder.pushImage(repository: "gc/app", tag: "b")
            server.stop()

            let result = try PeerGarbageCollector.run(configPath: server.configPath, dryRun: true, deleteUntagged: false)
            #expect(result.blobsEligible == a.allBlobDigests)
            #expect(result.blobsEligible.isDisjoint(with: b.allBlobDigests))
            #expect(result.markedManifests == [b.digest])
            #expect(result.markedBlobs == b.allBlobDigests.subtracting([b.digest]))
            #expect(result.manifestsEligible.isEmpty)
            #expect(result.summary.blobsMarked == b.allBlobDigests.count)
            #expect(result.summary.blobsEligible == a.allBlobDigests.count)
            #expect(result.summary.manifestsEligible == 0)
            // A dry run must leave the store as it was.
            #expect(exists(StorePaths(root: server.root).blobData(a.digest)))
        }
    }

    /// Reproduces the 2.8 bug described in STORE.md: `--delete-untagged` treats the children of a
    /// tagged index as untagged, and ignores `subject`, so referrers go too.
    @Test func deleteUntaggedTakesIndexChildrenAndReferrers() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 12)
            let index = try await builder.pushIndex(repository: "gc/multi", tag: "v1")
            let referrer = try await builder.pushReferrer(repository: "gc/multi", subject: index)
            server.stop()

            let result = try PeerGarbageCollector.run(configPath: server.configPath, dryRun: true, deleteUntagged: true)
            #expect(result.manifestsEligible == Set(index.children.map(\.digest) + [referrer.digest]))
            #expect(result.summary.manifestsEligible == 3)
        }
    }

    /// The harness must be able to see the damage the peer does: after a real `--delete-untagged`
    /// the index's tag no longer pulls.
    @Test func deleteUntaggedBreaksMultiArchPulls() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 14)
            let index = try await builder.pushIndex(repository: "gc/broken", tag: "v1")
            try await Skopeo.pull(server: server, repository: "gc/broken", reference: "v1")
            server.stop()

            _ = try PeerGarbageCollector.run(configPath: server.configPath, dryRun: false, deleteUntagged: true)
            try await server.restart()
            #expect(try await client.manifestExists(repository: "gc/broken", reference: index.digest))
            #expect(try await !client.manifestExists(repository: "gc/broken", reference: index.children[0].digest))
            do {
                try await Skopeo.pull(server: server, repository: "gc/broken", reference: "v1")
                Issue.record("the index still pulls after --delete-untagged")
            } catch let ProcessError.nonZeroExit(_, _, stderr) {
                #expect(stderr.contains("manifest unknown"))
            }
        }
    }

    @Test func sweepDeletesBlobsAndReportsTheSame() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 13)
            let a = try await builder.pushImage(repository: "gc/sweep", tag: "a")
            try await builder.delete(a)
            server.stop()

            let result = try PeerGarbageCollector.run(configPath: server.configPath, dryRun: false, deleteUntagged: false)
            #expect(result.blobsEligible == a.allBlobDigests)
            let store = StorePaths(root: server.root)
            for digest in a.allBlobDigests { #expect(!exists(store.blobData(digest))) }
            // ...while the links to the swept blobs stay behind.
            #expect(exists(store.layerLink("gc/sweep", a.layerDigests[0])))
        }
    }

    @Test func failingRunCarriesStatusAndStderr() throws {
        do {
            _ = try PeerGarbageCollector.run(
                configPath: URL(fileURLWithPath: "/nonexistent/config.yml"), dryRun: true, deleteUntagged: false)
            Issue.record("expected a failure")
        } catch let ProcessError.nonZeroExit(_, status, stderr) {
            #expect(status != 0)
            #expect(stderr.contains("configuration error"))
        }
    }
}
