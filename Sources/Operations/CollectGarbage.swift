import Foundation
import GarbageCollection
import RegistryModel
import RegistryStore
import StateDatabase

/// gc as an operator runs it: plan, sweep unless it is a dry run, record the run and every
/// deletion in the state database, write metrics.
public struct CollectGarbage: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    public var options: GCOptions
    public var dryRun: Bool
    /// The command line, for the run history.
    public var arguments: String
    public var metricsFile: String?
    /// Move swept items into the trash instead of deleting them.
    public var trash = false
    /// Trash areas older than this are purged by every run.
    public var trashKeepFor = TimeSpan(seconds: 72 * 3600)
    public var reporter: any ProgressReporter

    public init(
        storage: any StoreStorage, location: StoreLocation, options: GCOptions, dryRun: Bool, arguments: String,
        metricsFile: String? = nil, reporter: any ProgressReporter = SilentReporter()
    ) {
        self.storage = storage
        self.location = location
        self.options = options
        self.dryRun = dryRun
        self.arguments = arguments
        self.metricsFile = metricsFile
        self.reporter = reporter
    }

    public enum Outcome: Sendable {
        /// `--dry-run`: the plan, nothing changed.
        case planned(GCPlan)
        /// The sweep ran; `run` is its entry in the history.
        case swept(GCResult, run: RunID)
    }

    /// Throws `GCError` before deleting anything when the plan may not be swept.
    public func run() async throws -> Outcome {
        let started = Date()
        let plan = try await GarbageCollector(storage: storage, options: options, reporter: reporter).plan()
        if dryRun {
            if let refusal = plan.refusal { throw refusal }
            return .planned(plan)
        }
        let history = try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
        let run = try await history.beginRun(command: "gc", arguments: arguments, startedAt: started)
        if let refusal = plan.refusal {
            try await history.finishRun(
                run, outcome: .failure,
                counts: ["broken_manifests": Int64(plan.broken.count), "unreadable_paths": Int64(plan.incomplete.count)], bytes: 0)
            try writeMetrics(started: started, success: false, plan: plan)
            throw refusal
        }
        let bin = Trash(stateDirectory: location.stateDirectory)
        try bin.purge(before: started.addingTimeInterval(-TimeInterval(trashKeepFor.seconds)))
        let result: GCResult
        do {
            let area = trash ? bin.area(run: run.rawValue, at: started) : nil
            result = try await SweepExecutor(
                storage: storage, area: SweepArea(stateDirectory: location.stateDirectory), settle: options.settle,
                reporter: reporter, trashArea: area).execute(plan)
        } catch {
            try? await history.finishRun(run, outcome: .interrupted, counts: [:], bytes: 0)
            throw error
        }
        let applied = result.applied
        try await history.recordDeletions(Self.records(applied), run: run)
        try await history.finishRun(
            run, outcome: result.failures.isEmpty ? .success : .failure,
            counts: [
                "blobs": Int64(applied.blobs.count), "manifests": Int64(applied.manifests.count),
                "links": Int64(applied.links.count), "uploads": Int64(applied.uploads.count),
                "failures": Int64(result.failures.count),
            ],
            bytes: applied.bytesFreed)
        try writeMetrics(started: started, success: result.failures.isEmpty, plan: applied)
        return .swept(result, run: run)
    }

    static func records(_ plan: GCPlan) -> [DeletionRecord] {
        plan.manifests.map {
            DeletionRecord(repository: $0.repository.value, tag: nil, digest: $0.digest.description, kind: .revisionLink,
                           reason: $0.reason, bytes: 0, path: Layout.revisionDirectory($0.repository, $0.digest).description)
        } + plan.blobs.map {
            DeletionRecord(repository: nil, tag: nil, digest: $0.digest.description, kind: .blob, reason: $0.reason,
                           bytes: $0.bytes, path: Layout.blobDirectory($0.digest).description)
        } + plan.links.map {
            let path = $0.kind == .layer ? Layout.layerLinkDirectory($0.repository, $0.digest) : Layout.revisionDirectory($0.repository, $0.digest)
            return DeletionRecord(repository: $0.repository.value, tag: nil, digest: $0.digest.description,
                                  kind: $0.kind == .layer ? .layerLink : .revisionLink, reason: $0.reason, bytes: 0, path: path.description)
        } + plan.uploads.map {
            DeletionRecord(repository: $0.repository.value, tag: nil, digest: nil, kind: .upload, reason: "abandoned upload",
                           bytes: $0.bytes, path: Layout.uploadDirectory($0.repository, uuid: $0.uuid)?.description ?? $0.uuid)
        }
    }

    private func writeMetrics(started: Date, success: Bool, plan: GCPlan) throws {
        guard let metricsFile else { return }
        let ended = Date()
        try MetricsFile(samples: MetricsFile.lastRun("gc", started: started, ended: ended, success: success) + [
            .init("regkeeper_gc_bytes_freed", "Bytes freed by the last gc run.", Double(plan.bytesFreed)),
            .init("regkeeper_gc_blobs_deleted", "Blobs deleted by the last gc run.", Double(plan.blobs.count)),
            .init("regkeeper_gc_manifests_deleted", "Untagged manifests removed by the last gc run.", Double(plan.manifests.count)),
            .init("regkeeper_gc_broken_manifests", "Manifests gc could not read.", Double(plan.broken.count)),
        ]).write(to: metricsFile)
    }
}

