import Archive
import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// The catalog, reindex and restore on the worst day, through the binary, on stores pushed
/// through the real registry; every bad archive is made here.
@Suite(.serialized) struct DisasterRecoveryTests {
    /// `backup list` and `backup reindex` read `--catalog` and `--json` (they were the parent
    /// command's, and the subcommands' own stayed unset, so the default catalog was used).
    @Test func listAndReindexUseTheCatalogGiven() async throws {
        try await withTemporaryDirectory { directory in
            let pushed = try await PushedStore.push(into: directory)
            let backups = directory.appendingPathComponent("backups")
            try FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)
            let full = backups.appendingPathComponent("full.tar.zst")
            let backup = try Regkeeper.run(["backup", "--root", pushed.root.path, "--catalog", backups.path, "--output", full.path, "--quiet"])
            #expect(backup.status == 0, "\(backup)")
            let defaultCatalog = pushed.root.appendingPathComponent(".regkeeper").appendingPathComponent(BackupCatalog.fileName)
            #expect(!FileManager.default.fileExists(atPath: defaultCatalog.path))

            let list = try Regkeeper.run(["backup", "list", "--root", pushed.root.path, "--catalog", backups.path, "--json"])
            #expect(list.status == 0, "\(list)")
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any], "\(list)")
            #expect((listed["archives"] as? [[String: Any]])?.map { $0["path"] as? String } == [full.path])

            // Lose the catalog; reindex writes the one named, and nothing in the store's.
            let catalogFile = backups.appendingPathComponent(BackupCatalog.fileName)
            for name in try FileManager.default.contentsOfDirectory(atPath: backups.path) where BackupCatalog.ownsFile(named: name) {
                try FileManager.default.removeItem(at: backups.appendingPathComponent(name))
            }
            let reindex = try Regkeeper.run(["backup", "reindex", backups.path, "--root", pushed.root.path, "--catalog", backups.path, "--json"])
            #expect(reindex.status == 0, "\(reindex)")
            let outcome = try #require(try JSONSerialization.jsonObject(with: Data(reindex.stdout.utf8)) as? [String: Any], "\(reindex)")
            #expect(outcome["archives"] as? [String] == [full.path])
            #expect(FileManager.default.fileExists(atPath: catalogFile.path))
            #expect(!FileManager.default.fileExists(atPath: defaultCatalog.path), "the store's own catalog is left alone")
            let text = try Regkeeper.run(["backup", "list", "--catalog", backups.path])
            #expect(text.status == 0 && text.stdout.contains(full.path) && text.stdout.contains("full"), "\(text)")
        }
    }

    /// regkeeper-restore(1)'s DISASTER RECOVERY steps: a chain, the catalog lost, reindex,
    /// restore --latest, every tag pulled from a registry on the restored root. Then the newest
    /// archive cut short: reindex exits 4 naming it, and restore --latest refuses, naming it,
    /// instead of restoring yesterday's chain.
    @Test func theDisasterRecoveryProcedure() async throws {
        try await withTemporaryDirectory { directory in
            let source = directory.appendingPathComponent("source")
            let server = try await RegistryServer.start(root: source)
            let client = RegistryClient(server: server)
            let store = try await SampleStore.push(to: client)
            let backups = directory.appendingPathComponent("backups")
            try FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)
            let full = backups.appendingPathComponent("registry-20260101.tar.zst")
            let first = try Regkeeper.run(["backup", "--root", source.path, "--catalog", backups.path, "--output", full.path, "--quiet"])
            #expect(first.status == 0, "\(first)")
            var builder = ImageBuilder(client: client, seed: 21)
            _ = try await builder.pushImage(repository: "library/app", tag: "v2")
            _ = try await builder.pushImage(repository: "late/repo", tag: "1")
            server.stop()
            let newest = backups.appendingPathComponent("registry-20260102.tar.zst")
            let second = try Regkeeper.run(["backup", "--root", source.path, "--catalog", backups.path, "--incremental", "--output", newest.path, "--quiet"])
            #expect(second.status == 0, "\(second)")
            let references = store.tagReferences + [("library/app", "v2"), ("late/repo", "1")]

            // The disaster: the catalog is gone with the server.
            for name in try FileManager.default.contentsOfDirectory(atPath: backups.path) where BackupCatalog.ownsFile(named: name) {
                try FileManager.default.removeItem(at: backups.appendingPathComponent(name))
            }
            let reindex = try Regkeeper.run(["backup", "reindex", backups.path, "--catalog", backups.path])
            #expect(reindex.status == 0 && reindex.stdout.contains("2 archive(s)"), "\(reindex)")
            let target = directory.appendingPathComponent("restored")
            let restore = try Regkeeper.run(["restore", "--catalog", backups.path, "--latest", "--root", target.path])
            #expect(restore.status == 0, "\(restore)")
            try await expectEveryTagPulls(references, from: target)

            // The newest archive cut short (and, beside it, an empty file and a stray text).
            let bytes = try Data(contentsOf: newest)
            try bytes.prefix(bytes.count * 2 / 3).write(to: newest)
            try Data().write(to: backups.appendingPathComponent("registry-20260103.tar.zst"))
            try Data("not an archive\n".utf8).write(to: backups.appendingPathComponent("notes.txt"))
            let damaged = try Regkeeper.run(["backup", "reindex", backups.path, "--catalog", backups.path])
            #expect(damaged.status == 4, "\(damaged)")
            for name in ["registry-20260102.tar.zst", "registry-20260103.tar.zst", "notes.txt"] {
                #expect(damaged.stderr.contains(backups.appendingPathComponent(name).path), "\(name) named: \(damaged)")
            }
            #expect(damaged.stderr.hasPrefix("regkeeper: "))
            let listed = try Regkeeper.run(["backup", "list", "--catalog", backups.path])
            #expect(listed.stdout.contains("UNREADABLE \(newest.path)"), "\(listed)")
            let refusedTarget = directory.appendingPathComponent("restored-again")
            let refused = try Regkeeper.run(["restore", "--catalog", backups.path, "--latest", "--root", refusedTarget.path])
            #expect(refused.status == 3, "\(refused)")
            #expect(refused.stderr.contains(newest.path) && refused.stderr.contains("unreadable"), "\(refused)")
            #expect(!FileManager.default.fileExists(atPath: refusedTarget.path), "a refused restore creates nothing")
        }
    }
}
