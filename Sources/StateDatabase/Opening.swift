import Foundation
internal import CSQLite

/// Opens the database at `url`, creating it if needed, and brings its schema up to
/// `migrations.count`.
///
/// The file is checked before anything is written to it: a database from a newer build or a
/// damaged file is refused while still byte-identical, because the history in it may be the
/// only record of what was deleted.
func openMigratedDatabase(at url: URL, migrations: [Migration]) throws -> SQLiteConnection {
    let path = url.path(percentEncoded: false)
    let directory = url.deletingLastPathComponent()
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
        throw StateStoreError.cannotCreateDirectory(path: directory.path(percentEncoded: false), reason: "\(error)")
    }
    let connection = try SQLiteConnection(path: path)

    let found = try refusingCorruption(path) { () throws(SQLiteError) in try userVersion(of: connection) }
    guard found <= migrations.count else {
        throw StateStoreError.newerSchema(path: path, found: found, supported: migrations.count)
    }
    let problems = try refusingCorruption(path) { () throws(SQLiteError) in try quickCheck(connection) }
    guard problems == ["ok"] else {
        throw StateStoreError.corrupt(path: path, detail: problems.prefix(3).joined(separator: "; "))
    }

    // WAL lets readers (a `history` command) run while gc is writing deletions.
    try connection.execute("PRAGMA journal_mode = WAL")
    if found < migrations.count {
        try migrate(connection, to: migrations)
    }
    return connection
}

private func migrate(_ connection: SQLiteConnection, to migrations: [Migration]) throws {
    try connection.transaction {
        // Read again under the write lock: another process may have migrated in the meantime.
        let current = try userVersion(of: connection)
        guard current <= migrations.count else {
            throw StateStoreError.newerSchema(path: connection.path, found: current, supported: migrations.count)
        }
        for (offset, migration) in migrations.enumerated().dropFirst(current) {
            do throws(SQLiteError) {
                try connection.execute(migration.sql)
            } catch {
                throw StateStoreError.migrationFailed(path: connection.path, version: offset + 1, name: migration.name, cause: error)
            }
        }
        // PRAGMA takes no parameters; the value is an Int, so interpolation is safe.
        try connection.execute("PRAGMA user_version = \(migrations.count)")
    }
}

private func userVersion(of connection: SQLiteConnection) throws(SQLiteError) -> Int {
    let statement = try connection.prepare("PRAGMA user_version")
    try statement.step()
    return Int(try statement.int64(at: 0))
}

/// `quick_check` rather than `integrity_check`: it still finds damaged pages and records, in
/// linear time, by skipping the index-against-table and UNIQUE checks that make the full
/// check O(N log N) on every open.
private func quickCheck(_ connection: SQLiteConnection) throws(SQLiteError) -> [String] {
    let statement = try connection.prepare("PRAGMA quick_check")
    var lines: [String] = []
    while try statement.step() {
        lines.append(try statement.string(at: 0))
    }
    return lines
}

/// Reports SQLite's "not a database" and "malformed" failures as a damaged file, and any
/// other failure (permissions, locking) as itself.
private func refusingCorruption<T>(_ path: String, _ body: () throws(SQLiteError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        guard case .statementFailed(_, _, let code, let message) = error, code == SQLITE_CORRUPT || code == SQLITE_NOTADB else {
            throw error
        }
        throw StateStoreError.corrupt(path: path, detail: message)
    }
}
