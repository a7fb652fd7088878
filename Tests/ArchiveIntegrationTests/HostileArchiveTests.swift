import Archive
import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// Archives made to hurt: a few KiB that would fill a disk or the memory, a FIFO, members
/// outside the layout. Each is refused through the binary before it costs what it asks for,
/// measured: bytes written and peak memory of the run.
@Suite(.serialized) struct HostileArchiveTests {
    static let bomb: UInt64 = 5 << 30

    func expectBounded(_ run: Regkeeper.Run, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 3, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains(message), "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.hasPrefix("regkeeper: "), "\(run)", sourceLocation: sourceLocation)
        let written = run.bytesWritten ?? .max
        #expect(written < 16 << 20, "the refused restore wrote \(written) bytes", sourceLocation: sourceLocation)
    }

    /// A few hundred KiB of archive declaring 5 GiB members: refused before a byte of them is
    /// written, into an empty target and with --merge into the live store.
    @Test func aSmallArchiveCannotFillTheDisk() async throws {
        try await withTemporaryDirectory { directory in
            let pushed = try await PushedStore.push(into: directory)
            let big = directory.appendingPathComponent("zeros")
            try zeros(big, size: Self.bomb)
            let target = directory.appendingPathComponent("target")

            // Plain tar: outside the layout, a regular file where the store's tree goes, and a
            // blob (under a wrong digest) over the plain-tar cap.
            let junk = directory.appendingPathComponent("junk.tar.zst")
            try plainTar(junk, [("docker/registry/v2/junk/bomb", big)], in: directory)
            #expect(fileSize(junk) < 1 << 20)
            for root in [target, pushed.root] {
                let merge = root == pushed.root ? ["--merge"] : []
                expectBounded(try Regkeeper.run(["restore", junk.path, "--root", root.path] + merge, measured: true), "not part of a registry store's layout")
            }
            let small = directory.appendingPathComponent("small")
            try Data("x".utf8).write(to: small)
            let v2File = directory.appendingPathComponent("v2-file.tar.zst")
            try plainTar(v2File, [("docker/registry/v2", small)], in: directory)
            expectBounded(try Regkeeper.run(["restore", v2File.path, "--root", target.path], measured: true), "member docker/registry/v2 is not part")
            let wrongDigest = "docker/registry/v2/blobs/sha256/ab/\(String(repeating: "ab", count: 32))/data"
            let blob = directory.appendingPathComponent("blob.tar.zst")
            try plainTar(blob, [(wrongDigest, big)], in: directory)
            expectBounded(try Regkeeper.run(["restore", blob.path, "--root", pushed.root.path, "--merge"], measured: true), "--max-member-size")
            #expect(!FileManager.default.fileExists(atPath: target.path), "refused restores create no target")

            // A regkeeper archive's index bounds its members: the real archive's table of
            // contents behind a tar whose second member declares 5 GiB.
            let real = directory.appendingPathComponent("real.tar.zst")
            #expect(try Regkeeper.run(["backup", "--root", pushed.root.path, "--output", real.path, "--quiet"]).status == 0)
            let listing = try ProcessRunner.runBlocking("/usr/bin/tar", ["--zstd", "-tf", real.path])
            let second = listing.stdoutText.split(separator: "\n").filter { !$0.hasSuffix("/") }[1]
            let metadata = directory.appendingPathComponent("metadata.json")
            let extracted = try ProcessRunner.runBlocking("/usr/bin/tar", ["--zstd", "-xOf", real.path, ArchiveFormat.metadataMember])
            try extracted.stdout.write(to: metadata)
            let lying = directory.appendingPathComponent("lying.tar.zst")
            try plainTar(lying, [(ArchiveFormat.metadataMember, metadata), (String(second), big)], in: directory)
            let realBytes = try Data(contentsOf: real)
            let tocLength = realBytes.suffix(16).prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            let handle = try FileHandle(forWritingTo: lying)
            try handle.seekToEnd()
            try handle.write(contentsOf: realBytes.suffix(8 + tocLength + 16))
            try handle.close()
            let run = try Regkeeper.run(["restore", lying.path, "--root", pushed.root.path, "--merge"], measured: true)
            expectBounded(run, "the tar header \(Self.bomb) bytes")
            #expect(run.stderr.contains("\(pushed.root.path) was not changed"), "\(run)")

            // What fits is still restored, and pulls.
            let good = try Regkeeper.run(["restore", real.path, "--root", target.path])
            #expect(good.status == 0, "\(good)")
            try await expectEveryTagPulls(pushed.store.tagReferences, from: target)
        }
    }

