import Foundation
import StateDatabase

func sampleDeletion(_ index: Int) -> DeletionRecord {
    DeletionRecord(
        repository: "library/app\(index % 7)",
        tag: index.isMultiple(of: 3) ? "v\(index)" : nil,
        digest: "sha256:" + String(repeating: String(index % 10), count: 64),
        kind: index.isMultiple(of: 2) ? .blob : .layerLink,
        reason: "unreferenced",
        bytes: Int64(index) * 1024,
        path: "docker/registry/v2/blobs/sha256/\(index % 100)/\(index)/data")
}

func integer(_ connection: SQLiteConnection, _ sql: String) throws -> Int64 {
    let statement = try connection.prepare(sql)
    try statement.step()
    return try statement.int64(at: 0)
}

func text(_ connection: SQLiteConnection, _ sql: String) throws -> String {
    let statement = try connection.prepare(sql)
    try statement.step()
    return try statement.string(at: 0)
}

func texts(_ connection: SQLiteConnection, _ sql: String) throws -> [String] {
    let statement = try connection.prepare(sql)
    var values: [String] = []
    while try statement.step() {
        values.append(try statement.string(at: 0))
    }
    return values
}
