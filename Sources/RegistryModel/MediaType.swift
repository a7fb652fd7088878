/// A manifest or blob media type. Unknown values are kept as they are, because stores hold
/// artifact types no list can anticipate.
public struct MediaType: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let value: String

    public init(_ value: String) { self.value = value }
    public init(stringLiteral value: String) { self.value = value }

    public init(from decoder: Decoder) throws {
        value = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public var description: String { value }

    public static let ociManifest: MediaType = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex: MediaType = "application/vnd.oci.image.index.v1+json"
    public static let ociArtifactManifest: MediaType = "application/vnd.oci.artifact.manifest.v1+json"
    public static let dockerManifest: MediaType = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList: MediaType = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerSchema1: MediaType = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed: MediaType = "application/vnd.docker.distribution.manifest.v1+prettyjws"
}
