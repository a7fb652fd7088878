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
    ///
    /// - Parameter checkpointsOnClose: false for a run that writes nothing but verification
    ///   records (which a later run can do without): closing then leaves them in the
    ///   write-ahead log for the next command to checkpoint (`leaveWriteAheadLogOnClose`).
    ///   Every run that records history checkpoints, so its records reach the database file.
    public static func open(at url: URL, checkpointsOnClose: Bool = true) throws -> StateStore {
        let connection = try openMigratedDatabase(at: url, migrations: Migration.all)
        if !checkpointsOnClose { try connection.leaveWriteAheadLogOnClose() }
        return StateStore(connection: connection)
    }

    init(connection: SQLiteConnection) {
        self.connection = connection
    }
}
