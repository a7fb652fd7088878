import Foundation
import RegistryModel
import RegistryStore
@testable import Retention
import StateDatabase
import StoreTestSupport
import Testing

/// `pulledWithin`: what imported pulls keep, how plans explain it, and the refusal when the
/// imported logs do not reach back over the window.
@Suite struct PulledWithinTests {
    let store = RetentionFixture()

    func evidence(_ pulls: [(String, String?, String, Double)], since days: Double, until: Double = 0, imported: Double = 0) -> PullEvidence {
        PullEvidence(
            pulls: pulls.map { repository, tag, digest, days in
                StoredPull(repository: repository, digest: digest, tag: tag, lastPulled: store.daysAgo(days), exact: true)
            },
            coverage: PullCoverage(since: store.daysAgo(days), until: store.daysAgo(until), lastImport: store.daysAgo(imported)))
    }

    func plan(_ yaml: String, _ pulls: PullEvidence) async throws -> RetentionPlan {
        let policy = try store.policy(yaml)
        let collected = try await CandidateCollector(storage: store.storage, jobs: 2).collect(for: policy)
        return RetentionPlanner.plan(policy: policy, repositories: collected.repositories, now: store.now, pulls: pulls)
    }

    @Test func pulledTagsStayAndTheOthersGoWithReasons() async throws {
        try store.push("app", "used", days: 100)
        let pinned = try store.push("app", "pinned", days: 100)
        try store.push("app", "stale", days: 100)
        try store.push("app", "idle", days: 100)
        let pulls = evidence([
            ("app", "used", "sha256:" + String(repeating: "0", count: 64), 3),  // by tag, whatever it pointed to then
            ("app", nil, pinned.description, 1),  // by the digest the tag points to
            ("app", "stale", "sha256:" + String(repeating: "1", count: 64), 45),
        ], since: 60)
        let plan = try await plan(onlyRule(keep: "- pulledWithin: 4w"), pulls)
        #expect(plan.kept("app") == ["used", "pinned"])
        #expect(plan.deleted("app") == ["stale", "idle"])
        #expect(plan.decision("app", "used")?.reason == "pulledWithin 4w: pulled 3d ago")
        #expect(plan.decision("app", "pinned")?.reason == "pulledWithin 4w: pulled by digest 1d ago")
        #expect(plan.decision("app", "stale")?.reason == "no selector kept it: keep[1]: last pulled 45d ago, not within 4w")
        let since = PullEvidence.day(store.daysAgo(60))
        #expect(plan.decision("app", "idle")?.reason == "no selector kept it: keep[1]: never pulled since \(since)")
        #expect(plan.pullHistory?.shortfall == nil)
        #expect(plan.pullHistory?.summary.contains("imported logs from \(since)") == true)
    }

    @Test func combinesWithTheOtherSelectors() async throws {
        try store.push("app", "v1", days: 100)
        try store.push("app", "v2", days: 100)
        try store.push("app", "new", days: 1)
        try store.push("app", "x1", days: 100)
        let pulls = evidence([("app", "v1", "sha256:" + String(repeating: "0", count: 64), 2),
                              ("app", "x1", "sha256:" + String(repeating: "0", count: 64), 2)], since: 40)
        // ANDed within a selector, ORed across selectors.
        let plan = try await plan(onlyRule(keep: """
            - {tags: ["v*"], pulledWithin: 7d}
            - pushedWithin: 7d
            """), pulls)
        #expect(plan.kept("app") == ["v1", "new"])
        #expect(plan.deleted("app") == ["v2", "x1"])
        #expect(plan.decision("app", "v1")?.reason == "tags v*, pulledWithin 1w: matches v*, pulled 2d ago")
    }

