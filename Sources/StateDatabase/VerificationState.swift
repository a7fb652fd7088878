import Foundation

/// What the last rehash of one blob found.
public enum VerificationResult: String, Hashable, Sendable, Codable, CaseIterable {
    case ok
    case corrupt
    case unreadable
}

/// The last time a blob was rehashed, and what it looked like then. Size and mtime are kept so
/// that a blob rewritten in place (a restore, a bad disk repaired by hand) is rehashed even when
/// it was verified recently.
public struct VerificationRecord: Hashable, Sendable, Codable {
    /// `alg:hex`; text, because this module does not depend on the registry model.
    public var digest: String
    public var size: Int64
    public var modified: Date
    public var verifiedAt: Date
    public var result: VerificationResult

    public init(digest: String, size: Int64, modified: Date, verifiedAt: Date, result: VerificationResult) {
        self.digest = digest
        self.size = size
        self.modified = modified
        self.verifiedAt = verifiedAt
        self.result = result
    }
}

/// A blob moved out of the store because its content no longer matched its digest.
public struct QuarantineRecord: Hashable, Sendable, Codable {
    public var digest: String
    /// Where it was, relative to the store root.
    public var originalPath: String
    /// Where it is now: an absolute path in the state directory.
    public var quarantinePath: String
    public var bytes: Int64
    public var quarantinedAt: Date
    public var reason: String
    /// `repository:tag` of the images that could not pull it, so an operator knows what to re-push.
    public var affectedTags: [String]

    public init(
        digest: String, originalPath: String, quarantinePath: String, bytes: Int64, quarantinedAt: Date,
        reason: String, affectedTags: [String]
    ) {
        self.digest = digest
        self.originalPath = originalPath
        self.quarantinePath = quarantinePath
        self.bytes = bytes
        self.quarantinedAt = quarantinedAt
        self.reason = reason
        self.affectedTags = affectedTags
    }
}

extension Migration {
    static let verificationState = Migration(name: "verification state", sql: """
        -- One row per digest, replaced on each rehash: the scrub schedule needs the latest only.
        CREATE TABLE blob_verifications (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            modified REAL NOT NULL,
            verified_at REAL NOT NULL,
            result TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            digest TEXT NOT NULL,
            original_path TEXT NOT NULL,
            quarantine_path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            quarantined_at REAL NOT NULL,
            reason TEXT NOT NULL,
            affected_tags TEXT NOT NULL
        );
        """)
}

extension StateStore {
    /// Every blob's last verification, by digest. Read whole: a scrub orders all blobs by it,
    /// and 200 000 rows load in well under a second.
    public func verificationRecords() throws -> [String: VerificationRecord] {
        let select = try connection.prepare("SELECT digest, size, modified, verified_at, result FROM blob_verifications")
        var records: [String: VerificationRecord] = [:]
        while try select.step() {
            let text = try select.string(at: 4)
            guard let result = VerificationResult(rawValue: text) else {
                throw StateStoreError.invalidStoredValue(path: connection.path, column: "blob_verifications.result", value: text)
            }
            let record = VerificationRecord(
                digest: try select.string(at: 0), size: try select.int64(at: 1),
                modified: Date(timeIntervalSince1970: try select.double(at: 2)),
                verifiedAt: Date(timeIntervalSince1970: try select.double(at: 3)), result: result)
            records[record.digest] = record
        }
        return records
    }

    /// Replaces the records of these digests in one transaction, committed without an fsync
    /// of its own (`synchronous = NORMAL`, for this transaction only).
    ///
    /// Safe in WAL mode: a power cut can lose the last such commits but never damages the
    /// file (SQLite's WAL checksums stop recovery at the last whole commit), and the next
    /// commit that syncs (any history write) or checkpoint makes them durable. A lost record
    /// only means its blob is rehashed by the next run. Run history and quarantine records
    /// keep full sync: they may be the only account of what was moved or deleted.
    public func recordVerifications(_ records: [VerificationRecord]) throws {
        guard !records.isEmpty else { return }
        try connection.execute("PRAGMA synchronous = NORMAL")
        defer { try? connection.execute("PRAGMA synchronous = FULL") }
        try connection.transaction {
            let upsert = try connection.prepare("""
                INSERT OR REPLACE INTO blob_verifications (digest, size, modified, verified_at, result)
                VALUES (?, ?, ?, ?, ?)
                """)
            for record in records {
                upsert.reset()
                try upsert.bind(record.digest, at: 1)
                try upsert.bind(record.size, at: 2)
                try upsert.bind(record.modified.timeIntervalSince1970, at: 3)
                try upsert.bind(record.verifiedAt.timeIntervalSince1970, at: 4)
                try upsert.bind(record.result.rawValue, at: 5)
                try upsert.step()
            }
        }
    }

    public func recordQuarantine(_ record: QuarantineRecord) throws {
        let insert = try connection.prepare("""
            INSERT INTO quarantine (digest, original_path, quarantine_path, bytes, quarantined_at, reason, affected_tags)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        try insert.bind(record.digest, at: 1)
        try insert.bind(record.originalPath, at: 2)
        try insert.bind(record.quarantinePath, at: 3)
        try insert.bind(record.bytes, at: 4)
        try insert.bind(record.quarantinedAt.timeIntervalSince1970, at: 5)
        try insert.bind(record.reason, at: 6)
        try insert.bind(record.affectedTags.joined(separator: "\n"), at: 7)
        try insert.step()
    }

    /// Quarantined blobs, oldest first.
    public func quarantinedBlobs() throws -> [QuarantineRecord] {
        let select = try connection.prepare("""
            SELECT digest, original_path, quarantine_path, bytes, quarantined_at, reason, affected_tags
            FROM quarantine ORDER BY id
            """)
        var records: [QuarantineRecord] = []
        while try select.step() {
            let tags = try select.string(at: 6)
            records.append(QuarantineRecord(
                digest: try select.string(at: 0), originalPath: try select.string(at: 1),
                quarantinePath: try select.string(at: 2), bytes: try select.int64(at: 3),
                quarantinedAt: Date(timeIntervalSince1970: try select.double(at: 4)), reason: try select.string(at: 5),
                affectedTags: tags.isEmpty ? [] : tags.split(separator: "\n").map(String.init)))
        }
        return records
    }
}
