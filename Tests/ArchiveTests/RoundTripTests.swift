@testable import Archive
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

@Suite struct RoundTripTests {
    @Test func restoreGivesBackExactlyTheSnapshotWithItsMtimes() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let plan = try await fixture.plan()
            let archive = directory.appendingPathComponent("full.tar.zst")
            let result = try await fixture.backup(to: archive, catalog: directory.appendingPathComponent("catalog"))
            #expect(result.findings.isEmpty)
            #expect(!plan.blobs.contains { $0.digest == fixture.orphan }, "garbage is left out")

            let target = directory.appendingPathComponent("target")
            let restored = try restore([archive], into: target)
            #expect(restored.blobs == plan.blobs.count)
            let source = try files(under: fixture.root)
            let copy = try files(under: target)
            #expect(Set(copy.keys) == snapshotPaths(plan))
            for (path, (data, modified)) in copy {
                #expect(source[path]?.0 == data, "\(path)")
                #expect(abs((source[path]?.1 ?? .distantPast).timeIntervalSince(modified)) < 0.000_01, "mtime of \(path)")
            }
            #expect(!copy.keys.contains { $0.contains("_uploads") })
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: target.path).filter { $0.hasPrefix(".regkeeper-restore") }
            #expect(leftovers.isEmpty)
        }
    }

    @Test func backupOfInMemoryStorageRestoresToDisk() async throws {
        try await withTemporaryDirectory { directory in
            let storage = InMemoryStorage()
            let builder = StoreBuilder(storage: storage)
            let image = try builder.image("mem/app", tag: "v1", layers: [layerBytes("m1"), layerBytes("m2")])
            let writer = ArchiveWriter(storage: storage, toolVersion: "test", sourceRoot: "memory")
            let archive = directory.appendingPathComponent("mem.tar.zst")
            _ = try await writer.write(try await BackupPlanner(storage: storage).plan(), to: archive.path)
            let target = directory.appendingPathComponent("target")
            _ = try restore([archive], into: target)
            for blob in image.blobs {
                #expect(FileManager.default.fileExists(atPath: target.appendingPathComponent(Layout.blobData(blob).description).path))
            }
        }
    }

    @Test func includeGarbageCarriesOrphansAndUploads() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let plan = try await fixture.plan(includeGarbage: true)
            let writer = ArchiveWriter(storage: fixture.storage, toolVersion: "test", sourceRoot: fixture.root.path)
            let archive = directory.appendingPathComponent("all.tar.zst")
            _ = try await writer.write(plan, to: archive.path)
            let target = directory.appendingPathComponent("target")
            _ = try restore([archive], into: target)
            #expect(try files(under: target).keys.sorted() == files(under: fixture.root).keys.sorted())
        }
    }

    @Test func refusesANonEmptyTargetAndAnExistingOutput() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let archive = directory.appendingPathComponent("full.tar.zst")
            _ = try await fixture.backup(to: archive, catalog: directory)
            await #expect(throws: ArchiveError.self) { try await fixture.backup(to: archive, catalog: directory) }
            #expect(throws: ArchiveError.self) { try restore([archive], into: fixture.root) }
        }
    }

    @Test func oneRepositoryRestoresWithOnlyTheBlobsItNeeds() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let archive = directory.appendingPathComponent("full.tar.zst")
            _ = try await fixture.backup(to: archive, catalog: directory)
            let target = directory.appendingPathComponent("target")
            _ = try restore([archive], into: target, options: RestoreOptions(repositories: ["multi/arch"]))
            let restored = try files(under: target).keys
            #expect(restored.allSatisfy { $0.contains("/blobs/") || $0.contains("repositories/multi/arch/") })
            let blobs = Set(restored.filter { $0.contains("/blobs/") })
            let child = fixture.tagged[2]
            #expect(child.blobs.allSatisfy { blobs.contains(Layout.blobData($0).description) })
            #expect(!blobs.contains(Layout.blobData(fixture.tagged[0].layers[1]).description), "library/app's own layer stays out")
            #expect(throws: ArchiveError.self) { try restore([archive], into: directory.appendingPathComponent("t2"), options: RestoreOptions(repositories: ["no/such"])) }
        }
    }

    @Test func interruptedRestoreLeavesTheTargetUntouched() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let archive = directory.appendingPathComponent("full.tar.zst")
            _ = try await fixture.backup(to: archive, catalog: directory)
            let target = directory.appendingPathComponent("target")
            let chain = try ArchiveChain([ArchiveReader(path: archive.path)])
            var executor = RestoreExecutor(target: target.path)
            executor.afterMember = { if $0 == 5 { throw CancellationError() } }
            #expect(throws: CancellationError.self) { try executor.restore(chain) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty)
        }
    }
}

/// The archive threads split large files between chunks and hand each chunk's hashing on in
/// order: whatever the number of threads, every file restores whole and a blob damaged in a
/// later chunk is still caught.
@Suite struct PipelineTests {
    @Test(arguments: [1, 2, 3])
    func filesSplitBetweenChunksHashAndRestoreWhole(jobs: Int) async throws {
        try await withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("source")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let storage = try LocalStorage(root: root.path)
            let builder = StoreBuilder(storage: storage)
            let sizes = [3 << 20 + 17, 1 << 20, 5, 2 << 20 - 512]
            let layers = sizes.enumerated().map { layerBytes("split-\($0.offset)", size: $0.element) }
            let image = try builder.image("big/app", tag: "v1", layers: layers)
            let small = try (0..<40).map { try builder.image("small/app", tag: Tag("t\($0)")!, layers: [layerBytes("s\($0)")]) }
            let damaged = image.layers[0]
            var bytes = try storage.read(Layout.blobData(damaged), limit: 8 << 20)
            bytes[(2 << 20) + 100] ^= 0x01
            try storage.writeAtomically(Layout.blobData(damaged), bytes, modified: nil)

            var writer = ArchiveWriter(storage: storage, toolVersion: "test", sourceRoot: root.path)
            writer.jobs = jobs
            let archive = directory.appendingPathComponent("full.tar.zst")
            let result = try await writer.write(try await BackupPlanner(storage: storage).plan(), to: archive.path)
            #expect(result.index.excluded.map(\.digest) == [damaged])
            #expect(ArchiveVerifier().verify([archive.path]).isValid)

            let target = directory.appendingPathComponent("target")
            _ = try restore([archive], into: target)
            for blob in Array(image.blobs) + small.flatMap(\.blobs) where blob != damaged {
                let restored = try Data(contentsOf: target.appendingPathComponent(Layout.blobData(blob).description))
                #expect(try restored == storage.read(Layout.blobData(blob), limit: 8 << 20), "\(blob)")
            }
            let (status, _) = try run("/usr/bin/tar", ["--zstd", "-tf", archive.path])
            #expect(status == 0, "GNU tar reads the concatenated frames")
        }
    }
}
