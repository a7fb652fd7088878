import Foundation
import RegistryHarness
import Testing

@Suite struct RegistryServerTests {
    @Test func startupFailureCarriesTheRegistrysStderr() async throws {
        try await withTemporaryDirectory { directory in
            do {
                _ = try await RegistryServer.start(
                    root: directory.appendingPathComponent("store"), extraConfig: "storage: {}\n")
                Issue.record("a config without storage started")
            } catch let RegistryServerError.exitedDuringStartup(_, status, stderr) {
                #expect(status != 0)
                #expect(stderr.contains("configuration error"))
            }
        }
    }

    @Test func blobDescriptorCacheIsOptIn() async throws {
        try await withRegistry { server, _ in
            let config = try readText(server.configPath)
            #expect(!config.contains("blobdescriptor"))
        }
        try await withRegistry(blobDescriptorCache: true) { server, client in
            #expect(try readText(server.configPath).contains("blobdescriptor: inmemory"))
            var builder = ImageBuilder(client: client, seed: 31)
            _ = try await builder.pushImage(repository: "cached", tag: "v1")
            #expect(try await client.manifestExists(repository: "cached", reference: "v1"))
        }
    }

    @Test func stopFreesThePortAndIsIdempotent() async throws {
        try await withRegistry { server, client in
            server.stop()
            server.stop()
            await #expect(throws: RegistryClientError.self) {
                _ = try await client.tags(repository: "anything")
            }
        }
    }
}
