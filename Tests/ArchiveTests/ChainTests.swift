@testable import Archive
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

@Suite struct ChainTests {
    /// Full, then two incrementals, each after a new image.
    func chain(_ directory: URL) async throws -> (Fixture, [URL], [BackupResult]) {
        let fixture = try Fixture(root: directory.appendingPathComponent("source"))
        let catalog = directory.appendingPathComponent("catalog")
        var urls: [URL] = []
        var results: [BackupResult] = []
        for step in 0..<3 {
            if step > 0 { try fixture.builder.image("library/app", tag: Tag("step\(step)")!, layers: [layerBytes("new-\(step)", size: 5000)], seed: "s\(step)") }
            let url = directory.appendingPathComponent("backup-\(step).tar.zst")
            results.append(try await fixture.backup(to: url, catalog: catalog, incremental: step > 0))
            urls.append(url)
        }
        return (fixture, urls, results)
    }

    @Test func incrementalCarriesOnlyNewBlobsAndRestoresTheWholeStore() async throws {
        try await withTemporaryDirectory { directory in
            let (fixture, urls, results) = try await chain(directory)
            #expect(results.map(\.index.metadata.kind) == [.full, .incremental, .incremental])
            #expect(results[2].index.metadata.chain.map(\.id) == [results[0].id, results[1].id])
            // step 2 adds a config, one layer and a manifest: three new blobs.
            #expect(results[2].blobsWritten == 3)
            #expect(results[2].inheritedBlobs == results[1].blobsWritten + results[0].blobsWritten)
            #expect(results[2].blobBytesWritten * 10 < results[0].blobBytesWritten)

            let target = directory.appendingPathComponent("target")
            _ = try restore(urls, into: target)
            let plan = try await fixture.plan()
            #expect(Set(try files(under: target).keys) == snapshotPaths(plan))
            #expect(ArchiveVerifier().verify(urls.map(\.path)).isValid)
        }
    }

    @Test func chainErrorsNameTheMissingArchive() async throws {
        try await withTemporaryDirectory { directory in
            let (_, urls, results) = try await chain(directory)
            let target = directory.appendingPathComponent("target")
            #expect { try restore([urls[0], urls[2]], into: target) } throws: { error in
                guard case ArchiveError.missingArchive(let id, let file, _) = error else { return false }
                return id == results[1].id && file == "backup-1.tar.zst" && "\(error)".contains("backup-1.tar.zst")
            }
            #expect { try restore([urls[1], urls[2]], into: target) } throws: { error in
                guard case ArchiveError.missingArchive(let id, _, _) = error else { return false }
                return id == results[0].id
            }
            #expect { try restore([urls[0], urls[2], urls[1]], into: target) } throws: { error in
                if case ArchiveError.chainOutOfOrder = error { return true }
                return false
            }
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? []).isEmpty)
            #expect(ArchiveVerifier().verify([urls[0].path, urls[2].path]).chainError?.contains(results[1].id.rawValue) == true)
        }
    }

    @Test func catalogListsTheChainAndReindexRebuildsIt() async throws {
        try await withTemporaryDirectory { directory in
            let (_, urls, results) = try await chain(directory)
            let catalogDirectory = directory.appendingPathComponent("catalog")
            let before = try await BackupCatalog.open(directory: catalogDirectory.path).archives()
            #expect(before.map(\.id) == results.map(\.id))
            #expect(before.map(\.parent) == [nil, results[0].id, results[1].id])
            try FileManager.default.removeItem(at: catalogDirectory)
            let outcome = try await Reindex().run(directory: directory.path, catalogDirectory: catalogDirectory.path)
            #expect(outcome.archives.sorted() == urls.map(\.path).sorted())
            let catalog = try BackupCatalog.open(directory: catalogDirectory.path)
            #expect(try await catalog.archives() == before)
            #expect(try await catalog.chain().map(\.path) == urls.map(\.path))
        }
    }

    @Test func incrementalWithoutAFullBackupIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            await #expect(throws: ArchiveError.self) {
                try await fixture.backup(to: directory.appendingPathComponent("i.tar.zst"), catalog: directory, incremental: true)
            }
        }
    }
}

