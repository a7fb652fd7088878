internal import CSQLite

/// The single owner of one `sqlite3` handle, closed when the connection is released.
///
/// Opened without SQLite's per-connection mutex (`SQLITE_OPEN_NOMUTEX`): the connection is
/// not `Sendable`, so Swift already guarantees one owner (in practice one actor) uses it at a
/// time, and the mutex would only add cost.
public final class SQLiteConnection {
    let handle: OpaquePointer
    /// The database file, kept for error messages.
    public let path: String

    /// Opens or creates the database file and turns on foreign-key enforcement, which SQLite
    /// leaves off by default for backward compatibility.
    ///
    /// Nothing is read from the file here, so a damaged or foreign file is only detected by the
    /// first statement; that lets a caller inspect a file before deciding to write to it.
    ///
    /// - Parameter busyTimeout: how long a statement waits for another process's lock before
    ///   failing with `SQLITE_BUSY`.
    public init(path: String, busyTimeout: Duration = .seconds(5)) throws(SQLiteError) {
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard code == SQLITE_OK, let opened else {
            // SQLite allocates a handle even when opening fails, so the message is in it and it must be closed.
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(opened)
            throw .cannotOpen(path: path, code: code, message: message)
        }
        handle = opened
        self.path = path
        let milliseconds = min(max(busyTimeout / .milliseconds(1), 0), Double(Int32.max))
        sqlite3_busy_timeout(handle, Int32(milliseconds))
        try execute("PRAGMA foreign_keys = ON")
    }

    deinit {
        // Statements hold their connection strongly, so none is left unfinalized here.
        sqlite3_close_v2(handle)
    }

    /// Closing leaves what was committed in the write-ahead log instead of copying it into the
    /// database first (a checkpoint: two fsyncs and the page copies, which a command otherwise
    /// waits for at its very end). The next connection that checkpoints (any commit once the
    /// log holds 1,000 pages, or any other command's close) moves it; until then it is read
    /// from the log, which is as durable as each commit's `synchronous` made it.
    public func leaveWriteAheadLogOnClose() throws(SQLiteError) {
        let code = csqlite_leave_wal_on_close(handle)
        guard code == SQLITE_OK else { throw error(code: code, sql: "sqlite3_db_config(SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE)") }
    }

    /// Runs one or more semicolon-separated statements that bind nothing and return no rows
    /// that matter (schema scripts, pragmas).
    public func execute(_ sql: String) throws(SQLiteError) {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error(code: code, sql: sql) }
    }

    /// Compiles one statement for repeated binding and stepping.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        var prepared: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &prepared, nil)
        guard code == SQLITE_OK else { throw error(code: code, sql: sql) }
        guard let prepared else {
            throw .statementFailed(path: path, sql: sql, code: SQLITE_MISUSE, message: "the text holds no SQL statement")
        }
        return Statement(handle: prepared, connection: self, sql: sql)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws.
    ///
    /// IMMEDIATE takes the write lock up front: a deferred transaction that reads first and
    /// writes later can fail with `SQLITE_BUSY` midway when another process writes in between,
    /// which `busy_timeout` cannot retry.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // Some failures (SQLITE_FULL, SQLITE_IOERR, …) already rolled the transaction back;
            // a second ROLLBACK would then fail and hide the error that matters.
            if sqlite3_get_autocommit(handle) == 0 {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// The rowid assigned by the most recent successful INSERT on this connection.
    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE on this connection.
    var changes: Int { Int(sqlite3_changes64(handle)) }

    func error(code: Int32, sql: String) -> SQLiteError {
        .statementFailed(path: path, sql: sql, code: code, message: String(cString: sqlite3_errmsg(handle)))
    }
}
