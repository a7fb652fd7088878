import Archive
import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Synchronization
import Testing

/// Backups of stores written by the real registry, restored and served again, judged by
/// skopeo pulling every tag with every platform.
@Suite(.serialized) struct ArchiveIntegrationTests {
    func expectEveryTagPulls(_ references: [(repository: String, tag: String)], _ server: RegistryServer) async throws {
        for (repository, tag) in references {
            try await Skopeo.pull(server: server, repository: repository, reference: tag)
        }
    }

    func backup(_ root: URL, to archive: URL, catalog: URL, incremental: Bool = false, hooks: BackupHooks = BackupHooks()) async throws -> BackupResult {
        var backup = Backup(storage: try LocalStorage(root: root.path), catalogDirectory: catalog.path, toolVersion: "test", sourceRoot: root.path)
        backup.incremental = incremental
        backup.writer.hooks = hooks
        return try await backup.run(output: archive.path)
    }

    func restore(_ archives: [URL], into target: URL) throws -> RestoreResult {
        let chain = try ArchiveChain(try archives.map { url throws(ArchiveError) in try ArchiveReader(path: url.path) })
        return try RestoreExecutor(target: target.path).restore(chain)
    }

    /// Blob and link files under a root's registry tree.
    func storeFiles(_ root: URL) -> Set<String> {
        var result = Set<String>()
        let base = root.appendingPathComponent("docker")
        guard let walker = FileManager.default.enumerator(atPath: base.path) else { return [] }
        while let relative = walker.nextObject() as? String {
            if walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular { result.insert("docker/" + relative) }
        }
        return result
    }

    func snapshot(_ root: URL) async throws -> Set<String> {
        let plan = try await BackupPlanner(storage: LocalStorage(root: root.path)).plan()
        return Set(plan.blobs.map { Layout.blobData($0.digest).description } + plan.links.map(\.path.description))
    }

    @Test func fullBackupRestoresAStoreTheRegistryServes() async throws {
        try await withTemporaryDirectory { directory in
            let source = directory.appendingPathComponent("source")
            let server = try await RegistryServer.start(root: source)
            let store = try await SampleStore.push(to: RegistryClient(server: server))
            let expected = try await snapshot(source)
            let archive = directory.appendingPathComponent("full.tar.zst")
            let result = try await backup(source, to: archive, catalog: directory.appendingPathComponent("catalog"))
            #expect(result.findings.isEmpty, "\(result.findings)")
            server.stop()

            let target = directory.appendingPathComponent("restored")
            _ = try restore([archive], into: target)
            #expect(storeFiles(target) == expected)
            #expect(!storeFiles(target).contains(Layout.blobData(Digest(store.orphan.digest)!).description), "garbage stays out")
            let served = try await RegistryServer.start(root: target)
            defer { served.stop() }
            try await expectEveryTagPulls(store.tagReferences, served)
            try await Skopeo.pull(server: served, repository: "signed/app", reference: store.referrer.digest)

            // GNU tar alone gives a store the registry serves too.
            let byTar = directory.appendingPathComponent("by-tar")
            try FileManager.default.createDirectory(at: byTar, withIntermediateDirectories: true)
            _ = try ProcessRunner.runBlocking("/usr/bin/tar", ["--zstd", "-xf", archive.path, "-C", byTar.path])
            let tarServed = try await RegistryServer.start(root: byTar)
            defer { tarServed.stop() }
            try await expectEveryTagPulls(store.tagReferences, tarServed)
        }
    }

    @Test func incrementalChainRestoresEveryTag() async throws {
        try await withTemporaryDirectory { directory in
            let source = directory.appendingPathComponent("source")
            let server = try await RegistryServer.start(root: source)
            defer { server.stop() }
            let client = RegistryClient(server: server)
            let store = try await SampleStore.push(to: client, layerSize: 256 << 10)
            let catalog = directory.appendingPathComponent("catalog")
            let full = directory.appendingPathComponent("full.tar.zst")
            let first = try await backup(source, to: full, catalog: catalog)

            var builder = ImageBuilder(client: client, seed: 7, layerSize: 16 << 10)
            let added = try await builder.pushImage(repository: "library/app", tag: "v2")
            let more = try await builder.pushImage(repository: "new/repo", tag: "1")
            let expected = try await snapshot(source)
            let incremental = directory.appendingPathComponent("incr.tar.zst")
            let second = try await backup(source, to: incremental, catalog: catalog, incremental: true)
            #expect(second.index.metadata.parent == first.id)
            #expect(second.blobsWritten == added.allBlobDigests.count + more.allBlobDigests.count)
            #expect(second.archiveBytes * 10 < first.archiveBytes, "\(second.archiveBytes) of \(first.archiveBytes)")

            let target = directory.appendingPathComponent("restored")
            _ = try restore([full, incremental], into: target)
            #expect(storeFiles(target) == expected)
            let served = try await RegistryServer.start(root: target)
            defer { served.stop() }
            try await expectEveryTagPulls(store.tagReferences + [("library/app", "v2"), ("new/repo", "1")], served)
        }
    }

    /// Pushes through the running registry after the snapshot and between members: the
    /// archive holds the snapshot, whole, and nothing of what came later.
    @Test func pushesDuringTheBackupNeitherBreakItNorLeakIntoIt() async throws {
        try await withTemporaryDirectory { directory in
            let source = directory.appendingPathComponent("source")
            let server = try await RegistryServer.start(root: source)
            defer { server.stop() }
            let client = RegistryClient(server: server)
            let store = try await SampleStore.push(to: client)
            let expected = try await snapshot(source)
            let latestBefore = try Data(contentsOf: source.appendingPathComponent(Layout.tagCurrentLink("library/app", "latest").description))
            let pushed = Mutex<[String]>([])
            let hooks = BackupHooks(afterSnapshot: {
                var builder = ImageBuilder(client: client, seed: 11)
                let moved = try await builder.pushImage(repository: "library/app", tag: "latest")
                let fresh = try await builder.pushImage(repository: "late/arrival", tag: "new")
                pushed.withLock { $0 += [moved.digest, fresh.digest] }
            }, afterMember: { count in
                guard count == 3 else { return }
                var builder = ImageBuilder(client: client, seed: 12)
                _ = try await builder.pushIndex(repository: "multi/arch", tag: "during")
            })
            let archive = directory.appendingPathComponent("full.tar.zst")
            let result = try await backup(source, to: archive, catalog: directory.appendingPathComponent("catalog"), hooks: hooks)
            #expect(result.findings.isEmpty)
            #expect(pushed.withLock { $0.count } == 2)

            let target = directory.appendingPathComponent("restored")
            _ = try restore([archive], into: target)
            #expect(storeFiles(target) == expected, "exactly the snapshot")
            #expect(try Data(contentsOf: target.appendingPathComponent(Layout.tagCurrentLink("library/app", "latest").description)) == latestBefore)
            let served = try await RegistryServer.start(root: target)
            defer { served.stop() }
            try await expectEveryTagPulls(store.tagReferences, served)
            #expect(await Skopeo.pullSucceeds(server: served, repository: "late/arrival", reference: "new") == false)
            #expect(await Skopeo.pullSucceeds(server: served, repository: "multi/arch", reference: "during") == false)
        }
    }
}

