import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// Every scheduled command writes node_exporter textfile metrics that say what it did.
@Suite struct MetricsTests {
    func metric(_ text: String, _ name: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test func retainVerifyAndBackupWriteMetrics() throws {
        let old = Date().addingTimeInterval(-30 * 86_400)
        let root = try GCCommandTests.store { builder in
            for number in 1...4 {
                try builder.image("ci/app", tag: Tag("build-\(number)")!, layers: [layerBytes("l\(number)")], modified: old, seed: "\(number)")
            }
        }
        let policy = root.appendingPathComponent("policy.yaml")
        try """
            version: 1
            rules:
              - name: ci
                repositories: ["ci/**"]
                keep:
                  - newest: 2
            safety:
              maxDeletePercent: 90
            """.write(to: policy, atomically: true, encoding: .utf8)
        let metrics = root.appendingPathComponent("m.prom").path

        let retain = try GCCommandTests.regkeeper(["retain", "--policy", policy.path, "--gc", "--grace-period", "0", "--quiet", "--metrics-file", metrics, "--root", root.path])
        #expect(retain.status == 0, "\(retain.stderr)")
        var text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(metric(text, "regkeeper_retain_tags_deleted") == "2")
        #expect(metric(text, "regkeeper_retain_last_run_success") == "1")

        let verify = try GCCommandTests.regkeeper(["verify", "--quiet", "--metrics-file", metrics, "--root", root.path])
        #expect(verify.status == 0, "\(verify.stderr)")
        text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(text.contains("regkeeper_verify_findings{kind=\"corrupt\"} 0\n"))
        // The policy deletes tags only (no `untagged: delete`), so all 4 images stay as revisions.
        #expect(metric(text, "regkeeper_verify_blobs_hashed") == "12")

        let archive = root.appendingPathComponent("full.tar.zst").path
        let backup = try GCCommandTests.regkeeper(["backup", "--output", archive, "--quiet", "--metrics-file", metrics, "--root", root.path])
        #expect(backup.status == 0, "\(backup.stderr)")
        text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(metric(text, "regkeeper_backup_blobs_written") == "12")
        let size = try FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int
        #expect(metric(text, "regkeeper_backup_archive_bytes") == size.map(String.init))

        // Restoring changes the target store: it is a run in the target's history.
        let target = root.appendingPathComponent("restored").path
        let restore = try GCCommandTests.regkeeper(["restore", archive, "--root", target, "--quiet"])
        #expect(restore.status == 0, "\(restore.stderr)")
        let history = try GCCommandTests.regkeeper(["history", "--json", "--root", target])
        let runs = try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]]
        #expect(runs?.compactMap { $0["command"] as? String } == ["restore"])
    }
}