/// `gc undo`: puts a trashed run back exactly as it was, and records that it did.
public struct UndoGarbageCollection: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    public var arguments: String

    public init(storage: any StoreStorage, location: StoreLocation, arguments: String) {
        self.storage = storage
        self.location = location
        self.arguments = arguments
    }

    public enum Failure: Error, CustomStringConvertible {
        case noTrash(run: Int64?, available: [Int64])

        public var description: String {
            switch self {
            case .noTrash(let run, let available):
                let what = run.map { "run \($0) has nothing in the trash" } ?? "the trash is empty"
                let runs = available.isEmpty ? "no run was trashed (gc --trash), or its trash was purged"
                    : "runs in the trash: " + available.map(String.init).joined(separator: ", ")
                return "\(what); \(runs)"
            }
        }
    }

    /// Restores `run`, or the latest trashed run when nil.
    public func run(_ run: Int64?) async throws -> (Int64, Trash.Restoration) {
        let bin = Trash(stateDirectory: location.stateDirectory)
        let available = bin.runs()
        guard let target = run.map({ number in available.first { $0.run == number } }) ?? available.last else {
            throw Failure.noTrash(run: run, available: available.map(\.run))
        }
        let history = try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
        let record = try await history.beginRun(command: "gc undo", arguments: arguments)
        let restoration = try bin.restore(target, into: storage)
        try await history.finishRun(
            record, outcome: restoration.refused.isEmpty ? .success : .failure,
            counts: ["restored": Int64(restoration.restored.count), "refused": Int64(restoration.refused.count)], bytes: 0)
        return (target.run, restoration)
    }
}

/// What a gc killed midway left out of the store goes back before anything else runs: every
/// command that takes the exclusive lock calls this first.
public struct RecoverInterruptedSweep: Sendable {
    public var location: StoreLocation

    public init(location: StoreLocation) { self.location = location }

    /// Nil when no run was interrupted.
    public func run(opening storage: () throws -> any StoreStorage) throws -> SweepArea.Recovery? {
        let area = SweepArea(stateDirectory: location.stateDirectory)
        // A bucket keeps its sweep areas in the bucket: only there can they be looked for.
        guard location.s3 != nil || FileManager.default.fileExists(atPath: area.directory) else { return nil }
        let recovery = try area.recover(into: try storage())
        return recovery.isEmpty ? nil : recovery
    }
}
