import Foundation

/// regkeeper's own state (run history, and what later tools add) in one SQLite file.
///
/// The actor is the only owner of the connection, so every tool task can share one store and
/// SQLite never sees two threads at once. Methods are synchronous inside the actor: with no
/// suspension points, one call always finishes before the next starts, so a transaction never
/// sees another caller's statements.
public actor StateStore {
    let connection: SQLiteConnection

    /// Opens the database at `url`, creating it and its directory if missing, and upgrades its
    /// schema. Refuses, without changing the file, a database written by a newer regkeeper
    /// (`StateStoreError.newerSchema`) and a damaged one (`StateStoreError.corrupt`).
    public static func open(at url: URL) throws -> StateStore {
        try StateStore(connection: openMigratedDatabase(at: url, migrations: Migration.all))
    }

    init(connection: SQLiteConnection) {
        self.connection = connection
    }
}
