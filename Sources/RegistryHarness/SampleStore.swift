import Foundation

/// The store every end-to-end test and the demo start from: each kind of content gc,
/// retention, verify and backup must handle, pushed through the real registry.
public struct SampleStore: Sendable {
    /// Images reachable from a tag, with the tags that reach them.
    public var tagged: [PushedImage] = []
    /// A referrer (signature) pushed by digest whose subject is tagged.
    public var referrer: PushedImage
    /// Pushed, then its tag moved elsewhere: an untagged revision.
    public var untagged: PushedImage
    /// Pushed, then deleted through the API.
    public var deleted: PushedImage
    /// A blob pushed into a repository and never referenced.
    public var orphan: Blob
    public var abandonedUpload: (repository: String, uuid: String)

    /// Every `repository:tag` that must pull.
    public var tagReferences: [(repository: String, tag: String)] {
        tagged.flatMap { image in image.tags.map { (image.repository, $0) } }
    }

    /// Blobs a tag-only collector must keep: tagged images, their children, the referrer.
    public var blobsOfTaggedImages: Set<String> {
        tagged.reduce(referrer.allBlobDigests) { $0.union($1.allBlobDigests) }
    }

    public static func push(to client: RegistryClient, seed: UInt64 = 1, layerSize: Int = 4096) async throws -> SampleStore {
        var builder = ImageBuilder(client: client, seed: seed, layerSize: layerSize)
        let shared = builder.makeBlob()
        let v1 = try await builder.pushImage(repository: "library/app", tag: "v1", sharedLayers: [shared])
        let untagged = try await builder.pushImage(repository: "library/app", tag: "latest")
        let latest = try await builder.pushImage(repository: "library/app", tag: "latest", sharedLayers: [shared])
        let deleted = try await builder.pushImage(repository: "library/app", tag: "doomed")
        try await builder.delete(deleted)
        let orphan = builder.makeBlob()
        try await client.pushBlob(repository: "library/app", bytes: orphan.bytes)
        let uuid = try await client.startAbandonedUpload(repository: "library/app", bytes: builder.makeBlob().bytes)

        let tool = try await builder.pushImage(repository: "team-b/tools/builder", tag: "1.0", format: .docker, sharedLayers: [shared])
        let stable = try await builder.retag(tool, as: "stable")
        let index = try await builder.pushIndex(repository: "multi/arch", tag: "2.0")
        let list = try await builder.pushIndex(repository: "multi/arch", tag: "2.0-docker", format: .docker)
        let signedImage = try await builder.pushImage(repository: "signed/app", tag: "v1")
        let referrer = try await builder.pushReferrer(repository: "signed/app", subject: signedImage)

        var store = SampleStore(
            referrer: referrer, untagged: untagged, deleted: deleted, orphan: orphan,
            abandonedUpload: ("library/app", uuid))
        store.tagged = [v1, latest, stable, index, list, signedImage]
        return store
    }
}
