import struct Crypto.SHA512
import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// One damage per case, on both drivers: each is reported with its kind, digest and the tags
/// it breaks, and nothing else is.
@Suite struct VerifierTests {
    @Test(arguments: Driver.allCases) func cleanStoreReportsNothing(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let report = try await fixture.verify()
        #expect(report.seen == [])
        #expect(report.counts.blobsHashed == fixture.allBlobs.count)
        #expect(report.counts.repositories == 3)
        #expect(report.counts.tags == 3)
        #expect(report.stoppedBy == nil)
    }

    @Test(arguments: Driver.allCases) func flippedByteInASharedLayerIsCorruptAndBreaksBothTags(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let layer = fixture.app.layers[0]
        try fixture.damage(layer) { $0[100] ^= 0x01 }
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.corrupt, Layout.blobData(layer), layer, ["app:v1", "team/other:latest"])])
        #expect(report.findings[0].message.hasPrefix("content hashes to sha256:"))
    }

    @Test(arguments: Driver.allCases) func truncatedLayerIsTruncated(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let layer = fixture.app.layers[1]
        try fixture.damage(layer) { $0 = $0.prefix(1000) }
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.truncated, Layout.blobData(layer), layer, ["app:v1"])])
        #expect(report.findings[0].message.contains("1000 bytes where manifest \(fixture.app.manifest) in app declares 8192"))
    }

    @Test(arguments: Driver.allCases) func truncationIsFoundEvenWhenTheBlobIsNotRehashed(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let now = Date()
        _ = try await fixture.verify(at: now)
        let layer = fixture.app.layers[1]
        try fixture.damage(layer) { $0 = $0.prefix(10) }
        // The changed size and mtime make it due again; with no budget left it is only sized.
        let report = try await fixture.verify(maxAge: TimeSpan("30d")!, timeLimit: .zero, at: now)
        #expect(report.seen == [Seen(.truncated, Layout.blobData(layer), layer, ["app:v1"])])
        #expect(report.counts.blobsHashed == 0)
    }

    @Test(arguments: Driver.allCases) func deletedManifestBlobIsMissing(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        try fixture.storage.remove(Layout.blobDirectory(fixture.app.manifest))
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.missing, Layout.blobData(fixture.app.manifest), fixture.app.manifest, ["app:v1"])])
    }

    @Test(arguments: Driver.allCases) func deletedChildOfAMultiArchIndexIsMissing(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let child = fixture.children[1].manifest
        try fixture.storage.remove(Layout.blobDirectory(child))
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.missing, Layout.blobData(child), child, ["multi/arch:1.0"])])
        #expect(report.findings[0].message.contains("index \(fixture.index) in multi/arch"))
    }

    @Test(arguments: Driver.allCases) func layerLinkToAnAbsentBlobIsDangling(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let absent = StoreBuilder.digest(of: Data("never pushed".utf8))
        try fixture.builder.linkLayer("app", absent)
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.danglingLink, Layout.layerLink("app", absent), absent)])
    }

    @Test(arguments: Driver.allCases) func unparsableManifestIsBadManifest(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let broken = try fixture.builder.manifest(Data(#"{"schemaVersion":2,"layers":[{"digest":"sha256:nothex"}]"#.utf8), in: "app", tag: "broken")
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.badManifest, Layout.blobData(broken), broken, ["app:broken"])])
    }

    @Test(arguments: Driver.allCases) func descriptorThatIsNotADigestIsBadManifest(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let body = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:xyz","size":2},"layers":[]}"#
        let broken = try fixture.builder.manifest(Data(body.utf8), in: "app", tag: "odd")
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.badManifest, Layout.blobData(broken), broken, ["app:odd"])])
        #expect(report.findings[0].message == "config.digest holds an invalid digest 'sha256:xyz'")
    }

    @Test(arguments: Driver.allCases) func strayBlobDirectoriesAreStray(_ driver: Driver) async throws {
        let fixture = try Fixture(driver)
        let stray = StorePath(relative: "docker/registry/v2/blobs/sha256/ab/not-a-digest")!
        try fixture.storage.writeAtomically(stray.appending("data")!, Data("x".utf8), modified: nil)
        let empty = StoreBuilder.digest(of: Data("half-written".utf8))
        try fixture.storage.writeAtomically(Layout.blobDirectory(empty).appending("other")!, Data(), modified: nil)
        let report = try await fixture.verify()
        #expect(Set(report.seen) == [Seen(.stray, stray, nil), Seen(.stray, Layout.blobDirectory(empty), nil)])
    }

    @Test func corruptManifestIsReportedOnceAsCorrupt() async throws {
        let fixture = try Fixture(.inMemory)
        try fixture.damage(fixture.other.manifest) { $0[0] = UInt8(ascii: "x") }
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.corrupt, Layout.blobData(fixture.other.manifest), fixture.other.manifest, ["team/other:latest"])])
        #expect(report.findings[0].message.hasSuffix("and no longer parses as a manifest"))
    }

    @Test func missingLayerLinkBreaksTheTag() async throws {
        let fixture = try Fixture(.inMemory)
        let layer = fixture.other.layers[1]
        try fixture.storage.remove(Layout.layerLink("team/other", layer))
        let report = try await fixture.verify()
        #expect(report.seen == [Seen(.missing, Layout.layerLink("team/other", layer), layer, ["team/other:latest"])])
    }

    @Test func sha512BlobsAreRehashedWithSHA512() async throws {
        let fixture = try Fixture(.inMemory)
        let content = Data("sha512 content".utf8)
        let digest = Digest(algorithm: .sha512, bytes: Array(SHA512.hash(data: content)))!
        try fixture.storage.writeAtomically(Layout.blobData(digest), content, modified: nil)
        #expect(try await fixture.verify().seen == [])
        try fixture.damage(digest) { $0.append(0) }
        #expect(try await fixture.verify().seen == [Seen(.corrupt, Layout.blobData(digest), digest)])
    }
}
