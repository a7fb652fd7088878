import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public enum RegistryServerError: Error, CustomStringConvertible {
    case cannotWriteConfig(path: String, reason: String)
    case noFreePort(reason: String)
    case exitedDuringStartup(command: [String], status: Int32, stderr: String)
    case notReady(url: URL, seconds: Double, lastProblem: String, stderr: String)

    public var description: String {
        switch self {
        case let .cannotWriteConfig(path, reason):
            return "cannot write registry config \(path): \(reason)"
        case let .noFreePort(reason):
            return "cannot find a free TCP port on 127.0.0.1: \(reason)"
        case let .exitedDuringStartup(command, status, stderr):
            return "`\(command.joined(separator: " "))` exited with status \(status) before answering: \(stderr)"
        case let .notReady(url, seconds, lastProblem, stderr):
            return "GET \(url) did not answer 200 within \(seconds) s (last: \(lastProblem)); registry stderr: \(stderr)"
        }
    }
}

/// A real `docker-registry serve` on loopback over a store the test owns, so tests see exactly
/// what Distribution 2.8 writes to disk rather than what we believe it writes.
///
/// Sendable through a lock around the only mutable state, the child process, so a server can be
/// shared by concurrently running tests. The config directory is removed on `deinit`.
public final class RegistryServer: @unchecked Sendable {
    /// The store's `rootdirectory`.
    public let root: URL
    public let port: Int
    /// The config the server runs with; `docker-registry garbage-collect` takes the same file.
    public let configPath: URL
    public let baseURL: URL

    private let configDirectory: URL
    /// Names this registry in its responses (`instanceHeader`).
    private let instance = UUID().uuidString
    private let child = RegistryChild()

    /// `extraConfig` that lets 2.8.2 accept signed schema1 pushes; without it they fail with
    /// HTTP 500 "manifest schema v1 unsupported".
    public static let schema1Compatibility = "compatibility:\n  schema1:\n    enabled: true\n"

    /// How long `start` and `restart` wait for `GET /v2/` to answer once the registry is
    /// launched. An idle machine needs well under a second; a 2-core machine running a full
    /// parallel test suite (compilers, skopeo, other registries) has needed more than 10 s.
    static let readinessTimeout = 60.0

    /// How many registries of this process may be starting (launched and not yet answering)
    /// at once. Starting is the CPU-heavy part of a registry's life; letting every test start
    /// its own at the same moment is what made them miss their readiness deadline. The
    /// deadline starts once a slot is had, so waiting for one costs none of it.
    public static let startups = AsyncSemaphore(limit: 2)

