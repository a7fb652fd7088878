import Foundation
import RegistryModel
import RegistryStore
import StateDatabase
import Synchronization

/// `regkeeper verify`: checks the layout, the reference graph and the content of every blob,
/// hands each piece of damage to `findings` as it is found, and returns the whole report.
/// Reads only, unless `quarantineDirectory` is set.
public struct Verifier: Sendable {
    public let storage: any StoreStorage
    public let state: StateStore
    public let options: VerifyOptions
    public let reporter: any ProgressReporter
    public let findings: @Sendable (IntegrityFinding) -> Void
    /// Injected, so tests can age verification records without sleeping.
    public let now: @Sendable () -> Date

    public init(
        storage: any StoreStorage, state: StateStore, options: VerifyOptions,
        reporter: any ProgressReporter = SilentReporter(), findings: @escaping @Sendable (IntegrityFinding) -> Void = { _ in },
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.storage = storage
        self.state = state
        self.options = options
        self.reporter = reporter
        self.findings = findings
        self.now = now
    }

    public func run() async throws -> VerifyReport {
        let startedAt = now()
        let deadline = options.timeLimit.map { ContinuousClock.now + $0 }
        let jobs = max(1, options.jobs)
        let scanner = StoreScanner(storage: storage)
        let storage = storage
        var report = VerifyReport(findings: [], counts: .init(), stoppedBy: nil, startedAt: startedAt, hashSeconds: 0)
        var found: [IntegrityFinding] = []
        func emit(_ finding: IntegrityFinding) {
            found.append(finding)
            findings(finding)
        }

        let ((repositories, blobs, layoutFindings), _) = try await reporter.phase("scan") { () async throws -> ([RepositoryState], [BlobEntry], [StoreFinding]) in
            var (names, layout) = scanner.repositories()
            let scanned = try await boundedMap(names, jobs: jobs) { scanner.scanRepository($0) }
            let blobs: [BlobEntry]
            let blobFindings: [StoreFinding]
            do {
                (blobs, blobFindings) = try await scanner.blobs(jobs: jobs)
            } catch let error as StorageError {
                throw VerifyError.storeUnreadable(error)
            }
            layout += scanned.flatMap(\.findings) + blobFindings
            return (scanned.map(\.state), blobs, layout)
        }
        for finding in layoutFindings.sorted(by: { $0.path < $1.path }) { emit(IntegrityFinding(finding)) }

        // Sizes and mtimes: for the size checks, and to notice blobs changed since last verified.
        let withData = blobs.filter(\.hasData).map(\.digest)
        let (stats, _) = try await reporter.phase("stat") {
            try await boundedMap(chunked(withData, jobs: jobs), jobs: jobs) { chunk in
                chunk.map { digest -> (Digest, Result<FileStatus?, StorageError>) in
                    (digest, Result { () throws(StorageError) in try storage.status(Layout.blobData(digest)) })
                }
            }.flatMap { $0 }
        }
        var statuses: [BlobStatus] = []
        var present: Set<Digest> = []
        var unstatable: [(Digest, StorageError)] = []
        for (digest, result) in stats {
            switch result {
            case .success(let status?):
                present.insert(digest)
                statuses.append(BlobStatus(digest: digest, size: status.size, modified: status.modified))
            case .success(nil): continue // removed since the scan
            case .failure(let error):
                present.insert(digest)
                unstatable.append((digest, error))
            }
        }

        let (graph, _) = try await reporter.phase("graph") {
            try await ReferenceGraph.build(repositories, present: present, loader: ManifestLoader(storage: storage), jobs: jobs)
        }
        for finding in graph.referenceFindings(repositories, present: present) { emit(finding) }
        for (digest, error) in unstatable {
            emit(IntegrityFinding(kind: .unreadable, path: Layout.blobData(digest), digest: digest,
                                  affectedTags: graph.tags(reaching: digest), message: error.description))
        }

        let records: [String: VerificationRecord]
        do {
            records = try await state.verificationRecords()
        } catch {
            throw VerifyError.stateDatabase(operation: "read verification records", reason: "\(error)")
        }
        let schedule = ScrubSchedule.plan(statuses, records: records, now: startedAt, maxAge: options.maxAge, budget: options.budget?.bytes)
        report.counts = .init(
            repositories: repositories.count, tags: graph.tags, manifests: graph.manifestsTraversed, blobs: blobs.count,
            bytes: statuses.reduce(0) { $0 + $1.size }, recentlyVerified: schedule.recentlyVerified)

        let judge = Judge(graph: graph)
        // Without a time limit every selected blob is hashed, and the order only decides how
        // well the last moments use the cores: largest first leaves small blobs for the tail.
        let order = deadline == nil ? schedule.toHash.sorted { ($0.size, $1.digest) > ($1.size, $0.digest) } : schedule.toHash
        let hashStart = ContinuousClock.now
        let (hashed, _) = try await reporter.phase("hash") { () async throws -> Int in
            try await hash(order, deadline: deadline, judge: judge, report: &report, emit: emit)
        }
        report.hashSeconds = (ContinuousClock.now - hashStart) / .seconds(1)
        let unhashed = schedule.deferred + order[hashed...]
        if !unhashed.isEmpty {
            report.stoppedBy = hashed < order.count ? .timeLimit : .budget
        }
        report.counts.deferred = unhashed.count
        report.counts.deferredBytes = unhashed.reduce(0) { $0 + $1.size }

        // Blobs not rehashed this run still get the cheap checks: sizes and manifest parsing.
        let hashedDigests = Set(order[..<hashed].map(\.digest))
        for blob in statuses.sorted(by: { $0.digest < $1.digest }) where !hashedDigests.contains(blob.digest) {
            if let finding = judge.verdict(blob, outcome: nil) { emit(finding) }
        }
        report.findings = found.sorted { ($0.kind, $0.path) < ($1.kind, $1.path) }
        return report
    }

