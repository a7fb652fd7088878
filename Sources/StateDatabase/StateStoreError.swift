/// Why the state database could not be opened or answer a request.
public enum StateStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The parent directory of the database file could not be created.
    case cannotCreateDirectory(path: String, reason: String)
    /// A newer regkeeper has migrated this database; an older build must not write to a
    /// schema it does not know.
    case newerSchema(path: String, found: Int, supported: Int)
    /// The file is not an SQLite database or fails its integrity check. It is left as found
    /// so that nothing is lost before someone looks at it.
    case corrupt(path: String, detail: String)
    case migrationFailed(path: String, version: Int, name: String, cause: SQLiteError)
    case noSuchRun(RunID)
    /// A column holds a value this build cannot interpret, such as an unknown run outcome.
    case invalidStoredValue(path: String, column: String, value: String)

    public var description: String {
        switch self {
        case .cannotCreateDirectory(let path, let reason):
            "cannot create directory \(path) for the state database: \(reason)"
        case .newerSchema(let path, let found, let supported):
            "state database \(path) has schema version \(found), but this regkeeper only knows up to \(supported); use a newer regkeeper (the file was not changed)"
        case .corrupt(let path, let detail):
            "state database \(path) is damaged or not an SQLite database (\(detail)); it was not changed, move it aside to start a new history"
        case .migrationFailed(let path, let version, let name, let cause):
            "upgrading state database \(path) to schema version \(version) (\(name)) failed, nothing was changed: \(cause)"
        case .noSuchRun(let id):
            "no run \(id) in the state database"
        case .invalidStoredValue(let path, let column, let value):
            "state database \(path) holds \(value.debugDescription) in \(column), which this regkeeper does not understand"
        }
    }
}
