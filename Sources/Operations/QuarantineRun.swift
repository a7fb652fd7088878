import Foundation
import Integrity
import StateDatabase

/// `verify --quarantine` changes the store, so it is recorded like every other command that
/// does: a run in the history with one entry per blob moved into quarantine.
public struct RecordedVerification: Sendable {
    public var verifier: Verifier
    public var arguments: String

    public init(verifier: Verifier, arguments: String) {
        self.verifier = verifier
        self.arguments = arguments
    }

    public func run() async throws -> VerifyReport {
        guard verifier.options.quarantineDirectory != nil else { return try await verifier.run() }
        let history = verifier.state
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
