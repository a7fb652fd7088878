import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `pulls import`, `retain` with `pulledWithin` and `report` through the binary: the refusal
/// without evidence, a rotated `.gz` and standard input imported, the plan applied.
@Suite struct PullsCommandTests {
    typealias Run = GCCommandTests.Run

    static func regkeeper(_ arguments: [String]) throws -> Run { try GCCommandTests.regkeeper(arguments) }

    static func accessLine(_ date: Date, _ method: String, _ uri: String, _ status: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
        return #"10.0.0.9 - - [\#(formatter.string(from: date))] "\#(method) \#(uri) HTTP/1.1" \#(status) 512 "" "containerd/1.7.2""# + "\n"
    }

    @Test func importThenRetainKeepsWhatIsPulled() throws {
        let pushed = Date().addingTimeInterval(-100 * 86_400)
        var pinned: Digest!
        let root = try GCCommandTests.store { builder in
            for tag in ["v1", "v3", "v4"] { try builder.image("app", tag: Tag(tag)!, layers: [layerBytes(tag)], modified: pushed) }
            pinned = try builder.image("app", tag: "v2", layers: [layerBytes("v2")], modified: pushed).manifest
        }
        defer { try? FileManager.default.removeItem(at: root) }
        let store = ["--root", root.path]
        let policy = root.appendingPathComponent("policy.yaml")
        try """
            version: 1
            rules:
              - name: used
                repositories: ["**"]
                keep: [{pulledWithin: 4w}]
            safety: {maxDeletePercent: 100}
            """.write(to: policy, atomically: true, encoding: .utf8)

        // No log imported: no evidence is not evidence of no use.
        let refused = try Self.regkeeper(["retain", "--policy", policy.path] + store)
        #expect(refused.status == 3, "\(refused.stderr)")
        #expect(refused.stderr.contains("regkeeper: refusing to apply a policy with pulledWithin: no registry log has been imported"))
        let dryRun = try Self.regkeeper(["retain", "--dry-run", "--policy", policy.path] + store)
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("pull history too short"))
        #expect(dryRun.stdout.contains("no pull history imported"))

        // A month-old rotated log, compressed, and today's log on standard input.
        let now = Date()
        let older = root.appendingPathComponent("access.log.1")
        try (Self.accessLine(now.addingTimeInterval(-40 * 86_400), "GET", "/v2/", 200)
            + Self.accessLine(now.addingTimeInterval(-39 * 86_400), "GET", "/v2/app/manifests/v3", 200)).write(to: older, atomically: true, encoding: .utf8)
        let gzip = try GCCommandTests.run("/usr/bin/gzip", [older.path])
        #expect(gzip.status == 0)
        let current = root.appendingPathComponent("access.log")
        try (Self.accessLine(now.addingTimeInterval(-2 * 86_400), "GET", "/v2/app/manifests/v1", 200)
            + Self.accessLine(now.addingTimeInterval(-2 * 86_400), "HEAD", "/v2/app/manifests/v4", 200)
            + "not a log line\n"
            + Self.accessLine(now.addingTimeInterval(-86_400), "GET", "/v2/app/manifests/\(pinned!)", 200)
            + Self.accessLine(now.addingTimeInterval(-3600), "GET", "/v2/app/manifests/v4", 404)).write(to: current, atomically: true, encoding: .utf8)

        let imported = try Self.regkeeper(["pulls", "import", older.path + ".gz"] + store)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("access.log.1.gz: lines 1–2, 2 entries, 1 pulls"), "\(imported.stdout)")
        let binary = GCCommandTests.productsDirectory.appendingPathComponent("regkeeper").path
        let piped = try GCCommandTests.run("/bin/sh", ["-c", "\"$0\" pulls import - --root \"$1\" < \"$2\"", binary, root.path, current.path])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.contains("standard input: lines 1–5, 4 entries, 2 pulls"), "\(piped.stdout)")
        #expect(piped.stdout.contains("standard input: 1 malformed line(s) skipped: line 3"))
        let again = try GCCommandTests.run("/bin/sh", ["-c", "\"$0\" pulls import - --json --root \"$1\" < \"$2\"", binary, root.path, current.path])
        let json = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any]
        let logs = json?["logs"] as? [[String: Any]]
        #expect(logs?.first?["pulls"] as? Int == 0, "the same log again reads nothing new: \(again.stdout)")

        let report = try Self.regkeeper(["report"] + store)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.contains("app: 1 of 4 tags: v4"), "\(report.stdout)")
        #expect(report.stdout.contains("no log imported for ") && report.stdout.contains("pulls then are unknown"), "\(report.stdout)")
        let reportJSON = try Self.regkeeper(["report", "--json"] + store)
        let unpulled = (try JSONSerialization.jsonObject(with: Data(reportJSON.stdout.utf8)) as? [String: Any])?["unpulled"] as? [String: Any]
        #expect(((unpulled?["repositories"] as? [[String: Any]])?.first?["unpulled"] as? [String]) == ["v4"])

        // The log between the two was never imported: a tag pulled only then would read as
        // unused, so retain refuses, naming the stretch; imported after all, it closes it.
        let gapped = try Self.regkeeper(["retain", "--policy", policy.path] + store)
        #expect(gapped.status == 3, "\(gapped.stderr)")
        #expect(gapped.stderr.contains("no imported log covers") && gapped.stderr.contains("(37d), inside pulledWithin 4w"), "\(gapped.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(Layout.tagsDirectory("app").description).path).count == 4)
        let between = root.appendingPathComponent("access.log.1-between")
        try (Self.accessLine(now.addingTimeInterval(-39 * 86_400 + 3600), "GET", "/v2/", 200)
            + Self.accessLine(now.addingTimeInterval(-2 * 86_400 - 3600), "GET", "/v2/", 200)).write(to: between, atomically: true, encoding: .utf8)
        #expect(try Self.regkeeper(["pulls", "import", between.path] + store).status == 0)

        // v3's pull is 39 days old, outside 4w; v4 was only HEADed and missed.
        let plan = try Self.regkeeper(["retain", "--dry-run", "--policy", policy.path] + store)
        #expect(plan.stdout.contains("last pulled 39d ago, not within 4w"), "\(plan.stdout)")
        #expect(plan.stdout.contains("pulled by digest 1d ago"))
        let applied = try Self.regkeeper(["retain", "--policy", policy.path] + store)
        #expect(applied.status == 0, "\(applied.stderr)")
        let tags = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(Layout.tagsDirectory("app").description).path)
        #expect(Set(tags) == ["v1", "v2"])
    }

    @Test func unreadableInputIsOneLine() throws {
        let root = try GCCommandTests.store { _ in }
        defer { try? FileManager.default.removeItem(at: root) }
        let missing = try Self.regkeeper(["pulls", "import", "/nonexistent/access.log", "--root", root.path])
        #expect(missing.status == 1)
        #expect(missing.stderr == "regkeeper: cannot open /nonexistent/access.log: No such file or directory\n")
        let twice = try Self.regkeeper(["pulls", "import", "-", "-", "--root", root.path])
        #expect(twice.status == 64)
    }
}
