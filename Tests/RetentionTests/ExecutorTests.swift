import Foundation
import RegistryModel
import RegistryStore
@testable import Retention
import StateDatabase
import StoreTestSupport
import Synchronization
import Testing

/// Applying plans on the in-memory store: what goes, what is refused, what is recorded.
@Suite struct ExecutorTests {
    let policy = onlyRule(keep: "- newest: 2", untagged: "{delete: true, olderThan: 7d}")

    /// `app` has four tags, the oldest two 20+ days old; `lib` has three, the oldest goes.
    func fixture() throws -> (RetentionFixture, [Digest]) {
        let store = RetentionFixture()
        let digests = try [("t1", 1.0), ("t2", 2), ("t3", 20), ("t4", 21)].map { try store.push("app", Tag($0.0)!, days: $0.1) }
        try store.push("lib", "a", days: 30)
        try store.push("lib", "b", days: 31)
        try store.push("lib", "c", days: 32)
        return (store, digests)
    }

    @Test func applyingRemovesTagDirectoriesAndRevisionLinksAndRecordsThem() async throws {
        let (store, digests) = try fixture()
        let plan = try await store.plan(policy)
        let recorded = Mutex<[DeletionRecord]>([])
        let result = try await RetentionExecutor(storage: store.storage).execute(plan, force: false) { records in
            recorded.withLock { $0 += records }
        }
        #expect(result.refused.isEmpty && result.failures.isEmpty)
        #expect(store.tags("app") == ["t1", "t2"])
        #expect(store.liveRevisions("app") == Set(digests.prefix(2)))
        #expect(try store.storage.status(Layout.tagDirectory("app", "t3")) == nil)
        // The registry's own manifest delete leaves the revision directory without its link.
        #expect(try store.storage.status(Layout.revisionDirectory("app", digests[2])) != nil)
        #expect(try store.storage.status(Layout.blobData(digests[2])) != nil, "blobs are gc's business")
        let records = recorded.withLock { $0 }
        #expect(records.filter { $0.kind == .tag }.map { "\($0.repository!):\($0.tag!)" }.sorted() == ["app:t3", "app:t4", "lib:c"])
        #expect(records.first { $0.tag == "t3" }?.reason.hasPrefix("only/no selector kept it: keep[1]: newest #3 of 4") == true)
        #expect(records.first { $0.tag == "t3" }?.digest == digests[2].description)
        #expect(Set(records.filter { $0.kind == .revisionLink && $0.repository == "app" }.compactMap(\.digest)) == Set(digests.suffix(2).map(\.description)))
        #expect(try await store.plan(policy).isEmpty, "a second plan finds nothing more to do")
    }

    @Test func aSavedPlanIsRefusedForARepositoryWhoseTagMoved() async throws {
        let (store, digests) = try fixture()
        let saved = try await store.plan(policy).encoded()
        // After review, someone re-points t3 (planned for deletion) at the newest image.
        try store.tag("t3", in: "app", to: digests[0], days: 0)
        let plan = try RetentionPlan.decode(saved, file: "plan.json")
        let result = try await RetentionExecutor(storage: store.storage).execute(plan, force: false)
        #expect(result.refused.map(\.repository) == ["app"])
        #expect(result.refused.first?.refused == "tag t3 moved from \(digests[2]) to \(digests[0]) since the plan was made")
        #expect(store.tags("app") == ["t1", "t2", "t3", "t4"], "nothing in the refused repository was touched")
        #expect(store.liveRevisions("app") == Set(digests))
        #expect(store.tags("lib") == ["a", "b"], "other repositories are applied")
    }

    @Test func aKeptTagMovedOntoAManifestThePlanDeletesIsRefused() async throws {
        let (store, digests) = try fixture()
        let plan = try await store.plan(policy)
        try store.tag("t1", in: "app", to: digests[3], days: 0)
        let result = try await RetentionExecutor(storage: store.storage).execute(plan, force: false)
        #expect(result.refused.first?.refused == "tag t1 now points to \(digests[3]), which the plan deletes")
        #expect(store.liveRevisions("app").contains(digests[3]))
    }

    @Test func aNewIndexOverAPlannedDeletionIsRefused() async throws {
        let (store, digests) = try fixture()
        let plan = try await store.plan(policy)
        try store.builder.index("app", tag: "multi", children: [digests[3]], modified: store.now)
        let result = try await RetentionExecutor(storage: store.storage).execute(plan, force: false)
        #expect(result.refused.first?.refused?.contains("which needs \(digests[3]), a manifest the plan deletes") == true)
    }

    @Test func aTagAlreadyGoneIsSkippedNotRefused() async throws {
        let (store, _) = try fixture()
        let plan = try await store.plan(policy)
        try store.storage.remove(Layout.tagDirectory("app", "t4"))
        let result = try await RetentionExecutor(storage: store.storage).execute(plan, force: false)
        #expect(result.refused.isEmpty)
        #expect(result.repositories.first { $0.repository == "app" }?.skipped == ["tag t4 is already gone"])
        #expect(store.tags("app") == ["t1", "t2"])
    }

    @Test func circuitBreakerStopsBeforeAnythingIsTouchedUnlessForced() async throws {
        let store = RetentionFixture()
        for index in 0..<10 { try store.push("app", Tag("t\(index)")!, days: Double(index)) }
        let plan = try await store.plan(onlyRule(keep: "- newest: 2", extra: "").replacingOccurrences(of: "maxDeletePercent: 100", with: "maxDeletePercent: 50"))
        #expect(plan.tripped.map(\.repository) == ["app"])
        await #expect {
            try await RetentionExecutor(storage: store.storage).execute(plan, force: false)
        } throws: { error in
            guard case RetentionError.circuitBreaker(50, let repositories) = error else { return false }
            return repositories == ["app: 8 of 10 tags (80%)"]
                && error.localizedDescription.isEmpty == false
                && "\(error)".contains("raise safety.maxDeletePercent in the policy or pass --force")
        }
        #expect(store.tags("app").count == 10)
        let forced = try await RetentionExecutor(storage: store.storage).execute(plan, force: true)
        #expect(forced.forced && forced.tagsDeleted == 8)
        #expect(store.tags("app") == ["t0", "t1"])
    }

    @Test func deletionsLandInTheRunHistory() async throws {
        let (store, _) = try fixture()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("retention-history-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = try StateStore.open(at: directory.appendingPathComponent("state.db"))
        let run = try await state.beginRun(command: "retain", arguments: "regkeeper retain --policy p.yaml")
        let result = try await RetentionExecutor(storage: store.storage).execute(try await store.plan(policy), force: false) { records in
            try await state.recordDeletions(records, run: run)
        }
        try await state.finishRun(run, outcome: .success, counts: ["tags": Int64(result.tagsDeleted)], bytes: 0)
        let detail = try await state.run(run)
        #expect(detail.summary.counts == ["tags": 3])
        #expect(detail.deletions.filter { $0.kind == .tag }.map(\.tag) == ["t3", "t4", "c"])
        #expect(detail.deletions.allSatisfy { $0.reason.hasPrefix("only/") })
    }
}
