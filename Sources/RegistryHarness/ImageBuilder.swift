import Crypto
import Foundation

/// Builds synthetic images from a seed and pushes them through a real registry.
///
/// Layers are random bytes labelled gzip: no tool in the chain decompresses them (skopeo copies
/// them verbatim to an `oci:` layout), and random bytes keep every image's blobs unique unless
/// a test shares them on purpose. `rootfs.diff_ids` therefore equal the layer digests.
///
/// The same seed and the same sequence of calls give the same digests in every run.
public struct ImageBuilder: Sendable {
    public let client: RegistryClient
    public var random: SplitMix64
    /// Bytes per generated layer unless a call says otherwise.
    public var layerSize: Int

    public init(client: RegistryClient, seed: UInt64, layerSize: Int = 4096) {
        self.client = client
        random = SplitMix64(seed: seed)
        self.layerSize = layerSize
    }

    /// A fresh random blob, not yet pushed, to hand to several images as a shared layer.
    public mutating func makeBlob(size: Int? = nil) -> Blob {
        Blob(random.bytes(count: size ?? layerSize))
    }

    /// Pushes layers, config and a single-platform manifest.
    ///
    /// - Parameters:
    ///   - tag: nil pushes by digest, leaving an untagged revision (as index children are).
    ///   - sharedLayers: pushed again into this repository and placed before the new layers, so
    ///     two images or two repositories share blobs.
    public mutating func pushImage(
        repository: String,
        tag: String?,
        format: ImageFormat = .oci,
        platform: Platform = .linuxAMD64,
        layerCount: Int = 2,
        layerSize: Int? = nil,
        sharedLayers: [Blob] = []
    ) async throws -> PushedImage {
        var layers = sharedLayers
        for _ in 0..<layerCount { layers.append(makeBlob(size: layerSize)) }
        for layer in layers { try await client.pushBlob(repository: repository, bytes: layer.bytes) }

        let config = Blob(try Self.encode(ImageConfig(
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            rootfs: .init(type: "layers", diff_ids: layers.map(\.digest)),
            // Makes the config, and so the manifest, unique even when all layers are shared.
            config: .init(Labels: ["org.regkeeper.harness.nonce": String(random.next(), radix: 16)])
        )))
        try await client.pushBlob(repository: repository, bytes: config.bytes)

        let manifest = try Self.encode(ImageManifest(
            mediaType: format.manifestMediaType,
            config: Descriptor(mediaType: format.configMediaType, blob: config),
            layers: layers.map { Descriptor(mediaType: format.layerMediaType, blob: $0) }
        ))
        return try await pushManifest(
            manifest, mediaType: format.manifestMediaType, repository: repository, tag: tag,
            config: config, layers: layers)
    }

    /// Pushes one child image per platform by digest, then the index (or manifest list) by tag.
    public mutating func pushIndex(
        repository: String,
        tag: String?,
        format: ImageFormat = .oci,
        platforms: [Platform] = [.linuxAMD64, .linuxARM64],
        layerCount: Int = 1,
        layerSize: Int? = nil
    ) async throws -> PushedImage {
        var children: [PushedImage] = []
        for platform in platforms {
            children.append(try await pushImage(
                repository: repository, tag: nil, format: format, platform: platform,
                layerCount: layerCount, layerSize: layerSize))
        }
        let index = try Self.encode(ImageIndex(
            mediaType: format.indexMediaType,
            manifests: zip(children, platforms).map { child, platform in
                Descriptor(mediaType: child.mediaType, digest: child.digest, size: child.manifest.count,
                           platform: platform)
            }
        ))
        var pushed = try await pushManifest(
            index, mediaType: format.indexMediaType, repository: repository, tag: tag, config: nil, layers: [])
        pushed.children = children
        return pushed
    }

    /// Pushes an OCI 1.1 referrer (a signature or SBOM in shape) of `subject` by digest, the way
    /// cosign and oras do against registries without the referrers API.
    ///
    /// 2.8 stores it like any image manifest and knows nothing of `subject`: its gc keeps a
    /// referrer only as an ordinary revision, and `--delete-untagged` removes it.
    public mutating func pushReferrer(
        repository: String,
        subject: PushedImage,
        artifactType: String = "application/vnd.regkeeper.harness.signature.v1",
        payloadSize: Int = 256
    ) async throws -> PushedImage {
        let empty = Blob(Data("{}".utf8))
        let payload = makeBlob(size: payloadSize)
        try await client.pushBlob(repository: repository, bytes: empty.bytes)
        try await client.pushBlob(repository: repository, bytes: payload.bytes)
        let manifest = try Self.encode(ImageManifest(
            mediaType: ManifestMediaType.ociManifest,
            artifactType: artifactType,
            config: Descriptor(mediaType: "application/vnd.oci.empty.v1+json", blob: empty),
            layers: [Descriptor(mediaType: "application/octet-stream", blob: payload)],
            subject: Descriptor(mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.count)
        ))
        var pushed = try await pushManifest(
            manifest, mediaType: ManifestMediaType.ociManifest, repository: repository, tag: nil,
            config: empty, layers: [payload])
        pushed.subject = subject.digest
        return pushed
    }

