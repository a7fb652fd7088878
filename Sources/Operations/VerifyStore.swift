import Foundation
import Integrity
import RegistryStore
import StateDatabase

/// verify as an operator runs it: the state database that remembers each blob's last check,
/// the verifier, the run recorded in the history when `--quarantine` changes the store, and
/// the metrics file.
public struct VerifyStore: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    public var options: VerifyOptions
    /// The command line, for the run history.
    public var arguments: String
    public var metricsFile: String?
    public var reporter: any ProgressReporter
    /// Handed each finding as it is found, before the run ends.
    public var findings: @Sendable (IntegrityFinding) -> Void

    public init(
        storage: any StoreStorage, location: StoreLocation, options: VerifyOptions, arguments: String, metricsFile: String? = nil,
        reporter: any ProgressReporter = SilentReporter(), findings: @escaping @Sendable (IntegrityFinding) -> Void = { _ in }
    ) {
        self.storage = storage
        self.location = location
        self.options = options
        self.arguments = arguments
        self.metricsFile = metricsFile
        self.reporter = reporter
        self.findings = findings
    }

    public func run() async throws -> VerifyReport {
        let url = URL(fileURLWithPath: location.stateDatabasePath)
        let report: VerifyReport
        if options.quarantineDirectory == nil {
            // Only the verification records are written, and only once the run is under way:
            // the database is opened meanwhile, and closed without the checkpoint the run's
            // end would otherwise wait for.
            let verifier = Verifier(storage: storage, opening: Self.openInBackground(url), options: options, reporter: reporter, findings: findings)
            report = try await verifier.run()
        } else {
            let state = try StateStore.open(at: url)
            let verifier = Verifier(storage: storage, state: state, options: options, reporter: reporter, findings: findings)
            report = try await recorded(verifier, state)
        }
        if let metricsFile { try MetricsFile.verify(report, ended: Date()).write(to: metricsFile) }
        return report
    }

    /// Opens the database on a thread outside the cooperative pool: creating it on a first
    /// run waits for several fsyncs, which would hold one of the pool's few threads.
    private static func openInBackground(_ url: URL) -> Task<StateStore, any Error> {
        Task {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try StateStore.open(at: url, checkpointsOnClose: false) })
                }
            }
        }
    }

    /// `--quarantine` changes the store, so it is recorded like every other command that does:
    /// a run in the history with one entry per blob moved into quarantine.
    private func recorded(_ verifier: Verifier, _ history: StateStore) async throws -> VerifyReport {
        let run = try await history.beginRun(command: "verify --quarantine", arguments: arguments)
        let report: VerifyReport
        do {
            report = try await verifier.run()
        } catch {
            try? await history.finishRun(run, outcome: error is CancellationError ? .interrupted : .failure, counts: [:], bytes: 0)
            throw error
        }
        let moved = report.findings.filter { $0.quarantinedTo != nil }
        try await history.recordDeletions(moved.map {
            DeletionRecord(digest: $0.digest?.description, kind: DeletionKind(rawValue: "quarantine"),
                           reason: $0.message, bytes: 0, path: $0.path.description)
        }, run: run)
        try await history.finishRun(
            run, outcome: .success,
            counts: ["findings": Int64(report.findings.count), "quarantined": Int64(moved.count)], bytes: 0)
        return report
    }
}

/// `verify --list-quarantine`: what earlier runs moved aside. Reading must not create a
/// database where no verify ever ran.
public struct ListQuarantine: Sendable {
    public var location: StoreLocation

    public init(location: StoreLocation) { self.location = location }

    public func run() async throws -> [QuarantineRecord] {
        guard FileManager.default.fileExists(atPath: location.stateDatabasePath) else { return [] }
        return try await StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath)).quarantinedBlobs()
    }
}
