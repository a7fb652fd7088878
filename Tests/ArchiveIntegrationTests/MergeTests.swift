import Archive
import Foundation
import RegistryHarness
import RegistryStore
import StoreTestSupport
import Synchronization
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

    /// Merges raced against the live registry serving the target and taking pushes: into
    /// repositories the merge is bringing back (the registry may create their directories
    /// first), and into others, while the merges put back a lost repository and, three more
    /// times, lost blobs. A merge never replaces a file, so every acknowledged push must be
    /// served after a restart, and so must every tag of the archive; a tag the registry moved
    /// while the merge brought its repository back keeps the pushed manifest, not the archive's.
    @Test func mergesRacingPushesLoseNoAcknowledgedPush() async throws {
        try await withTemporaryDirectory { directory in
            let (pushed, archive, target) = try await PushedStore.backedUpAndRestored(in: directory)
            let registry = target.appendingPathComponent("docker/registry/v2")
            let archived = pushed.store.tagged.reduce(pushed.store.referrer.allBlobDigests) { $0.union($1.allBlobDigests) }.sorted()
            let server = try await RegistryServer.start(root: target)
            defer { server.stop() }
            try FileManager.default.removeItem(at: registry.appendingPathComponent("repositories/signed"))

            let merging = Atomic(true)
            let pushedDuringMerges = Atomic(0)
            async let moved: String = {
                // signed/app:v1 pushed anew while the first merge brings signed/app back.
                var builder = ImageBuilder(client: RegistryClient(server: server), seed: 92, layerSize: 2048)
                return try await builder.pushImage(repository: "signed/app", tag: "v1", layerCount: 1).digest
            }()
            async let acknowledged: [(repository: String, tag: String)] = {
                var builder = ImageBuilder(client: RegistryClient(server: server), seed: 91, layerSize: 2048)
                var tags: [(String, String)] = []
                var index = 0
                while merging.load(ordering: .relaxed) || index < 8 {
                    if merging.load(ordering: .relaxed) { pushedDuringMerges.store(index, ordering: .relaxed) }
                    let repository = index.isMultiple(of: 2) ? "signed/app" : "live/app"
                    _ = try await builder.pushImage(repository: repository, tag: "live-\(index)", layerCount: 1)
                    tags.append((repository, "live-\(index)"))
                    index += 1
                }
                return tags
            }()
            // Four rounds at least, more until pushes have been acknowledged beside the merges
            // (a loaded machine pushes slowly).
            for round in 0..<40 where round < 4 || pushedDuringMerges.load(ordering: .relaxed) < 4 {
                if round > 0 {
                    // Lost again: a few of the archive's blobs (never a pushed one).
                    for digest in archived.dropFirst(round).enumerated().filter({ $0.offset.isMultiple(of: 4) }).map(\.element) {
                        let hex = digest.dropFirst("sha256:".count)
                        try? FileManager.default.removeItem(at: registry.appendingPathComponent("blobs/sha256/\(hex.prefix(2))/\(hex)"))
                    }
                }
                let merge = try await ProcessRunner.run(Regkeeper.binary.path, ["restore", archive.path, "--root", target.path, "--merge", "--quiet"],
                                                        timeout: 300, allowFailure: true)
                #expect(merge.status == 0 || merge.status == 4, "\(merge.stderrText)")
            }
            merging.store(false, ordering: .relaxed)
            let live = try await acknowledged
            let movedDigest = try await moved
            print("merges raced \(pushedDuringMerges.load(ordering: .relaxed)) acknowledged pushes")
            #expect(pushedDuringMerges.load(ordering: .relaxed) >= 4, "pushes ran beside the merges")

            try await server.restart()
            for (repository, tag) in live + pushed.store.tagReferences {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            try await Skopeo.pull(server: server, repository: "signed/app", reference: pushed.store.referrer.digest)
            let v1 = registry.appendingPathComponent("repositories/signed/app/_manifests/tags/v1/current/link")
            #expect(try String(contentsOf: v1, encoding: .utf8) == movedDigest, "the acknowledged move of v1 is kept")
            for digest in archived {
                let hex = digest.dropFirst("sha256:".count)
                #expect(FileManager.default.fileExists(atPath: registry.appendingPathComponent("blobs/sha256/\(hex.prefix(2))/\(hex)/data").path), "\(digest) put back")
            }
        }
    }
}
