import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import S3Store

/// A real `docker-registry serve` (Distribution 2.8) on a bucket through its own `s3` driver,
/// so tests see exactly the keys the registry writes to S3, not what we believe it writes.
///
/// `regionendpoint` makes the driver use path-style URLs. The registry is started with
/// `AWS_CA_BUNDLE` unset: the s3 driver panics on that variable (`LoadCustomCABundleError`).
public final class S3RegistryServer: @unchecked Sendable {
    // @unchecked: the child process is the only mutable state, held by `RegistryChild`.
    public let endpoint: S3Endpoint
    public let rootDirectory: String
    public let port: Int
    public let baseURL: URL
    /// The registry's config; `regkeeper --config` and `docker-registry garbage-collect` take it.
    public let configPath: URL
    private let configDirectory: URL
    /// Names this registry in its responses (`instanceHeader`).
    private let instance = UUID().uuidString
    private let child = RegistryChild()

    private init(endpoint: S3Endpoint, rootDirectory: String, port: Int) {
        self.endpoint = endpoint
        self.rootDirectory = rootDirectory
        self.port = port
        baseURL = URL(string: "http://127.0.0.1:\(port)")!
        configDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("registry-s3-\(UUID().uuidString)")
        configPath = configDirectory.appendingPathComponent("config.yml")
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: configDirectory)
    }

    /// Writes the config and starts the registry, returning once `GET /v2/` answers 200.
    public static func start(endpoint: S3Endpoint, rootDirectory: String = "/") async throws -> S3RegistryServer {
        try await RegistryServer.startRetrying(attempts: 3) {
            let server = S3RegistryServer(endpoint: endpoint, rootDirectory: rootDirectory, port: try freeLoopbackPort())
            try server.writeConfig()
            try await server.launch()
            return server
        }
    }

    public func stop() { child.stop() }

    /// Stops and starts again, emptying the registry's caches as an operator's restart would.
    public func restart() async throws {
        stop()
        try await launch()
    }

    private func writeConfig() throws {
        let yaml = """
            version: 0.1
            log:
              level: error
            storage:
              s3:
                region: \(endpoint.region)
                regionendpoint: \(endpoint.url)
                bucket: \(endpoint.bucket)
                accesskey: \(endpoint.accessKey)
                secretkey: \(endpoint.secretKey)
                secure: \(endpoint.url.hasPrefix("https://"))
                v4auth: true
                rootdirectory: \(rootDirectory)
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:\(port)
              headers:
                \(RegistryServer.instanceHeader): [\(instance)]

            """
        do {
            try FileManager.default.createDirectory(at: configDirectory, withIntermediateDirectories: true)
            try Data(yaml.utf8).write(to: configPath)
        } catch {
            throw RegistryServerError.cannotWriteConfig(path: configPath.path, reason: "\(error)")
        }
    }

    private func launch() async throws {
        let running = try await RegistryServer.launchRegistry(
            ["env", "-u", "AWS_CA_BUNDLE", "docker-registry", "serve", configPath.path], answeringAt: baseURL, instance: instance)
        child.set(running)
    }
}
