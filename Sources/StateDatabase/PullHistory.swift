import Foundation

/// The last pull of one manifest of a repository, by one tag or (tag nil) by digest, learned
/// from the registry's logs by `pulls import`.
public struct StoredPull: Hashable, Sendable, Codable {
    public var repository: String
    /// `alg:hex`; text, because this module does not depend on the registry model.
    public var digest: String
    /// Nil for a pull by digest.
    public var tag: String?
    public var lastPulled: Date
    /// False when the manifest was inferred from the tag's history rather than certain.
    public var exact: Bool

    public init(repository: String, digest: String, tag: String?, lastPulled: Date, exact: Bool) {
        self.repository = repository
        self.digest = digest
        self.tag = tag
        self.lastPulled = lastPulled
        self.exact = exact
    }
}

/// How far one imported log was read, known by its first line (see `PullLog.LogReader`).
public struct StoredLogSource: Hashable, Sendable, Codable {
    public var fingerprint: String
    /// The path (or `-`) it was last imported from, for display.
    public var input: String
    public var offset: Int64
    public var lines: Int64
    /// Earliest and latest entry times read from it, over every import.
    public var firstEntry: Date?
    public var lastEntry: Date?
    public var importedAt: Date

    public init(fingerprint: String, input: String, offset: Int64, lines: Int64, firstEntry: Date?, lastEntry: Date?, importedAt: Date) {
        self.fingerprint = fingerprint
        self.input = input
        self.offset = offset
        self.lines = lines
        self.firstEntry = firstEntry
        self.lastEntry = lastEntry
        self.importedAt = importedAt
    }
}

/// What the imported logs cover: retention by pull refuses to read silence outside it as
/// "never pulled".
public struct PullCoverage: Hashable, Sendable, Codable {
    /// The earliest entry of any imported log.
    public var since: Date
    /// The latest entry of any imported log.
    public var until: Date
    public var lastImport: Date
    /// Stretches between `since` and `until` that no imported log spans, oldest first: each
    /// lies between the last entry of the logs before it and the first entry of the next. A
    /// log rotated away before it was imported leaves one; so does a quiet registry at the
    /// moment a log was rotated.
    public var gaps: [DateInterval]

    public init(since: Date, until: Date, lastImport: Date, gaps: [DateInterval] = []) {
        self.since = since
        self.until = until
        self.lastImport = lastImport
        self.gaps = gaps
    }
}

extension Migration {
    static let pullHistory = Migration(name: "pull history", sql: """
        -- One row per repository, manifest and tag ('' for a pull by digest): only the latest pull counts.
        CREATE TABLE pulls (
            repository TEXT NOT NULL,
            digest TEXT NOT NULL,
            tag TEXT NOT NULL,
            last_pulled REAL NOT NULL,
            exact INTEGER NOT NULL,
            PRIMARY KEY (repository, digest, tag)
        ) WITHOUT ROWID;
        -- Every log imported, by the hash of its first line, and how far it was read.
        CREATE TABLE pull_sources (
            fingerprint TEXT PRIMARY KEY,
            input TEXT NOT NULL,
            byte_offset INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            first_entry REAL,
            last_entry REAL,
            imported_at REAL NOT NULL
        ) WITHOUT ROWID;
        """)
}

extension StateStore {
    /// How far the log with this first line was read, or nil when it never was.
    public func logSource(fingerprint: String) throws -> StoredLogSource? {
        let select = try connection.prepare("""
            SELECT fingerprint, input, byte_offset, lines, first_entry, last_entry, imported_at FROM pull_sources WHERE fingerprint = ?
            """)
        try select.bind(fingerprint, at: 1)
        guard try select.step() else { return nil }
        return try Self.source(select)
    }

    public func logSources() throws -> [StoredLogSource] {
        let select = try connection.prepare("""
            SELECT fingerprint, input, byte_offset, lines, first_entry, last_entry, imported_at FROM pull_sources ORDER BY first_entry
            """)
        var sources: [StoredLogSource] = []
        while try select.step() { sources.append(try Self.source(select)) }
        return sources
    }

