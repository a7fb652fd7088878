import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `--quarantine` moves corrupt blob directories out of `blobs/` into the state directory and
/// records them; the registry then answers "blob unknown" until a re-push.
@Suite struct QuarantineTests {
    @Test(arguments: Driver.allCases) func corruptBlobMovesOutAndIsListed(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let layer = fixture.app.layers[1]
        try fixture.damage(layer) { $0[7] ^= 0x80 }
        let damaged = try fixture.storage.read(Layout.blobData(layer), limit: .max)

        let report = try await fixture.verify(quarantine: true)
        #expect(report.seen == [Seen(.corrupt, Layout.blobData(layer), layer, ["app:v1"])])
        #expect(report.counts.quarantined == 1)
        let moved = try #require(report.findings[0].quarantinedTo)
        let directory = fixture.stateDirectory.appendingPathComponent("quarantine").path
        #expect(moved.hasPrefix(directory + "/"))
        #expect(moved.hasSuffix("/" + Layout.blobDirectory(layer).description))
        #expect(try fixture.storage.status(Layout.blobDirectory(layer)) == nil)
        let runDirectory = String(moved.dropLast(Layout.blobDirectory(layer).description.count + 1))
        #expect(try fixture.storage.detachedFiles(in: runDirectory) == [Layout.blobData(layer)])
        if driver == .local {
            #expect(FileManager.default.contents(atPath: moved + "/data") == damaged)
        }

        let listed = try await fixture.state().quarantinedBlobs()
        #expect(listed.count == 1)
        #expect(listed.first?.digest == layer.description)
        #expect(listed.first?.quarantinePath == moved)
        #expect(listed.first?.affectedTags == ["app:v1"])
        #expect(listed.first?.originalPath == Layout.blobDirectory(layer).description)

        // Now the registry would answer "blob unknown": the tag is broken until a re-push.
        let after = try await fixture.verify()
        #expect(after.seen == [Seen(.missing, Layout.blobData(layer), layer, ["app:v1"])])

        // A re-push writes good content again.
        try fixture.builder.blob(layerBytes("app-1", size: 8192))
        #expect(try await fixture.verify().seen == [])
    }

    @Test func unreadableAndMissingBlobsAreNotMoved() async throws {
        let fixture = try Fixture(.inMemory)
        try fixture.storage.remove(Layout.blobDirectory(fixture.app.config))
        let report = try await fixture.verify(quarantine: true)
        #expect(report.seen.map(\.kind) == [.missing])
        #expect(report.counts.quarantined == 0)
        #expect(try await fixture.state().quarantinedBlobs().isEmpty)
    }

    @Test func storeIsOnlyReadWithoutQuarantine() async throws {
        let fixture = try Fixture(.inMemory)
        try fixture.damage(fixture.other.layers[1]) { $0[0] ^= 1 }
        let before = try await blobDigests(in: fixture.storage)
        _ = try await fixture.verify()
        #expect(try await blobDigests(in: fixture.storage) == before)
        #expect(!FileManager.default.fileExists(atPath: fixture.stateDirectory.appendingPathComponent("quarantine").path))
    }
}
