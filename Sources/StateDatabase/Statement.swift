import Foundation
internal import CSQLite

/// The single owner of one prepared `sqlite3_stmt`, finalized when the statement is released.
///
/// Parameter and column indexes follow SQLite: parameters count from 1, columns from 0.
/// Reuse a statement for many rows by calling `reset()` before binding the next one.
public final class Statement {
    let handle: OpaquePointer
    /// Held strongly so the database cannot be closed under an unfinalized statement.
    let connection: SQLiteConnection
    /// The statement's text, kept for error messages.
    public let sql: String

    init(handle: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    // MARK: Binding

    public func bind(_ value: Int64?, at index: Int) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try check(sqlite3_bind_int64(handle, Int32(clamping: index), value))
    }

    public func bind(_ value: Double?, at index: Int) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try check(sqlite3_bind_double(handle, Int32(clamping: index), value))
    }

    public func bind(_ value: String?, at index: Int) throws(SQLiteError) {
        guard var value else { return try bindNull(at: index) }
        let position = Int32(clamping: index)
        let code = value.withUTF8 { utf8 in
            // An empty string may have no storage, and a NULL pointer would bind SQL NULL instead of ''.
            guard let start = utf8.baseAddress else {
                return sqlite3_bind_text(handle, position, "", 0, csqlite_transient())
            }
            return start.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text64(handle, position, $0, UInt64(utf8.count), csqlite_transient(), UInt8(SQLITE_UTF8))
            }
        }
        try check(code)
    }

    public func bind(_ value: [UInt8]?, at index: Int) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try bindBytes(value, at: index)
    }

    public func bind(_ value: Data?, at index: Int) throws(SQLiteError) {
        guard let value else { return try bindNull(at: index) }
        try bindBytes(value, at: index)
    }

    public func bindNull(at index: Int) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, Int32(clamping: index)))
    }

    private func bindBytes(_ bytes: some ContiguousBytes, at index: Int) throws(SQLiteError) {
        let position = Int32(clamping: index)
        let code = bytes.withUnsafeBytes { raw in
            // A NULL pointer would bind SQL NULL; an empty blob must stay an empty blob.
            guard let start = raw.baseAddress, !raw.isEmpty else {
                return sqlite3_bind_zeroblob(handle, position, 0)
            }
            return sqlite3_bind_blob64(handle, position, start, UInt64(raw.count), csqlite_transient())
        }
        try check(code)
    }

    // MARK: Running

    /// Advances to the next result row; false once the statement has run to completion.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(code: code, sql: sql)
        }
    }

    /// Rewinds the statement so it can be bound and run again; earlier bindings are kept.
    public func reset() {
        // sqlite3_reset repeats the error of the last step, which step() already threw.
        _ = sqlite3_reset(handle)
    }

    // MARK: Reading columns of the current row

    public func isNull(at column: Int) -> Bool {
        sqlite3_column_type(handle, Int32(clamping: column)) == SQLITE_NULL
    }

    public func int64(at column: Int) throws(SQLiteError) -> Int64 {
        sqlite3_column_int64(handle, try position(of: column, holding: SQLITE_INTEGER))
    }

    /// Accepts INTEGER as well, because SQLite stores whole-valued REALs as integers in
    /// expressions and columns without REAL affinity.
    public func double(at column: Int) throws(SQLiteError) -> Double {
        sqlite3_column_double(handle, try position(of: column, holding: SQLITE_FLOAT, SQLITE_INTEGER))
    }

    public func string(at column: Int) throws(SQLiteError) -> String {
        let position = try position(of: column, holding: SQLITE_TEXT)
        // sqlite3_column_bytes must come after sqlite3_column_text, which may convert the value.
        guard let text = sqlite3_column_text(handle, position) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, position))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    public func bytes(at column: Int) throws(SQLiteError) -> [UInt8] {
        let position = try position(of: column, holding: SQLITE_BLOB)
        guard let blob = sqlite3_column_blob(handle, position) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, position))
        return Array(UnsafeRawBufferPointer(start: blob, count: count))
    }

    public func data(at column: Int) throws(SQLiteError) -> Data {
        Data(try bytes(at: column))
    }

    private func position(of column: Int, holding accepted: Int32...) throws(SQLiteError) -> Int32 {
        let position = Int32(clamping: column)
        let found = sqlite3_column_type(handle, position)
        guard accepted.contains(found) else {
            throw .columnTypeMismatch(
                path: connection.path, sql: sql, column: column,
                expected: Self.storageClassName(accepted[0]), found: Self.storageClassName(found))
        }
        return position
    }

    private static func storageClassName(_ type: Int32) -> String {
        switch type {
        case SQLITE_INTEGER: "INTEGER"
        case SQLITE_FLOAT: "REAL"
        case SQLITE_TEXT: "TEXT"
        case SQLITE_BLOB: "BLOB"
        default: "NULL"
        }
    }

    private func check(_ code: Int32) throws(SQLiteError) {
        guard code == SQLITE_OK else { throw connection.error(code: code, sql: sql) }
    }
}
