import Foundation
import TarFormat
import Testing

@Suite struct TarRoundTripTests {
    static let longPath = (1...6).map { "segment-\($0)-" + String(repeating: "x", count: 22) }.joined(separator: "/") + "/data"

    private func sample() -> [(path: String, content: [UInt8], mtime: TarTimestamp)] {
        [
            ("empty", [], TarTimestamp(seconds: 1_700_000_000)),
            ("one", [42], TarTimestamp(seconds: 1_700_000_001, nanoseconds: 1)),
            ("blocks/511", randomBytes(511), TarTimestamp(seconds: 1_700_000_002, nanoseconds: 999_999_999)),
            ("blocks/512", randomBytes(512), TarTimestamp(seconds: 0)),
            ("blocks/513", randomBytes(513), TarTimestamp(seconds: -2, nanoseconds: 500_000_000)),
            (Self.longPath, randomBytes(3 << 20 | 7), TarTimestamp(seconds: 1_712_345_678, nanoseconds: 123_456_789)),
            ("tags/ünïcödé-tag/current/link", Array("sha256:abc".utf8), TarTimestamp(seconds: 9_000_000_000)),
        ]
    }

    @Test(arguments: [512, 4096, 1 << 20])
    func writerOutputReadsBack(bufferSize: Int) throws {
        var archive = [UInt8]()
        let writer = TarWriter(bufferSize: bufferSize) { archive.append(contentsOf: $0) }
        try writer.addDirectory("blocks", mtime: TarTimestamp(seconds: 1_600_000_000, nanoseconds: 5))
        for (path, content, mtime) in sample() {
            try writer.addFile(path, mode: 0o640, mtime: mtime, contents: content)
        }
        try writer.finish()
        #expect(archive.count % 512 == 0)
        #expect(writer.offset == UInt64(archive.count))

        let entries = try readTar(archive, bufferSize: bufferSize, piece: 777)
        #expect(entries.first?.entry == TarEntry(path: "blocks", kind: .directory, size: 0, mode: 0o755,
                                                 mtime: TarTimestamp(seconds: 1_600_000_000, nanoseconds: 5)))
        let expected = sample().map {
            ReadEntry(entry: TarEntry(path: $0.path, kind: .regularFile, size: UInt64($0.content.count), mode: 0o640,
                                      mtime: $0.mtime),
                      content: $0.content)
        }
        #expect(Array(entries.dropFirst()) == expected)
    }

    @Test func contentFromFileDescriptor() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("blob")
        let content = randomBytes(2_500_000)
        try Data(content).write(to: source)
        let fd = open(source.path, O_RDONLY)
        defer { close(fd) }
        var archive = [UInt8]()
        let writer = TarWriter { archive.append(contentsOf: $0) }
        try writer.addFile("blobs/sha256/ab/abcd/data", mtime: TarTimestamp(seconds: 1), size: UInt64(content.count)) {
            read(fd, $0.baseAddress, $0.count)
        }
        try writer.finish()
        #expect(try readTar(archive).map(\.content) == [content])
    }

    /// Content rendered as it goes (an archive's index) in pieces of any size, larger than the
    /// writer's buffer or empty, reads back whole, and the next member starts on its block.
    @Test(arguments: [512, 4096])
    func renderedContentReadsBack(bufferSize: Int) throws {
        let pieces = [randomBytes(100), [], randomBytes(5_000), randomBytes(1), randomBytes(511)]
        let content = pieces.flatMap { $0 }
        var archive = [UInt8]()
        let writer = TarWriter(bufferSize: bufferSize) { archive.append(contentsOf: $0) }
        try writer.addRenderedFile("index.json", mtime: TarTimestamp(seconds: 1), size: UInt64(content.count)) { write in
            for piece in pieces { try piece.withUnsafeBytes { try write($0) } }
        }
        try writer.addFile("after", mtime: TarTimestamp(seconds: 2), contents: [7])
        try writer.finish()
        #expect(try readTar(archive, bufferSize: bufferSize, piece: 333).map(\.content) == [content, [7]])
    }

    @Test func unreadContentIsSkipped() throws {
        var archive = [UInt8]()
        let writer = TarWriter { archive.append(contentsOf: $0) }
        try writer.addFile("a", mtime: TarTimestamp(seconds: 1), contents: randomBytes(100_000))
        try writer.addFile("b", mtime: TarTimestamp(seconds: 1), contents: [1, 2, 3])
        try writer.finish()
        let reader = TarReader(bufferSize: 4096, source: arraySource(archive))
        #expect(try reader.next()?.path == "a")
        #expect(try reader.next()?.path == "b")
        var content = [UInt8]()
        try reader.readContent { content.append(contentsOf: $0) }
        #expect(content == [1, 2, 3])
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
    }

    @Test func paxHeadersOnlyWhereUstarFallsShort() throws {
        var archive = [UInt8]()
        let writer = TarWriter { archive.append(contentsOf: $0) }
        try writer.addFile(String(repeating: "p", count: 100), mtime: TarTimestamp(seconds: 5), contents: [])
        try writer.finish()
        #expect(archive.count == 512 * 3)
        #expect(archive[156] == UInt8(ascii: "0"))
    }

    /// Sizes from 8 GiB need a pax size record; the header is checked without writing 8 GiB.
    @Test func hugeSizeGoesToPax() throws {
        struct Enough: Error {}
        var archive = [UInt8]()
        let writer = TarWriter(bufferSize: 4096) { archive.append(contentsOf: $0) }
        let size: UInt64 = 8 << 30
        #expect(throws: Enough.self) {
            try writer.addFile("layer", mtime: TarTimestamp(seconds: 1), size: size) { region in
                region.initializeMemory(as: UInt8.self, repeating: 0)
                if archive.count > 0 { throw Enough() }
                return region.count
            }
        }
        #expect(String(decoding: archive[512..<1024], as: UTF8.self).contains("size=8589934592\n"))
        // What the ustar field holds does not matter to pax readers: the record wins.
        let reader = TarReader(source: arraySource(Array(archive.prefix(1536))))
        #expect(try reader.next()?.size == size)
    }

    @Test func gnuBase256SizeIsRead() throws {
        var header = Craft.header("big", size: 0)
        let size: UInt64 = 10 << 30
        for i in 124..<136 { header[i] = 0 }
        header[124] = 0x80
        for i in 0..<8 { header[135 - i] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(i))) }
        for i in 148..<156 { header[i] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        for (i, byte) in String(format: "%06o", sum).utf8.enumerated() { header[148 + i] = byte }
        header[154] = 0
        let reader = TarReader(source: arraySource(header))
        #expect(try reader.next()?.size == size)
    }

    @Test func pathsAreNormalized() throws {
        let archive = Craft.header("./a//b/./c") + Craft.header("./", type: "5") + Craft.header("dir/", type: "5")
            + Craft.header("name", prefix: "some/prefix") + Craft.end
        #expect(try readTar(archive).map(\.entry.path) == ["a/b/c", ".", "dir", "some/prefix/name"])
    }

    @Test func globalPaxRecordsApplyUntilOverridden() throws {
        let archive = Craft.pax([("mtime", "1234.5")], type: "g")
            + Craft.header("a") + Craft.pax([("mtime", "99.000000001")]) + Craft.header("b") + Craft.header("c") + Craft.end
        #expect(try readTar(archive).map(\.entry.mtime) == [
            TarTimestamp(seconds: 1234, nanoseconds: 500_000_000),
            TarTimestamp(seconds: 99, nanoseconds: 1),
            TarTimestamp(seconds: 1234, nanoseconds: 500_000_000),
        ])
    }

    @Test func timestampNotation() {
        #expect(TarTimestamp(seconds: 12, nanoseconds: 340_000_000).description == "12.34")
        #expect(TarTimestamp(seconds: -2, nanoseconds: 500_000_000).description == "-1.5")
        #expect(TarTimestamp(seconds: 7).description == "7")
    }
}
