import Foundation

/// A reference from a manifest to a blob or another manifest.
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: MediaType?
    public var digest: Digest
    public var size: Int64?
    public var platform: String?

    public init(mediaType: MediaType?, digest: Digest, size: Int64?, platform: String? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }
}

/// What the collectors need to know of a manifest: the blobs it holds alive, the manifests
/// it groups, and the manifest it annotates.
public struct Manifest: Sendable, Hashable {
    public enum Kind: Hashable, Sendable, CustomStringConvertible {
        case ociImage
        case ociIndex
        case ociArtifact
        case dockerV2
        case dockerManifestList
        case dockerSchema1
        /// A media type nobody listed, walked by the fields it has.
        case unrecognized(MediaType)

        public var description: String {
            switch self {
            case .ociImage: "OCI image manifest"
            case .ociIndex: "OCI index"
            case .ociArtifact: "OCI artifact manifest"
            case .dockerV2: "Docker v2 manifest"
            case .dockerManifestList: "Docker manifest list"
            case .dockerSchema1: "Docker schema1 manifest"
            case .unrecognized(let type): "manifest of unknown type \(type)"
            }
        }
    }

    public var kind: Kind
    public var mediaType: MediaType?
    public var artifactType: MediaType?
    public var config: Descriptor?
    /// Layers of an image, `blobs` of an artifact, `fsLayers` of schema1.
    public var layers: [Descriptor]
    /// Manifests grouped by an index or list.
    public var children: [Descriptor]
    /// The manifest this one refers to (OCI 1.1 referrers: signatures, SBOMs).
    public var subject: Descriptor?

    /// Blobs that live as long as this manifest: its config and layers.
    public var blobReferences: [Descriptor] {
        (config.map { [$0] } ?? []) + layers
    }

    public var isIndex: Bool { !children.isEmpty || kind == .ociIndex || kind == .dockerManifestList }
}

/// Why a manifest blob could not be understood.
public enum ManifestParseError: Error, Hashable, Sendable, CustomStringConvertible {
    case notJSON(String)
    case unsupportedSchemaVersion(Int?)
    case unknownShape(MediaType?)
    case invalidDigest(field: String, value: String)

    public var description: String {
        switch self {
        case .notJSON(let reason): "not a JSON manifest (\(reason))"
        case .unsupportedSchemaVersion(let version): "unsupported schemaVersion \(version.map(String.init) ?? "(none)")"
        case .unknownShape(let type): "unknown manifest type \(type?.value ?? "(no mediaType)") with no config, layers, blobs or manifests"
        case .invalidDigest(let field, let value): "\(field) holds an invalid digest '\(value)'"
        }
    }
}

extension Manifest {
    /// Parses a manifest blob as Distribution stores it (the exact bytes that were pushed).
    public init(parsing data: Data) throws(ManifestParseError) {
        let raw = try RawManifest(data)
        let declared = raw.mediaType.map { MediaType($0) }
        switch raw.schemaVersion {
        case 1:
            kind = .dockerSchema1
            mediaType = declared ?? (raw.signatures ? .dockerSchema1Signed : .dockerSchema1)
            artifactType = nil
            config = nil
            layers = try (raw.fsLayers ?? []).enumerated().map { index, blobSum throws(ManifestParseError) in
                guard let digest = Digest(blobSum) else {
                    throw .invalidDigest(field: "fsLayers[\(index)].blobSum", value: blobSum)
                }
                return Descriptor(mediaType: nil, digest: digest, size: nil)
            }
            children = []
            subject = nil
            return
        case 2, nil:
            break
        case let other:
            throw .unsupportedSchemaVersion(other)
        }
        mediaType = declared
        artifactType = raw.artifactType.map { MediaType($0) }
        config = try raw.config.map { descriptor throws(ManifestParseError) in try descriptor.resolve(field: "config") }
        layers = try Self.resolve(raw.layers, field: "layers") + Self.resolve(raw.blobs, field: "blobs")
        children = try Self.resolve(raw.manifests, field: "manifests")
        subject = try raw.subject.map { descriptor throws(ManifestParseError) in try descriptor.resolve(field: "subject") }

        let known: [MediaType: Kind] = [
            .ociManifest: .ociImage, .ociIndex: .ociIndex, .ociArtifactManifest: .ociArtifact,
            .dockerManifest: .dockerV2, .dockerManifestList: .dockerManifestList,
        ]
        let hasShape = raw.config != nil || raw.layers != nil || raw.blobs != nil || raw.manifests != nil
        if let declared, let kind = known[declared] {
            self.kind = kind
        } else if let declared {
            // Walk what it has: a type nobody listed still names blobs the usual way.
            guard hasShape else { throw .unknownShape(declared) }
            kind = .unrecognized(declared)
        } else if raw.manifests != nil {
            kind = .ociIndex
        } else if raw.config != nil {
            kind = .ociImage
        } else {
            throw .unknownShape(nil)
        }
    }