@Suite struct MergeAndCorruptionTests {
    @Test func mergeAddsWhatIsMissingAndNeverOverwrites() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let archive = directory.appendingPathComponent("full.tar.zst")
            _ = try await fixture.backup(to: archive, catalog: directory)
            let target = directory.appendingPathComponent("target")
            let other = StoreBuilder(storage: try { try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true); return try LocalStorage(root: target.path) }())
            // The target's copy of a shared layer is damaged, and its v1 tag points elsewhere.
            let layer = fixture.tagged[0].layers[0]
            try other.storage.writeAtomically(Layout.blobData(layer), Data("damaged".utf8), modified: nil)
            let local = try other.image("library/app", tag: "v1", layers: [layerBytes("local")], seed: "local")

            let result = try restore([archive], into: target, options: RestoreOptions(merge: true))
            #expect(try other.storage.read(Layout.blobData(layer), limit: 1 << 20) == Data("damaged".utf8))
            #expect(try other.storage.read(Layout.tagCurrentLink("library/app", "v1"), limit: 100) == Data(local.manifest.description.utf8))
            #expect(result.conflicts.count == 2, "\(result.conflicts)")
            #expect(try other.storage.status(Layout.tagCurrentLink("team-b/tools/builder", "1.0")) != nil, "missing tags are added")
            #expect(try other.storage.status(Layout.blobData(fixture.tagged[1].manifest)) != nil)
        }
    }

    /// A merge into a store that still holds most of the archive stages only what the target
    /// lacks or holds otherwise; what it holds alike never reaches the staging area (seen by
    /// listing the staging area when the merge begins placing).
    @Test func mergeStagesOnlyWhatTheTargetLacksOrHoldsOtherwise() async throws {
        try await withTemporaryDirectory { directory in
            let (fixture, archive, target) = try await restoredCopy(in: directory)
            let storage = try LocalStorage(root: target.path)
            // Lost: one repository, one blob. Moved: a tag (a link of the same size, other bytes).
            let lost = target.appendingPathComponent(Layout.repositoryDirectory("team-b/tools/builder").description)
            let lostFiles = try regularFiles(under: lost.path).map { Layout.repositoryDirectory("team-b/tools/builder").description + "/" + $0 }
            try FileManager.default.removeItem(at: lost)
            let lostBlob = fixture.tagged[2].layers[0]
            try FileManager.default.removeItem(atPath: target.path + "/" + Layout.blobData(lostBlob).description)
            let moved = Layout.tagCurrentLink("library/app", "v1")
            try storage.writeAtomically(moved, Data(fixture.untagged.manifest.description.utf8), modified: nil)

            let (result, staged) = try mergeListingStaged(archive, into: target)
            #expect(staged.sorted() == (lostFiles + [Layout.blobData(lostBlob).description, moved.description]).sorted())
            #expect(result.conflicts.count == 1 && result.conflicts[0].hasPrefix(moved.description), "\(result.conflicts)")
            #expect(try storage.read(moved, limit: 100) == Data(fixture.untagged.manifest.description.utf8), "the target's tag is kept")
            #expect(try regularFiles(under: lost.path).count == lostFiles.count)
            #expect(try storage.status(Layout.blobData(lostBlob)) != nil)
        }
    }

    /// A directory of the target replaced by a symbolic link to a copy of it: the merge's
    /// probe does not follow it, so nothing is taken as present through it; the merge stages
    /// those members, reports the link and keeps it, and writes nothing through it.
    @Test func mergeNeverTakesFilesAsPresentThroughASymbolicLink() async throws {
        try await withTemporaryDirectory { directory in
            let (_, archive, target) = try await restoredCopy(in: directory)
            let layers = target.appendingPathComponent(Layout.repositoryDirectory("library/app").description + "/_layers")
            let elsewhere = directory.appendingPathComponent("elsewhere")
            try FileManager.default.moveItem(at: layers, to: elsewhere)
            try FileManager.default.createSymbolicLink(at: layers, withDestinationURL: elsewhere)
            let before = try regularFiles(under: elsewhere.path).sorted()

            let (result, staged) = try mergeListingStaged(archive, into: target)
            let linkPath = Layout.repositoryDirectory("library/app").description + "/_layers"
            #expect(!staged.isEmpty && staged.allSatisfy { $0.hasPrefix(linkPath + "/") }, "\(staged)")
            #expect(result.conflicts == ["\(linkPath): the target holds a file where the archive has a directory (kept it)"], "\(result.conflicts)")
            let info = try FileManager.default.attributesOfItem(atPath: layers.path)
            #expect(info[.type] as? FileAttributeType == .typeSymbolicLink, "the target's link is kept")
            #expect(try regularFiles(under: elsewhere.path).sorted() == before, "nothing written through it")
        }
    }

    @Test func corruptSourceBlobIsReportedExcludedAndNeverRecorded() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let layer = fixture.tagged[1].layers[1]
            var bytes = try fixture.storage.read(Layout.blobData(layer), limit: 1 << 20)
            bytes[3] ^= 0x40
            try fixture.storage.writeAtomically(Layout.blobData(layer), bytes, modified: nil)
            let archive = directory.appendingPathComponent("full.tar.zst")
            let result = try await fixture.backup(to: archive, catalog: directory)
            #expect(result.findings.contains { if case .corruptBlob(let digest, _) = $0 { digest == layer } else { false } })
            #expect(result.index.excluded.map(\.digest) == [layer])
            let recorded = try await BackupCatalog.open(directory: directory.path).blobs(in: [result.id])
            #expect(recorded[layer] == nil, "the next incremental must archive it again")
            #expect(ArchiveVerifier().verify([archive.path]).isValid)

            let target = directory.appendingPathComponent("target")
            let restored = try restore([archive], into: target)
            #expect(restored.skipped.contains { $0.contains(layer.description) })
            #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent(Layout.blobData(layer).description).path))
        }
    }
}

