import Foundation
import RegistryHarness
import Testing

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
