import Foundation
import PullLog
import RegistryModel
import RegistryStore
import StateDatabase

/// `pulls import`: reads registry logs from where the last import of each stopped, resolves
/// every pull by tag to the manifest the tag pointed to at that moment (from the tag's history
/// in the store), and records the last pull per repository, manifest and tag in the state
/// database, with how far each log was read, in one transaction.
public struct ImportPulls: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    /// Paths, or `-` for standard input, in the order given.
    public var inputs: [String]

    public init(storage: any StoreStorage, location: StoreLocation, inputs: [String]) {
        self.storage = storage
        self.location = location
        self.inputs = inputs
    }

    public struct Outcome: Sendable {
        public var readings: [LogReading]
        /// Rows written or refreshed (repository, manifest, tag).
        public var records: Int
        /// Pulls of a tag the store no longer has, or of a name that is not valid.
        public var unresolvedPulls: Int
        /// Pulls by tag resolved from the tag's history rather than for certain.
        public var inexactPulls: Int
        /// What every import so far covers, this one included.
        public var coverage: PullCoverage?
    }

    public func run(now: Date = Date()) async throws -> Outcome {
        let state = try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
        let storage = storage
        var table = PullTable { repository, tag in Self.timeline(storage, repository, tag) }
        var readings: [LogReading] = []
        var positions: [String: LogPosition] = [:]
        var sources: [String: StoredLogSource] = [:]
        for input in inputs {
            let reader = try LogReader(input: input)
            guard let fingerprint = reader.fingerprint else {
                readings.append(try reader.read(after: nil, into: &table))
                continue
            }
            // A log given twice (or both as a file and as its rotated copy) goes on from this run's own position.
            var position = positions[fingerprint]
            if position == nil, let stored = try await state.logSource(fingerprint: fingerprint) {
                position = LogPosition(offset: stored.offset, lines: stored.lines)
            }
            let reading = try reader.read(after: position, into: &table)
            readings.append(reading)
            positions[fingerprint] = reading.to
            var source = sources[fingerprint] ?? StoredLogSource(
                fingerprint: fingerprint, input: input, offset: 0, lines: 0, firstEntry: nil, lastEntry: nil, importedAt: now)
            source.input = input
            source.offset = reading.to.offset
            source.lines = reading.to.lines
            source.firstEntry = Self.earlier(source.firstEntry, reading.firstEntry.map(Date.init(timeIntervalSince1970:)))
            source.lastEntry = Self.later(source.lastEntry, reading.lastEntry.map(Date.init(timeIntervalSince1970:)))
            sources[fingerprint] = source
        }
        let records = table.records.map { record in
            StoredPull(
                repository: record.repository.value, digest: record.digest.description, tag: record.tag?.value,
                lastPulled: Date(timeIntervalSince1970: record.lastPulled), exact: record.exact)
        }
        try await state.recordPullImport(pulls: records, sources: Array(sources.values))
        return Outcome(
            readings: readings, records: records.count, unresolvedPulls: table.unresolvedPulls, inexactPulls: table.inexactPulls,
            coverage: try await state.pullCoverage())
    }

    private static func earlier(_ a: Date?, _ b: Date?) -> Date? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    private static func later(_ a: Date?, _ b: Date?) -> Date? {
        guard let a else { return b }
        guard let b else { return a }
        return max(a, b)
    }

    /// A tag's moves: each index link's mtime, and its current link. Nil when the tag is gone
    /// or its current link cannot be read (its pulls are then counted as unresolved).
    static func timeline(_ storage: any StoreStorage, _ repository: RepositoryName, _ tag: Tag) -> TagTimeline? {
        let scanner = StoreScanner(storage: storage)
        var findings: [StoreFinding] = []
        guard let current = scanner.readLink(Layout.tagCurrentLink(repository, tag), recovering: nil, &findings), !current.recovered else {
            return nil
        }
        var moves: [TagTimeline.Move] = []
        for algorithm in Digest.Algorithm.allCases {
            let directory = Layout.tagIndexDirectory(repository, tag, algorithm)
            for digest in scanner.digestDirectories(directory, algorithm, &findings) {
                guard let link = scanner.readLink(Layout.tagIndexLink(repository, tag, digest), recovering: digest, &findings),
                      link.modified != .distantFuture else { continue }
                moves.append(TagTimeline.Move(at: link.modified.timeIntervalSince1970, digest: link.target))
            }
        }
        return TagTimeline(moves: moves, current: TagTimeline.Move(at: current.modified.timeIntervalSince1970, digest: current.target))
    }
}
