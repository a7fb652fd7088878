import Archive
import Foundation
import RegistryHarness
import RegistryStore
import StoreTestSupport
import Testing

/// `restore --merge` into a live store, through the binary: what a merge stopped part way
/// leaves, and the rerun that completes it.
@Suite(.serialized) struct MergeTests {
    @Test func anInterruptedMergeIsCompletedByTheNextRun() async throws {
        try await withTemporaryDirectory { directory in
            let (pushed, archive, target) = try await PushedStore.backedUpAndRestored(in: directory)

            // The live store lost some blobs and a repository; its repositories directory
            // refuses new entries (immutable), so the merge stops after placing the blobs.
            let registry = target.appendingPathComponent("docker/registry/v2")
            let prefixes = try FileManager.default.contentsOfDirectory(atPath: registry.appendingPathComponent("blobs/sha256").path).sorted().prefix(3)
            for prefix in prefixes { try FileManager.default.removeItem(at: registry.appendingPathComponent("blobs/sha256/\(prefix)")) }
            try FileManager.default.removeItem(at: registry.appendingPathComponent("repositories/signed"))
            let repositories = registry.appendingPathComponent("repositories")
            let lock = try ProcessRunner.runBlocking("/usr/bin/chattr", ["+i", repositories.path], allowFailure: true)
            try #require(lock.status == 0, "chattr: \(lock)")
            let stopped = try Regkeeper.run(["restore", archive.path, "--root", target.path, "--merge"])
            _ = try ProcessRunner.runBlocking("/usr/bin/chattr", ["-i", repositories.path])
            #expect(stopped.status == 1, "\(stopped)")
            #expect(stopped.stderr.contains("stopped after \(prefixes.count) rename(s)") && stopped.stderr.contains("run the same restore --merge again"), "\(stopped)")
            for prefix in prefixes {
                #expect(FileManager.default.fileExists(atPath: registry.appendingPathComponent("blobs/sha256/\(prefix)").path), "blobs placed first")
            }
            #expect(!FileManager.default.fileExists(atPath: repositories.appendingPathComponent("signed").path))

            let rerun = try Regkeeper.run(["restore", archive.path, "--root", target.path, "--merge", "--json"])
            #expect(rerun.status == 0, "\(rerun)")
            let result = try #require(try JSONSerialization.jsonObject(with: Data(rerun.stdout.utf8)) as? [String: Any])
            #expect((result["conflicts"] as? [String])?.isEmpty == true, "what was placed is found equal: \(rerun)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).allSatisfy { !$0.hasPrefix(".regkeeper-restore-") })
            try await expectEveryTagPulls(pushed.store.tagReferences + [("signed/app", pushed.store.referrer.digest)], from: target)
        }
    }

    /// Run as `nobody` over a live store it owns but for one repository's directory: the merge
    /// cannot compare what that directory holds, so it refuses before placing anything (it
    /// would otherwise stop half-way), names the directory, and the store is as it was.
    @Test func anUnreadableDirectoryOfTheTargetIsRefusedBeforeAnythingIsPlaced() async throws {
        try await withTemporaryDirectory { directory in
            let (_, archive, target) = try await PushedStore.backedUpAndRestored(in: directory)
            let registry = target.appendingPathComponent("docker/registry/v2")
            // Lost: a repository and a blob, which the merge would bring back.
            try FileManager.default.removeItem(at: registry.appendingPathComponent("repositories/signed"))
            let prefix = try FileManager.default.contentsOfDirectory(atPath: registry.appendingPathComponent("blobs/sha256").path).sorted()[0]
            try FileManager.default.removeItem(at: registry.appendingPathComponent("blobs/sha256/\(prefix)"))
            try ProcessRunner.runBlocking("/bin/chown", ["-R", "nobody:nogroup", target.path])
            let hidden = registry.appendingPathComponent("repositories/multi")
            try ProcessRunner.runBlocking("/bin/chown", ["root:root", hidden.path])
            #expect(chmod(hidden.path, 0o700) == 0)
            defer { chmod(hidden.path, 0o755) }
            let before = try ProcessRunner.runBlocking("/usr/bin/find", [registry.path, "-printf", "%P %s %T@\\n"]).stdoutText

            let refused = try ProcessRunner.runBlocking("/usr/bin/setpriv", [
                "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", Regkeeper.binary.path,
                "restore", archive.path, "--root", target.path, "--merge",
            ], timeout: 300, allowFailure: true)
            #expect(refused.status == 3, "\(refused.stderrText)")
            #expect(refused.stderrText.hasPrefix("regkeeper: \(hidden.path)") && refused.stderrText.contains("cannot be read")
                    && refused.stderrText.hasSuffix("\(target.path) was not changed\n"), "\(refused.stderrText)")
            #expect(try ProcessRunner.runBlocking("/usr/bin/find", [registry.path, "-printf", "%P %s %T@\\n"]).stdoutText == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).allSatisfy { !$0.hasPrefix(".regkeeper-restore-") })
        }
    }
}
