import Foundation
import RegistryHarness
import StoreTestSupport
import Testing

/// The built `regkeeper` binary against a real registry's store: exit statuses, the circuit
/// breaker, a reviewed plan applied with gc, and the run history.
@Suite(.serialized) struct RetainCommandTests {
    let binary = BuiltProducts.executable("regkeeper")

    func regkeeper(_ arguments: [String]) async throws -> ProcessOutput {
        try await ProcessRunner.run(binary, arguments, timeout: 120, allowFailure: true)
    }

    @Test func breakerThenReviewedPlanThenHistory() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build regkeeper first (swift build)")
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 11)
            var pushed: [(String, String, Double)] = []
            for (tag, days) in [("t1", 1.0), ("t2", 2), ("t3", 20), ("t4", 21)] {
                pushed.append((tag, try await builder.pushImage(repository: "app", tag: tag).digest, days))
            }
            try backdateEverything(server.root)
            for (tag, digest, days) in pushed { try backdate(server.root, "app", tag: tag, digest: digest, days: days) }
            let directory = server.root.deletingLastPathComponent()
            let policy = directory.appendingPathComponent("policy.yaml")
            let plan = directory.appendingPathComponent("plan.json")
            let store = ["--root", server.root.path]
            func write(maxDeletePercent: Int) throws {
                try """
                    version: 1
                    rules:
                      - name: app
                        repositories: [app]
                        keep: [{newest: 2}]
                        untagged: {delete: true, olderThan: 7d}
                    safety: {maxDeletePercent: \(maxDeletePercent)}
                    """.write(to: policy, atomically: true, encoding: .utf8)
            }

            try write(maxDeletePercent: 40)
            let tripped = try await regkeeper(["retain", "--policy", policy.path] + store)
            #expect(tripped.status == 3, "\(tripped.stderrText)")
            #expect(tripped.stderrText.contains("circuit breaker: nothing was changed"))
            #expect(tripped.stderrText.contains("app: 2 of 4 tags (50%)"))
            #expect(try await client.tags(repository: "app") == ["t1", "t2", "t3", "t4"])

            try write(maxDeletePercent: 50)
            let dryRun = try await regkeeper(["retain", "--policy", policy.path, "--dry-run", "--plan-out", plan.path] + store)
            #expect(dryRun.status == 0, "\(dryRun.stderrText)")
            #expect(dryRun.stdoutText.contains("delete t3"))
            #expect(dryRun.stdoutText.contains("no selector kept it: keep[1]: newest #3 of 4, beyond 2"))
            #expect(dryRun.stdoutText.contains("delete 2 tags and 2 untagged manifests"))
            #expect(try await client.tags(repository: "app") == ["t1", "t2", "t3", "t4"], "a dry run changes nothing")

            let applied = try await regkeeper(["retain", "--apply-plan", plan.path, "--gc", "--grace-period", "0", "--settle", "0", "--json"] + store)
            #expect(applied.status == 0, "\(applied.stderrText)")
            #expect(try await client.tags(repository: "app") == ["t1", "t2"])
            for tag in ["t1", "t2"] { try await Skopeo.pull(server: server, repository: "app", reference: tag) }

            let history = try await regkeeper(["history", "show", "1", "--json"] + store)
            #expect(history.status == 0, "\(history.stderrText)")
            let detail = try JSONSerialization.jsonObject(with: history.stdout) as? [String: Any]
            let deletions = detail?["deletions"] as? [[String: Any]] ?? []
            #expect(Set(deletions.compactMap { $0["tag"] as? String }) == ["t3", "t4"])
            #expect(deletions.filter { $0["kind"] as? String == "revision-link" }.count == 2)
            // gc runs as `regkeeper gc` does, recorded as a run of its own.
            let gcRun = try await regkeeper(["history", "show", "2", "--json"] + store)
            let gcDetail = try JSONSerialization.jsonObject(with: gcRun.stdout) as? [String: Any]
            #expect((gcDetail?["deletions"] as? [[String: Any]] ?? []).contains { $0["kind"] as? String == "blob" }, "gc's deletions are recorded")
            let list = try await regkeeper(["history"] + store)
            #expect(list.stdoutText.contains("run 1") && list.stdoutText.contains("retain  success"))
            #expect(list.stdoutText.contains("run 2") && list.stdoutText.contains("gc  success"), "\(list.stdoutText)")

            let stale = try await regkeeper(["retain", "--apply-plan", plan.path] + store)
            #expect(stale.status == 0, "tags already gone are skipped: \(stale.stderrText)")
        }
    }
}
