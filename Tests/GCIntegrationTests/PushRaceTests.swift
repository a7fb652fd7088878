import Foundation
import GarbageCollection
import Operations
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Synchronization
import Testing

/// gc raced against a live docker-registry taking pushes whose only layer is one gc means to
/// delete: cross-repository mounts, uploads of bytes that already exist, manifest PUTs, and
/// (with --delete-untagged) tags pushed onto untagged manifests. Afterwards the registry is
/// restarted and every push it acknowledged must be served, byte for byte.
@Suite(.serialized) struct PushRaceTests {
    static let pushes = 2000
    static let doomed = 150
    /// Short for a test, and still longer than any single request has taken on a loaded
    /// machine (measured below).
    static let settle = TimeSpan(seconds: 5)

    /// One acknowledged push: a blob linked into `repository` (mount or upload answered 201),
    /// and the manifest put on top of it when that was answered 201 too.
    struct Acknowledged: Sendable {
        var repository: String
        var blob: Blob
        var manifest: (reference: String, digest: String)?
    }

    /// What the pushing tasks and the gc task share.
    final class Race: Sendable {
        let started = Mutex(0)
        let window = Mutex<(start: Date?, end: Date?)>((nil, nil))
        /// The longest single request of a push, in seconds: what the settle interval must outlast.
        let slowest = Mutex(0.0)

        func timed<T>(_ request: () async throws -> T) async throws -> T {
            let clock = ContinuousClock()
            let start = clock.now
            let result = try await request()
            let (seconds, attoseconds) = (clock.now - start).components
            slowest.withLock { $0 = max($0, Double(seconds) + Double(attoseconds) / 1e18) }
            return result
        }
    }

    struct Doomed: Sendable {
        var repository: String
        var layer: Blob
        /// The untagged image the layer belongs to, for --delete-untagged.
        var image: PushedImage?
    }

    struct Variant: Sendable, CustomStringConvertible {
        var deleteUntagged: Bool
        var trash: Bool

        var description: String { "gc" + (deleteUntagged ? " --delete-untagged" : "") + (trash ? " --trash" : "") }
    }

    static let variants = [Variant(deleteUntagged: false, trash: false), Variant(deleteUntagged: true, trash: false), Variant(deleteUntagged: true, trash: true)]

    @Test(arguments: variants)
    func everyAcknowledgedPushSurvivesGC(variant: Variant) async throws {
        try await withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("store")
            let server = try await RegistryServer.start(root: root)
            defer { server.stop() }
            let client = RegistryClient(server: server)
            let store = try await SampleStore.push(to: client)

            // Blobs only gc's plan keeps from being live: orphans uploaded into `orphans`, and
            // the single layers of untagged images in `untagged` (doomed with --delete-untagged).
            var builder = ImageBuilder(client: client, seed: 77, layerSize: 1024)
            var doomed: [Doomed] = []
            for index in 0..<Self.doomed {
                let orphan = Blob(Data("orphan \(index) ".utf8) + Data(repeating: UInt8(index % 251), count: 1024))
                try await client.pushBlob(repository: "orphans", bytes: orphan.bytes)
                doomed.append(Doomed(repository: "orphans", layer: orphan))
                if variant.deleteUntagged {
                    let image = try await builder.pushImage(repository: "untagged", tag: nil, layerCount: 1)
                    doomed.append(Doomed(repository: "untagged", layer: image.layers[0], image: image))
                }
            }
            let old = Date().addingTimeInterval(-7200)
            let enumerator = FileManager.default.enumerator(atPath: root.path)!
            while let relative = enumerator.nextObject() as? String {
                try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: root.appendingPathComponent(relative).path)
            }

            var options = GCOptions()
            options.deleteUntagged = variant.deleteUntagged
            options.gracePeriod = TimeSpan(seconds: 0)
            options.settle = Self.settle
            options.jobs = 2
            var collection = CollectGarbage(
                storage: try LocalStorage(root: root.path), location: StoreLocation(root: root.path), options: options,
                dryRun: false, arguments: "gc (race test)")
            collection.trash = variant.trash
            let gc = collection
            let victims = doomed