    /// Rehashes `blobs` in order with at most `jobs` tasks in flight; returns how many were
    /// hashed (a prefix: after the deadline no new blob starts).
    private func hash(
        _ blobs: [BlobStatus], deadline: ContinuousClock.Instant?, judge: Judge, report: inout VerifyReport,
        emit: (IntegrityFinding) -> Void
    ) async throws -> Int {
        let hasher = BlobHasher(storage: storage)
        let meter = HashMeter(reporter: reporter, totalBytes: blobs.reduce(0) { $0 + $1.size }, totalFiles: blobs.count)
        var pending: [VerificationRecord] = []
        var next = 0
        var done = 0
        try await withThrowingTaskGroup(of: (Int, HashOutcome).self) { group in
            func startNext() -> Bool {
                guard next < blobs.count else { return false }
                if let deadline, ContinuousClock.now >= deadline { return false }
                let index = next
                let digest = blobs[index].digest
                next += 1
                group.addTask {
                    let outcome = hasher.hash(digest) { meter.add(bytes: $0) }
                    meter.finishedFile()
                    return (index, outcome)
                }
                return true
            }
            for _ in 0..<max(1, options.jobs) where !startNext() { break }
            while let (index, outcome) = try await group.next() {
                done += 1
                let blob = blobs[index]
                var result = VerificationResult.ok
                switch outcome {
                case .matches(let bytes):
                    report.counts.bytesHashed += bytes
                case .mismatch(_, let bytes):
                    report.counts.bytesHashed += bytes
                    result = .corrupt
                case .unreadable:
                    result = .unreadable
                }
                report.counts.blobsHashed += 1
                if var finding = judge.verdict(blob, outcome: outcome) {
                    if case .mismatch = outcome, let directory = options.quarantineDirectory {
                        finding = try await quarantine(blob, finding, into: directory, run: report.startedAt)
                        if finding.quarantinedTo != nil { report.counts.quarantined += 1 }
                    }
                    emit(finding)
                }
                pending.append(VerificationRecord(
                    digest: blob.digest.description, size: blob.size, modified: blob.modified, verifiedAt: now(), result: result))
                // Flushed as the run goes, so a run killed halfway keeps what it verified.
                if pending.count >= 2000 {
                    try await record(pending)
                    pending.removeAll(keepingCapacity: true)
                }
                try Task.checkCancellation()
                _ = startNext()
            }
        }
        try await record(pending)
        return done
    }

    private func record(_ records: [VerificationRecord]) async throws {
        do {
            try await state.recordVerifications(records)
        } catch {
            throw VerifyError.stateDatabase(operation: "record verifications", reason: "\(error)")
        }
    }

    /// Moves the whole blob directory out (a rename, via the storage's `detach`), so the
    /// registry answers "blob unknown" and a re-push writes good content, instead of serving
    /// bad bytes. Each run quarantines under its own start time, so a blob quarantined again
    /// after a re-push never collides with its earlier copy. A failure to move is told in the
    /// finding; the run goes on.
    private func quarantine(_ blob: BlobStatus, _ finding: IntegrityFinding, into directory: String, run: Date) async throws -> IntegrityFinding {
        var finding = finding
        let runDirectory = directory + "/" + Self.timestamp(run)
        let path = Layout.blobDirectory(blob.digest)
        do {
            try storage.detach(path, into: runDirectory)
        } catch {
            finding.message += "; could not quarantine: \(error)"
            return finding
        }
        let destination = runDirectory + "/" + path.description
        finding.quarantinedTo = destination
        do {
            try await state.recordQuarantine(QuarantineRecord(
                digest: blob.digest.description, originalPath: path.description, quarantinePath: destination,
                bytes: blob.size, quarantinedAt: now(), reason: finding.message,
                affectedTags: finding.affectedTags.map(\.description)))
        } catch {
            throw VerifyError.stateDatabase(operation: "record the quarantine of \(blob.digest) at \(destination)", reason: "\(error)")
        }
        return finding
    }

    /// `20260129T033000Z`: sortable, and a single path component.
    private static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime, .withTimeZone]
        return formatter.string(from: date)
    }
}

/// Bytes and files hashed so far, passed to the reporter at most ten times a second from
/// whichever hashing task gets there first.
private final class HashMeter: Sendable {
    private let reporter: any ProgressReporter
    private let totalBytes: Int64
    private let totalFiles: Int64
    private let bytes = Atomic<Int64>(0)
    private let files = Atomic<Int64>(0)
    private let lastReport = Mutex<ContinuousClock.Instant>(.now)

    init(reporter: any ProgressReporter, totalBytes: Int64, totalFiles: Int) {
        self.reporter = reporter
        self.totalBytes = totalBytes
        self.totalFiles = Int64(totalFiles)
    }

    func add(bytes count: Int) {
        bytes.add(Int64(count), ordering: .relaxed)
        reportIfDue()
    }

    func finishedFile() {
        files.add(1, ordering: .relaxed)
        reportIfDue()
    }

    private func reportIfDue() {
        let now = ContinuousClock.now
        let due = lastReport.withLock { last in
            guard now - last >= .milliseconds(100) else { return false }
            last = now
            return true
        }
        guard due else { return }
        reporter.progress("hash", done: files.load(ordering: .relaxed), total: totalFiles, unit: .items)
        reporter.progress("hash", done: bytes.load(ordering: .relaxed), total: totalBytes, unit: .bytes)
    }
}
