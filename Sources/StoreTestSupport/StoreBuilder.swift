import struct Crypto.SHA256
import Foundation
import RegistryModel
import RegistryStore

/// Writes stores by hand, the way docker-registry 2.8 lays them out, for unit tests on any
/// `StoreStorage`. End-to-end tests push through the real server instead; one of them checks
/// that a store written by this builder is served by it.
public struct StoreBuilder: Sendable {
    public let storage: any StoreStorage

    public init(storage: any StoreStorage) { self.storage = storage }

    public static func digest(of data: Data) -> Digest {
        Digest(algorithm: .sha256, bytes: Array(SHA256.hash(data: data)))!
    }

    /// Stores content as a blob and returns its digest.
    @discardableResult
    public func blob(_ data: Data, modified: Date? = nil) throws -> Digest {
        let digest = Self.digest(of: data)
        try storage.writeAtomically(Layout.blobData(digest), data, modified: modified)
        return digest
    }

    /// A link file holding the digest with no newline, as the registry writes it.
    public func link(_ path: StorePath, to digest: Digest, modified: Date? = nil) throws {
        try storage.writeAtomically(path, Data(digest.description.utf8), modified: modified)
    }

    public func linkLayer(_ repository: RepositoryName, _ digest: Digest, modified: Date? = nil) throws {
        try link(Layout.layerLink(repository, digest), to: digest, modified: modified)
    }

    /// Puts a manifest into a repository: blob, revision link and, when given, the tag.
    @discardableResult
    public func manifest(_ data: Data, in repository: RepositoryName, tag: Tag? = nil, modified: Date? = nil) throws -> Digest {
        let digest = try blob(data, modified: modified)
        try link(Layout.revisionLink(repository, digest), to: digest, modified: modified)
        if let tag { try self.tag(tag, in: repository, to: digest, modified: modified) }
        return digest
    }

    /// Points a tag at a manifest and records it in the tag's history.
    public func tag(_ tag: Tag, in repository: RepositoryName, to digest: Digest, modified: Date? = nil) throws {
        try link(Layout.tagCurrentLink(repository, tag), to: digest, modified: modified)
        try link(Layout.tagIndexLink(repository, tag, digest), to: digest, modified: modified)
    }

    /// What deleting a manifest through the API leaves: the revision directory without its
    /// link, and no tag pointing at it.
    public func deleteManifest(_ digest: Digest, in repository: RepositoryName) throws {
        try storage.remove(Layout.revisionLink(repository, digest))
    }

    /// An image (config + layers, each linked into the repository) of the given media type.
    @discardableResult
    public func image(
        _ repository: RepositoryName, tag: Tag?, layers: [Data], mediaType: MediaType = .ociManifest,
        subject: Digest? = nil, modified: Date? = nil, seed: String = ""
    ) throws -> Image {
        let docker = mediaType == .dockerManifest
        let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":"\#(seed)\#(repository)\#(tag?.value ?? "")"}"#.utf8)
        let configDigest = try blob(config, modified: modified)
        try linkLayer(repository, configDigest, modified: modified)
        var layerDigests: [Digest] = []
        for layer in layers {
            let digest = try blob(layer, modified: modified)
            try linkLayer(repository, digest, modified: modified)
            layerDigests.append(digest)
        }
        let layerType = docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar+gzip"
        let configType = docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json"
        var manifest = #"{"schemaVersion":2,"mediaType":"\#(mediaType)","config":{"mediaType":"\#(configType)","digest":"\#(configDigest)","size":\#(config.count)},"layers":["#
        manifest += zip(layers, layerDigests).map { #"{"mediaType":"\#(layerType)","digest":"\#($1)","size":\#($0.count)}"# }.joined(separator: ",")
        manifest += "]"
        if let subject {
            let subjectSize = (try storage.status(Layout.blobData(subject)))?.size ?? 0
            manifest += #","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(subject)","size":\#(subjectSize)}"#
        }
        manifest += "}"
        let digest = try self.manifest(Data(manifest.utf8), in: repository, tag: tag, modified: modified)
        return Image(manifest: digest, config: configDigest, layers: layerDigests)
    }

    /// An index over already-stored child manifests.
    @discardableResult
    public func index(
        _ repository: RepositoryName, tag: Tag?, children: [Digest], mediaType: MediaType = .ociIndex, modified: Date? = nil
    ) throws -> Digest {
        let childType = mediaType == .dockerManifestList ? MediaType.dockerManifest : .ociManifest
        let entries = try children.enumerated().map { index, child in
            let size = try storage.status(Layout.blobData(child))?.size ?? 0
            return #"{"mediaType":"\#(childType)","digest":"\#(child)","size":\#(size),"platform":{"os":"linux","architecture":"arch\#(index)"}}"#
        }
        let body = #"{"schemaVersion":2,"mediaType":"\#(mediaType)","manifests":[\#(entries.joined(separator: ","))]}"#
        return try manifest(Data(body.utf8), in: repository, tag: tag, modified: modified)
    }

    /// An upload directory as the registry leaves it when a client gives up.
    public func upload(_ repository: RepositoryName, uuid: String, startedAt: Date, data: Data = Data("partial".utf8)) throws {
        try storage.writeAtomically(Layout.uploadStartedAt(repository, uuid: uuid)!, Data(ISO8601DateFormatter().string(from: startedAt).utf8), modified: startedAt)
        try storage.writeAtomically(Layout.uploadDirectory(repository, uuid: uuid)!.appending("data")!, data, modified: startedAt)
    }

    public struct Image: Sendable, Hashable {
        public var manifest: Digest
        public var config: Digest
        public var layers: [Digest]

        public var blobs: Set<Digest> { Set([manifest, config] + layers) }
    }
}

/// Blob digests present under `blobs/`, for asserting what a sweep left.
public func blobDigests(in storage: any StoreStorage) async throws -> Set<Digest> {
    Set(try await StoreScanner(storage: storage).blobs(jobs: 2).blobs.filter(\.hasData).map(\.digest))
}

/// Deterministic bytes for a layer, so tests are reproducible.
public func layerBytes(_ seed: String, size: Int = 512) -> Data {
    var state = UInt64(truncatingIfNeeded: seed.utf8.reduce(14_695_981_039_346_656_037) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 })
    var data = Data(capacity: size)
    for _ in 0..<size {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        data.append(UInt8(truncatingIfNeeded: state >> 33))
    }
    return data
}

extension RepositoryName: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = RepositoryName(value)! }
}

extension Tag: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = Tag(value)! }
}