    /// A table of contents that declares 1 GiB in an 8 KiB sparse file: refused by restore,
    /// verify and reindex at the cost of one piece of it, not the gigabyte.
    @Test func aSparseTableOfContentsCostsNoMemory() async throws {
        try await withTemporaryDirectory { directory in
            let backups = directory.appendingPathComponent("backups")
            try FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)
            let sparse = backups.appendingPathComponent("sparse.tar.zst")
            let declared = UInt64(1 << 30) - 1
            let start: UInt64 = 4096
            let size = start + 8 + declared + 16
            try zeros(sparse, size: size)
            let handle = try FileHandle(forWritingTo: sparse)
            try handle.write(contentsOf: Data([0x28, 0xB5, 0x2F, 0xFD]))
            try handle.seek(toOffset: start)
            var frame = Data()
            withUnsafeBytes(of: UInt32(0x184D2A5E).littleEndian) { frame.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(declared + 16).littleEndian) { frame.append(contentsOf: $0) }
            try handle.write(contentsOf: frame)
            try handle.seek(toOffset: size - 16)
            var trailer = Data()
            withUnsafeBytes(of: declared.littleEndian) { trailer.append(contentsOf: $0) }
            trailer.append(contentsOf: Array("RKTOC001".utf8))
            try handle.write(contentsOf: trailer)
            try handle.close()
            var info = stat()
            #expect(stat(sparse.path, &info) == 0 && info.st_blocks * 512 <= 64 << 10, "sparse: \(info.st_blocks) blocks")

            let target = directory.appendingPathComponent("target")
            for arguments in [["restore", sparse.path, "--root", target.path], ["backup", "verify", sparse.path],
                              ["backup", "reindex", backups.path, "--catalog", backups.path]] {
                let run = try Regkeeper.run(arguments, measured: true)
                #expect(run.status != 0, "\(run)")
                let said = run.stdout + run.stderr
                #expect(said.contains("sparse.tar.zst") && said.contains("NUL byte"), "\(arguments[0]): \(run)")
                let peak = run.peakMemory ?? .max
                #expect(peak < 100 << 20, "\(arguments.prefix(2)) peaked at \(peak) bytes")
            }
        }
    }

    /// A FIFO given as an archive, or lying in the backup directory, is refused at once.
    @Test func aFIFOIsRefusedWithoutBlocking() async throws {
        try await withTemporaryDirectory { directory in
            let pushed = try await PushedStore.push(into: directory)
            let backups = directory.appendingPathComponent("backups")
            try FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)
            let archive = backups.appendingPathComponent("full.tar.zst")
            #expect(try Regkeeper.run(["backup", "--root", pushed.root.path, "--catalog", backups.path, "--output", archive.path, "--quiet"]).status == 0)
            let fifo = backups.appendingPathComponent("pipe.tar.zst")
            #expect(mkfifo(fifo.path, 0o644) == 0)
            let target = directory.appendingPathComponent("target")
            let restore = try Regkeeper.run(["restore", fifo.path, "--root", target.path], timeout: 20)
            #expect(!restore.timedOut && restore.status == 3 && restore.stderr.contains("not a regular file"), "\(restore)")
            let verify = try Regkeeper.run(["backup", "verify", fifo.path], timeout: 20)
            #expect(!verify.timedOut && verify.status == 3, "\(verify)")
            let reindex = try Regkeeper.run(["backup", "reindex", backups.path, "--catalog", backups.path], timeout: 20)
            #expect(!reindex.timedOut && reindex.status == 4 && reindex.stderr.contains(fifo.path), "\(reindex)")
            #expect(!FileManager.default.fileExists(atPath: target.path))
        }
    }
}
