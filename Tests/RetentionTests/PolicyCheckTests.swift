import Foundation
@testable import Retention
import Testing

/// Every kind of invalid policy names its file, its line and a reason.
@Suite struct PolicyCheckTests {
    func errors(_ yaml: String, inUse: String? = nil) -> [PolicyError] {
        do {
            _ = try RetentionFixture().policy(yaml, inUse: inUse)
            Issue.record("accepted:\n\(yaml)")
            return []
        } catch {
            return (error as? PolicyErrors)?.errors ?? []
        }
    }

    let valid = """
        version: 1
        rules:
          - name: services
            repositories: ["team-a/**"]
            keep:
              - tags: ["v*"]
                newest: 5
        """

    @Test func theValidBaseIsAccepted() throws {
        let policy = try RetentionFixture().policy(valid)
        #expect(policy.rules.map(\.name) == ["services"])
        #expect(policy.safety.maxDeletePercent == 50)
    }

    @Test(arguments: [
        ("        pushedwithin: 90d\n", 8, "unknown key 'pushedwithin' in services: keep[1] (allowed: name, tags, newest, pushedWithin, pulledWithin, semver)"),
        ("        pushedWithin: 3 months\n", 8, "services: keep[1].pushedWithin: '3 months' is not a duration like 30s, 15m, 12h, 7d or 4w"),
        ("      - tags: [\"v**\"]\n", 8, "tags have no path segments"),
        ("      - tags: [\"re:v[0-9\"]\n", 8, "'v[0-9' is not a valid regular expression"),
        ("      - newest: 0\n", 8, "services: keep[2].newest must be at least 1, not 0"),
        ("      - newest: many\n", 8, "services: keep[2].newest must be a whole number, not 'many'"),
        ("      - semver: {per: minr}\n", 8, "'minr' is not one of major, minor, patch, none"),
        ("      - {}\n", 8, "services: keep[2] sets no field"),
        ("    untagged: {delete: true, olderThan: 10m}\n", 8, "below 1h"),
        ("    untagged: {olderThan: 2d}\n", 8, "untagged needs 'delete: true' or 'delete: false'"),
        ("    exclude: [\"Team-A/**\"]\n", 8, "repository names are lowercase"),
        ("  - name: services\n    repositories: [\"**\"]\n    keep: []\n", 8, "rule name 'services' is already used by the rule on line 3"),
        ("safety: {maxDeletePercent: 150}\n", 8, "maxDeletePercent must be between 0 and 100, not 150"),
        ("protect: {tag: [x]}\n", 8, "unknown key 'tag' in protect (allowed: tags, inUse)"),
        ("colour: blue\n", 8, "unknown key 'colour' in the policy (allowed: version, rules, protect, safety)"),
        ("protect: {inUse: missing.txt}\n", 8, "protect.inUse: cannot read /policies/missing.txt"),
    ])
    func invalidPoliciesNameFileLineAndReason(appended: String, line: Int, reason: String) {
        let found = errors(valid + "\n" + appended)
        #expect(found.count == 1, "\(found)")
        guard let error = found.first else { return }
        #expect(error.file == "/policies/test.yaml")
        #expect(error.line == line, "\(error)")
        #expect(error.reason.contains(reason), "\(error)")
        #expect(error.description.hasPrefix("/policies/test.yaml:\(line): "))
    }

    @Test func yamlSyntaxErrorsKeepTheParsersLine() {
        let found = errors("version: 1\nrules:\n  - name: [unclosed\n")
        #expect(found.first?.line == 4 || found.first?.line == 3, "\(found)")
        #expect(found.first?.reason.hasPrefix("not valid YAML") == true)
    }

    @Test func missingPiecesAndEveryProblemAtOnce() {
        let found = errors("""
            rules:
              - repositories: ["a/**"]
                keep:
                  - tags: ["x**"]
                  - pushedWithin: soon
            """)
        #expect(found.map(\.line) == [1, 2, 4, 5], "\(found)")
        #expect(found[0].reason == "missing 'version: 1'")
        #expect(found[1].reason.contains("a rule needs a 'name'"))
    }

    @Test func badInUseLinesNameTheInUseFileAndLine() {
        let found = errors(valid + "\nprotect: {inUse: in-use.txt}\n", inUse: "team-a/api:v1\n\nteam-a/api\nBAD NAME:1\nx@sha256:123\n")
        #expect(found.map(\.file) == Array(repeating: "/policies/in-use.txt", count: 3))
        #expect(found.map(\.line) == [3, 4, 5])
        #expect(found[0].reason.contains("names no tag and no digest"))
        #expect(found[2].reason.contains("is not a digest"))
    }

    @Test func emptyAndUnreadableFiles() {
        #expect(errors("").first?.reason.contains("the file is empty") == true)
        do {
            _ = try RetentionPolicy.load(file: "/nonexistent/policy.yaml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.errors.first?.description.hasPrefix("/nonexistent/policy.yaml: ") == true)
        }
    }

    /// Every policy shipped in policies/ passes the checker, with its in-use list.
    @Test func shippedPoliciesPassTheChecker() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("policies")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(Set(files).isSuperset(of: ["ci-cache.yaml", "default.yaml", "in-use.yaml", "semver-releases.yaml"]))
        for file in files {
            #expect(throws: Never.self, "\(file)") { try RetentionPolicy.load(file: directory.appendingPathComponent(file).path) }
        }
        let inUse = try RetentionPolicy.load(file: directory.appendingPathComponent("in-use.yaml").path)
        #expect(inUse.protection.inUse?.tags.isEmpty == false)
        #expect(inUse.protection.inUse?.digests.isEmpty == false)
    }
}
