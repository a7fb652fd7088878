import Archive
import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// Errors that point the right way, through the binary, on stores pushed through the real
/// registry: one `regkeeper:` line naming what is wrong, the exit status the man page gives,
/// and "not changed" only where nothing was (not even a state database).
@Suite(.serialized) struct RestoreErrorTests {
    func expectOneLine(_ run: Regkeeper.Run, status: Int32, saying message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == status, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("regkeeper: ") && run.stderr.split(separator: "\n").count == 1, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains(message), "\(run)", sourceLocation: sourceLocation)
        #expect(!run.stderr.contains("NSCocoaErrorDomain") && !run.stderr.contains(StagingPrefix.value), "\(run)", sourceLocation: sourceLocation)
    }

    enum StagingPrefix { static let value = ".regkeeper-restore-" }

    /// Any blob file of the store.
    func someBlob(_ root: URL) throws -> URL {
        let blobs = root.appendingPathComponent("docker/registry/v2/blobs")
        let relative = try #require(FileManager.default.subpathsOfDirectory(atPath: blobs.path).first { $0.hasSuffix("/data") })
        return blobs.appendingPathComponent(relative)
    }

    @Test func refusalsNameTheirCauseAndCreateNothing() async throws {
        try await withTemporaryDirectory { directory in
            let pushed = try await PushedStore.push(into: directory)
            let archive = directory.appendingPathComponent("full.tar.zst")
            #expect(try Regkeeper.run(["backup", "--root", pushed.root.path, "--output", archive.path, "--quiet"]).status == 0)
            let target = directory.appendingPathComponent("target")

            // The same member twice: refused while staging, after the lock was taken; neither
            // the new target nor, in an existing empty one, a state database is left.
            let blob = try someBlob(pushed.root)
            let name = String(blob.path.dropFirst(pushed.root.path.count + 1))
            let twice = directory.appendingPathComponent("twice.tar.zst")
            try plainTar(twice, [(name, blob), (name, blob)], in: directory)
            expectOneLine(try Regkeeper.run(["restore", twice.path, "--root", target.path]), status: 3,
                          saying: "duplicate member \(name); \(target.path) was not changed")
            #expect(!FileManager.default.fileExists(atPath: target.path))
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            expectOneLine(try Regkeeper.run(["restore", twice.path, "--root", target.path]), status: 3, saying: "duplicate member")
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty, "no state directory left")
            try FileManager.default.removeItem(at: target)

            // An archive with bytes appended is not "truncated".
            let appended = directory.appendingPathComponent("appended.tar.zst")
            var bytes = try Data(contentsOf: archive)
            let end = bytes.count
            bytes.append(Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 131) }))
            try bytes.write(to: appended)
            let trailing = try Regkeeper.run(["restore", appended.path, "--root", target.path])
            expectOneLine(trailing, status: 3, saying: "1000 byte(s) of unexpected data after the archive's end at offset \(end)")
            #expect(!trailing.stderr.contains("truncated"))
            let verified = try Regkeeper.run(["backup", "verify", appended.path])
            #expect(verified.status == 3 && verified.stdout.contains("unexpected data"), "\(verified)")

            // --root that is a regular file; --root inside the store's tree.
            let file = directory.appendingPathComponent("a-file")
            try Data("x".utf8).write(to: file)
            expectOneLine(try Regkeeper.run(["restore", archive.path, "--root", file.path]), status: 3, saying: "\(file.path) exists and is not a directory")
            let nested = pushed.root.appendingPathComponent("docker/registry/v2")
            expectOneLine(try Regkeeper.run(["restore", archive.path, "--root", nested.path, "--merge"]), status: 3,
                          saying: "is inside the store at \(pushed.root.path)")
            #expect(!FileManager.default.fileExists(atPath: nested.appendingPathComponent("docker").path))

            // A mistyped catalog directory is not created, nor is an empty catalog.
            let missing = directory.appendingPathComponent("no-such-catalog")
            expectOneLine(try Regkeeper.run(["restore", "--catalog", missing.path, "--latest", "--root", target.path]), status: 1,
                          saying: "backup reindex")
            #expect(!FileManager.default.fileExists(atPath: missing.path) && !FileManager.default.fileExists(atPath: target.path))

            // backup --output: a missing directory is named; the store's own tree is refused.
            let nowhere = directory.appendingPathComponent("no-such-dir/full.tar.zst")
            expectOneLine(try Regkeeper.run(["backup", "--root", pushed.root.path, "--output", nowhere.path]), status: 1,
                          saying: "the output directory \(nowhere.deletingLastPathComponent().path) does not exist")
            let inside = pushed.root.appendingPathComponent("docker/registry/v2/full.tar.zst")
            expectOneLine(try Regkeeper.run(["backup", "--root", pushed.root.path, "--output", inside.path]), status: 1,
                          saying: "inside the registry tree of the store being backed up")
            #expect(try FileManager.default.contentsOfDirectory(atPath: inside.deletingLastPathComponent().path).allSatisfy { !$0.contains("partial") })
        }
    }

    /// A member name with a terminal escape is printed escaped.
    @Test func memberNamesArePrintedEscaped() async throws {
        try await withTemporaryDirectory { directory in
            let small = directory.appendingPathComponent("small")
            try Data("x".utf8).write(to: small)
            let evil = directory.appendingPathComponent("evil.tar.zst")
            try plainTar(evil, [("docker/registry/v2/evil\u{1b}]0;owned\u{07}\u{1b}[2J", small)], in: directory)
            let run = try Regkeeper.run(["restore", evil.path, "--root", directory.appendingPathComponent("target").path])
            #expect(run.status == 3, "\(run)")
            let said = run.stdout + run.stderr
            #expect(!said.utf8.contains(0x1b) && !said.utf8.contains(0x07), "\(run)")
            #expect(said.contains("evil\\x1b]0;owned\\x07\\x1b[2J"), "\(run)")
        }
    }

    /// ENOSPC while staging names the member and says the target is unchanged; a regkeeper
    /// archive that does not fit is refused before staging begins.
    @Test func aFullDiskLeavesTheTargetUnchanged() async throws {
        try await withTemporaryDirectory { directory in
            let pushed = try await PushedStore.push(into: directory, layerSize: 256 << 10)
            let archive = directory.appendingPathComponent("full.tar.zst")
            #expect(try Regkeeper.run(["backup", "--root", pushed.root.path, "--output", archive.path, "--quiet"]).status == 0)
            let plain = directory.appendingPathComponent("plain.tar.zst")
            let tar = try ProcessRunner.runBlocking("/usr/bin/tar", ["--zstd", "-cf", plain.path, "-C", pushed.root.path, "docker"])
            #expect(tar.status == 0, "\(tar)")
            let small = directory.appendingPathComponent("small-disk")
            try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
            let mount = try ProcessRunner.runBlocking("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small.path], allowFailure: true)
            try #require(mount.status == 0, "tmpfs needs root: \(mount)")
            defer { _ = try? ProcessRunner.runBlocking("/bin/umount", [small.path], allowFailure: true) }

            let full = try Regkeeper.run(["restore", plain.path, "--root", small.path])
            expectOneLine(full, status: 1, saying: "No space left on device; \(small.path) was not changed")
            #expect(full.stderr.contains("writing member docker/registry/v2/"), "\(full)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: small.path).isEmpty)
            let refused = try Regkeeper.run(["restore", archive.path, "--root", small.path])
            expectOneLine(refused, status: 3, saying: "filesystem has")
            #expect(try FileManager.default.contentsOfDirectory(atPath: small.path).isEmpty)
        }
    }

    /// Link mtimes keep their nanoseconds through backup and restore (retention ages tags by
    /// them).
    @Test func linkMtimesKeepTheirNanoseconds() async throws {
        try await withTemporaryDirectory { directory in
            let (pushed, _, target) = try await PushedStore.backedUpAndRestored(in: directory)
            let repositories = target.appendingPathComponent("docker/registry/v2/repositories")
            let links = try FileManager.default.subpathsOfDirectory(atPath: repositories.path).filter { $0.hasSuffix("/link") }
            #expect(links.count > 10)
            var submicrosecond = 0
            for link in links {
                var ours = stat(), theirs = stat()
                #expect(stat(repositories.appendingPathComponent(link).path, &ours) == 0)
                #expect(stat(pushed.root.appendingPathComponent("docker/registry/v2/repositories").appendingPathComponent(link).path, &theirs) == 0)
                #expect(ours.st_mtim.tv_sec == theirs.st_mtim.tv_sec && ours.st_mtim.tv_nsec == theirs.st_mtim.tv_nsec, "\(link)")
                if theirs.st_mtim.tv_nsec % 1000 != 0 { submicrosecond += 1 }
            }
            #expect(submicrosecond > 0, "the registry's links have nanoseconds to lose")
        }
    }
}
