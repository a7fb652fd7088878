import TarFormat
import Testing

@Suite struct RefusalTests {
    @Test func absolutePath() {
        #expect(throws: TarError.absolutePath(member: "/etc/passwd", offset: 0)) {
            try readTar(Craft.header("/etc/passwd") + Craft.end)
        }
    }

    @Test(arguments: ["../escape", "a/../../escape", "a/b/..", ".."])
    func parentComponent(path: String) {
        #expect(throws: TarError.parentDirectoryComponent(member: path, offset: 512)) {
            try readTar(Craft.header("ok") + Craft.header(path) + Craft.end)
        }
    }

    @Test func parentComponentInPaxPath() {
        let path = "blobs/" + String(repeating: "d", count: 120) + "/../../../etc/cron.d/x"
        #expect(throws: TarError.parentDirectoryComponent(member: path, offset: 1024)) {
            try readTar(Craft.pax([("path", path)]) + Craft.header("innocent") + Craft.end)
        }
    }

    @Test func parentComponentInGNULongName() {
        let path = String(repeating: "e", count: 150) + "/../../x"
        #expect(throws: TarError.parentDirectoryComponent(member: path, offset: 1024)) {
            try readTar(Craft.longName(path) + Craft.header("././@LongLink", magic: "ustar ", version: " \u{0}") + Craft.end)
        }
    }

    @Test(arguments: [
        ("1", TarError.MemberType.hardlink), ("2", .symlink), ("3", .characterDevice), ("4", .blockDevice),
        ("6", .fifo), ("S", .sparse), ("V", .other(typeflag: UInt8(ascii: "V"))),
    ] as [(Character, TarError.MemberType)])
    func unsupportedMember(type: Character, expected: TarError.MemberType) {
        #expect(throws: TarError.unsupportedMember(member: "dev/thing", type: expected, offset: 0)) {
            try readTar(Craft.header("dev/thing", type: type, linkname: "/etc/shadow") + Craft.end)
        }
    }

    @Test func gnuPaxSparseFileIsRefused() {
        let archive = Craft.pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "disk.img")])
            + Craft.header("./GNUSparseFile.0/disk.img", size: 0) + Craft.end
        #expect(throws: TarError.unsupportedMember(member: "./GNUSparseFile.0/disk.img", type: .sparse, offset: 1024)) {
            try readTar(archive)
        }
    }

    @Test func truncatedContent() throws {
        let archive = Craft.header("dir", type: "5") + Craft.header("dir/blob", size: 2000) + randomBytes(700)
        let reader = TarReader(source: arraySource(archive))
        _ = try reader.next()
        #expect(try reader.next()?.size == 2000)
        #expect(throws: TarError.truncated(member: "dir/blob", offset: 512)) {
            try reader.readContent { _ in }
        }
    }

    @Test func truncatedContentWhenSkipped() {
        let archive = Craft.header("blob", size: 2000) + randomBytes(1024)
        #expect(throws: TarError.truncated(member: "blob", offset: 0)) {
            let reader = TarReader(source: arraySource(archive))
            _ = try reader.next()
            _ = try reader.next()
        }
    }

    @Test func truncatedPadding() {
        let archive = Craft.header("blob", size: 100) + randomBytes(200)
        #expect(throws: TarError.truncated(member: "blob", offset: 0)) { try readTar(archive) }
    }

    @Test func truncatedHeader() {
        let archive = Craft.header("a") + Array(Craft.header("b").prefix(300))
        #expect(throws: TarError.truncated(member: "(header)", offset: 512)) { try readTar(archive) }
    }

    @Test func truncatedExtendedHeader() {
        let archive = Craft.header("a") + Array(Craft.pax([("path", "long")]).prefix(520))
        #expect(throws: TarError.truncated(member: "PaxHeaders/x", offset: 512)) { try readTar(archive) }
    }

    @Test func missingEndOfArchive() {
        #expect(throws: TarError.missingEndOfArchive(offset: 1024)) {
            try readTar(Craft.header("a", size: 3) + Craft.data([1, 2, 3]))
        }
    }

    @Test func badChecksum() {
        var second = Craft.header("manifest")
        second[0] = UInt8(ascii: "M")
        #expect(throws: TarError.badChecksum(member: "Manifest", offset: 512)) {
            try readTar(Craft.header("ok") + second + Craft.end)
        }
    }

    @Test func garbageIsNotATar() {
        #expect(throws: TarError.notATar(offset: 0)) { try readTar(randomBytes(10_000)) }
        #expect(throws: TarError.notATar(offset: 0)) {
            try readTar(Array(String(repeating: "{\"schemaVersion\": 2}\n", count: 100).utf8))
        }
        #expect(throws: TarError.notATar(offset: 0)) { try readTar([]) }
    }

    @Test func emptyArchiveIsNotGarbage() throws {
        var archive = [UInt8]()
        let writer = TarWriter { archive.append(contentsOf: $0) }
        try writer.finish()
        #expect(archive == Craft.end)
        #expect(try readTar(archive).isEmpty)
    }

    @Test func truncatedAfterExtendedHeader() {
        #expect(throws: TarError.truncated(member: "cut", offset: 1536)) {
            try readTar(Craft.header("a") + Craft.pax([("path", "cut")]))
        }
    }

    @Test func malformedPaxRecord() {
        let bad = Array("99 path=x\n".utf8)
        let archive = Craft.header("PaxHeaders/x", type: "x", size: bad.count) + Craft.data(bad) + Craft.header("a") + Craft.end
        #expect(throws: TarError.malformedHeader(member: "PaxHeaders/x", offset: 0, reason: "bad pax record")) {
            try readTar(archive)
        }
    }

    @Test func writerRefusesWhatReaderWould() {
        let writer = TarWriter { _ in }
        let time = TarTimestamp(seconds: 1)
        #expect(throws: TarError.absolutePath(member: "/abs", offset: 0)) {
            try writer.addFile("/abs", mtime: time, contents: [])
        }
        #expect(throws: TarError.parentDirectoryComponent(member: "a/../b", offset: 0)) {
            try writer.addDirectory("a/../b", mtime: time)
        }
        #expect(throws: TarError.emptyPath(offset: 0)) { try writer.addFile("./", mtime: time, contents: []) }
        #expect(throws: TarError.emptyPath(offset: 0)) { try writer.addFile("", mtime: time, contents: []) }
    }

    @Test func writerRefusesShortContent() {
        let writer = TarWriter { _ in }
        var given = 0
        #expect(throws: TarError.contentShorterThanDeclared(member: "blob", declared: 10_000, written: 6_000)) {
            try writer.addFile("./blob", mtime: TarTimestamp(seconds: 1), size: 10_000) { region in
                let n = min(region.count, 3_000, 6_000 - given)
                given += n
                return n
            }
        }
    }

    @Test func writerRefusesRenderedContentNotAsDeclared() {
        let piece = [UInt8](repeating: 1, count: 600)
        #expect(throws: TarError.contentShorterThanDeclared(member: "index", declared: 1_000, written: 600)) {
            try TarWriter { _ in }.addRenderedFile("index", mtime: TarTimestamp(seconds: 1), size: 1_000) { write in
                try piece.withUnsafeBytes { try write($0) }
            }
        }
        #expect(throws: TarError.contentLongerThanDeclared(member: "index", declared: 1_000)) {
            try TarWriter { _ in }.addRenderedFile("index", mtime: TarTimestamp(seconds: 1), size: 1_000) { write in
                try piece.withUnsafeBytes { try write($0) }
                try piece.withUnsafeBytes { try write($0) }
            }
        }
    }

    @Test func errorsNameMemberAndOffset() {
        let text = TarError.unsupportedMember(member: "x/y", type: .symlink, offset: 1536).description
        #expect(text.contains("symbolic link") && text.contains("x/y") && text.contains("1536"))
    }
}
