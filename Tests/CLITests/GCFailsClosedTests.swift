import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// gc over a store it cannot fully read (an unreadable directory for the user running it, a
/// symbolic link where the registry follows one, `repositories/` gone) refuses with exit 3
/// naming the path and deletes nothing; every tag still pulls afterwards.
@Suite(.serialized) struct GCFailsClosedTests {
    struct Store {
        var root: URL
        var sample: SampleStore
        var server: RegistryServer

        var registry: URL { root.appendingPathComponent("docker/registry/v2") }
        var blobCount: Int { get async throws { try await blobDigests(in: LocalStorage(root: root.path)).count } }

        func expectEveryTagPulls() async throws {
            try await server.restart()
            for (repository, tag) in sample.tagReferences {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
        }
    }

    /// A store pushed through the real registry, aged so that everything unreferenced is due.
    static func withStore(_ body: (Store) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-closed-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = directory.appendingPathComponent("store")
        let server = try await RegistryServer.start(root: root)
        defer { server.stop() }
        let sample = try await SampleStore.push(to: RegistryClient(server: server))
        try ProcessRunner.runBlocking("/usr/bin/find", [root.path, "-exec", "touch", "-h", "-d", "2 hours ago", "{}", "+"])
        try await body(Store(root: root, sample: sample, server: server))
    }

    static let gc = ["gc", "--delete-untagged", "--grace-period", "0", "--upload-max-age", "0", "--settle", "0"]

    /// Runs the binary as `nobody`, the way a mis-deployed timer would.
    static func regkeeperAsNobody(_ arguments: [String]) throws -> GCCommandTests.Run {
        let binary = GCCommandTests.productsDirectory.appendingPathComponent("regkeeper").path
        return try GCCommandTests.run("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", binary] + arguments)
    }

    @Test(arguments: ["", "library"])
    func anUnreadableDirectoryRefusesForAnUnprivilegedUser(below repositories: String) async throws {
        try await Self.withStore { store in
            // nobody owns the store and could delete every blob; only the listing is denied.
            try ProcessRunner.runBlocking("/bin/chown", ["-R", "nobody:nogroup", store.root.path])
            let hidden = store.registry.appendingPathComponent("repositories").appendingPathComponent(repositories)
            try ProcessRunner.runBlocking("/bin/chmod", ["000", hidden.path])
            defer { try? ProcessRunner.runBlocking("/bin/chmod", ["755", hidden.path]) }
            let before = try await store.blobCount
            for extra in [[], ["--allow-broken"]] {
                let run = try Self.regkeeperAsNobody(Self.gc + extra + ["--root", store.root.path])
                #expect(run.status == 3, "\(extra): \(run.stderr)")
                #expect(run.stderr.contains("refusing to sweep") && run.stderr.contains("unreadable docker/registry/v2/repositories\(repositories.isEmpty ? "" : "/" + repositories):"), "\(run.stderr)")
                #expect(run.stderr.contains("Permission denied"), "\(run.stderr)")
            }
            try ProcessRunner.runBlocking("/bin/chmod", ["755", hidden.path])
            #expect(try await store.blobCount == before, "nothing was deleted")
            try await store.expectEveryTagPulls()
        }
    }