    @Test func noEvidenceIsNoReasonToDelete() async throws {
        try store.push("app", "v1", days: 100)
        let yaml = onlyRule(keep: "- pulledWithin: 4w")
        let none = try await plan(yaml, .none)
        #expect(none.pullHistory?.shortfall?.contains("no registry log has been imported") == true)
        #expect(none.decision("app", "v1")?.reason == "no selector kept it: keep[1]: no pull history imported")
        let short = try await plan(yaml, evidence([], since: 12))
        #expect(short.pullHistory?.shortfall?.contains("reach back to \(PullEvidence.day(store.daysAgo(12))) (12d), not over pulledWithin 4w") == true)
        let stale = try await plan(yaml, evidence([], since: 90, until: 45))
        #expect(stale.pullHistory?.shortfall?.contains("newest imported log entry is from") == true)
        let staleImport = try await plan(yaml, evidence([], since: 90, until: 3, imported: 3))
        #expect(staleImport.pullHistory?.shortfall?.contains("the last import was 3d ago, so pulls since are unknown") == true)
        let enough = try await plan(yaml, evidence([], since: 31, until: 0.5, imported: 0.5))
        #expect(enough.pullHistory?.shortfall == nil)
        let withoutPulls = try await plan(onlyRule(keep: "- newest: 1"), .none)
        #expect(withoutPulls.pullHistory == nil, "a policy that does not ask about pulls needs no history")

        // The executor refuses a plan that would read silence as disuse, and changes nothing.
        await #expect(throws: RetentionError.self) { try await RetentionExecutor(storage: store.storage).execute(none, force: false) }
        #expect(store.tags("app") == ["v1"])
        let forced = try await RetentionExecutor(storage: store.storage).execute(none, force: true)
        #expect(forced.forced && forced.tagsDeleted == 1)
    }

    /// A log that was never imported between two that were (a rotated file passed over): a
    /// tag pulled only then would read as unused. A gap longer than the tolerance inside the
    /// window refuses, naming it; one before the window, or short enough for a quiet
    /// registry at rotation time, does not.
    @Test func aMissingLogInsideTheWindowRefuses() async throws {
        try store.push("app", "v1", days: 100)
        let yaml = onlyRule(keep: "- pulledWithin: 4w")
        func withGap(from start: Double, to end: Double) -> PullEvidence {
            var pulls = evidence([], since: 60, until: 0.5, imported: 0.5)
            pulls.coverage?.gaps = [DateInterval(start: store.daysAgo(start), end: store.daysAgo(end))]
            return pulls
        }
        let missingDay = try await plan(yaml, withGap(from: 10, to: 9))
        let shortfall = try #require(missingDay.pullHistory?.shortfall)
        #expect(shortfall.contains("no imported log covers \(PullEvidence.moment(store.daysAgo(10))) to \(PullEvidence.moment(store.daysAgo(9))) (1d), inside pulledWithin 4w"), "\(shortfall)")
        #expect(shortfall.contains("--force"))
        await #expect(throws: RetentionError.self) { try await RetentionExecutor(storage: store.storage).execute(missingDay, force: false) }
        #expect(store.tags("app") == ["v1"])

        let beforeTheWindow = try await plan(yaml, withGap(from: 50, to: 40))
        #expect(beforeTheWindow.pullHistory?.shortfall == nil)
        let quietNight = try await plan(yaml, withGap(from: 10, to: 10 - 8.0 / 24))
        #expect(quietNight.pullHistory?.shortfall == nil)
    }

    @Test func policyLanguage() throws {
        let policy = try store.policy(onlyRule(keep: "- {name: used, pulledWithin: 2w}\n- pulledWithin: 90d"))
        #expect(policy.rules[0].keep[0].pulledWithin == TimeSpan(seconds: 14 * 86_400))
        #expect(policy.longestPulledWithin == TimeSpan(seconds: 90 * 86_400))
        #expect(policy.rules[0].keep[0].summary == "pulledWithin 2w")
        let error = #expect(throws: PolicyErrors.self) { try store.policy(onlyRule(keep: "- pulledWithin: lately")) }
        #expect(error?.description.contains("keep[1].pulledWithin: 'lately' is not a duration") == true)
    }
}