    private static func source(_ row: Statement) throws -> StoredLogSource {
        StoredLogSource(
            fingerprint: try row.string(at: 0), input: try row.string(at: 1), offset: try row.int64(at: 2), lines: try row.int64(at: 3),
            firstEntry: row.isNull(at: 4) ? nil : Date(timeIntervalSince1970: try row.double(at: 4)),
            lastEntry: row.isNull(at: 5) ? nil : Date(timeIntervalSince1970: try row.double(at: 5)),
            importedAt: Date(timeIntervalSince1970: try row.double(at: 6)))
    }

    /// Records what one import read, in one transaction: the pulls (a later pull replaces an
    /// earlier one, an earlier one changes nothing, so importing twice is harmless) and where
    /// each log now stands. An interrupted import records nothing.
    public func recordPullImport(pulls: [StoredPull], sources: [StoredLogSource]) throws {
        try connection.transaction {
            let upsert = try connection.prepare("""
                INSERT INTO pulls (repository, digest, tag, last_pulled, exact) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (repository, digest, tag) DO UPDATE SET last_pulled = excluded.last_pulled, exact = excluded.exact
                WHERE excluded.last_pulled > pulls.last_pulled
                """)
            for pull in pulls {
                upsert.reset()
                try upsert.bind(pull.repository, at: 1)
                try upsert.bind(pull.digest, at: 2)
                try upsert.bind(pull.tag ?? "", at: 3)
                try upsert.bind(pull.lastPulled.timeIntervalSince1970, at: 4)
                try upsert.bind(Int64(pull.exact ? 1 : 0), at: 5)
                try upsert.step()
            }
            // Entry times widen what earlier imports of the same log saw; the position moves on.
            let source = try connection.prepare("""
                INSERT INTO pull_sources (fingerprint, input, byte_offset, lines, first_entry, last_entry, imported_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (fingerprint) DO UPDATE SET input = excluded.input, byte_offset = excluded.byte_offset,
                    lines = excluded.lines,
                    first_entry = CASE WHEN pull_sources.first_entry IS NULL OR excluded.first_entry < pull_sources.first_entry
                        THEN excluded.first_entry ELSE pull_sources.first_entry END,
                    last_entry = CASE WHEN pull_sources.last_entry IS NULL OR excluded.last_entry > pull_sources.last_entry
                        THEN excluded.last_entry ELSE pull_sources.last_entry END,
                    imported_at = excluded.imported_at
                """)
            for record in sources {
                source.reset()
                try source.bind(record.fingerprint, at: 1)
                try source.bind(record.input, at: 2)
                try source.bind(record.offset, at: 3)
                try source.bind(record.lines, at: 4)
                try source.bind(record.firstEntry?.timeIntervalSince1970, at: 5)
                try source.bind(record.lastEntry?.timeIntervalSince1970, at: 6)
                try source.bind(record.importedAt.timeIntervalSince1970, at: 7)
                try source.step()
            }
        }
    }

    /// Every recorded pull.
    public func pulls() throws -> [StoredPull] {
        let select = try connection.prepare("SELECT repository, digest, tag, last_pulled, exact FROM pulls ORDER BY repository, tag, digest")
        var pulls: [StoredPull] = []
        while try select.step() {
            let tag = try select.string(at: 2)
            pulls.append(StoredPull(
                repository: try select.string(at: 0), digest: try select.string(at: 1), tag: tag.isEmpty ? nil : tag,
                lastPulled: Date(timeIntervalSince1970: try select.double(at: 3)), exact: try select.int64(at: 4) != 0))
        }
        return pulls
    }

    /// What the imported logs span; nil when no log with a dated entry was ever imported.
    public func pullCoverage() throws -> PullCoverage? {
        // Sources come ordered by their first entry (those without entries first, skipped): the
        // first one met starts the history, and a gap is where the next one starts after every
        // earlier one has ended.
        let sources = try logSources().filter { $0.firstEntry != nil }
        guard let since = sources.first?.firstEntry, let until = sources.compactMap(\.lastEntry).max(),
              let lastImport = sources.map(\.importedAt).max() else { return nil }
        var gaps: [DateInterval] = []
        var reached: Date?
        for source in sources {
            guard let first = source.firstEntry, let last = source.lastEntry else { continue }
            if let reached, first > reached { gaps.append(DateInterval(start: reached, end: first)) }
            reached = max(reached ?? last, last)
        }
        return PullCoverage(since: since, until: until, lastImport: lastImport, gaps: gaps)
    }
}
