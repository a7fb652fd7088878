import Foundation
import GarbageCollection
import RegistryModel
import RegistryStore
import Retention
import StateDatabase

/// `retain` applying a plan: the tag and manifest deletions, recorded as a run, then (when
/// asked) gc exactly as `regkeeper gc` runs it (`CollectGarbage`: its own recorded run, the
/// store's trash setting, the sweep that keeps pushes safe) to free the blobs. Composed here so
/// that neither library imports the other; plain gc (every remaining revision is a root)
/// frees exactly what retention unlinked.
public struct ApplyRetention: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    /// Apply even when the circuit breaker tripped.
    public var force: Bool
    /// gc options to run after applying, or nil for no gc.
    public var collect: GCOptions?
    /// Whether that gc trashes what it sweeps, and for how long (the store's settings).
    public var trash: (enabled: Bool, keepFor: TimeSpan) = (false, TimeSpan(seconds: 72 * 3600))
    /// The command line, for the run history.
    public var arguments: String
    public var metricsFile: String?
    public var reporter: any ProgressReporter

    public init(
        storage: any StoreStorage, location: StoreLocation, force: Bool, collect: GCOptions?, arguments: String,
        reporter: any ProgressReporter = SilentReporter()
    ) {
        self.storage = storage
        self.location = location
        self.force = force
        self.collect = collect
        self.arguments = arguments
        self.reporter = reporter
    }

    public struct Outcome: Sendable {
        public var run: RunID
        public var result: RetentionResult
        public var gc: GCResult?
        /// gc's own run in the history.
        public var gcRun: RunID?

        public var failures: [String] { result.failures + (gc?.failures.map(\.description) ?? []) }
    }

    /// Throws `RetentionError.circuitBreaker` (nothing touched) or `GCError` (retention
    /// applied, gc refused); the runs are recorded either way.
    public func run(_ plan: RetentionPlan) async throws -> Outcome {
        let started = Date()
        let state = try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
        let run = try await state.beginRun(command: "retain", arguments: arguments)
        var counts: [String: Int64] = [:]
        var bytes: Int64 = 0
        do {
            let result = try await RetentionExecutor(storage: storage, reporter: reporter).execute(plan, force: force) { records in
                try await state.recordDeletions(records, run: run)
            }
            counts = ["tags": Int64(result.tagsDeleted), "manifests": Int64(result.manifestsDeleted)]
            var outcome = Outcome(run: run, result: result, gc: nil)
            if let collect {
                var collection = CollectGarbage(
                    storage: storage, location: location, options: collect, dryRun: false, arguments: arguments, reporter: reporter)
                (collection.trash, collection.trashKeepFor) = trash
                guard case .swept(let swept, let gcRun) = try await collection.run() else { preconditionFailure("not a dry run") }
                counts["blobs"] = Int64(swept.applied.blobs.count)
                bytes = swept.applied.bytesFreed
                outcome.gc = swept
                outcome.gcRun = gcRun
            }
            let succeeded = result.refused.isEmpty && outcome.failures.isEmpty
            try await state.finishRun(run, outcome: succeeded ? .success : .failure, counts: counts, bytes: bytes)
            try writeMetrics(started: started, success: succeeded, counts: counts, bytes: bytes)
            return outcome
        } catch {
            // The history must not show a run that stopped halfway as unfinished forever.
            let outcome: RunOutcome = error is CancellationError ? .interrupted : .failure
            try? await state.finishRun(run, outcome: outcome, counts: counts, bytes: bytes)
            try? writeMetrics(started: started, success: false, counts: counts, bytes: bytes)
            throw error
        }
    }

    private func writeMetrics(started: Date, success: Bool, counts: [String: Int64], bytes: Int64) throws {
        guard let metricsFile else { return }
        try MetricsFile(samples: MetricsFile.lastRun("retain", started: started, ended: Date(), success: success) + [
            .init("regkeeper_retain_tags_deleted", "Tags deleted by the last retain run.", Double(counts["tags"] ?? 0)),
            .init("regkeeper_retain_manifests_deleted", "Untagged manifests deleted by the last retain run.", Double(counts["manifests"] ?? 0)),
            .init("regkeeper_retain_blobs_deleted", "Blobs freed by gc in the last retain --gc run.", Double(counts["blobs"] ?? 0)),
            .init("regkeeper_retain_bytes_freed", "Bytes freed by gc in the last retain --gc run.", Double(bytes)),
        ]).write(to: metricsFile)
    }
}