    /// verify reads every repository's layer links from their listed directory: a digest
    /// directory or a link the user cannot read is named as unreadable, exactly as when read
    /// by its path; gc, which needs only the directory's name, keeps what it links.
    @Test(arguments: [false, true])
    func anUnreadableLayerLinkIsNamedForAnUnprivilegedUser(hidingItsDirectory: Bool) async throws {
        try await Self.withStore { store in
            try ProcessRunner.runBlocking("/bin/chown", ["-R", "nobody:nogroup", store.root.path])
            let layers = store.registry.appendingPathComponent("repositories/library/app/_layers/sha256")
            let digest = try #require(try FileManager.default.contentsOfDirectory(atPath: layers.path).sorted().first)
            let hidden = hidingItsDirectory ? layers.appendingPathComponent(digest) : layers.appendingPathComponent(digest).appendingPathComponent("link")
            try ProcessRunner.runBlocking("/bin/chmod", ["000", hidden.path])
            defer { try? ProcessRunner.runBlocking("/bin/chmod", [hidingItsDirectory ? "755" : "644", hidden.path]) }
            let state = store.root.deletingLastPathComponent().appendingPathComponent("state")
            try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
            try ProcessRunner.runBlocking("/bin/chown", ["nobody:nogroup", state.path])
            let verify = try Self.regkeeperAsNobody(["verify", "--root", store.root.path, "--state-dir", state.path])
            #expect(verify.status == 5, "\(verify.stdout)\(verify.stderr)")
            let named = verify.stdout.split(separator: "\n").filter { $0.contains("repositories/library/app/_layers/sha256/\(digest)/link") }
            #expect(named.count == 1 && named[0].contains("unreadable") && named[0].contains("Permission denied"), "\(verify.stdout)")

            let gc = try Self.regkeeperAsNobody(Self.gc + ["--root", store.root.path])
            #expect(gc.status == 0, "\(gc.stderr)")
            try ProcessRunner.runBlocking("/bin/chmod", [hidingItsDirectory ? "755" : "644", hidden.path])
            #expect(FileManager.default.fileExists(atPath: store.registry.appendingPathComponent("blobs/sha256/\(digest.prefix(2))/\(digest)/data").path))
            try await store.expectEveryTagPulls()
        }
    }

    /// The registry follows these links and serves through them; gc will not follow them, so
    /// it must not treat what lies behind them as garbage.
    @Test(arguments: ["repositories", "repositories/library", "repositories/library/app/_manifests", "repositories/library/app/_manifests/revisions"])
    func aSymbolicLinkInsideTheTreeRefuses(replacing directory: String) async throws {
        try await Self.withStore { store in
            let original = store.registry.appendingPathComponent(directory)
            let moved = store.root.appendingPathComponent("elsewhere-\(UUID())")
            try FileManager.default.moveItem(at: original, to: moved)
            try FileManager.default.createSymbolicLink(at: original, withDestinationURL: moved)
            try await store.expectEveryTagPulls()
            let before = try await store.blobCount
            let run = try GCCommandTests.regkeeper(Self.gc + ["--allow-broken", "--root", store.root.path])
            #expect(run.status == 3, "\(run.stderr)")
            #expect(run.stderr.contains("symbolic link docker/registry/v2/\(directory): not followed"), "\(run.stderr)")
            // retain and report follow the same rule: no plan, no claim.
            let policy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../policies/default.yaml").path
            let retain = try GCCommandTests.regkeeper(["retain", "--policy", policy, "--gc", "--force", "--root", store.root.path])
            #expect(retain.status == 3 && retain.stderr.contains("refusing to plan"), "\(retain.stderr)")
            let report = try GCCommandTests.regkeeper(["report", "--root", store.root.path])
            #expect(report.status == 3 && report.stdout.contains("gc would free unknown"), "\(report.stdout)\(report.stderr)")
            // backup too: an archive missing what the link hides would restore as the whole store.
            let archive = store.root.deletingLastPathComponent().appendingPathComponent("backup.tar.zst")
            let backup = try GCCommandTests.regkeeper(["backup", "--output", archive.path, "--root", store.root.path])
            #expect(backup.status == 3 && backup.stderr.contains("refusing to back up"), "\(backup.stderr)")
            #expect(!FileManager.default.fileExists(atPath: archive.path), "no archive written")
            // verify names it as damage.
            let verify = try GCCommandTests.regkeeper(["verify", "--root", store.root.path])
            #expect(verify.status == 5 && verify.stdout.contains("symbolic link"), "\(verify.stdout)\(verify.stderr)")
            #expect(try await store.blobCount == before, "nothing was deleted")
            try await store.expectEveryTagPulls()
        }
    }

    @Test func repositoriesAbsentBesideBlobsRefuses() async throws {
        try await Self.withStore { store in
            let repositories = store.registry.appendingPathComponent("repositories")
            let aside = store.root.appendingPathComponent("unmounted")
            try FileManager.default.moveItem(at: repositories, to: aside)
            let before = try await store.blobCount
            let run = try GCCommandTests.regkeeper(Self.gc + ["--root", store.root.path])
            #expect(run.status == 3, "\(run.stderr)")
            #expect(run.stderr.contains("docker/registry/v2/repositories: absent while blobs/ holds data"), "\(run.stderr)")
            #expect(try await store.blobCount == before, "nothing was deleted")
            try FileManager.default.moveItem(at: aside, to: repositories)
            try await store.expectEveryTagPulls()
        }
    }

