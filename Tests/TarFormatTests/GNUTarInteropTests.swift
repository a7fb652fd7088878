import Foundation
import TarFormat
import Testing
import Zstd

/// GNU tar 1.34 is what operators will reach for when regkeeper is not at hand.
@Suite struct GNUTarInteropTests {
    static let longPath = "docker/registry/v2/repositories/" + String(repeating: "team-", count: 12)
        + "service/_manifests/tags/release-2024.06.01/index/sha256/" + String(repeating: "ab", count: 32) + "/link"

    @Test(arguments: [0, 2])
    func gnuTarExtractsOurArchive(workers: Int) throws {
        #expect(Self.longPath.utf8.count > 150)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = dir.appendingPathComponent("backup.tar.zst")
        let big = randomBytes(5 << 20 | 123)
        let link = Array("sha256:\(String(repeating: "ab", count: 32))".utf8)
        let linkTime = TarTimestamp(seconds: 1_717_200_000, nanoseconds: 123_456_789)
        let bigTime = TarTimestamp(seconds: 1_600_000_000, nanoseconds: 1)
        try writeTarZst(archive, workers: workers) { writer, _ in
            try writer.addDirectory("docker", mtime: TarTimestamp(seconds: 1_500_000_000))
            try writer.addFile(Self.longPath, mode: 0o600, mtime: linkTime, contents: link)
            try writer.addFile("docker/blobs/data", mtime: bigTime, contents: big)
            try writer.addFile("docker/ümlaut", mtime: TarTimestamp(seconds: 3), contents: [])
        }

        let listing = try run(["tar", "--zstd", "-tvf", archive.path])
        #expect(listing.contains(Self.longPath))
        #expect(listing.contains("-rw------- 0/0"))

        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: false)
        try run(["tar", "--zstd", "-xf", archive.path, "-C", out.path])
        let extractedLink = out.appendingPathComponent(Self.longPath)
        #expect(Array(try Data(contentsOf: extractedLink)) == link)
        #expect(try modificationTime(extractedLink) == linkTime)
        #expect(Array(try Data(contentsOf: out.appendingPathComponent("docker/blobs/data"))) == big)
        #expect(try modificationTime(out.appendingPathComponent("docker/blobs/data")) == bigTime)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("docker/ümlaut").path))
        let attributes = try FileManager.default.attributesOfItem(atPath: extractedLink.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    /// A table of contents in a skippable frame between zstd frames, as a per-repository
    /// restore would use: GNU tar must not notice it, our reader must hand it over.
    @Test func skippableFrameBetweenMembers() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = dir.appendingPathComponent("with-toc.tar.zst")
        let toc = Array("{\"library/alpine\": 1536}".utf8)
        var tocOffset: UInt64 = 0
        try writeTarZst(archive) { writer, compressor in
            try writer.addFile("first", mtime: TarTimestamp(seconds: 10), contents: randomBytes(1000))
            try writer.flush()
            try toc.withUnsafeBytes { try compressor.writeSkippableFrame($0) }
            tocOffset = compressor.compressedOffset
            try writer.addFile("second", mtime: TarTimestamp(seconds: 20), contents: randomBytes(2000, seed: 2))
        }
        let listing = try run(["tar", "--zstd", "-tf", archive.path])
        #expect(listing == "first\nsecond\n")
        let (entries, frames) = try readTarZst(archive)
        #expect(entries.map(\.entry.path) == ["first", "second"])
        #expect(entries.map(\.content) == [randomBytes(1000), randomBytes(2000, seed: 2)])
        #expect(frames.map(\.payload) == [toc])
        #expect(frames.first.map { $0.offset + 8 + UInt64(toc.count) } == tocOffset)
    }

    /// GNU tar's default format writes long names as `././@LongLink` members; pax and ustar are
    /// what `--format` gives. Long paths must survive all that can hold them.
    @Test(arguments: [nil, "gnu", "pax", "ustar"] as [String?])
    func weReadGnuTarArchives(format: String?) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("src")
        let manager = FileManager.default
        // ustar splits paths at a slash into a 155-byte prefix and a 100-byte name; keep within that.
        let deep = format == "ustar"
            ? "repositories/" + String(repeating: "nested-", count: 12) + "x/_layers/sha256/" + String(repeating: "c", count: 64)
            : Self.longPath
        var files: [String: [UInt8]] = [
            deep + "/content": randomBytes(3 << 20 | 5),
            "blobs/small": Array("hello\n".utf8),
            "blobs/empty": [],
            "blobs/" + String(repeating: "n", count: 99): randomBytes(512, seed: 3),
        ]
        if format != "ustar" {
            files[String(repeating: "q", count: 120)] = randomBytes(10, seed: 4)
        }
        for (path, content) in files {
            let url = source.appendingPathComponent(path)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content).write(to: url)
            try setModificationTime(url, TarTimestamp(seconds: 1_650_000_000, nanoseconds: 250_000_000))
        }
        try manager.createDirectory(at: source.appendingPathComponent("empty-dir"), withIntermediateDirectories: false)

        let archive = dir.appendingPathComponent("gnu.tar.zst")
        try run(["tar", "--zstd"] + (format.map { ["--format=\($0)"] } ?? []) + ["-cf", archive.path, "-C", source.path, "."])
        let (entries, frames) = try readTarZst(archive)
        #expect(frames.isEmpty)

        let regular = Dictionary(uniqueKeysWithValues: entries.filter { $0.entry.kind == .regularFile }.map { ($0.entry.path, $0) })
        #expect(Set(regular.keys) == Set(files.keys))
        for (path, content) in files {
            #expect(regular[path]?.content == content, "\(path)")
            #expect(regular[path]?.entry.size == UInt64(content.count))
            #expect(regular[path]?.entry.mtime.seconds == 1_650_000_000)
        }
        let directories = Set(entries.filter { $0.entry.kind == .directory }.map(\.entry.path))
        let top = String(deep.prefix { $0 != "/" })
        #expect(directories.isSuperset(of: [".", "empty-dir", "blobs", top, deep]))
        if format == "pax" {
            #expect(regular["blobs/small"]?.entry.mtime == TarTimestamp(seconds: 1_650_000_000, nanoseconds: 250_000_000))
        }
    }

    @Test func gnuTarSymlinkIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: source.appendingPathComponent("escape").path,
                                                   withDestinationPath: "/etc/passwd")
        let archive = dir.appendingPathComponent("link.tar.zst")
        try run(["tar", "--zstd", "-cf", archive.path, "-C", source.path, "escape"])
        #expect(throws: TarError.unsupportedMember(member: "escape", type: .symlink, offset: 0)) {
            try readTarZst(archive)
        }
    }
}
