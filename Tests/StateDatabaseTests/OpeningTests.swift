import Foundation
@testable import StateDatabase
import Testing
import StoreTestSupport

@Suite struct OpeningTests {
    @Test func createsDirectoryAndFileAndMigratesFromEmpty() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "nested/deeper/state.db")
            _ = try StateStore.open(at: url)

            #expect(FileManager.default.fileExists(atPath: url.path(percentEncoded: false)))
            let connection = try SQLiteConnection(path: url.path(percentEncoded: false))
            #expect(try integer(connection, "PRAGMA user_version") == Int64(Migration.all.count))
            #expect(try text(connection, "PRAGMA journal_mode") == "wal")
            let tables = try texts(connection, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            #expect(tables.contains("runs"))
            #expect(tables.contains("deletions"))
        }
    }

    @Test func reopeningKeepsData() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let id: RunID
            do {
                let store = try StateStore.open(at: url)
                id = try await store.beginRun(command: "gc", arguments: "regkeeper gc /srv/registry")
                try await store.recordDeletions([sampleDeletion(1)], run: id)
                try await store.finishRun(id, outcome: .success, counts: ["blobs": 1], bytes: 1024)
            }
            let reopened = try StateStore.open(at: url)
            let detail = try await reopened.run(id)
            #expect(detail.summary.outcome == .success)
            #expect(detail.deletions == [sampleDeletion(1)])
        }
    }

    @Test func refusesNewerSchemaWithoutTouchingTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let path = url.path(percentEncoded: false)
            _ = try StateStore.open(at: url)
            try SQLiteConnection(path: path).execute("PRAGMA user_version = 99")
            let before = try Data(contentsOf: url)

            #expect(throws: StateStoreError.newerSchema(path: path, found: 99, supported: Migration.all.count)) {
                try StateStore.open(at: url)
            }
            #expect(try Data(contentsOf: url) == before)
        }
    }

    @Test func refusesRandomBytesWithoutTouchingTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            var generator = SystemRandomNumberGenerator()
            let garbage = Data((0..<8192).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
            try garbage.write(to: url)

            try expectCorrupt(at: url)
            #expect(try Data(contentsOf: url) == garbage)
        }
    }

    @Test func refusesTruncatedDatabaseWithoutTouchingTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            try await populate(url)
            let whole = try Data(contentsOf: url)
            let truncated = whole.prefix(whole.count / 2)
            try truncated.write(to: url)

            try expectCorrupt(at: url)
            #expect(try Data(contentsOf: url) == truncated)
        }
    }

    /// The header and schema are intact, so opening alone would not notice; `quick_check` does.
    @Test func refusesDatabaseWithDamagedPageWithoutTouchingTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            try await populate(url)
            var damaged = try Data(contentsOf: url)
            let pageSize = 4096
            let middlePage = (damaged.count / pageSize / 2) * pageSize
            damaged.replaceSubrange(middlePage..<middlePage + pageSize, with: Data(repeating: 0xA5, count: pageSize))
            try damaged.write(to: url)

            try expectCorrupt(at: url)
            #expect(try Data(contentsOf: url) == damaged)
        }
    }

    /// A file SQLite reads without complaint but whose rows break its own schema: only the
    /// check's report, not an SQLite error, says what is wrong.
    @Test func refusesDatabaseFailingQuickCheckWithoutTouchingTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let path = url.path(percentEncoded: false)
            try SQLiteConnection(path: path).execute("""
                CREATE TABLE notes (body TEXT);
                INSERT INTO notes VALUES (NULL);
                PRAGMA writable_schema = ON;
                UPDATE sqlite_schema SET sql = 'CREATE TABLE notes (body TEXT NOT NULL)' WHERE name = 'notes';
                PRAGMA writable_schema = OFF;
                """)
            let before = try Data(contentsOf: url)

            #expect(throws: StateStoreError.corrupt(path: path, detail: "NULL value in notes.body")) {
                try StateStore.open(at: url)
            }
            #expect(try Data(contentsOf: url) == before)
        }
    }

    @Test func appliesOnlyMigrationsTheDatabaseHasNotSeen() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let first = Migration(name: "first", sql: "CREATE TABLE items (name TEXT NOT NULL);")
            let second = Migration(name: "second", sql: "ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 7;")
            do {
                let connection = try openMigratedDatabase(at: url, migrations: [first])
                try connection.execute("INSERT INTO items (name) VALUES ('kept')")
            }

            let connection = try openMigratedDatabase(at: url, migrations: [first, second])
            #expect(try integer(connection, "PRAGMA user_version") == 2)
            #expect(try text(connection, "SELECT name || ':' || size FROM items") == "kept:7")
        }
    }

    @Test func failedMigrationChangesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let path = url.path(percentEncoded: false)
            let first = Migration(name: "first", sql: "CREATE TABLE items (name TEXT);")
            let broken = Migration(name: "broken", sql: "CREATE TABLE half (x); THIS IS NOT SQL;")
            _ = try openMigratedDatabase(at: url, migrations: [first])

            let error = #expect(throws: StateStoreError.self) {
                try openMigratedDatabase(at: url, migrations: [first, broken])
            }
            guard case .migrationFailed(path, 2, "broken", .statementFailed(_, let sql, _, let message)) = error else {
                Issue.record("unexpected error \(String(describing: error))")
                return
            }
            #expect(sql == broken.sql)
            #expect(message.contains("syntax error"))

            let connection = try SQLiteConnection(path: path)
            #expect(try integer(connection, "PRAGMA user_version") == 1)
            #expect(try texts(connection, "SELECT name FROM sqlite_schema WHERE name = 'half'").isEmpty)
        }
    }

    /// A few thousand deletions make the file span many pages, so there is a middle to damage.
    private func populate(_ url: URL) async throws {
        let store = try StateStore.open(at: url)
        let id = try await store.beginRun(command: "gc", arguments: "regkeeper gc")
        try await store.recordDeletions((0..<3000).map(sampleDeletion), run: id)
    }

    private func expectCorrupt(at url: URL) throws {
        let error = #expect(throws: StateStoreError.self) { try StateStore.open(at: url) }
        guard case .corrupt(let path, _) = error else {
            Issue.record("expected a corrupt-database error, got \(String(describing: error))")
            return
        }
        #expect(path == url.path(percentEncoded: false))
    }
}