    /// A layer pushed as `sha512:…` is stored under its sha256 and served through a `_layers`
    /// link naming that blob: gc keeps the blob, verify finds nothing missing, it still pulls.
    @Test func aLayerPushedAsSha512IsKeptAndVerified() async throws {
        try await Self.withStore { store in
            let client = RegistryClient(server: store.server)
            let layer = Blob(Data("a layer pushed under its sha512 digest".utf8))
            let sha512 = "sha512:" + (try ProcessRunner.runBlocking("/bin/sh", ["-c", "printf %s \"$0\" | sha512sum", "a layer pushed under its sha512 digest"])
                .stdoutText.split(separator: " ").first.map(String.init) ?? "")
            try await client.pushBlob(repository: "wide/digest", bytes: layer.bytes, digest: sha512)
            let config = Blob(Data("{\"architecture\":\"amd64\",\"os\":\"linux\"}".utf8))
            try await client.pushBlob(repository: "wide/digest", bytes: config.bytes)
            let manifest = Data("""
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config.digest)","size":\(config.size)},\
                "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(sha512)","size":\(layer.size)}]}
                """.utf8)
            try await client.pushManifest(repository: "wide/digest", reference: "v1", bytes: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json")
            try ProcessRunner.runBlocking("/usr/bin/find", [store.root.path, "-exec", "touch", "-h", "-d", "2 hours ago", "{}", "+"])
            try await Skopeo.pull(server: store.server, repository: "wide/digest", reference: "v1")

            let run = try GCCommandTests.regkeeper(Self.gc + ["--root", store.root.path])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(try await blobDigests(in: LocalStorage(root: store.root.path)).contains(Digest(layer.digest)!), "the blob the sha512 link names stays")
            let verify = try GCCommandTests.regkeeper(["verify", "--root", store.root.path])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
            try await store.expectEveryTagPulls()
            try await Skopeo.pull(server: store.server, repository: "wide/digest", reference: "v1")
        }
    }

    /// A deletion the filesystem refuses is a failure: named with its real cause, not counted
    /// as freed, not recorded as deleted.
    @Test func aRefusedDeletionIsReportedAndNotCountedAsFreed() async throws {
        try await Self.withStore { store in
            try ProcessRunner.runBlocking("/bin/chown", ["-R", "nobody:nogroup", store.root.path])
            let garbage = try #require(Digest(store.sample.orphan.digest))
            let shard = store.registry.appendingPathComponent("blobs/sha256/\(garbage.shard)")
            try ProcessRunner.runBlocking("/bin/chmod", ["555", shard.path])
            defer { try? ProcessRunner.runBlocking("/bin/chmod", ["755", shard.path]) }
            let run = try Self.regkeeperAsNobody(Self.gc + ["--json", "--root", store.root.path])
            #expect(run.status == 4, "\(run.stderr)")
            let result = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            let applied = result?["applied"] as? [String: Any]
            let blobs = (applied?["blobs"] as? [[String: Any]])?.compactMap { $0["digest"] as? String } ?? []
            #expect(!blobs.isEmpty && !blobs.contains(garbage.description), "applied holds only what went")
            let failures = result?["failures"] as? [[String: Any]] ?? []
            #expect(failures.contains { ($0["item"] as? String) == "blob \(garbage)" && (($0["reason"] as? String) ?? "").contains("Permission denied") },
                    "\(failures)")
            #expect(try await blobDigests(in: LocalStorage(root: store.root.path)).contains(garbage))
            let history = try Self.regkeeperAsNobody(["history", "show", "1", "--json", "--root", store.root.path])
            #expect(!history.stdout.contains(Layout.blobDirectory(garbage).description), "not recorded as deleted")
            try await store.expectEveryTagPulls()
        }
    }
}