            let race = Race()
            let acknowledged = try await withThrowingTaskGroup(of: [Acknowledged].self) { group in
                group.addTask {
                    // gc starts once pushes are flowing, and runs while they go on.
                    while race.started.withLock({ $0 }) < Self.pushes / 20 { try await Task.sleep(for: .milliseconds(5)) }
                    race.window.withLock { $0.start = Date() }
                    _ = try await gc.run()
                    race.window.withLock { $0.end = Date() }
                    return []
                }
                for worker in 0..<8 {
                    group.addTask {
                        var done: [Acknowledged] = []
                        for number in stride(from: worker, to: Self.pushes, by: 8) {
                            race.started.withLock { $0 += 1 }
                            if let push = try await Self.push(number, victims[number % victims.count], client, variant.deleteUntagged, race) {
                                done.append(push)
                            }
                        }
                        return done
                    }
                }
                var all: [Acknowledged] = []
                for try await part in group { all += part }
                return all
            }

            // What a restart after gc serves, as an operator's registry would.
            try await server.restart()
            var lost: [String] = []
            for push in acknowledged {
                let served = try await client.fetchBlob(repository: push.repository, digest: push.blob.digest)
                if served.map(sha256Digest) != push.blob.digest { lost.append("blob \(push.repository)@\(push.blob.digest)") }
                if let (reference, digest) = push.manifest, try await !client.manifestExists(repository: push.repository, reference: reference) {
                    lost.append("manifest \(push.repository):\(reference) (\(digest))")
                }
            }
            #expect(lost.isEmpty, "\(lost.count) acknowledged push(es) lost: \(lost.prefix(10))")
            let images = acknowledged.filter { $0.manifest != nil }
            for push in images.shuffled().prefix(15) {
                try await Skopeo.pull(server: server, repository: push.repository, reference: push.manifest!.reference)
            }
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            let (start, end) = race.window.withLock { $0 }
            #expect(start != nil && end != nil)
            // The race is real: the settle interval outlasts every push request, and pushes went on during the run.
            #expect(race.slowest.withLock { $0 } < Double(Self.settle.seconds), "a push request took longer than the settle interval")
            print("push race (\(variant)): \(acknowledged.count) blob pushes and \(images.count) images acknowledged, slowest request \(String(format: "%.3f", race.slowest.withLock { $0 })) s, gc ran \(String(format: "%.1f", end!.timeIntervalSince(start!))) s")
        }
    }

    /// Push `number`: a new repository whose only layer is `victim`'s, linked by mount (from the
    /// repository holding it), by uploading the same bytes again, or (for an untagged image)
    /// by tagging the untagged manifest itself; then a manifest PUT naming it.
    static func push(_ number: Int, _ victim: Doomed, _ client: RegistryClient, _ deleteUntagged: Bool, _ race: Race) async throws -> Acknowledged? {
        if deleteUntagged, number % 3 == 2, let image = victim.image {
            let status = try await race.timed {
                try await client.putManifest(
                    repository: victim.repository, reference: "again-\(number)", bytes: image.manifest, mediaType: image.mediaType)
            }
            guard status == 201 else { return nil }
            return Acknowledged(repository: victim.repository, blob: victim.layer, manifest: ("again-\(number)", image.digest))
        }
        let repository = "race/push-\(number)"
        if number % 3 == 0, try await race.timed({ try await client.mountBlob(repository: repository, digest: victim.layer.digest, from: victim.repository) }) {
            // Mounted (201): linked without an upload.
        } else {
            try await race.timed { try await client.pushBlob(repository: repository, bytes: victim.layer.bytes) }
        }
        let config = Blob(Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"push\":\(number)}".utf8))
        try await race.timed { try await client.pushBlob(repository: repository, bytes: config.bytes) }
        let manifest = Data("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config.digest)","size":\(config.size)},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(victim.layer.digest)","size":\(victim.layer.size)}]}
            """.utf8)
        let status = try await race.timed {
            try await client.putManifest(
                repository: repository, reference: "v1", bytes: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json")
        }
        return Acknowledged(repository: repository, blob: victim.layer, manifest: status == 201 ? ("v1", sha256Digest(manifest)) : nil)
    }
}
