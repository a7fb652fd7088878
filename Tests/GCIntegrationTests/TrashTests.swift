import Crypto
import Foundation
import GarbageCollection
import Operations
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// gc --trash then undo against the real registry: every file back byte for byte.
@Suite(.serialized) struct TrashTests {
    /// Every file of the registry tree with a hash of its content.
    func snapshot(_ root: URL) throws -> [String: String] {
        let v2 = root.appendingPathComponent("docker/registry/v2")
        var files: [String: String] = [:]
        let walker = FileManager.default.enumerator(at: v2, includingPropertiesForKeys: [.isRegularFileKey])!
        for case let url as URL in walker where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            files[String(url.path.dropFirst(v2.path.count))] = SHA256.hash(data: try Data(contentsOf: url)).description
        }
        return files
    }

    @Test func undoPutsEveryFileBackAndTheRegistryServesIt() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            try GCIntegrationTests().age(server.root)
            let before = try snapshot(server.root)
            let location = StoreLocation(root: server.root.path)
            let storage = try LocalStorage(root: server.root.path)
            var options = GCOptions()
            options.deleteUntagged = true
            options.gracePeriod = TimeSpan(seconds: 0)
            options.uploadMaxAge = TimeSpan(seconds: 0)
            var collection = CollectGarbage(storage: storage, location: location, options: options, dryRun: false, arguments: "gc --trash")
            collection.trash = true
            guard case .swept(let result, let run) = try await collection.run() else { Issue.record("no sweep"); return }
            #expect(!result.applied.blobs.isEmpty)
            #expect(try snapshot(server.root).count < before.count)

            let (undone, restoration) = try await UndoGarbageCollection(storage: storage, location: location, arguments: "gc undo").run(nil)
            #expect(undone == run.rawValue)
            #expect(restoration.refused.isEmpty)
            #expect(try snapshot(server.root) == before, "every file back, byte for byte")
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            try await Skopeo.pull(server: server, repository: "library/app", reference: store.untagged.digest)
            #expect(Trash(stateDirectory: location.stateDirectory).runs().isEmpty)
        }
    }

    @Test func undoRefusesWhatWasRecreatedAndRestoresTheRest() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            try GCIntegrationTests().age(server.root)
            let location = StoreLocation(root: server.root.path)
            let storage = try LocalStorage(root: server.root.path)
            var options = GCOptions()
            options.gracePeriod = TimeSpan(seconds: 0)
            var collection = CollectGarbage(storage: storage, location: location, options: options, dryRun: false, arguments: "gc --trash")
            collection.trash = true
            _ = try await collection.run()
            // The orphan blob is pushed again after the run: its trashed copy must not replace it.
            try await client.pushBlob(repository: "library/app", bytes: store.orphan.bytes)
            let (_, restoration) = try await UndoGarbageCollection(storage: storage, location: location, arguments: "gc undo").run(nil)
            let orphan = Digest(store.orphan.digest)!
            // The push re-created the blob and its link into the repository.
            #expect(restoration.refused.map(\.path) == [Layout.blobData(orphan).description, Layout.layerLink("library/app", orphan).description])
            #expect(restoration.restored.contains(Layout.blobData(Digest(store.deleted.digest)!).description))
            #expect(Trash(stateDirectory: location.stateDirectory).runs().count == 1, "the refused item stays in the trash")
        }
    }

    @Test func oldTrashIsPurgedByTheNextRun() async throws {
        try await withRegistry { server, client in
            _ = try await SampleStore.push(to: client)
            try GCIntegrationTests().age(server.root)
            let location = StoreLocation(root: server.root.path)
            let bin = Trash(stateDirectory: location.stateDirectory)
            let stale = bin.area(run: 99, at: Date().addingTimeInterval(-4 * 86_400))
            try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
            var options = GCOptions()
            options.gracePeriod = TimeSpan(seconds: 0)
            var collection = CollectGarbage(storage: try LocalStorage(root: server.root.path), location: location, options: options, dryRun: false, arguments: "gc --trash")
            collection.trash = true
            _ = try await collection.run()
            #expect(bin.runs().map(\.run) == [1], "the 4-day-old area is purged, this run's kept")
        }
    }
}
