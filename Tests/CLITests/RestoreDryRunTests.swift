import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `restore --dry-run` checks the archives as the restore does and tells what it would do:
/// the same counts and the same conflicts as the restore that follows, and nothing written.
@Suite struct RestoreDryRunTests {
    typealias Run = GCCommandTests.Run

    func result(_ run: Run) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stderr)")
    }

    func counts(_ result: [String: Any]) -> [Int?] {
        ["blobs", "links", "otherFiles", "blobBytes"].map { result[$0] as? Int }
    }

    /// Every file under `directory`, with its bytes.
    func files(_ directory: URL) -> [String: Data] {
        var found: [String: Data] = [:]
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else { return found }
        for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            found[url.path] = try? Data(contentsOf: url)
        }
        return found
    }

    @Test func dryRunTellsWhatTheRestoreThenDoes() throws {
        var image: StoreBuilder.Image!
        let source = try GCCommandTests.store { builder in
            image = try builder.image("app", tag: "v1", layers: [layerBytes("one"), layerBytes("two")])
            try builder.image("tools", tag: "latest", layers: [layerBytes("three")])
        }
        let archive = source.appendingPathComponent("full.tar.zst").path
        let backup = try GCCommandTests.regkeeper(["backup", "--output", archive, "--quiet", "--root", source.path])
        #expect(backup.status == 0, "\(backup.stderr)")

        // Into a root that does not exist yet: it still does not afterwards.
        let target = source.deletingLastPathComponent().appendingPathComponent("restored-\(UUID())")
        let dry = try GCCommandTests.regkeeper(["restore", archive, "--root", target.path, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target.path))
        let real = try GCCommandTests.regkeeper(["restore", archive, "--root", target.path, "--json"])
        #expect(real.status == 0, "\(real.stderr)")
        #expect(counts(try result(dry)) == counts(try result(real)))
        #expect(counts(try result(real))[0] == 7)

        // A non-empty target is refused as the restore refuses it.
        let refused = try GCCommandTests.regkeeper(["restore", archive, "--root", target.path, "--dry-run"])
        #expect(refused.status == 3 && refused.stderr.contains("already holds a store"), "\(refused.stderr)")

        // --merge: the target moved app:v1 elsewhere; the dry run names that tag link as kept,
        // as the merge then does, and neither changes it.
        let tagLink = target.appendingPathComponent(Layout.tagCurrentLink("app", "v1").description)
        let moved = Data(image.layers[0].description.utf8)
        try moved.write(to: tagLink)
        let before = files(target.appendingPathComponent("docker"))
        let dryMerge = try GCCommandTests.regkeeper(["restore", archive, "--root", target.path, "--merge", "--dry-run", "--json"])
        #expect(dryMerge.status == 4, "\(dryMerge.stderr)")
        let conflicts = try result(dryMerge)["conflicts"] as? [String]
        #expect(conflicts?.count == 1 && conflicts?.first?.hasPrefix(Layout.tagCurrentLink("app", "v1").description) == true, "\(conflicts ?? [])")
        #expect(files(target.appendingPathComponent("docker")) == before)
        let merge = try GCCommandTests.regkeeper(["restore", archive, "--root", target.path, "--merge", "--json"])
        #expect(merge.status == 4, "\(merge.stderr)")
        #expect(try result(merge)["conflicts"] as? [String] == conflicts)
        #expect(try Data(contentsOf: tagLink) == moved)
    }

    /// A blob whose bytes do not match its name is refused by the dry run as by the restore.
    @Test func dryRunRefusesADamagedArchive() throws {
        var image: StoreBuilder.Image!
        let source = try GCCommandTests.store { builder in
            image = try builder.image("app", tag: "v1", layers: [layerBytes("one")])
        }
        let blob = source.appendingPathComponent(Layout.blobData(image.layers[0]).description)
        var bytes = try Data(contentsOf: blob)
        bytes[7] ^= 0x20
        try bytes.write(to: blob)
        let archive = source.appendingPathComponent("plain.tar.zst").path
        let tar = try GCCommandTests.run("/usr/bin/tar", ["-C", source.path, "--zstd", "-cf", archive, "docker"])
        #expect(tar.status == 0, "\(tar.stderr)")
        let target = source.deletingLastPathComponent().appendingPathComponent("restored-\(UUID())")
        let dry = try GCCommandTests.regkeeper(["restore", archive, "--root", target.path, "--dry-run"])
        #expect(dry.status == 3 && dry.stderr.contains(image.layers[0].description), "\(dry.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target.path))
    }
}
