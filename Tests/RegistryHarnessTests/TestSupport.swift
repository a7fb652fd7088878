import Foundation
import RegistryHarness
import Testing

/// A fresh directory under the system temp dir, removed when `body` returns or throws.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("registry-harness-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// Starts a registry on a new store inside a temporary directory and stops it afterwards.
func withRegistry<T>(
    blobDescriptorCache: Bool = false,
    extraConfig: String = "",
    _ body: (RegistryServer, RegistryClient) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        let server = try await RegistryServer.start(
            root: directory.appendingPathComponent("store"), blobDescriptorCache: blobDescriptorCache,
            extraConfig: extraConfig)
        defer { server.stop() }
        return try await body(server, RegistryClient(server: server))
    }
}

/// Paths the tests check by hand, written out here rather than taken from the library so the
/// tests state the layout independently of any code under test.
struct StorePaths {
    let v2: URL

    init(root: URL) {
        v2 = root.appendingPathComponent("docker/registry/v2")
    }

    func repository(_ name: String) -> URL {
        v2.appendingPathComponent("repositories/\(name)")
    }

    func revisionLink(_ repository: String, _ digest: String) -> URL {
        self.repository(repository).appendingPathComponent("_manifests/revisions/sha256/\(hex(digest))/link")
    }

    func layerLink(_ repository: String, _ digest: String) -> URL {
        self.repository(repository).appendingPathComponent("_layers/sha256/\(hex(digest))/link")
    }

    func currentTagLink(_ repository: String, _ tag: String) -> URL {
        self.repository(repository).appendingPathComponent("_manifests/tags/\(tag)/current/link")
    }

    func tagIndexLink(_ repository: String, _ tag: String, _ digest: String) -> URL {
        self.repository(repository).appendingPathComponent("_manifests/tags/\(tag)/index/sha256/\(hex(digest))/link")
    }

    func blobData(_ digest: String) -> URL {
        let hex = hex(digest)
        return v2.appendingPathComponent("blobs/sha256/\(hex.prefix(2))/\(hex)/data")
    }

    func upload(_ repository: String, _ uuid: String) -> URL {
        self.repository(repository).appendingPathComponent("_uploads/\(uuid)")
    }

    private func hex(_ digest: String) -> String {
        String(digest.dropFirst("sha256:".count))
    }
}

func readText(_ url: URL) throws -> String {
    String(decoding: try Data(contentsOf: url), as: UTF8.self)
}

func exists(_ url: URL) -> Bool {
    FileManager.default.fileExists(atPath: url.path)
}

/// Expects `body` to fail with an HTTP error of `status` whose body mentions `fragment`.
func expectStatus(
    _ status: Int, bodyContaining fragment: String, _ body: () async throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    do {
        try await body()
        Issue.record("expected HTTP \(status)", sourceLocation: sourceLocation)
    } catch let RegistryClientError.unexpectedStatus(_, _, actual, responseBody) {
        #expect(actual == status, sourceLocation: sourceLocation)
        #expect(responseBody.contains(fragment), sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
    }
}