    private static func resolve(_ descriptors: [RawDescriptor]?, field: String) throws(ManifestParseError) -> [Descriptor] {
        guard let descriptors else { return [] }
        var resolved: [Descriptor] = []
        resolved.reserveCapacity(descriptors.count)
        for (index, descriptor) in descriptors.enumerated() {
            resolved.append(try descriptor.resolve(field: "\(field)[\(index)]"))
        }
        return resolved
    }
}

/// The fields of a manifest the collectors read; everything else is skipped unread.
private struct RawManifest {
    var schemaVersion: Int?
    var mediaType: String?
    var artifactType: String?
    var config: RawDescriptor?
    var layers: [RawDescriptor]?
    var blobs: [RawDescriptor]?
    var manifests: [RawDescriptor]?
    var subject: RawDescriptor?
    var fsLayers: [String]?
    var signatures = false

    init(_ data: Data) throws(ManifestParseError) {
        let outcome = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> JSONScanner.Failure? in
            do throws(JSONScanner.Failure) {
                var scanner = JSONScanner(raw.bindMemory(to: UInt8.self))
                guard !raw.isEmpty else { throw .syntax("empty file", offset: 0) }
                try scanner.object(field: "manifest") { scanner, key throws(JSONScanner.Failure) in
                    if try scanner.null() { return }
                    switch key {
                    case "schemaVersion":
                        let version = try scanner.integer(field: key)
                        schemaVersion = Int(exactly: version) ?? -1
                    case "mediaType": mediaType = try scanner.string(field: key)
                    case "artifactType": artifactType = try scanner.string(field: key)
                    case "config": config = try RawDescriptor(&scanner, field: key)
                    case "subject": subject = try RawDescriptor(&scanner, field: key)
                    case "layers": layers = try RawDescriptor.list(&scanner, field: key)
                    case "blobs": blobs = try RawDescriptor.list(&scanner, field: key)
                    case "manifests": manifests = try RawDescriptor.list(&scanner, field: key)
                    case "fsLayers":
                        var sums: [String] = []
                        try scanner.array(field: key) { scanner, index throws(JSONScanner.Failure) in
                            var sum: String?
                            try scanner.object(field: "fsLayers[\(index)]") { scanner, key throws(JSONScanner.Failure) in
                                if key == "blobSum" { sum = try scanner.string(field: "fsLayers[\(index)].blobSum") } else { try scanner.skip() }
                            }
                            guard let sum else { throw .type(expected: "blobSum", field: "fsLayers[\(index)]") }
                            sums.append(sum)
                        }
                        fsLayers = sums
                    case "signatures":
                        signatures = true
                        try scanner.skip()
                    default:
                        try scanner.skip()
                    }
                }
                try scanner.end()
                return nil
            } catch {
                return error
            }
        }
        if let outcome { throw .notJSON(outcome.description) }
    }
}

private struct RawDescriptor {
    var mediaType: String?
    var digest: String
    var size: Int64?
    var platform: String?

    init(_ scanner: inout JSONScanner, field: String) throws(JSONScanner.Failure) {
        var mediaType: String?
        var digest: String?
        var size: Int64?
        var platform: String?
        try scanner.object(field: field) { scanner, key throws(JSONScanner.Failure) in
            if try scanner.null() { return }
            switch key {
            case "mediaType": mediaType = try scanner.string(field: "\(field).mediaType")
            case "digest": digest = try scanner.string(field: "\(field).digest")
            case "size": size = try scanner.integer(field: "\(field).size")
            case "platform":
                var parts: [String: String] = [:]
                try scanner.object(field: "\(field).platform") { scanner, key throws(JSONScanner.Failure) in
                    if ["os", "architecture", "variant"].contains(key), !(try scanner.null()) {
                        parts[key] = try scanner.string(field: "\(field).platform.\(key)")
                    } else {
                        try scanner.skip()
                    }
                }
                platform = [parts["os"], parts["architecture"], parts["variant"]].compactMap { $0 }.joined(separator: "/")
            default: try scanner.skip()
            }
        }
        guard let digest else { throw .type(expected: "digest", field: field) }
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }

    static func list(_ scanner: inout JSONScanner, field: String) throws(JSONScanner.Failure) -> [RawDescriptor] {
        var descriptors: [RawDescriptor] = []
        try scanner.array(field: field) { scanner, index throws(JSONScanner.Failure) in
            descriptors.append(try RawDescriptor(&scanner, field: "\(field)[\(index)]"))
        }
        return descriptors
    }

    func resolve(field: String) throws(ManifestParseError) -> Descriptor {
        guard let parsed = Digest(digest) else { throw .invalidDigest(field: "\(field).digest", value: digest) }
        return Descriptor(mediaType: mediaType.map { MediaType($0) }, digest: parsed, size: size, platform: platform)
    }
}
