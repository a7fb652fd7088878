import Foundation

/// Identifies one recorded run; ids are never reused, so one printed in a log stays valid.
public struct RunID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
}

public enum RunOutcome: String, Hashable, Sendable, Codable, CaseIterable {
    case success
    case failure
    case interrupted
    case dryRun = "dry-run"
}

/// What a deleted item was. Open-ended, so a new tool can record a new kind without a schema change.
public struct DeletionKind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let blob = DeletionKind(rawValue: "blob")
    public static let tag = DeletionKind(rawValue: "tag")
    public static let revisionLink = DeletionKind(rawValue: "revision-link")
    public static let layerLink = DeletionKind(rawValue: "layer-link")
    public static let upload = DeletionKind(rawValue: "upload")
}

/// One item a run removed (or, in a dry run, would have removed).
public struct DeletionRecord: Hashable, Sendable, Codable {
    public var repository: String?
    public var tag: String?
    public var digest: String?
    public var kind: DeletionKind
    /// Why it went, in words a user can check against their policy.
    public var reason: String
    public var bytes: Int64
    public var path: String

    public init(
        repository: String? = nil, tag: String? = nil, digest: String? = nil,
        kind: DeletionKind, reason: String, bytes: Int64, path: String
    ) {
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.kind = kind
        self.reason = reason
        self.bytes = bytes
        self.path = path
    }
}

public struct RunSummary: Hashable, Sendable, Codable {
    public let id: RunID
    public let command: String
    /// The command line as the user typed it, for display.
    public let arguments: String
    public let startedAt: Date
    public let endedAt: Date?
    /// Nil while the run is in progress, and forever if its process died before finishing.
    public let outcome: RunOutcome?
    public let counts: [String: Int64]
    public let bytes: Int64?

    /// The outcome as shown to users, where a run that never finished reads "unfinished".
    public var status: String { outcome?.rawValue ?? "unfinished" }
}

public struct RunDetail: Hashable, Sendable, Codable {
    public let summary: RunSummary
    /// In the order they were recorded.
    public let deletions: [DeletionRecord]
}

extension Migration {
    static let runHistory = Migration(name: "run history", sql: """
        -- AUTOINCREMENT so that pruning the newest runs never hands their ids to later runs.
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            command TEXT NOT NULL,
            arguments TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            outcome TEXT,
            counts TEXT,
            bytes INTEGER
        );
        CREATE TABLE deletions (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            repository TEXT,
            tag TEXT,
            digest TEXT,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            path TEXT NOT NULL
        );
        CREATE INDEX deletions_by_run ON deletions(run_id);
        """)
}

extension StateStore {
    /// Records the start of a run before it changes anything, so a crash leaves an
    /// "unfinished" entry rather than no trace.
    public func beginRun(command: String, arguments: String, startedAt: Date = Date()) throws -> RunID {
        let insert = try connection.prepare("INSERT INTO runs (command, arguments, started_at) VALUES (?, ?, ?)")
        try insert.bind(command, at: 1)
        try insert.bind(arguments, at: 2)
        try insert.bind(startedAt.timeIntervalSince1970, at: 3)
        try insert.step()
        return RunID(rawValue: connection.lastInsertedRowID)
    }

