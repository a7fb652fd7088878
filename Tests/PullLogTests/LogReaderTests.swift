import Foundation
@testable import PullLog
import RegistryModel
import Testing

/// Incremental reading: what a second import of a log reads after it grew, was rotated,
/// compressed, truncated, or ends in a line still being written.
struct LogReaderTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pull-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    static let digestA = Digest("sha256:" + String(repeating: "a", count: 64))!
    static let digestB = Digest("sha256:" + String(repeating: "b", count: 64))!

    /// An access-log line: a pull of `app:<tag>` (or another request) at 09:00:<second>.
    static func line(second: Int, tag: String = "v1", method: String = "GET", status: Int = 200) -> String {
        let stamp = String(format: "30/Nov/2026:09:%02d:%02d +0000", second / 60, second % 60)
        return #"127.0.0.1 - - [\#(stamp)] "\#(method) /v2/app/manifests/\#(tag) HTTP/1.1" \#(status) 248 "" "skopeo/1.9.3""# + "\n"
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func append(_ path: String, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    /// Every tag pointed to digest A since 08:00; tag `v2` moved to B at 09:00:30.
    func table() -> PullTable {
        PullTable { _, tag in
            let eight = 1_796_025_600.0  // 2026-11-30T08:00:00Z
            switch tag.value {
            case "v1": return TagTimeline(moves: [.init(at: eight, digest: Self.digestA)], current: .init(at: eight, digest: Self.digestA))
            case "v2": return TagTimeline(
                moves: [.init(at: eight, digest: Self.digestA), .init(at: eight + 3630, digest: Self.digestB)],
                current: .init(at: eight + 3630, digest: Self.digestB))
            default: return nil
            }
        }
    }

    /// One import: open, look up the position (here handed in), read.
    func read(_ path: String, after position: LogPosition?, into table: inout PullTable) throws -> LogReading {
        try LogReader(input: path, bufferSize: 4096).read(after: position, into: &table)
    }

    @Test func sameFileTwiceReadsNothingNew() throws {
        let path = try write("access.log", (0..<10).map { Self.line(second: $0) }.joined())
        var table = table()
        let first = try read(path, after: nil, into: &table)
        #expect(first.pulls == 10 && first.to.lines == 10 && first.malformed == 0)
        let again = try read(path, after: first.to, into: &table)
        #expect(again.pulls == 0 && again.entries == 0 && again.from == first.to && again.to == first.to)
        #expect(again.fingerprint == first.fingerprint)
    }

    @Test func grownFileReadsOnlyTheNewLines() throws {
        let path = try write("access.log", (0..<3).map { Self.line(second: $0) }.joined())
        var table = table()
        let first = try read(path, after: nil, into: &table)
        try append(path, Self.line(second: 50) + "garbage\n" + Self.line(second: 51, method: "HEAD"))
        let second = try read(path, after: first.to, into: &table)
        #expect(second.from.lines == 3 && second.to.lines == 6)
        #expect(second.pulls == 1 && second.entries == 2)
        #expect(second.malformed == 1 && second.malformedLines == [5], "line numbers are the file's, not the import's")
        #expect(second.firstEntry == 1_796_029_250 && second.lastEntry == 1_796_029_251)
    }

    @Test func lastLineWithoutNewlineWaitsForTheNextImport() throws {
        let whole = Self.line(second: 1)
        let path = try write("access.log", Self.line(second: 0) + whole.prefix(40))
        var table = table()
        let first = try read(path, after: nil, into: &table)
        #expect(first.pulls == 1 && first.to.lines == 1 && first.unfinishedBytes == 40 && first.malformed == 0)
        try append(path, String(whole.dropFirst(40)))
        let second = try read(path, after: first.to, into: &table)
        #expect(second.pulls == 1 && second.to.lines == 2 && second.unfinishedBytes == 0 && second.malformed == 0)
    }

    @Test func rotatedAndCompressedFileGoesOnWhereItStopped() throws {
        let path = try write("access.log", (0..<5).map { Self.line(second: $0) }.joined())
        var table = table()
        let first = try read(path, after: nil, into: &table)
        // The registry writes on after the import, then logrotate renames and compresses the file.
        try append(path, Self.line(second: 10) + Self.line(second: 11))
        let rotated = directory.appendingPathComponent("access.log.1").path
        try FileManager.default.moveItem(atPath: path, toPath: rotated)
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        gzip.arguments = [rotated]
        try gzip.run()
        gzip.waitUntilExit()
        let compressed = try LogReader(input: rotated + ".gz", bufferSize: 4096)
        #expect(compressed.fingerprint == first.fingerprint, "the first line names the log, whatever its file")
        let second = try compressed.read(after: first.to, into: &table)
        #expect(second.from.lines == 5 && second.to.lines == 7 && second.pulls == 2)
        // A new file is a new log.
        let fresh = try write("access.log", Self.line(second: 20))
        let third = try LogReader(input: fresh, bufferSize: 4096)
        #expect(third.fingerprint != first.fingerprint)
        #expect(try third.read(after: nil, into: &table).pulls == 1)
    }

    @Test func gzipOfManyMembersAndDamage() throws {
        let path = try write("a.log", Self.line(second: 0) + Self.line(second: 1))
        let other = try write("b.log", Self.line(second: 2))
        for file in [path, other] {
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
            gzip.arguments = [file]
            try gzip.run()
            gzip.waitUntilExit()
        }
        let joined = try Data(contentsOf: URL(fileURLWithPath: path + ".gz")) + Data(contentsOf: URL(fileURLWithPath: other + ".gz"))
        let both = directory.appendingPathComponent("both.log.gz")
        try joined.write(to: both)
        var table = table()
        #expect(try read(both.path, after: nil, into: &table).pulls == 3, "members one after another read as one stream, as zcat does")

        let cut = directory.appendingPathComponent("cut.log.gz")
        try joined.prefix(joined.count - 30).write(to: cut)
        #expect(throws: PullLogError.self) { try read(cut.path, after: nil, into: &table) }
        var damaged = joined
        damaged[20] ^= 0xFF
        damaged[21] ^= 0xFF
        let bad = directory.appendingPathComponent("bad.log.gz")
        try damaged.write(to: bad)
        let error = #expect(throws: PullLogError.self) { try read(bad.path, after: nil, into: &table) }
        #expect(error?.description.hasPrefix(bad.path + ": gzip:") == true, "\(String(describing: error))")
    }

    @Test func truncatedFileIsReadFromTheStart() throws {
        let path = try write("access.log", (0..<5).map { Self.line(second: $0) }.joined())
        var table = table()
        let first = try read(path, after: nil, into: &table)
        // copytruncate, and the same first line written again (as a test can, a registry would not).
        _ = try write("access.log", Self.line(second: 0) + Self.line(second: 7))
        let second = try read(path, after: first.to, into: &table)
        #expect(second.restarted?.contains("shorter") == true)
        #expect(second.from.lines == 0 && second.to.lines == 2 && second.pulls == 2)
    }

    @Test func garbageLinesAreCountedWithTheirNumbers() throws {
        let lines = [Self.line(second: 0), "\u{1}\u{2}binary\n", "\n", Self.line(second: 1), "{\"half\":\n", "panic: oops\n"]
        let path = try write("access.log", lines.joined() + String(repeating: "x", count: 10_000) + "\n" + Self.line(second: 2))
        var table = table()
        let reading = try read(path, after: nil, into: &table)
        #expect(reading.pulls == 3)
        #expect(reading.malformed == 4)
        #expect(reading.malformedLines == [2, 5, 6, 7], "a line longer than the buffer is one malformed line")
        #expect(reading.to.lines == 8)
    }

    @Test func pullsByTagResolveToTheManifestOfTheirMoment() throws {
        // v2 pulled at 09:00:10 (digest A) and 09:01:00 (digest B); v1 at 09:00:05; by digest once.
        let text = Self.line(second: 5) + Self.line(second: 10, tag: "v2") + Self.line(second: 60, tag: "v2")
            + Self.line(second: 61, tag: Self.digestB.description) + Self.line(second: 62, tag: "gone") + Self.line(second: 63, tag: "Not_Valid!")
        let path = try write("access.log", text)
        var table = table()
        _ = try read(path, after: nil, into: &table)
        let records = Set(table.records)
        let nine = 1_796_029_200.0
        #expect(records == [
            PullRecord(repository: RepositoryName("app")!, digest: Self.digestA, tag: Tag("v1"), lastPulled: nine + 5, exact: true),
            PullRecord(repository: RepositoryName("app")!, digest: Self.digestA, tag: Tag("v2"), lastPulled: nine + 10, exact: false),
            PullRecord(repository: RepositoryName("app")!, digest: Self.digestB, tag: Tag("v2"), lastPulled: nine + 60, exact: true),
            PullRecord(repository: RepositoryName("app")!, digest: Self.digestB, tag: nil, lastPulled: nine + 61, exact: true),
        ])
        #expect(table.unresolvedPulls == 2)
        #expect(table.inexactPulls == 1)
    }

    @Test func twoHalvesReadAsOneFileDoes() throws {
        var lines: [String] = []
        for index in 0..<2000 {
            lines.append(index % 97 == 5 ? "garbage \(index)\n" : Self.line(second: index % 3600, tag: index % 3 == 0 ? "v2" : "v1"))
        }
        let path = try write("access.log", lines.joined() + "unfinished")
        var sequential = table()
        let one = try LogReader(input: path, bufferSize: 4096, parallelThreshold: .max).read(after: nil, into: &sequential)
        var parallel = table()
        let two = try LogReader(input: path, bufferSize: 4096, parallelThreshold: 1).read(after: nil, into: &parallel)
        #expect(one == two)
        #expect(one.malformed == 21 && one.malformedLines.first == 6 && one.to.lines == 2000 && one.unfinishedBytes == 10)
        #expect(Set(sequential.records) == Set(parallel.records))
        #expect(sequential.inexactPulls == parallel.inexactPulls)
        // Resumed halfway, the halves start where the last import stopped.
        let resumed = try LogReader(input: path, bufferSize: 4096, parallelThreshold: 1)
            .read(after: LogPosition(offset: Int64(lines.prefix(1000).joined().utf8.count), lines: 1000), into: &parallel)
        #expect(resumed.from.lines == 1000 && resumed.to == one.to)
        #expect(resumed.malformedLines.first == 1073, "line 1073 holds garbage 1072")
    }

    @Test func directoriesAndMissingFilesAreRefused() throws {
        // Not run against the real stdin here; the CLI tests pipe a log in. A directory is refused.
        #expect(throws: PullLogError.notAFile(input: directory.path)) { try LogReader(input: directory.path) }
        #expect(throws: PullLogError.self) { try LogReader(input: directory.appendingPathComponent("missing").path) }
    }
}
