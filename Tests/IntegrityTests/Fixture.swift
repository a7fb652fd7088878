import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport

typealias Fixture = SampleImageStore

extension SampleImageStore {
    func state() throws -> StateStore {
        try StateStore.open(at: stateDirectory.appendingPathComponent("state.db"))
    }

    func verify(
        maxAge: TimeSpan? = nil, budget: Int64? = nil, timeLimit: Duration? = nil, quarantine: Bool = false,
        at now: Date = Date()
    ) async throws -> VerifyReport {
        var options = VerifyOptions()
        options.jobs = 2
        options.maxAge = maxAge
        options.budget = budget.map { ByteCount(bytes: $0) }
        options.timeLimit = timeLimit
        options.quarantineDirectory = quarantine ? stateDirectory.appendingPathComponent("quarantine").path : nil
        let consumed = Consumed()
        let report = try await Verifier(storage: storage, state: try state(), options: options, findings: { consumed.append($0) }, now: { now }).run()
        // The consumer sees exactly what the report lists.
        precondition(Set(consumed.all) == Set(report.findings) && consumed.all.count == report.findings.count)
        return report
    }
}

final class Consumed: @unchecked Sendable {
    private let lock = NSLock()
    private var findings: [IntegrityFinding] = []

    func append(_ finding: IntegrityFinding) { lock.withLock { findings.append(finding) } }
    var all: [IntegrityFinding] { lock.withLock { findings } }
}

/// The parts of a finding a test pins: kind, path, digest and the tags it breaks.
struct Seen: Hashable, CustomStringConvertible {
    var kind: IntegrityFinding.Kind
    var path: String
    var digest: Digest?
    var tags: [String]

    init(_ kind: IntegrityFinding.Kind, _ path: StorePath, _ digest: Digest?, _ tags: [String] = []) {
        self.kind = kind
        self.path = path.description
        self.digest = digest
        self.tags = tags
    }

    init(_ finding: IntegrityFinding) {
        self.init(finding.kind, finding.path, finding.digest, finding.affectedTags.map(\.description))
    }

    var description: String { "\(kind.rawValue) \(path) \(digest?.description ?? "-") \(tags)" }
}

extension VerifyReport {
    var seen: [Seen] { findings.map(Seen.init) }
}