    /// Appends `records` to the run in one transaction: either all are recorded or none, and
    /// one commit (one fsync) for the whole batch is what makes 100 000 rows cheap.
    public func recordDeletions(_ records: [DeletionRecord], run: RunID) throws {
        try connection.transaction {
            try requireRun(run)
            let insert = try connection.prepare("""
                INSERT INTO deletions (run_id, repository, tag, digest, kind, reason, bytes, path)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for record in records {
                insert.reset()
                try insert.bind(run.rawValue, at: 1)
                try insert.bind(record.repository, at: 2)
                try insert.bind(record.tag, at: 3)
                try insert.bind(record.digest, at: 4)
                try insert.bind(record.kind.rawValue, at: 5)
                try insert.bind(record.reason, at: 6)
                try insert.bind(record.bytes, at: 7)
                try insert.bind(record.path, at: 8)
                try insert.step()
            }
        }
    }

    public func finishRun(
        _ run: RunID, outcome: RunOutcome, counts: [String: Int64], bytes: Int64, endedAt: Date = Date()
    ) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let countsJSON = String(decoding: try encoder.encode(counts), as: UTF8.self)
        let update = try connection.prepare("UPDATE runs SET ended_at = ?, outcome = ?, counts = ?, bytes = ? WHERE id = ?")
        try update.bind(endedAt.timeIntervalSince1970, at: 1)
        try update.bind(outcome.rawValue, at: 2)
        try update.bind(countsJSON, at: 3)
        try update.bind(bytes, at: 4)
        try update.bind(run.rawValue, at: 5)
        try update.step()
        guard connection.changes > 0 else { throw StateStoreError.noSuchRun(run) }
    }

    /// The most recent runs first; a non-positive `limit` returns none.
    public func runs(limit: Int) throws -> [RunSummary] {
        let select = try connection.prepare("SELECT \(Self.summaryColumns) FROM runs ORDER BY id DESC LIMIT ?")
        try select.bind(Int64(max(limit, 0)), at: 1)
        var summaries: [RunSummary] = []
        while try select.step() {
            summaries.append(try summary(from: select))
        }
        return summaries
    }

    public func run(_ id: RunID) throws -> RunDetail {
        let select = try connection.prepare("SELECT \(Self.summaryColumns) FROM runs WHERE id = ?")
        try select.bind(id.rawValue, at: 1)
        guard try select.step() else { throw StateStoreError.noSuchRun(id) }
        let summary = try summary(from: select)

        let deletions = try connection.prepare("""
            SELECT repository, tag, digest, kind, reason, bytes, path
            FROM deletions WHERE run_id = ? ORDER BY rowid
            """)
        try deletions.bind(id.rawValue, at: 1)
        var records: [DeletionRecord] = []
        while try deletions.step() {
            records.append(DeletionRecord(
                repository: deletions.isNull(at: 0) ? nil : try deletions.string(at: 0),
                tag: deletions.isNull(at: 1) ? nil : try deletions.string(at: 1),
                digest: deletions.isNull(at: 2) ? nil : try deletions.string(at: 2),
                kind: DeletionKind(rawValue: try deletions.string(at: 3)),
                reason: try deletions.string(at: 4),
                bytes: try deletions.int64(at: 5),
                path: try deletions.string(at: 6)))
        }
        return RunDetail(summary: summary, deletions: records)
    }

    private static let summaryColumns = "id, command, arguments, started_at, ended_at, outcome, counts, bytes"

    private func summary(from row: Statement) throws -> RunSummary {
        var outcome: RunOutcome?
        if !row.isNull(at: 5) {
            let text = try row.string(at: 5)
            guard let known = RunOutcome(rawValue: text) else {
                throw StateStoreError.invalidStoredValue(path: connection.path, column: "runs.outcome", value: text)
            }
            outcome = known
        }
        var counts: [String: Int64] = [:]
        if !row.isNull(at: 6) {
            let text = try row.string(at: 6)
            do {
                counts = try JSONDecoder().decode([String: Int64].self, from: Data(text.utf8))
            } catch {
                throw StateStoreError.invalidStoredValue(path: connection.path, column: "runs.counts", value: text)
            }
        }
        return RunSummary(
            id: RunID(rawValue: try row.int64(at: 0)),
            command: try row.string(at: 1),
            arguments: try row.string(at: 2),
            startedAt: Date(timeIntervalSince1970: try row.double(at: 3)),
            endedAt: row.isNull(at: 4) ? nil : Date(timeIntervalSince1970: try row.double(at: 4)),
            outcome: outcome,
            counts: counts,
            bytes: row.isNull(at: 7) ? nil : try row.int64(at: 7))
    }

    private func requireRun(_ run: RunID) throws {
        let select = try connection.prepare("SELECT 1 FROM runs WHERE id = ?")
        try select.bind(run.rawValue, at: 1)
        guard try select.step() else { throw StateStoreError.noSuchRun(run) }
    }
}
