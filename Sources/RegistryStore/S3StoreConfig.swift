import Foundation
import Yams

/// A store in an S3 bucket, as the registry's `storage.s3` section, the standard AWS
/// environment, or `--root s3://BUCKET/PREFIX --s3-endpoint URL` describe it.
public struct S3StoreConfig: Sendable, Hashable {
    /// Scheme, host and port; requests are path-style (`<endpoint>/<bucket>/<key>`).
    public var endpoint: String
    public var region: String
    public var bucket: String
    /// The registry's `rootdirectory`: keys are `<rootDirectory>/docker/registry/v2/...`.
    public var rootDirectory: String
    public var accessKey: String
    public var secretKey: String

    /// `s3://bucket/rootdirectory`, how messages and records name the store.
    public var url: String {
        let root = rootDirectory.split(separator: "/").joined(separator: "/")
        return "s3://\(bucket)" + (root.isEmpty ? "" : "/" + root)
    }

    /// One host runs maintenance for a bucket: its lock and databases live here unless
    /// `--state-dir` says otherwise.
    public var defaultStateDirectory: String {
        let root = rootDirectory.split(separator: "/").joined(separator: "/")
        return "/var/lib/regkeeper/\(bucket)" + (root.isEmpty ? "" : "/" + root)
    }

    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case badURL(String)
        case missing(what: String, source: String)

        public var description: String {
            switch self {
            case .badURL(let text): "'\(text)' is not s3://BUCKET or s3://BUCKET/PREFIX"
            case let .missing(what, source): "\(source): no \(what)"
            }
        }
    }

    public init(endpoint: String, region: String, bucket: String, rootDirectory: String, accessKey: String, secretKey: String) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.rootDirectory = rootDirectory
        self.accessKey = accessKey
        self.secretKey = secretKey
    }

    /// `--root s3://BUCKET/PREFIX`: the rest comes from `--s3-endpoint` and the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`).
    public static func parse(url text: String, endpoint: String?, environment: [String: String]) throws(Error) -> S3StoreConfig {
        guard text.hasPrefix("s3://") else { throw .badURL(text) }
        let rest = text.dropFirst("s3://".count)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else { throw .badURL(text) }
        return try resolve(
            bucket: String(bucket), rootDirectory: String(rest.dropFirst(bucket.count)), region: nil, endpoint: endpoint,
            secure: true, accessKey: nil, secretKey: nil, environment: environment, source: "--root \(text)")
    }

    /// The registry's `storage.s3`, or nil when the config uses another driver. Keys missing
    /// there (credentials, region) come from the environment, as they do for the registry.
    public static func fromRegistryConfig(
        _ path: String, endpoint override: String?, environment: [String: String]
    ) throws(StoreLocation.Error) -> S3StoreConfig? {
        let document: Any?
        do {
            document = try Yams.load(yaml: String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw .configUnreadable(path: path, reason: "\(error)")
        }
        guard let top = document as? [String: Any], let storage = top["storage"] as? [String: Any],
              let s3 = storage["s3"] as? [String: Any]
        else { return nil }
        func text(_ key: String) -> String? {
            guard let value = s3[key] else { return nil }
            let string = "\(value)"
            return string.isEmpty ? nil : string
        }
        guard let bucket = text("bucket") else { throw .configUnreadable(path: path, reason: "storage.s3 has no bucket") }
        do {
            return try resolve(
                bucket: bucket, rootDirectory: text("rootdirectory") ?? "", region: text("region"),
                endpoint: override ?? text("regionendpoint"), secure: (s3["secure"] as? Bool) ?? true,
                accessKey: text("accesskey"), secretKey: text("secretkey"), environment: environment, source: path)
        } catch {
            throw .configUnreadable(path: path, reason: error.description)
        }
    }

    private static func resolve(
        bucket: String, rootDirectory: String, region: String?, endpoint: String?, secure: Bool,
        accessKey: String?, secretKey: String?, environment: [String: String], source: String
    ) throws(Error) -> S3StoreConfig {
        let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        guard let accessKey = accessKey ?? environment["AWS_ACCESS_KEY_ID"] else {
            throw .missing(what: "access key (accesskey, or AWS_ACCESS_KEY_ID)", source: source)
        }
        guard let secretKey = secretKey ?? environment["AWS_SECRET_ACCESS_KEY"] else {
            throw .missing(what: "secret key (secretkey, or AWS_SECRET_ACCESS_KEY)", source: source)
        }
        var url = endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"] ?? "s3.\(region).amazonaws.com"
        // The registry's `regionendpoint` may omit the scheme; its `secure` then decides.
        if !url.contains("://") { url = (secure ? "https://" : "http://") + url }
        return S3StoreConfig(
            endpoint: url, region: region, bucket: bucket, rootDirectory: rootDirectory, accessKey: accessKey, secretKey: secretKey)
    }
}
