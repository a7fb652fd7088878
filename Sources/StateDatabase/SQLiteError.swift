internal import CSQLite

/// A failure reported by SQLite, with enough context to act on it from a log line alone:
/// which database, which statement, and SQLite's own explanation.
public enum SQLiteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `sqlite3_open_v2` failed, so there is no statement to name.
    case cannotOpen(path: String, code: Int32, message: String)
    /// SQLite rejected a statement while preparing, binding or running it.
    case statementFailed(path: String, sql: String, code: Int32, message: String)
    /// A column held a different storage class than the caller read it as; SQLite would
    /// silently convert (NULL to 0, text to a number), which hides schema mistakes.
    case columnTypeMismatch(path: String, sql: String, column: Int, expected: String, found: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code, let message):
            "cannot open SQLite database \(path): \(message) (\(Self.name(of: code)))"
        case .statementFailed(let path, let sql, let code, let message):
            "SQLite error in \(path): \(message) (\(Self.name(of: code))) while running: \(sql)"
        case .columnTypeMismatch(let path, let sql, let column, let expected, let found):
            "SQLite column \(column) holds \(found) where \(expected) was expected, in \(path) while running: \(sql)"
        }
    }

    private static func name(of code: Int32) -> String {
        "code \(code): \(String(cString: sqlite3_errstr(code)))"
    }
}
