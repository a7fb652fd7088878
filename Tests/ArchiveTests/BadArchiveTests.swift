@testable import Archive
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import TarFormat
import Testing
import Zstd

/// Each damaged archive is refused with its own error, and the target stays as it was.
@Suite struct BadArchiveTests {
    func expectRefused(_ archive: URL, in directory: URL, _ matches: (ArchiveError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        let target = directory.appendingPathComponent("target-\(UUID())")
        do {
            _ = try restore([archive], into: target)
            Issue.record("restore of \(archive.lastPathComponent) succeeded", sourceLocation: sourceLocation)
        } catch let error as ArchiveError {
            #expect(matches(error), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? []
        #expect(left.isEmpty, "target holds \(left)", sourceLocation: sourceLocation)
        #expect(!ArchiveVerifier().verify([archive.path]).isValid, sourceLocation: sourceLocation)
    }

    func fullArchive(_ directory: URL) async throws -> (URL, Data) {
        let fixture = try Fixture(root: directory.appendingPathComponent("source"))
        let archive = directory.appendingPathComponent("full.tar.zst")
        _ = try await fixture.backup(to: archive, catalog: directory)
        return (archive, try Data(contentsOf: archive))
    }

    @Test func truncatedStream() async throws {
        try await withTemporaryDirectory { directory in
            let (_, bytes) = try await fullArchive(directory)
            let cut = directory.appendingPathComponent("cut.tar.zst")
            try bytes.prefix(bytes.count / 2).write(to: cut)
            expectRefused(cut, in: directory) { if case .truncated = $0 { true } else { false } }
        }
    }

    @Test func corruptZstdFrame() async throws {
        try await withTemporaryDirectory { directory in
            let (_, bytes) = try await fullArchive(directory)
            var damaged = bytes
            damaged[200] ^= 0xFF
            let file = directory.appendingPathComponent("corrupt.tar.zst")
            try damaged.write(to: file)
            expectRefused(file, in: directory) { if case .damaged = $0 { true } else { false } }
        }
    }

    /// A valid stream (zstd checksums pass) whose blob content does not match its name.
    @Test func flippedByteInABlob() async throws {
        try await withTemporaryDirectory { directory in
            let content = layerBytes("blob")
            let digest = StoreBuilder.digest(of: content)
            var flipped = content
            flipped[10] ^= 1
            let file = directory.appendingPathComponent("flipped.tar.zst")
            try writePlainArchive(file, [(Layout.blobData(digest).description, flipped)])
            expectRefused(file, in: directory) { if case .blobDigestMismatch(_, _, let expected, _) = $0 { expected == digest } else { false } }
        }
    }

    @Test func notAnArchive() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("notes.txt")
            try Data("just some text, not an archive\n".utf8).write(to: file)
            #expect(throws: ArchiveError.self) { try ArchiveReader(path: file.path) }
            let zstdText = directory.appendingPathComponent("text.zst")
            let compressed = try compress(Data(String(repeating: "hello ", count: 200).utf8))
            try compressed.write(to: zstdText)
            expectRefused(zstdText, in: directory) { if case .notAnArchive = $0 { true } else { false } }
        }
    }

    /// Files are staged by a writer thread; its failure (here a file where the next member
    /// needs a directory) must still stop the restore, name the member, and leave the target empty.
    @Test func aWriteFailureWhileStaging() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("in-the-way.tar.zst")
            let blocker = "docker/registry/v2/repositories/app/_uploads/u1/startedat"
            try writePlainArchive(file, [
                (blocker, Data("a file".utf8)),
                (blocker + "/data", Data("under it".utf8)),
                ("docker/registry/v2/repositories/app/_uploads/u2/data", Data("after it".utf8)),
            ])
            let target = directory.appendingPathComponent("target")
            #expect {
                _ = try restore([file], into: target)
            } throws: { error in
                guard case .stagingWrite(let member, _, let errno) = error as? ArchiveError else { return false }
                return errno.rawValue == ENOTDIR && member == blocker + "/data"
            }
            let left = (try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? []
            #expect(left.isEmpty, "target holds \(left)")
        }
    }

    /// GNU tar writes the members TarWriter refuses to: `..`, absolute paths, links.
    @Test(arguments: ["dotdot", "absolute", "symlink", "hardlink"])
    func unsafeMembers(_ kind: String) async throws {
        try await withTemporaryDirectory { directory in
            let work = directory.appendingPathComponent("work/inner")
            let store = work.appendingPathComponent("docker/registry/v2/repositories/app/_uploads/u1")
            try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: store.appendingPathComponent("file"))
            let file = directory.appendingPathComponent("\(kind).tar.zst")
            var arguments = ["--zstd", "-cf", file.path]
            switch kind {
            case "dotdot":
                try Data("y".utf8).write(to: directory.appendingPathComponent("work/escape"))
                arguments += ["-P", "docker", "../escape"]
            case "absolute":
                try Data("z".utf8).write(to: directory.appendingPathComponent("outside"))
                arguments += ["-P", "docker", directory.appendingPathComponent("outside").path]
            case "symlink":
                try FileManager.default.createSymbolicLink(atPath: store.appendingPathComponent("link").path, withDestinationPath: "/etc/passwd")
                arguments += ["docker"]
            default:
                try FileManager.default.linkItem(at: store.appendingPathComponent("file"), to: store.appendingPathComponent("hard"))
                arguments += ["docker"]
            }
            let (status, output) = try run("/usr/bin/tar", arguments, in: work)
            #expect(status == 0, "\(output)")
            expectRefused(file, in: directory) { error in
                guard case .damaged(_, let reason) = error else { return false }
                switch kind {
                case "dotdot": return reason.contains("'..'")
                case "absolute": return reason.contains("absolute")
                case "symlink": return reason.contains("symbolic link")
                default: return reason.contains("hard link")
                }
            }
        }
    }
}

func compress(_ data: Data) throws -> Data {
    var output = Data()
    let compressor = try ZstdCompressor(level: 1) { output.append(contentsOf: $0) }
    try data.withUnsafeBytes { try compressor.write($0) }
    try compressor.finish()
    return output
}

/// A plain zstd tar, as a user's own `tar --zstd -cf` would be, written with our libraries.
func writePlainArchive(_ url: URL, _ members: [(String, Data)]) throws {
    var tarBytes = Data()
    let tar = TarWriter { tarBytes.append(contentsOf: $0) }
    for (path, content) in members {
        try tar.addFile(path, mtime: TarTimestamp(seconds: 1_700_000_000), contents: Array(content))
    }
    try tar.finish()
    try compress(tarBytes).write(to: url)
}