    /// Pushes a signed Docker schema1 manifest (`fsLayers[].blobSum`), which stores written by old
    /// clients still hold.
    ///
    /// The registry must run with `RegistryServer.schema1Compatibility`, or 2.8.2 refuses it. It
    /// verifies the JWS signature and stores the manifest with its signatures stripped, so the
    /// returned digest is that of the unsigned payload, not of `PushedImage.manifest`.
    public mutating func pushSchema1Image(
        repository: String,
        tag: String,
        platform: Platform = .linuxAMD64,
        layerCount: Int = 1,
        layerSize: Int? = nil
    ) async throws -> PushedImage {
        var layers: [Blob] = []
        for _ in 0..<layerCount { layers.append(makeBlob(size: layerSize)) }
        for layer in layers { try await client.pushBlob(repository: repository, bytes: layer.bytes) }
        // schema1 lists layers top first, each with a v1 image whose parent is the next one down.
        let ids = layers.map { _ in hexString(random.bytes(count: 32)) }
        var history: [Schema1Manifest.History] = []
        for position in layers.indices.reversed() {
            let parent = position > 0 ? ids[position - 1] : nil
            let v1 = Schema1Manifest.V1Image(
                id: ids[position], parent: parent, architecture: platform.architecture, os: platform.os)
            history.append(.init(v1Compatibility: String(decoding: try Self.encode(v1), as: UTF8.self)))
        }
        let payload = try Self.encode(
            Schema1Manifest(
                name: repository, tag: tag, architecture: platform.architecture,
                fsLayers: layers.reversed().map { .init(blobSum: $0.digest) }, history: history),
            pretty: true)
        let signed = try Schema1Signer.sign(payload)
        return try await pushManifest(
            signed, mediaType: ManifestMediaType.dockerSchema1Signed, repository: repository, tag: tag,
            config: nil, layers: layers)
    }

    /// Points `tag` at the same revision by pushing the identical manifest bytes under it.
    public func retag(_ image: PushedImage, as tag: String) async throws -> PushedImage {
        try await client.pushManifest(
            repository: image.repository, reference: tag, bytes: image.manifest, mediaType: image.mediaType)
        var retagged = image
        retagged.tags.append(tag)
        return retagged
    }

    /// Deletes the image's revision (and so all its tags); children of an index stay.
    public func delete(_ image: PushedImage) async throws {
        try await client.deleteManifest(repository: image.repository, digest: image.digest)
    }

    private func pushManifest(
        _ bytes: Data, mediaType: String, repository: String, tag: String?, config: Blob?, layers: [Blob]
    ) async throws -> PushedImage {
        let digest = try await client.pushManifest(
            repository: repository, reference: tag ?? sha256Digest(bytes), bytes: bytes, mediaType: mediaType)
        return PushedImage(
            repository: repository, tags: tag.map { [$0] } ?? [], digest: digest, mediaType: mediaType,
            manifest: bytes, config: config, layers: layers, children: [], subject: nil)
    }

    /// Sorted keys make the bytes, and so the digests, independent of dictionary order.
    static func encode(_ value: some Encodable, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty
            ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

// MARK: - Wire formats

struct Descriptor: Encodable {
    var mediaType: String
    var digest: String
    var size: Int
    var platform: Platform?

    init(mediaType: String, digest: String, size: Int, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }

    init(mediaType: String, blob: Blob) {
        self.init(mediaType: mediaType, digest: blob.digest, size: blob.size)
    }
}

struct ImageManifest: Encodable {
    var schemaVersion = 2
    var mediaType: String
    var artifactType: String?
    var config: Descriptor
    var layers: [Descriptor]
    var subject: Descriptor?
}

struct ImageIndex: Encodable {
    var schemaVersion = 2
    var mediaType: String
    var manifests: [Descriptor]
}

struct ImageConfig: Encodable {
    struct RootFS: Encodable {
        var type: String
        var diff_ids: [String]
    }

    struct Config: Encodable {
        var Labels: [String: String]
    }

    var architecture: String
    var os: String
    var variant: String?
    var rootfs: RootFS
    var config: Config
}

struct Schema1Manifest: Encodable {
    struct FSLayer: Encodable { var blobSum: String }
    struct History: Encodable { var v1Compatibility: String }
    struct V1Image: Encodable {
        var id: String
        var parent: String?
        var architecture: String
        var os: String
    }

    var schemaVersion = 1
    var name: String
    var tag: String
    var architecture: String
    var fsLayers: [FSLayer]
    var history: [History]
}
