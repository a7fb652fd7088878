import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public enum RegistryClientError: Error, CustomStringConvertible {
    case transport(method: String, url: URL, reason: String)
    case unexpectedStatus(method: String, url: URL, status: Int, body: String)
    case missingHeader(method: String, url: URL, header: String)
    case badLocation(method: String, url: URL, location: String)

    public var description: String {
        switch self {
        case let .transport(method, url, reason):
            return "\(method) \(url) failed: \(reason)"
        case let .unexpectedStatus(method, url, status, body):
            return "\(method) \(url) answered HTTP \(status): \(body)"
        case let .missingHeader(method, url, header):
            return "\(method) \(url) answered without a \(header) header"
        case let .badLocation(method, url, location):
            return "\(method) \(url) answered with an unusable Location \"\(location)\""
        }
    }
}

/// The `sha256:<hex>` digest Distribution names content by.
public func sha256Digest(_ bytes: Data) -> String {
    "sha256:" + hexString(SHA256.hash(data: bytes))
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Every manifest media type a test may push; sent as `Accept` because 2.8 answers 404 to a
/// request for an OCI manifest that does not list the OCI types.
public enum ManifestMediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    static let all = [ociManifest, ociIndex, dockerManifest, dockerManifestList, dockerSchema1Signed]
}

/// Just enough of the registry HTTP API v2 to build stores by pushing through the real server.
public struct RegistryClient: Sendable {
    public let baseURL: URL
    private let session: URLSession

