import Foundation
import RegistryHarness
import Synchronization
import Testing

/// gc raced against docker-registry pushing to the bucket through its s3 driver, each push
/// linking a blob gc means to delete (a mount, or an upload of the same bytes) or, with
/// --delete-untagged, tagging an untagged manifest gc means to delete. S3 has no rename: gc's
/// copy-and-delete "out of sight" must still lose no push the registry acknowledged.
@Suite(.serialized) struct S3PushRaceTests {
    static let pushes = 240
    static let doomed = 40

    struct Victim: Sendable {
        var repository: String
        var layer: Blob
        var image: PushedImage?
    }

    /// Pushes begun so far, shared by the pushing tasks and the gc task.
    final class Started: Sendable {
        let count = Mutex(0)
    }

    struct Acknowledged: Sendable {
        var repository: String
        var blob: Blob
        var manifest: String?
    }

    @Test(arguments: [false, true])
    func everyAcknowledgedPushSurvivesGC(deleteUntagged: Bool) async throws {
        let bucket = try await CephCluster.shared().makeBucket("race")
        let registry = try await S3RegistryServer.start(endpoint: bucket)
        let client = RegistryClient(baseURL: registry.baseURL)
        var builder = ImageBuilder(client: client, seed: 77, layerSize: 1024)
        let kept = try await builder.pushImage(repository: "kept", tag: "v1")
        var victims: [Victim] = []
        for index in 0..<Self.doomed {
            let orphan = Blob(Data("orphan \(index) ".utf8) + Data(repeating: UInt8(index % 251), count: 1024))
            try await client.pushBlob(repository: "orphans", bytes: orphan.bytes)
            victims.append(Victim(repository: "orphans", layer: orphan))
            if deleteUntagged {
                let image = try await builder.pushImage(repository: "untagged", tag: nil, layerCount: 1)
                victims.append(Victim(repository: "untagged", layer: image.layers[0], image: image))
            }
        }
        // Older than gc's 2 s clock slack, so that gc really takes them out of sight.
        try await Task.sleep(for: .seconds(3.5))
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-race-\(UUID())").path
        let arguments = ["gc", "--grace-period", "0", "--settle", "2s", "--config", registry.configPath.path, "--state-dir", state]
            + (deleteUntagged ? ["--delete-untagged"] : [])
        let started = Started()
        let pending = victims
        let (acknowledged, gcRun) = try await withThrowingTaskGroup(of: ([Acknowledged], S3CommandTests.Run?).self) { group in
            group.addTask {
                while started.count.withLock({ $0 }) < Self.pushes / 20 { try await Task.sleep(for: .milliseconds(5)) }
                return ([], try await S3CommandTests.regkeeper(arguments))
            }
            for worker in 0..<8 {
                group.addTask {
                    var done: [Acknowledged] = []
                    for number in stride(from: worker, to: Self.pushes, by: 8) {
                        started.count.withLock { $0 += 1 }
                        if let push = try await Self.push(number, pending[number % pending.count], client, deleteUntagged) { done.append(push) }
                    }
                    return (done, nil)
                }
            }
            var all: [Acknowledged] = []
            var run: S3CommandTests.Run?
            for try await (part, gc) in group {
                all += part
                run = run ?? gc
            }
            return (all, run)
        }
        let gc = try #require(gcRun)
        // A delete radosgw refuses for one key while the registry writes that very key (a push
        // tagging the manifest gc was taking out) is no loss: gc keeps the object, exits 4 and
        // names it; what counts is that every acknowledged push is served below.
        #expect(gc.status == 0 || (gc.status == 4 && gc.stderr.contains("DeleteObjects refused it")), "\(gc.stderr)")
        // The race is real: pushes linked items gc had taken out of sight, and it put them back.
        #expect(gc.stdout.contains("put back for pushes during the run"), "\(gc.stdout)")
        print("S3 race (\(deleteUntagged ? "--delete-untagged" : "plain")): \(acknowledged.count) pushes acknowledged; gc: \(gc.stdout)")

        try await registry.restart()
        var lost: [String] = []
        for push in acknowledged {
            let served = try await client.fetchBlob(repository: push.repository, digest: push.blob.digest)
            if served.map(sha256Digest) != push.blob.digest { lost.append("blob \(push.repository)@\(push.blob.digest)") }
            if let reference = push.manifest, try await !client.manifestExists(repository: push.repository, reference: reference) {
                lost.append("manifest \(push.repository):\(reference)")
            }
        }
        #expect(lost.isEmpty, "\(lost.count) acknowledged push(es) lost: \(lost.prefix(10))")
        #expect(acknowledged.count > Self.pushes / 2)
        for push in acknowledged.filter({ $0.manifest != nil }).shuffled().prefix(8) {
            try await Skopeo.pull(port: registry.port, repository: push.repository, reference: push.manifest!)
        }
        try await Skopeo.pull(port: registry.port, repository: kept.repository, reference: "v1")
    }

    /// Push `number`: a new repository whose only layer is the victim's (mounted or uploaded
    /// again) and a manifest naming it; for an untagged image, a tag onto its manifest.
    static func push(_ number: Int, _ victim: Victim, _ client: RegistryClient, _ deleteUntagged: Bool) async throws -> Acknowledged? {
        if deleteUntagged, number % 3 == 2, let image = victim.image {
            let status = try await client.putManifest(
                repository: victim.repository, reference: "again-\(number)", bytes: image.manifest, mediaType: image.mediaType)
            return status == 201 ? Acknowledged(repository: victim.repository, blob: victim.layer, manifest: "again-\(number)") : nil
        }
        let repository = "race/push-\(number)"
        if number % 3 == 0, try await client.mountBlob(repository: repository, digest: victim.layer.digest, from: victim.repository) {
            // Mounted (201): linked without an upload.
        } else {
            try await client.pushBlob(repository: repository, bytes: victim.layer.bytes)
        }
        let config = Blob(Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"push\":\(number)}".utf8))
        try await client.pushBlob(repository: repository, bytes: config.bytes)
        let manifest = Data("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config.digest)","size":\(config.size)},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(victim.layer.digest)","size":\(victim.layer.size)}]}
            """.utf8)
        let status = try await client.putManifest(
            repository: repository, reference: "v1", bytes: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json")
        return Acknowledged(repository: repository, blob: victim.layer, manifest: status == 201 ? "v1" : nil)
    }
}
