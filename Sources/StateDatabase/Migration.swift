/// One forward step of the schema; the database's `PRAGMA user_version` counts how many
/// entries of `Migration.all` it has applied.
struct Migration: Sendable {
    /// Names the step in error messages.
    let name: String
    /// Runs in one transaction with the version bump, so a failing step changes nothing.
    /// Foreign keys are enforced throughout, as SQLite cannot switch them off inside a
    /// transaction.
    let sql: String

    /// Every schema step in order. To change the schema, define a new `Migration` next to the
    /// code that uses it and append it here. Never edit or reorder a shipped entry: databases
    /// in the field have already applied it, and their version number assumes this order.
    static let all: [Migration] = [
        .runHistory,
        .verificationState,
        .pullHistory,
    ]
}
