import Foundation
import RegistryStore
import Retention
import StateDatabase

/// `retain` deciding: every governed repository's tags and manifests read (refusing while part
/// of the store cannot be), then the policy applied to them. Nothing is changed.
public struct PlanRetention: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    public var jobs: Int
    public var reporter: any ProgressReporter

    public init(storage: any StoreStorage, location: StoreLocation, jobs: Int, reporter: any ProgressReporter = SilentReporter()) {
        self.storage = storage
        self.location = location
        self.jobs = jobs
        self.reporter = reporter
    }

    /// The plan, and the layout findings met on the way (reported, never fatal).
    public func run(_ policy: RetentionPolicy, now: Date = Date()) async throws -> (plan: RetentionPlan, findings: [StoreFinding]) {
        let (collected, _) = try await reporter.phase("scan") {
            try await CandidateCollector(storage: storage, jobs: jobs, reporter: reporter).collect(for: policy)
        }
        let pulls = policy.longestPulledWithin == nil ? PullEvidence.none : try await pullEvidence()
        let plan = RetentionPlanner.plan(
            policy: policy, repositories: collected.repositories, ungoverned: collected.ungoverned, store: location.root, now: now,
            pulls: pulls)
        return (plan, collected.findings)
    }

    /// The pulls `pulls import` recorded; none when no state database exists yet (planning
    /// must not create one).
    private func pullEvidence() async throws -> PullEvidence {
        guard FileManager.default.fileExists(atPath: location.stateDatabasePath) else { return .none }
        let state = try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
        return PullEvidence(pulls: try await state.pulls(), coverage: try await state.pullCoverage())
    }
}