    /// - Parameter timeout: per request; a registry on loopback that takes longer is broken.
    public init(baseURL: URL, timeout: Double = 30) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        // Tests read tags and manifests right after changing them; a cached answer would lie.
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: configuration)
    }

    public init(server: RegistryServer, timeout: Double = 30) {
        self.init(baseURL: server.baseURL, timeout: timeout)
    }

    /// Monolithic upload: one POST for a session, one PUT with all the bytes.
    ///
    /// - Parameter digest: the digest the client names, when not sha256 (a `sha512:` push is
    ///   stored under its sha256 and linked under its sha512).
    @discardableResult
    public func pushBlob(repository: String, bytes: Data, digest named: String? = nil) async throws -> String {
        let digest = named ?? sha256Digest(bytes)
        let location = try await startUpload(repository: repository).location
        let put = try appendingQuery("digest=\(digest)", to: location, method: "POST")
        _ = try await send("PUT", put, body: bytes, headers: ["Content-Type": "application/octet-stream"],
                           expecting: [201])
        return digest
    }

    /// Pushes a manifest under a tag or under its own digest.
    ///
    /// - Returns: the digest the registry stored it under. That is the digest of `bytes` for every
    ///   type but signed schema1, which 2.8 stores without its signatures.
    @discardableResult
    public func pushManifest(repository: String, reference: String, bytes: Data, mediaType: String) async throws -> String {
        let url = manifestURL(repository, reference)
        let (_, response) = try await send("PUT", url, body: bytes, headers: ["Content-Type": mediaType],
                                           expecting: [201])
        return response.value(forHTTPHeaderField: "Docker-Content-Digest") ?? sha256Digest(bytes)
    }

    /// A manifest PUT the registry may refuse (400 "blob unknown" when a blob it names is not
    /// there): returns the status instead of throwing, so a race test can count what was acknowledged.
    public func putManifest(repository: String, reference: String, bytes: Data, mediaType: String) async throws -> Int {
        let (_, response) = try await send(
            "PUT", manifestURL(repository, reference), body: bytes, headers: ["Content-Type": mediaType], expecting: [201, 400, 404])
        return response.statusCode
    }

    /// Cross-repository mount (`POST …/blobs/uploads/?mount=<digest>&from=<source>`): true when
    /// the registry linked the blob (201), false when it does not see it and opened an upload (202).
    public func mountBlob(repository: String, digest: String, from source: String) async throws -> Bool {
        var components = URLComponents(url: baseURL.appendingPathComponent("v2/\(repository)/blobs/uploads/"), resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "mount", value: digest), URLQueryItem(name: "from", value: source)]
        let (_, response) = try await send("POST", components.url!, expecting: [201, 202])
        return response.statusCode == 201
    }

    /// A blob's bytes as the registry serves them through `repository`; nil on 404.
    public func fetchBlob(repository: String, digest: String) async throws -> Data? {
        let (body, response) = try await send("GET", baseURL.appendingPathComponent("v2/\(repository)/blobs/\(digest)"), expecting: [200, 404])
        return response.statusCode == 200 ? body : nil
    }

    /// Deletes the manifest revision, and with it every tag pointing at it; its blobs stay until gc.
    public func deleteManifest(repository: String, digest: String) async throws {
        _ = try await send("DELETE", manifestURL(repository, digest), expecting: [202])
    }

    public func manifestExists(repository: String, reference: String) async throws -> Bool {
        let (_, response) = try await send(
            "HEAD", manifestURL(repository, reference),
            headers: ["Accept": ManifestMediaType.all.joined(separator: ", ")], expecting: [200, 404])
        return response.statusCode == 200
    }

    /// Tags, sorted because 2.8 lists them in directory order. A repository that never had a tag,
    /// or is unknown, yields an empty list: 2.8 answers 404 NAME_UNKNOWN for it, not an empty list.
    public func tags(repository: String) async throws -> [String] {
        struct TagList: Decodable { var tags: [String]? }
        let url = baseURL.appendingPathComponent("v2/\(repository)/tags/list")
        let (body, response) = try await send("GET", url, expecting: [200, 404])
        guard response.statusCode == 200 else { return [] }
        do {
            return (try JSONDecoder().decode(TagList.self, from: body).tags ?? []).sorted()
        } catch {
            throw RegistryClientError.unexpectedStatus(
                method: "GET", url: url, status: 200, body: String(decoding: body, as: UTF8.self))
        }
    }

    /// Leaves an upload the way an interrupted client does, so `_uploads/<uuid>/` stays on disk.
    ///
    /// - Returns: the upload's UUID, which names its directory under `_uploads`.
    @discardableResult
    public func startAbandonedUpload(repository: String, bytes: Data) async throws -> String {
        let (location, uuid) = try await startUpload(repository: repository)
        _ = try await send("PATCH", location, body: bytes,
                           headers: ["Content-Type": "application/octet-stream"], expecting: [202])
        return uuid
    }

    private func startUpload(repository: String) async throws -> (location: URL, uuid: String) {
        let url = baseURL.appendingPathComponent("v2/\(repository)/blobs/uploads/")
        let (_, response) = try await send("POST", url, expecting: [202])
        guard let location = response.value(forHTTPHeaderField: "Location") else {
            throw RegistryClientError.missingHeader(method: "POST", url: url, header: "Location")
        }
        guard let uuid = response.value(forHTTPHeaderField: "Docker-Upload-UUID") else {
            throw RegistryClientError.missingHeader(method: "POST", url: url, header: "Docker-Upload-UUID")
        }
        // The spec allows a Location relative to the registry; 2.8 sends an absolute one.
        guard let resolved = URL(string: location, relativeTo: baseURL)?.absoluteURL else {
            throw RegistryClientError.badLocation(method: "POST", url: url, location: location)
        }
        return (resolved, uuid)
    }

    /// Adds a query parameter while keeping the upload's opaque, already-encoded `_state`.
    private func appendingQuery(_ item: String, to url: URL, method: String) throws -> URL {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: true) else {
            throw RegistryClientError.badLocation(method: method, url: url, location: url.absoluteString)
        }
        components.percentEncodedQuery = [components.percentEncodedQuery, item]
            .compactMap { $0 }.joined(separator: "&")
        guard let result = components.url else {
            throw RegistryClientError.badLocation(method: method, url: url, location: url.absoluteString)
        }
        return result
    }

    private func manifestURL(_ repository: String, _ reference: String) -> URL {
        baseURL.appendingPathComponent("v2/\(repository)/manifests/\(reference)")
    }

    private func send(
        _ method: String,
        _ url: URL,
        body: Data? = nil,
        headers: [String: String] = [:],
        expecting expected: Set<Int>
    ) async throws -> (Data, HTTPURLResponse) {
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let data: Data
        let response: URLResponse
        do {
            if let body {
                (data, response) = try await session.upload(for: request, from: body)
            } else {
                (data, response) = try await session.data(for: request)
            }
        } catch {
            throw RegistryClientError.transport(method: method, url: url, reason: "\(error)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw RegistryClientError.transport(method: method, url: url, reason: "not an HTTP response")
        }
        guard expected.contains(http.statusCode) else {
            throw RegistryClientError.unexpectedStatus(
                method: method, url: url, status: http.statusCode, body: String(decoding: data, as: UTF8.self))
        }
        return (data, http)
    }
}
