import Foundation
import RegistryModel
import RegistryStore
@testable import Retention
import StoreTestSupport
import Testing

/// Each selector, how selectors combine, and how rules pick repositories, on hand-written stores.
@Suite struct PlannerTests {
    @Test func tagsSelectorKeepsAnchoredGlobsAndRegexes() async throws {
        let store = RetentionFixture()
        for (index, tag) in ["latest", "stable", "v1", "v22", "v1.2", "av1", "feature-x", "1234"].enumerated() {
            try store.push("app", Tag(tag)!, days: Double(index))
        }
        let plan = try await store.plan(onlyRule(keep: #"- tags: ["latest", "re:v[0-9]+", "feature-??"]"#))
        #expect(plan.kept("app") == ["latest", "v1", "v22"])
        #expect(plan.deleted("app") == ["stable", "v1.2", "av1", "feature-x", "1234"])
        #expect(plan.decision("app", "v22")?.decidedBy == "keep[1]")
        #expect(plan.decision("app", "av1")?.reason == "no selector kept it: keep[1]: does not match latest|re:v[0-9]+|feature-??")
    }

    @Test func newestRanksByPushTimeAmongMatchingTags() async throws {
        let store = RetentionFixture()
        for (tag, days) in [("a", 5.0), ("b", 1), ("c", 3), ("d", 2), ("other", 0)] { try store.push("app", Tag(tag)!, days: days) }
        let plan = try await store.plan(onlyRule(keep: #"- {tags: ["?"], newest: 2}"#))
        #expect(plan.kept("app") == ["b", "d"])
        #expect(plan.decision("app", "c")?.reason.contains("newest #3 of 4, beyond 2") == true)
        #expect(plan.decision("app", "other")?.action == .delete, "outside the selector's tags, so outside its ranking")

        let all = try await store.plan(onlyRule(keep: "- newest: 2"))
        #expect(all.kept("app") == ["other", "b"], "without tags, every tag is ranked")
    }

    @Test func fieldsOfOneSelectorAreANDed() async throws {
        let store = RetentionFixture()
        for (tag, days) in [("v1", 1.0), ("v2", 40), ("v3", 50), ("v4", 2), ("x1", 0)] { try store.push("app", Tag(tag)!, days: days) }
        let plan = try await store.plan(onlyRule(keep: """
            - tags: ["v*"]
              newest: 3
              pushedWithin: 30d
            """))
        // Newest 3 of v*: v1, v4, v2; of those only v1 and v4 are within 30 days.
        #expect(plan.kept("app") == ["v1", "v4"])
        #expect(plan.decision("app", "v2")?.reason.contains("pushed 40d ago, not within 4w2d") == true)
        #expect(plan.decision("app", "v3")?.reason.contains("newest #4 of 4, beyond 3") == true)
    }

    @Test func selectorsAreORedAndTheFirstThatKeepsIsCited() async throws {
        let store = RetentionFixture()
        for (tag, days) in [("latest", 100.0), ("fresh", 1), ("both", 2), ("old", 90)] { try store.push("app", Tag(tag)!, days: days) }
        let plan = try await store.plan(onlyRule(keep: """
            - tags: ["latest", "both"]
            - name: recent
              pushedWithin: 14d
            """))
        #expect(plan.kept("app") == ["latest", "fresh", "both"])
        #expect(plan.decision("app", "both")?.decidedBy == "keep[1]")
        #expect(plan.decision("app", "fresh")?.decidedBy == "recent")
        #expect(plan.decision("app", "fresh")?.reason == "pushedWithin 2w: pushed 1d ago")
        #expect(plan.decision("app", "old")?.reason == "no selector kept it: keep[1]: does not match latest|both; recent: pushed 90d ago, not within 2w")
    }

    @Test func firstMatchingRuleGovernsExcludesFallThroughAndTheRestIsLeftAlone() async throws {
        let store = RetentionFixture()
        for repository: RepositoryName in ["team-a/api", "team-a/legacy/old", "library/nginx", "other/deep/thing"] {
            for (index, tag) in ["t1", "t2", "t3"].enumerated() { try store.push(repository, Tag(tag)!, days: Double(index)) }
        }
        let plan = try await store.plan("""
            version: 1
            rules:
              - name: services
                repositories: ["team-a/**"]
                exclude: ["team-a/legacy/**"]
                keep: [{newest: 1}]
              - name: fallback
                repositories: ["team-a/*/*", "library/*"]
                keep: [{newest: 2}]
              - name: never-reached
                repositories: ["team-a/api"]
                keep: []
            safety: {maxDeletePercent: 100}
            """)
        #expect(plan.repository("team-a/api")?.rule == "services")
        #expect(plan.kept("team-a/api") == ["t1"])
        #expect(plan.repository("team-a/legacy/old")?.rule == "fallback")
        #expect(plan.kept("team-a/legacy/old") == ["t1", "t2"])
        #expect(plan.repository("library/nginx")?.rule == "fallback")
        #expect(plan.repository("other/deep/thing") == nil)
        #expect(plan.ungoverned == 1)
    }

    @Test func semverRanksPerGroupWithPreReleasesBelowTheirReleaseAndSkipsJunk() async throws {
        let store = RetentionFixture()
        let tags = ["v1.2.0", "v1.2.1", "1.2.2-rc.1", "1.2.2", "v1.3.0-alpha.1", "v1.3.0-beta", "v1.3.0", "2.0.0",
                    "latest", "1.2", "v01.2.3", "1.2.3.4", "1.4.0-"]
        // Push times run against versions, so only semver order can explain the result.
        for (index, tag) in tags.enumerated() { try store.push("app", Tag(tag)!, days: Double(index)) }
        let plan = try await store.plan(onlyRule(keep: "- semver: {newest: 2, per: minor}"))
        #expect(plan.kept("app") == ["1.2.2", "1.2.2-rc.1", "v1.3.0", "v1.3.0-beta", "2.0.0"])
        for junk in ["latest", "1.2", "v01.2.3", "1.2.3.4", "1.4.0-"] {
            #expect(plan.decision("app", junk)?.reason == "no selector kept it: keep[1]: not a semantic version", "\(junk)")
        }
        #expect(plan.decision("app", "v1.2.1")?.reason.contains("version 1.2.1 #3 of 4 in 1.2.x, beyond 2") == true)

        let releases = try await store.plan(onlyRule(keep: "- semver: {newest: 2, per: minor, prereleases: false}"))
        #expect(releases.kept("app") == ["1.2.2", "v1.2.1", "v1.3.0", "2.0.0"])
        #expect(releases.decision("app", "1.2.2-rc.1")?.reason.contains("pre-release, excluded") == true)

        let perMajor = try await store.plan(onlyRule(keep: "- semver: {newest: 1, per: major}"))
        #expect(perMajor.kept("app") == ["v1.3.0", "2.0.0"])
        let overall = try await store.plan(onlyRule(keep: "- {tags: [\"v*\"], semver: {newest: 1}}"))
        #expect(overall.kept("app") == ["v1.3.0"], "ranked only among tags matching v*")
    }

    @Test func protectionOverridesEveryRule() async throws {
        let store = RetentionFixture()
        try store.push("team-a/api", "prod-2024", days: 300)
        try store.push("team-a/api", "v1.4.2", days: 200)
        let running = try store.push("team-a/api", "v1.0.0", days: 250)
        try store.push("team-a/api", "v0.9.0", days: 260)
        let untaggedRunning = try store.push("team-a/api", nil, days: 100, seed: "untagged-running")
        try store.push("team-a/api", "v0.1.0", days: 400, seed: "other")
        let inUse = """
            # what the cluster runs
            registry.example.com:5000/team-a/api:v1.4.2
            team-a/api@\(running)

            localhost/team-a/api:nightly@\(untaggedRunning)
            """
        let plan = try await store.plan(onlyRule(keep: "[]", untagged: "{delete: true, olderThan: 7d}", extra: """
            protect:
              tags: ["prod-*"]
              inUse: in-use.txt
            """), inUse: inUse)
        #expect(plan.kept("team-a/api") == ["prod-2024", "v1.4.2", "v1.0.0"])
        #expect(plan.decision("team-a/api", "prod-2024")?.decidedBy == "protect")
        #expect(plan.decision("team-a/api", "v1.4.2")?.reason == "in use (in-use.txt:2)")
        #expect(plan.decision("team-a/api", "v1.0.0")?.reason == "points to \(running), in use (in-use.txt:3)")
        #expect(plan.deleted("team-a/api") == ["v0.9.0", "v0.1.0"])
        #expect(plan.manifest("team-a/api", untaggedRunning)?.action == .keep)
        #expect(plan.manifest("team-a/api", untaggedRunning)?.reason == "in use (in-use.txt:5)")
    }

    @Test func untaggedManifestsGoByAgeAndNeverWhileSomethingKeptNeedsThem() async throws {
        let store = RetentionFixture()
        let b = store.builder
        let oldUntagged = try store.push("app", nil, days: 30, seed: "old-untagged")
        let youngUntagged = try store.push("app", nil, days: 2, seed: "young-untagged")
        let dropped = try store.push("app", "dropped", days: 20)
        let shared = try store.push("app", "keep-me", days: 20, seed: "shared")
        try store.tag("also-shared", in: "app", to: shared, days: 20)
        // A tagged multi-arch index whose children are old untagged revisions.
        let children = try ["amd64", "arm64"].map { try store.push("app", nil, days: 60, seed: $0) }
        let index = try b.index("app", tag: "multi", children: children, modified: store.daysAgo(60))
        // Referrers: of a kept image (old: stays), of a deleted one (young: goes with it).
        let keptSignature = try store.push("app", nil, days: 50, seed: "sig-kept", subject: index)
        let orphanSignature = try store.push("app", nil, days: 1, seed: "sig-orphan", subject: dropped)
        // cosign-style signature tags, of a kept and of a deleted digest.
        let cosignKept = try store.push("app", Tag("sha256-\(index.hex).sig")!, days: 59, seed: "cosign-kept")
        let cosignDropped = try store.push("app", Tag("sha256-\(dropped.hex).sig")!, days: 19, seed: "cosign-dropped")

        let plan = try await store.plan(onlyRule(keep: #"- tags: ["keep-me", "multi"]"#, untagged: "{delete: true, olderThan: 7d}"))
        #expect(plan.kept("app") == ["keep-me", "multi", "sha256-\(index.hex).sig"])
        #expect(plan.deleted("app") == ["dropped", "also-shared", "sha256-\(dropped.hex).sig"])
        #expect(plan.decision("app", "sha256-\(dropped.hex).sig")?.reason == "signature or attestation of \(dropped), which this plan deletes")
        #expect(plan.manifestsDeleted("app") == [oldUntagged, dropped, orphanSignature, cosignDropped])
        #expect(plan.manifest("app", dropped)?.becomesUntagged == true)
        #expect(plan.manifest("app", oldUntagged)?.becomesUntagged == false)
        #expect(plan.manifest("app", orphanSignature)?.reason == "referrer of \(dropped), which this plan deletes")
        #expect(plan.manifest("app", youngUntagged)?.action == .keep)
        #expect(plan.manifest("app", youngUntagged)?.reason.hasPrefix("pushed 2d ago, within untagged.olderThan 1w") == true)
        #expect(plan.manifest("app", shared) == nil, "a kept tag still points to it")
        #expect(plan.manifest("app", children[0])?.reason == "child of kept index \(index)")
        #expect(plan.manifest("app", keptSignature)?.reason == "referrer of kept \(index)")
        #expect(plan.manifest("app", cosignKept) == nil, "its tag is kept")

        let withoutUntagged = try await store.plan(onlyRule(keep: #"- tags: ["keep-me", "multi"]"#))
        #expect(withoutUntagged.manifestsDeleted("app").isEmpty)
        #expect(withoutUntagged.manifest("app", dropped)?.reason == "rule only has no untagged section")
    }

    @Test func circuitBreakerCountsEachRepositorysShareOfTags() async throws {
        let store = RetentionFixture()
        for index in 0..<4 { try store.push("big-loss", Tag("t\(index)")!, days: Double(index)) }
        for index in 0..<4 { try store.push("half-loss", Tag("t\(index)")!, days: Double(index)) }
        let plan = try await store.plan("""
            version: 1
            rules:
              - {name: big, repositories: [big-loss], keep: [{newest: 1}]}
              - {name: half, repositories: [half-loss], keep: [{newest: 2}]}
            """)
        #expect(plan.maxDeletePercent == 50, "the default when the policy has no safety section")
        #expect(plan.tripped.map(\.repository) == ["big-loss"])
        #expect(plan.repository("half-loss")?.breaker == BreakerVerdict(tags: 4, deleted: 2, tripped: false))
    }

    @Test func unreadableCurrentLinkKeepsTheTagAndItsHistory() async throws {
        let store = RetentionFixture()
        let first = try store.push("app", "broken", days: 40, seed: "first")
        let second = try store.push("app", nil, days: 30, seed: "second")
        try store.tag("broken", in: "app", to: second, days: 30)
        try store.storage.writeAtomically(Layout.tagCurrentLink("app", "broken"), Data(), modified: store.daysAgo(30))
        let plan = try await store.plan(onlyRule(keep: "[]", untagged: "{delete: true, olderThan: 1d}"))
        #expect(plan.decision("app", "broken")?.decidedBy == "fail-closed")
        #expect(plan.manifestsDeleted("app").isEmpty)
        #expect(plan.manifest("app", first)?.reason.contains("current link is unreadable") == true)
    }

    @Test func plansSurviveASaveAndLoad() async throws {
        let store = RetentionFixture()
        try store.push("app", "a", days: 1)
        try store.push("app", "b", days: 9)
        let plan = try await store.plan(onlyRule(keep: "- newest: 1", untagged: "{delete: true, olderThan: 7d}"))
        let decoded = try RetentionPlan.decode(try plan.encoded(), file: "plan.json")
        #expect(decoded == plan)
        #expect(throws: RetentionError.self) { try RetentionPlan.decode(Data(#"{"format": 99}"#.utf8), file: "old.json") }
    }
}