/// GNU tar both ways: it extracts our archives, and we restore its archives of a store.
@Suite struct GNUTarTests {
    @Test func gnuTarExtractsWhatRestoreWrites() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let archive = directory.appendingPathComponent("full.tar.zst")
            _ = try await fixture.backup(to: archive, catalog: directory)
            let byTar = directory.appendingPathComponent("by-tar")
            try FileManager.default.createDirectory(at: byTar, withIntermediateDirectories: true)
            let (status, output) = try run("/usr/bin/tar", ["--zstd", "-xf", archive.path, "-C", byTar.path])
            #expect(status == 0, "\(output)")
            let byUs = directory.appendingPathComponent("by-us")
            _ = try restore([archive], into: byUs)
            let tarFiles = try files(under: byTar, excluding: [".regkeeper"])
            let ourFiles = try files(under: byUs)
            #expect(Set(tarFiles.keys) == Set(ourFiles.keys))
            for (path, (data, modified)) in ourFiles {
                #expect(tarFiles[path]?.0 == data)
                #expect(abs((tarFiles[path]?.1 ?? .distantPast).timeIntervalSince(modified)) < 0.000_01, "GNU tar keeps the pax mtime of \(path)")
            }
        }
    }

    @Test func restoreAcceptsAPlainGNUTarArchiveOfAStore() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try Fixture(root: directory.appendingPathComponent("source"))
            let archive = directory.appendingPathComponent("by-tar.tar.zst")
            let (status, output) = try run("/usr/bin/tar", ["--zstd", "-cf", archive.path, "-C", fixture.root.path, "docker"])
            #expect(status == 0, "\(output)")
            let target = directory.appendingPathComponent("target")
            let result = try restore([archive], into: target)
            #expect(result.blobs > 0)
            let source = try files(under: fixture.root)
            let restored = try files(under: target)
            #expect(Set(restored.keys) == Set(source.keys))
            #expect(restored.allSatisfy { source[$0.key]?.0 == $0.value.0 && abs(source[$0.key]!.1.timeIntervalSince($0.value.1)) < 1 })
            let report = ArchiveVerifier().verify([archive.path])
            #expect(report.isValid, "\(report)")
        }
    }
}

/// The fixture's store backed up in full and restored into `target`: what a merge runs against.
private func restoredCopy(in directory: URL) async throws -> (Fixture, archive: URL, target: URL) {
    let fixture = try Fixture(root: directory.appendingPathComponent("source"))
    let archive = directory.appendingPathComponent("full.tar.zst")
    _ = try await fixture.backup(to: archive, catalog: directory)
    let target = directory.appendingPathComponent("target")
    _ = try restore([archive], into: target)
    return (fixture, archive, target)
}

/// `restore --merge` of `archive` into `target`, and the files it had staged when it began
/// placing them.
private func mergeListingStaged(_ archive: URL, into target: URL) throws -> (RestoreResult, staged: [String]) {
    let staged = StagedFiles(target: target.path)
    var executor = RestoreExecutor(target: target.path, options: RestoreOptions(merge: true))
    executor.reporter = staged
    let result = try executor.restore(try ArchiveChain([try ArchiveReader(path: archive.path)]))
    return (result, staged.files)
}

/// Paths of the regular files under `root`, relative to it.
private func regularFiles(under root: String) throws -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
    var files: [String] = []
    while let path = walker.nextObject() as? String {
        if walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular { files.append(path) }
    }
    return files
}

/// Lists the staging area's files (relative to its root) when a restore begins placing them.
private final class StagedFiles: ProgressReporter, @unchecked Sendable {
    let target: String
    private(set) var files: [String] = []

    init(target: String) { self.target = target }

    func phaseStarted(_ phase: String) {
        guard phase == "place", let entries = try? FileManager.default.contentsOfDirectory(atPath: target) else { return }
        for staging in entries where staging.hasPrefix(".regkeeper-restore-") {
            files += (try? regularFiles(under: target + "/" + staging)) ?? []
        }
    }

    func phaseFinished(_ phase: String, elapsed: Duration) {}
    func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {}
}
