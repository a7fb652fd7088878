import Foundation
import RegistryModel
import RegistryStore
import StateDatabase

/// One archive as the catalog knows it.
public struct CatalogEntry: Sendable, Codable, Hashable {
    public var id: ArchiveID
    public var path: String
    public var kind: ArchiveKind
    public var parent: ArchiveID?
    public var createdAt: Date
    public var archiveBytes: Int64
    public var blobCount: Int
    public var blobBytes: Int64
}

/// A file of a backup directory that `reindex` took for an archive and could not read.
public struct UnreadableArchive: Sendable, Codable, Hashable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { reason.hasPrefix(path) ? reason : "\(path): \(reason)" }
}

/// The chain of archives and the blobs each carries, in its own SQLite file
/// (`<catalog dir>/backup-catalog.db`), apart from the state database: backups are often
/// written to another disk, and the catalog must be rebuildable from the archives alone
/// (`reindex`), which a shared database would make harder to reason about.
///
/// The actor owns the connection, so tasks share one catalog and SQLite sees one thread.
public actor BackupCatalog {
    public static let fileName = "backup-catalog.db"
    let connection: SQLiteConnection
    public nonisolated let path: String

    /// Schema steps; `PRAGMA user_version` counts those applied. Append, never edit.
    static let migrations = [
        """
        CREATE TABLE archives (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('full', 'incremental')),
            parent TEXT,
            created_at REAL NOT NULL,
            archive_bytes INTEGER NOT NULL
        );
        CREATE TABLE archive_blobs (
            archive TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (archive, digest)
        ) WITHOUT ROWID;
        """,
        """
        CREATE TABLE unreadable_archives (
            path TEXT PRIMARY KEY,
            reason TEXT NOT NULL
        );
        """,
    ]

    /// The catalog's database and SQLite's files beside it, which `reindex` does not take for
    /// archives.
    public static func ownsFile(named name: String) -> Bool {
        [fileName, fileName + "-wal", fileName + "-shm", fileName + "-journal"].contains(name)
    }

    /// Opens the catalog of a directory that must already hold one: restore reads a catalog
    /// and never makes an empty one (or the directory) where the operator mistyped a path.
    public static func openExisting(directory: String) throws(ArchiveError) -> BackupCatalog {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .catalog(path: path, reason: "cannot open it: \(Errno.current); rebuild it from the archives with `regkeeper backup reindex DIR --catalog \(directory)`")
        }
        return try open(directory: directory)
    }

    public static func open(directory: String) throws(ArchiveError) -> BackupCatalog {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let connection = try SQLiteConnection(path: path)
            let version = try userVersion(connection)
            guard version <= migrations.count else {
                throw ArchiveError.catalog(path: path, reason: "schema version \(version) is newer than this regkeeper's \(migrations.count)")
            }
            try connection.execute("PRAGMA journal_mode = WAL")
            if version < migrations.count {
                try connection.transaction {
                    let current = try userVersion(connection)
                    for step in migrations.dropFirst(current) { try connection.execute(step) }
                    try connection.execute("PRAGMA user_version = \(migrations.count)")
                }
            }
            return BackupCatalog(connection: connection, path: path)
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw .catalog(path: path, reason: "\(error)")
        }
    }

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    private static func userVersion(_ connection: SQLiteConnection) throws -> Int {
        let statement = try connection.prepare("PRAGMA user_version")
        try statement.step()
        return Int(try statement.int64(at: 0))
    }

    /// Records an archive and the blobs it carries (replacing an earlier record of the same id).
    public func record(_ index: ArchiveIndex, path: String, archiveBytes: UInt64) throws(ArchiveError) {
        try wrapping {
            try connection.transaction {
                try insert(index, path: path, archiveBytes: archiveBytes)
            }
        }
    }

    /// Replaces the whole catalog with what the given archives' indexes say, and the files
    /// that could not be read (`backup reindex`).
    public func replaceAll(with archives: [(index: ArchiveIndex, path: String, bytes: UInt64)],
                           unreadable: [UnreadableArchive]) throws(ArchiveError) {
        try wrapping {
            try connection.transaction {
                try connection.execute("DELETE FROM archive_blobs; DELETE FROM archives; DELETE FROM unreadable_archives")
                let damaged = try connection.prepare("INSERT INTO unreadable_archives (path, reason) VALUES (?, ?)")
                for file in unreadable {
                    damaged.reset()
                    try damaged.bind(file.path, at: 1)
                    try damaged.bind(file.reason, at: 2)
                    try damaged.step()
                }
                // Parents before children, so the recorded order puts each chain's tip last.
                let ordered = archives.sorted {
                    ($0.index.metadata.chain.count, $0.index.metadata.createdAt, $0.index.metadata.id)
                        < ($1.index.metadata.chain.count, $1.index.metadata.createdAt, $1.index.metadata.id)
                }
                for archive in ordered { try insert(archive.index, path: archive.path, archiveBytes: archive.bytes) }
            }
        }
    }

    private func insert(_ index: ArchiveIndex, path: String, archiveBytes: UInt64) throws {
        let metadata = index.metadata
        let delete = try connection.prepare("DELETE FROM archives WHERE id = ?")
        try delete.bind(metadata.id.rawValue, at: 1)
        try delete.step()
        let archive = try connection.prepare(
            "INSERT INTO archives (id, path, kind, parent, created_at, archive_bytes) VALUES (?, ?, ?, ?, ?, ?)")
        try archive.bind(metadata.id.rawValue, at: 1)
        try archive.bind(path, at: 2)
        try archive.bind(metadata.kind.rawValue, at: 3)
        try archive.bind(metadata.parent?.rawValue, at: 4)
        try archive.bind(metadata.createdAt.timeIntervalSince1970, at: 5)
        try archive.bind(Int64(archiveBytes), at: 6)
        try archive.step()
        let blob = try connection.prepare("INSERT OR IGNORE INTO archive_blobs (archive, digest, size) VALUES (?, ?, ?)")
        for carried in index.carriedBlobs {
            blob.reset()
            try blob.bind(metadata.id.rawValue, at: 1)
            try blob.bind(carried.digest.description, at: 2)
            try blob.bind(carried.size, at: 3)
            try blob.step()
        }
    }

    /// Every archive in the order it was recorded (creation times have whole seconds only, so
    /// two backups in one second would tie), the latest last.
    public func archives() throws(ArchiveError) -> [CatalogEntry] {
        try wrapping {
            let statement = try connection.prepare("""
                SELECT a.id, a.path, a.kind, a.parent, a.created_at, a.archive_bytes, COUNT(b.digest), COALESCE(SUM(b.size), 0)
                FROM archives a LEFT JOIN archive_blobs b ON b.archive = a.id
                GROUP BY a.id ORDER BY a.rowid
                """)
            var entries: [CatalogEntry] = []
            while try statement.step() {
                let kind = try statement.string(at: 2)
                entries.append(CatalogEntry(
                    id: ArchiveID(rawValue: try statement.string(at: 0)), path: try statement.string(at: 1),
                    kind: ArchiveKind(rawValue: kind) ?? .incremental,
                    parent: statement.isNull(at: 3) ? nil : ArchiveID(rawValue: try statement.string(at: 3)),
                    createdAt: Date(timeIntervalSince1970: try statement.double(at: 4)),
                    archiveBytes: try statement.int64(at: 5), blobCount: Int(try statement.int64(at: 6)),
                    blobBytes: try statement.int64(at: 7)))
            }
            return entries
        }
    }

    /// Files the last `reindex` could not read, in name order.
    public func unreadableArchives() throws(ArchiveError) -> [UnreadableArchive] {
        try wrapping {
            let statement = try connection.prepare("SELECT path, reason FROM unreadable_archives ORDER BY path")
            var files: [UnreadableArchive] = []
            while try statement.step() {
                files.append(UnreadableArchive(path: try statement.string(at: 0), reason: try statement.string(at: 1)))
            }
            return files
        }
    }

    /// The chain `restore --latest` restores: refused while the catalog knows of unreadable
    /// archives, since the newest backup may be among them and the chain before it is not
    /// what the operator asked for.
    public func latestRestorableChain() throws(ArchiveError) -> [CatalogEntry] {
        let unreadable = try unreadableArchives()
        guard unreadable.isEmpty else { throw .unreadableInCatalog(catalog: path, files: unreadable) }
        return try chain()
    }

    /// The chain ending at the latest archive (or `id`), full archive first. Refuses a chain
    /// whose ancestor the catalog does not know, naming it.
    public func chain(endingAt id: ArchiveID? = nil) throws(ArchiveError) -> [CatalogEntry] {
        let entries = try archives()
        let byID = Dictionary(entries.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        guard var current = id.flatMap({ byID[$0] }) ?? entries.last else { throw .noFullBackup(catalog: path) }
        var chain = [current]
        while let parent = current.parent {
            guard let found = byID[parent], !chain.contains(where: { $0.id == parent }) else {
                throw .missingArchive(id: parent, file: nil, neededBy: current.path)
            }
            chain.append(found)
            current = found
        }
        return chain.reversed()
    }

    /// Blobs the given archives carry, for an incremental backup's set difference.
    public func blobs(in archives: [ArchiveID]) throws(ArchiveError) -> [Digest: ArchiveID] {
        try wrapping {
            let statement = try connection.prepare("SELECT digest FROM archive_blobs WHERE archive = ?")
            var blobs: [Digest: ArchiveID] = [:]
            for archive in archives {
                statement.reset()
                try statement.bind(archive.rawValue, at: 1)
                while try statement.step() {
                    if let digest = Digest(try statement.string(at: 0)) { blobs[digest] = archive }
                }
            }
            return blobs
        }
    }

    private func wrapping<T>(_ body: () throws -> T) throws(ArchiveError) -> T {
        do {
            return try body()
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw .catalog(path: path, reason: "\(error)")
        }
    }
}
