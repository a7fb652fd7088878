import Foundation
import RegistryHarness
import StoreTestSupport
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

    /// Starts are bounded per process, so that a busy machine answers every registry's first
    /// GET in time: while the test holds every slot a start waits, and once one frees, the
    /// registry starts and answers.
    @Test func aStartWaitsForAFreeSlot() async throws {
        let holding = Occupancy()
        let holders = (0..<RegistryServer.startups.limit).map { _ in
            Task {
                await RegistryServer.startups.withSlot {
                    holding.enter()
                    try? await Task.sleep(for: .seconds(600))
                }
            }
        }
        while holding.now < RegistryServer.startups.limit { try await Task.sleep(for: .milliseconds(10)) }
        try await withTemporaryDirectory { directory in
            let started = Occupancy()
            let start = Task {
                let server = try await RegistryServer.start(root: directory.appendingPathComponent("store"))
                started.enter()
                return server
            }
            try await Task.sleep(for: .seconds(1))
            #expect(started.now == 0, "started while every slot was held")
            for holder in holders { holder.cancel() }
            let server = try await start.value
            defer { server.stop() }
            #expect(try await RegistryClient(server: server).manifestExists(repository: "nothing", reference: "latest") == false)
        }
    }
}