    private init(root: URL, port: Int, configDirectory: URL) {
        self.root = root
        self.port = port
        self.configDirectory = configDirectory
        configPath = configDirectory.appendingPathComponent("config.yml")
        baseURL = URL(string: "http://127.0.0.1:\(port)")!
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: configDirectory)
    }

    /// Writes a config for `root` and starts the registry, returning once `GET /v2/` answers 200.
    ///
    /// - Parameters:
    ///   - port: nil picks a free one. A picked port can be taken by someone else before the
    ///     registry binds it, so that case is retried with a fresh port, as is a registry that
    ///     does not answer within `readinessTimeout`.
    ///   - blobDescriptorCache: turns on `storage.cache.blobdescriptor: inmemory`, off by default
    ///     because its stale entries after a gc make "layer already exists" pushes succeed
    ///     against deleted blobs; turn it on to reproduce exactly that.
    ///   - extraConfig: YAML appended at the top level, e.g. `schema1Compatibility`. It must not
    ///     repeat `version`, `log`, `storage` or `http`: a repeated key replaces ours whole.
    ///   - log: nil keeps the registry quiet (level error, no access log); otherwise it logs
    ///     every request at level info in that formatter, and the access log when asked, to
    ///     the files `applicationLog` and `accessLog` name.
    public static func start(
        root: URL,
        port: Int? = nil,
        blobDescriptorCache: Bool = false,
        extraConfig: String = "",
        log: RequestLog? = nil
    ) async throws -> RegistryServer {
        try await startRetrying(attempts: port == nil ? 3 : 1) {
            let server = try RegistryServer(
                root: root,
                port: port ?? freeLoopbackPort(),
                configDirectory: FileManager.default.temporaryDirectory
                    .appendingPathComponent("registry-\(UUID().uuidString)", isDirectory: true)
            )
            try server.writeConfig(blobDescriptorCache: blobDescriptorCache, extraConfig: extraConfig, log: log)
            try await server.launch()
            return server
        }
    }

    /// Runs `start` until it gives a registry: a picked port another process took meanwhile
    /// ("address already in use"), or a registry that never answers (seen once at the very
    /// start of a full parallel run), is tried again with a fresh server on a fresh port.
    static func startRetrying<Server>(attempts: Int, _ start: () async throws -> Server) async throws -> Server {
        var left = attempts
        while true {
            left -= 1
            do {
                return try await start()
            } catch let RegistryServerError.exitedDuringStartup(_, _, stderr) where left > 0 && stderr.contains("address already in use") {
                continue
            } catch RegistryServerError.notReady where left > 0 {
                continue
            }
        }
    }

    /// Terminates the registry and waits for it to exit; safe to call twice.
    public func stop() { child.stop() }

    /// Stops and starts again on the same root, port and config, which empties the registry's
    /// in-memory caches the way an operator's restart after gc would.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// How a registry started with `log:` logs its requests.
    public struct RequestLog: Sendable, Hashable {
        /// `text` or `json`: Distribution's `log.formatter`.
        public var formatter: String
        /// Also write the access log (Combined Log Format, on standard output).
        public var accessLog: Bool

        public init(formatter: String, accessLog: Bool) {
            self.formatter = formatter
            self.accessLog = accessLog
        }
    }

    /// The application log (standard error) and the access log (standard output) of the
    /// running registry; a restart starts new files, as a rotation would.
    public var applicationLog: URL? { child.outputFiles?.stderr }
    public var accessLog: URL? { child.outputFiles?.stdout }

    private func writeConfig(blobDescriptorCache: Bool, extraConfig: String, log: RequestLog?) throws {
        let cache = blobDescriptorCache ? "  cache:\n    blobdescriptor: inmemory\n" : ""
        let logging = log.map { "  level: info\n  formatter: \($0.formatter)\n  accesslog:\n    disabled: \(!$0.accessLog)\n" } ?? "  level: error\n"
        let yaml = """
            version: 0.1
            log:
            \(logging)storage:
              filesystem:
                rootdirectory: \(root.path)
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            \(cache)http:
              addr: 127.0.0.1:\(port)
              headers:
                \(Self.instanceHeader): [\(instance)]

            """ + extraConfig
        do {
            try FileManager.default.createDirectory(at: configDirectory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            try Data(yaml.utf8).write(to: configPath)
        } catch {
            throw RegistryServerError.cannotWriteConfig(path: configPath.path, reason: "\(error)")
        }
    }

    private func launch() async throws {
        let running = try await Self.launchRegistry(["docker-registry", "serve", configPath.path], answeringAt: baseURL, instance: instance)
        child.set(running)
    }

    /// A response header naming the registry instance, so that readiness is ours: two tests
    /// can be handed the same free port, and the one whose registry lost the bind must not
    /// take the other's answer for its own (and push into the other's store).
    static let instanceHeader = "X-Regkeeper-Instance"

    /// Starts a registry in one of the `startups` slots and returns it once `GET /v2/` answers
    /// 200 with its own `instance` header, or stops it and throws: every registry the tests run
    /// (filesystem or s3 driver) starts this way.
    static func launchRegistry(_ command: [String], answeringAt baseURL: URL, instance: String) async throws -> RunningProcess {
        try await startups.withSlot {
            let running = try RunningProcess(command[0], Array(command.dropFirst()), timeout: nil)
            do {
                try await waitUntilReady(running, baseURL: baseURL, instance: instance)
                return running
            } catch {
                running.terminate()
                running.discardOutput()
                throw error
            }
        }
    }

    private static func waitUntilReady(_ running: RunningProcess, baseURL: URL, instance: String) async throws {
        let url = baseURL.appendingPathComponent("v2/")
        let deadline = Date().addingTimeInterval(Self.readinessTimeout)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 1
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        var lastProblem = "no attempt"
        while Date() < deadline {
            if !running.isRunning {
                throw RegistryServerError.exitedDuringStartup(
                    command: running.command, status: running.status, stderr: running.stderrSoFar)
            }
            do {
                let (_, response) = try await session.data(from: url)
                let http = response as? HTTPURLResponse
                let status = http?.statusCode ?? 0
                if status == 200, http?.value(forHTTPHeaderField: instanceHeader) == instance { return }
                lastProblem = status == 200 ? "another registry answers on this port" : "HTTP \(status)"
            } catch {
                lastProblem = "\(error)"
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw RegistryServerError.notReady(
            url: url, seconds: Self.readinessTimeout, lastProblem: lastProblem, stderr: running.stderrSoFar)
    }
}

/// Asks the kernel for an unused loopback port by binding port 0, then releases it for the registry.
func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw RegistryServerError.noFreePort(reason: "socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    #if canImport(Darwin)
    address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
    #endif
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw RegistryServerError.noFreePort(reason: "bind/getsockname: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The running registry of a server, swapped under a lock so that a server can be shared by
/// concurrently running tests and stopped from any of them, twice if need be.
final class RegistryChild: @unchecked Sendable {
    // @unchecked: `running` is only touched under `lock`.
    private let lock = NSLock()
    private var running: RunningProcess?

    func set(_ process: RunningProcess) {
        lock.withLock { running = process }
    }

    var outputFiles: (stdout: URL, stderr: URL)? {
        lock.withLock { running.map { ($0.stdoutURL, $0.stderrURL) } }
    }

    /// Terminates the registry and waits for it to exit.
    func stop() {
        let process = lock.withLock {
            defer { running = nil }
            return running
        }
        process?.terminate()
        process?.discardOutput()
    }
}
