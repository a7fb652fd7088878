import Foundation
import StateDatabase
import StoreTestSupport
import Testing

@Suite struct SQLiteConnectionTests {
    private struct Abort: Error {}

    @Test func prepareErrorCarriesSQLMessageAndPath() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appending(path: "test.db").path(percentEncoded: false)
            let connection = try SQLiteConnection(path: path)

            let error = #expect(throws: SQLiteError.self) { try connection.prepare("SELEC 1") }
            guard case .statementFailed(path, "SELEC 1", 1, let message) = error else {
                Issue.record("unexpected error \(String(describing: error))")
                return
            }
            #expect(message.contains("syntax error"))
            let description = try #require(error).description
            #expect(description.contains("SELEC 1"))
            #expect(description.contains(path))
            #expect(description.contains("syntax error"))
        }
    }

    @Test func stepErrorCarriesSQLAndMessage() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try SQLiteConnection(path: directory.appending(path: "test.db").path(percentEncoded: false))
            try connection.execute("CREATE TABLE names (name TEXT UNIQUE)")
            let sql = "INSERT INTO names VALUES (?)"
            let insert = try connection.prepare(sql)
            try insert.bind("twice", at: 1)
            try insert.step()
            insert.reset()

            let error = #expect(throws: SQLiteError.self) { try insert.step() }
            guard case .statementFailed(_, sql, 19, let message) = error else {
                Issue.record("unexpected error \(String(describing: error))")
                return
            }
            #expect(message.contains("UNIQUE constraint failed: names.name"))
        }
    }

    @Test func executeErrorCarriesSQLAndMessage() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try SQLiteConnection(path: directory.appending(path: "test.db").path(percentEncoded: false))
            let sql = "CREATE TABLE present (x); INSERT INTO absent VALUES (1);"

            let error = #expect(throws: SQLiteError.self) { try connection.execute(sql) }
            guard case .statementFailed(_, sql, _, let message) = error else {
                Issue.record("unexpected error \(String(describing: error))")
                return
            }
            #expect(message == "no such table: absent")
        }
    }

    @Test func openErrorNamesThePath() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appending(path: "missing/dir/test.db").path(percentEncoded: false)
            let error = #expect(throws: SQLiteError.self) { try SQLiteConnection(path: path) }
            guard case .cannotOpen(path, _, _) = error else {
                Issue.record("unexpected error \(String(describing: error))")
                return
            }
        }
    }

    @Test func transactionRollsBackWhenTheBodyThrows() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try SQLiteConnection(path: directory.appending(path: "test.db").path(percentEncoded: false))
            try connection.execute("CREATE TABLE items (x INTEGER)")

            #expect(throws: Abort.self) {
                try connection.transaction {
                    try connection.execute("INSERT INTO items VALUES (1)")
                    throw Abort()
                }
            }
            #expect(try integer(connection, "SELECT count(*) FROM items") == 0)

            let inserted = try connection.transaction {
                try connection.execute("INSERT INTO items VALUES (2)")
                return "committed"
            }
            #expect(inserted == "committed")
            #expect(try integer(connection, "SELECT sum(x) FROM items") == 2)
        }
    }

    @Test func foreignKeysAreEnforced() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try SQLiteConnection(path: directory.appending(path: "test.db").path(percentEncoded: false))
            try connection.execute("""
                CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent(id));
                """)
            #expect(throws: SQLiteError.self) { try connection.execute("INSERT INTO child VALUES (42)") }
        }
    }

    @Test func boundValuesReadBackUnchanged() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try SQLiteConnection(path: directory.appending(path: "test.db").path(percentEncoded: false))
            try connection.execute("CREATE TABLE cells (i, d, t, empty_text, b, empty_blob, n)")
            let insert = try connection.prepare("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, ?)")
            try insert.bind(Int64.min, at: 1)
            try insert.bind(-0.125, at: 2)
            try insert.bind("ünïcødé\u{0}after-nul", at: 3)
            try insert.bind("", at: 4)
            try insert.bind(Data([0, 1, 254, 255]), at: 5)
            try insert.bind([UInt8](), at: 6)
            try insert.bindNull(at: 7)
            try insert.step()

            let row = try connection.prepare("SELECT * FROM cells")
            #expect(try row.step())
            #expect(try row.int64(at: 0) == Int64.min)
            #expect(try row.double(at: 1) == -0.125)
            #expect(try row.string(at: 2) == "ünïcødé\u{0}after-nul")
            #expect(try row.string(at: 3) == "")
            #expect(try row.data(at: 4) == Data([0, 1, 254, 255]))
            #expect(try row.bytes(at: 5) == [])
            #expect(row.isNull(at: 6))
            #expect(try !row.step())
        }
    }

    @Test func readingAColumnAsTheWrongTypeIsAnError() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appending(path: "test.db").path(percentEncoded: false)
            let connection = try SQLiteConnection(path: path)
            let sql = "SELECT NULL, 'text'"
            let row = try connection.prepare(sql)
            try row.step()

            #expect(throws: SQLiteError.columnTypeMismatch(path: path, sql: sql, column: 0, expected: "INTEGER", found: "NULL")) {
                try row.int64(at: 0)
            }
            #expect(throws: SQLiteError.columnTypeMismatch(path: path, sql: sql, column: 1, expected: "REAL", found: "TEXT")) {
                try row.double(at: 1)
            }
        }
    }

    @Test func bindingOutOfRangeIsAnError() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try SQLiteConnection(path: directory.appending(path: "test.db").path(percentEncoded: false))
            let statement = try connection.prepare("SELECT ?")
            let error = #expect(throws: SQLiteError.self) { try statement.bind(Int64(1), at: 2) }
            guard case .statementFailed(_, "SELECT ?", 25, _) = error else {
                Issue.record("unexpected error \(String(describing: error))")
                return
            }
        }
    }
}
