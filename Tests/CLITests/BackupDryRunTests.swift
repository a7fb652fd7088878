import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `backup --dry-run` prints the plan the real backup then writes, and writes nothing itself.
@Suite struct BackupDryRunTests {
    func plannedBlobs(_ run: GCCommandTests.Run) throws -> (digests: Set<String>, plan: [String: Any]) {
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout)")
        let blobs = try #require(plan["blobsToWrite"] as? [[String: Any]])
        return (Set(blobs.compactMap { $0["digest"] as? String }), plan)
    }

    func written(_ run: GCCommandTests.Run) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stderr)")
    }

    @Test func dryRunIsTheBackupsPlanAndWritesNothing() throws {
        var first: StoreBuilder.Image!
        var orphan: Digest!
        var builder: StoreBuilder!
        let root = try GCCommandTests.store {
            builder = $0
            first = try $0.image("app", tag: "v1", layers: [layerBytes("shared"), layerBytes("one")])
            orphan = try $0.blob(layerBytes("orphan"))
        }
        let state = root.appendingPathComponent(".regkeeper")
        let catalog = state.appendingPathComponent("backup-catalog.db").path

        // An incremental needs a full backup to build on; the dry run says so and creates no catalog.
        let noChain = try GCCommandTests.regkeeper(["backup", "--dry-run", "--incremental", "--root", root.path])
        #expect(noChain.status == 1 && noChain.stderr.contains("take a full backup first"), "\(noChain.stderr)")
        #expect(!FileManager.default.fileExists(atPath: catalog))

        let dry = try GCCommandTests.regkeeper(["backup", "--dry-run", "--json", "--root", root.path])
        #expect(dry.status == 0, "\(dry.stderr)")
        let (planned, plan) = try plannedBlobs(dry)
        #expect(planned == Set(first.blobs.map(\.description)))
        #expect(!planned.contains(orphan.description))
        #expect(plan["kind"] as? String == "full" && plan["links"] as? Int == 6)
        #expect(!FileManager.default.fileExists(atPath: catalog))
        let human = try GCCommandTests.regkeeper(["backup", "--dry-run", "--root", root.path])
        #expect(human.stdout.contains("a full archive would hold 4 blobs"), "\(human.stdout)")

        let full = root.appendingPathComponent("full.tar.zst").path
        let backup = try GCCommandTests.regkeeper(["backup", "--output", full, "--json", "--root", root.path])
        #expect(backup.status == 0, "\(backup.stderr)")
        let result = try written(backup)
        #expect(result["blobsWritten"] as? Int == planned.count && result["linksWritten"] as? Int == 6)
        let existing = try GCCommandTests.regkeeper(["backup", "--dry-run", "--output", full, "--root", root.path])
        #expect(existing.status == 1 && existing.stderr.contains("exists"), "\(existing.stderr)")

        // After a push, the incremental plan is exactly the new blobs, on top of the full archive.
        let second = try builder.image("app", tag: "v2", layers: [layerBytes("shared"), layerBytes("two")])
        let incremental = try GCCommandTests.regkeeper(["backup", "--dry-run", "--incremental", "--json", "--root", root.path])
        #expect(incremental.status == 0, "\(incremental.stderr)")
        let (new, incrementalPlan) = try plannedBlobs(incremental)
        #expect(new == Set(second.blobs.subtracting(first.blobs).map(\.description)))
        #expect(incrementalPlan["kind"] as? String == "incremental")
        #expect(incrementalPlan["parent"] as? String == result["id"] as? String)
        #expect(incrementalPlan["inheritedBlobs"] as? Int == first.blobs.count)

        let incr = root.appendingPathComponent("incr.tar.zst").path
        let next = try GCCommandTests.regkeeper(["backup", "--incremental", "--output", incr, "--json", "--root", root.path])
        #expect(next.status == 0, "\(next.stderr)")
        #expect(try written(next)["blobsWritten"] as? Int == new.count)

        // Restore logs its phases for cron and journald (and draws progress on a terminal).
        let target = root.appendingPathComponent("restored").path
        let restore = try GCCommandTests.regkeeper(["restore", full, incr, "--root", target, "--log-level", "info"])
        #expect(restore.status == 0, "\(restore.stderr)")
        for phase in ["restore", "sync", "place"] {
            #expect(restore.stderr.contains("\(phase) finished in"), "\(restore.stderr)")
        }
    }
}
