import Foundation
import RegistryHarness
import Testing

/// Pushes every kind of content through the real registry and checks what it wrote to disk and
/// that an independent client (skopeo) can pull it back.
@Suite struct EndToEndTests {
    let repository = "team-b/tools/builder"

    @Test func pushedContentLandsOnDiskAndPulls() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 7)
            let shared = builder.makeBlob()
            let oci = try await builder.pushImage(
                repository: repository, tag: "oci-1", format: .oci, sharedLayers: [shared])
            let docker = try await builder.pushImage(
                repository: repository, tag: "docker-1", format: .docker, sharedLayers: [shared])
            let ociIndex = try await builder.pushIndex(repository: repository, tag: "multi-oci", format: .oci)
            let dockerList = try await builder.pushIndex(repository: repository, tag: "multi-docker", format: .docker)
            let referrer = try await builder.pushReferrer(repository: repository, subject: oci)
            let latest = try await builder.retag(oci, as: "latest")
            let doomed = try await builder.pushImage(repository: repository, tag: "doomed")
            try await builder.delete(doomed)
            let upload = Data("partial".utf8)
            let uuid = try await client.startAbandonedUpload(repository: repository, bytes: upload)

            #expect(oci.layerDigests.first == shared.digest && docker.layerDigests.first == shared.digest)
            #expect(ociIndex.children.count == 2 && dockerList.children.count == 2)
            #expect(dockerList.children.allSatisfy { $0.mediaType == ImageFormat.docker.manifestMediaType })
            #expect(referrer.subject == oci.digest && referrer.tags.isEmpty)
            #expect(latest.tags == ["oci-1", "latest"])

            let store = StorePaths(root: server.root)
            let live = [latest, docker, ociIndex, dockerList, referrer]
            for image in live + ociIndex.children + dockerList.children {
                #expect(try readText(store.revisionLink(repository, image.digest)) == image.digest)
            }
            for image in live {
                for blob in [image.config].compactMap({ $0 }) + image.layers {
                    #expect(try readText(store.layerLink(repository, blob.digest)) == blob.digest)
                }
                for digest in image.allBlobDigests {
                    #expect(sha256Digest(try Data(contentsOf: store.blobData(digest))) == digest)
                }
            }
            for (tag, image) in [("oci-1", oci), ("latest", oci), ("docker-1", docker),
                                 ("multi-oci", ociIndex), ("multi-docker", dockerList)] {
                #expect(try readText(store.currentTagLink(repository, tag)) == image.digest)
                #expect(try readText(store.tagIndexLink(repository, tag, image.digest)) == image.digest)
            }

            // A deleted revision keeps its empty directory and blobs; its link and tag go.
            let doomedLink = store.revisionLink(repository, doomed.digest)
            #expect(!exists(doomedLink))
            #expect(exists(doomedLink.deletingLastPathComponent()))
            #expect(!exists(store.currentTagLink(repository, "doomed")))
            #expect(exists(store.blobData(doomed.digest)))

            let uploadDirectory = store.upload(repository, uuid)
            #expect(exists(uploadDirectory.appendingPathComponent("startedat")))
            #expect(try Data(contentsOf: uploadDirectory.appendingPathComponent("data")) == upload)

            let tags = try await client.tags(repository: repository)
            #expect(tags == ["docker-1", "latest", "multi-docker", "multi-oci", "oci-1"])
            #expect(try await client.manifestExists(repository: repository, reference: "multi-oci"))
            #expect(try await client.manifestExists(repository: repository, reference: referrer.digest))
            #expect(try await !client.manifestExists(repository: repository, reference: doomed.digest))

            for tag in ["oci-1", "latest", "docker-1", "multi-oci", "multi-docker"] {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            try await Skopeo.pull(server: server, repository: repository, reference: referrer.digest)
            do {
                try await Skopeo.pull(server: server, repository: repository, reference: "doomed")
                Issue.record("pulling a deleted manifest's tag succeeded")
            } catch let ProcessError.nonZeroExit(_, _, stderr) {
                #expect(stderr.contains("manifest unknown"))
            }
        }
    }

    @Test func sameSeedGivesSameDigests() async throws {
        try await withRegistry { _, client in
            var first = ImageBuilder(client: client, seed: 99)
            var second = ImageBuilder(client: client, seed: 99)
            let a = try await first.pushIndex(repository: "seeded/a", tag: "v1")
            let b = try await second.pushIndex(repository: "seeded/b", tag: "v1")
            #expect(a.digest == b.digest)
            #expect(a.allBlobDigests == b.allBlobDigests)
        }
    }

    @Test func restartKeepsPortAndContent() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 3)
            let image = try await builder.pushImage(repository: "restarted", tag: "v1")
            let port = server.port
            try await server.restart()
            #expect(server.port == port)
            #expect(try await client.manifestExists(repository: "restarted", reference: "v1"))
            #expect(try await client.tags(repository: "restarted") == image.tags)
        }
    }
}
