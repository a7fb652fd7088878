import Foundation

/// Content plus its digest, computed once, so shared layers can be handed from one image to the next.
public struct Blob: Sendable, Hashable {
    public let bytes: Data
    public let digest: String

    public init(_ bytes: Data) {
        self.bytes = bytes
        digest = sha256Digest(bytes)
    }

    public var size: Int { bytes.count }
}

public struct Platform: Sendable, Hashable, Encodable {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    public static let linuxAMD64 = Platform(os: "linux", architecture: "amd64")
    public static let linuxARM64 = Platform(os: "linux", architecture: "arm64", variant: "v8")
}

/// The two families of schema-2 media types; the store keeps both and tools must treat them alike.
public enum ImageFormat: Sendable, Hashable {
    case oci
    case docker

    public var manifestMediaType: String {
        switch self {
        case .oci: ManifestMediaType.ociManifest
        case .docker: ManifestMediaType.dockerManifest
        }
    }

    public var indexMediaType: String {
        switch self {
        case .oci: ManifestMediaType.ociIndex
        case .docker: ManifestMediaType.dockerManifestList
        }
    }

    public var configMediaType: String {
        switch self {
        case .oci: "application/vnd.oci.image.config.v1+json"
        case .docker: "application/vnd.docker.container.image.v1+json"
        }
    }

    public var layerMediaType: String {
        switch self {
        case .oci: "application/vnd.oci.image.layer.v1.tar+gzip"
        case .docker: "application/vnd.docker.image.rootfs.diff.tar.gzip"
        }
    }
}

/// What a builder pushed, with every digest a test needs to find it on disk or in gc output.
public struct PushedImage: Sendable, Hashable {
    public var repository: String
    /// Tags pointing at it when it was pushed or retagged; empty for a push by digest.
    public var tags: [String]
    public var digest: String
    public var mediaType: String
    /// The exact manifest bytes, so the same revision can be pushed again under another tag.
    public var manifest: Data
    /// nil for indexes and schema1 manifests, which have no config blob.
    public var config: Blob?
    public var layers: [Blob]
    /// Platform manifests of an index or manifest list.
    public var children: [PushedImage]
    /// The manifest this one refers to through OCI 1.1 `subject`, for referrers.
    public var subject: String?

    public var configDigest: String? { config?.digest }
    public var layerDigests: [String] { layers.map(\.digest) }

    /// Every blob under `blobs/` this image keeps alive: its manifest, config and layers, and
    /// those of its children.
    public var allBlobDigests: Set<String> {
        var digests: Set<String> = [digest]
        if let config { digests.insert(config.digest) }
        digests.formUnion(layerDigests)
        for child in children { digests.formUnion(child.allBlobDigests) }
        return digests
    }
}
