import Foundation
import RegistryHarness
import Testing

/// What Distribution 2.8.2 accepts and refuses, pinned down because other parts of regkeeper
/// decide which media types they can meet in a store written by it.
@Suite struct RegistryBehaviourTests {
    @Test func acceptsSubjectEvenWhenTheSubjectIsMissing() async throws {
        try await withRegistry { _, client in
            var builder = ImageBuilder(client: client, seed: 21)
            let absent = try await builder.pushImage(repository: "behaviour/subject", tag: nil)
            try await builder.delete(absent)
            let referrer = try await builder.pushReferrer(repository: "behaviour/subject", subject: absent)
            #expect(try await client.manifestExists(repository: "behaviour/subject", reference: referrer.digest))
        }
    }

    @Test func refusesOCIArtifactManifests() async throws {
        try await withRegistry { _, client in
            let blob = try await client.pushBlob(repository: "behaviour/artifact", bytes: Data("sbom".utf8))
            let manifest = Data("""
                {"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/spdx+json",\
                "blobs":[{"mediaType":"application/spdx+json","digest":"\(blob)","size":4}]}
                """.utf8)
            await expectStatus(400, bodyContaining: "MANIFEST_INVALID") {
                try await client.pushManifest(
                    repository: "behaviour/artifact", reference: "sbom", bytes: manifest,
                    mediaType: "application/vnd.oci.artifact.manifest.v1+json")
            }
        }
    }

    @Test func refusesSchema1UnlessCompatibilityIsOn() async throws {
        try await withRegistry { _, client in
            var builder = ImageBuilder(client: client, seed: 22)
            await expectStatus(500, bodyContaining: "UNKNOWN") {
                _ = try await builder.pushSchema1Image(repository: "behaviour/schema1", tag: "old")
            }
        }
    }

    @Test func storesSchema1WithoutSignatures() async throws {
        try await withRegistry(extraConfig: RegistryServer.schema1Compatibility) { server, client in
            var builder = ImageBuilder(client: client, seed: 23)
            let image = try await builder.pushSchema1Image(repository: "behaviour/schema1", tag: "old", layerCount: 2)
            let store = StorePaths(root: server.root)
            #expect(try readText(store.revisionLink("behaviour/schema1", image.digest)) == image.digest)
            let stored = try Data(contentsOf: store.blobData(image.digest))
            #expect(sha256Digest(stored) == image.digest)
            #expect(!String(decoding: stored, as: UTF8.self).contains("signatures"))
            #expect(String(decoding: image.manifest, as: UTF8.self).contains("signatures"))
            for layer in image.layerDigests {
                #expect(String(decoding: stored, as: UTF8.self).contains(layer))
            }
            try await Skopeo.pull(server: server, repository: "behaviour/schema1", reference: "old")
        }
    }

    @Test func manifestWithUnknownBlobIsRefusedWithContext() async throws {
        try await withRegistry { _, client in
            let manifest = Data("""
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:\(String(repeating: "0", count: 64))","size":2},\
                "layers":[]}
                """.utf8)
            await expectStatus(400, bodyContaining: "MANIFEST_BLOB_UNKNOWN") {
                try await client.pushManifest(
                    repository: "behaviour/unknown", reference: "v1", bytes: manifest,
                    mediaType: ManifestMediaType.ociManifest)
            }
        }
    }
}
