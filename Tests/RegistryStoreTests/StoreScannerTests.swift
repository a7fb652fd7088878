import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

@Suite struct StoreScannerTests {
    @Test func findsNestedRepositoriesAndTheirLinks() throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let image = try builder.image("team-b/tools/builder", tag: "v1", layers: [layerBytes("l1")])
        try builder.image("team-b", tag: "latest", layers: [layerBytes("l2")])
        try builder.upload("team-b", uuid: "u-1", startedAt: Date(timeIntervalSince1970: 1_000))
        let scanner = StoreScanner(storage: storage)
        let (names, findings) = scanner.repositories()
        #expect(names.map(\.value) == ["team-b", "team-b/tools/builder"])
        #expect(findings.isEmpty)
        let state = scanner.scanRepository("team-b/tools/builder").state
        #expect(Set(state.revisions.keys) == [image.manifest])
        #expect(state.tags["v1"]?.current == image.manifest)
        #expect(state.tags["v1"]?.history == [image.manifest])
        #expect(Set(state.layers.keys) == Set([image.config] + image.layers))
        let uploads = scanner.scanRepository("team-b").state.uploads
        #expect(uploads.map(\.uuid) == ["u-1"])
        #expect(uploads.first?.startedAt == Date(timeIntervalSince1970: 1_000))
    }

    @Test func damagedLinksAreReportedAndRecoveredFromTheirPath() throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        let image = try builder.image("app", tag: "v1", layers: [layerBytes("l1")])
        try storage.writeAtomically(Layout.revisionLink("app", image.manifest), Data(), modified: nil)
        try storage.writeAtomically(Layout.layerLink("app", image.layers[0]), Data("garbage".utf8), modified: nil)
        try storage.writeAtomically(Layout.tagCurrentLink("app", "v1"), Data("sha256:zz".utf8), modified: nil)
        let (state, findings) = StoreScanner(storage: storage).scanRepository("app")
        #expect(state.revisions[image.manifest]?.target == image.manifest)
        #expect(state.revisions[image.manifest]?.recovered == true)
        #expect(state.layers[image.layers[0]]?.target == image.layers[0])
        #expect(state.tags["v1"]?.current == nil)
        #expect(state.taggedManifests == [image.manifest], "an unreadable current link falls back to the tag's history")
        #expect(Set(findings.map(\.path)) == [
            Layout.revisionLink("app", image.manifest), Layout.layerLink("app", image.layers[0]), Layout.tagCurrentLink("app", "v1"),
        ])
    }

    @Test func strayEntriesAreFindings() async throws {
        let storage = InMemoryStorage()
        let builder = StoreBuilder(storage: storage)
        try builder.image("app", tag: "v1", layers: [layerBytes("l1")])
        let notDigest = Layout.blobShardDirectory(.sha256, shard: "ab").appending("abnotadigest")!.appending("data")!
        try storage.writeAtomically(notDigest, Data(), modified: nil)
        let noData = Layout.blobDirectory(Digest("sha256:" + String(repeating: "cd", count: 32))!).appending("other")!
        try storage.writeAtomically(noData, Data(), modified: nil)
        storage.addSymlink(Layout.repositoriesRoot.appending("linked")!)
        let scanner = StoreScanner(storage: storage)
        let blobFindings = try await scanner.blobs(jobs: 2).findings
        #expect(Set(blobFindings.map(\.path)) == [notDigest.parent!, noData.parent!])
        #expect(scanner.repositories().findings.map(\.path) == [Layout.repositoriesRoot.appending("linked")!])
    }
}

@Suite struct StoreLocationTests {
    @Test func resolvesRootFromTheRegistryConfig() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("config.yml")
        try "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: \(directory.path)\n".write(to: config, atomically: true, encoding: .utf8)
        let location = try StoreLocation.resolve(root: nil, config: config.path, stateDirectory: nil)
        #expect(location.root == directory.path)
        #expect(location.stateDirectory == directory.path + "/.regkeeper")

        let s3 = directory.appendingPathComponent("s3.yml")
        try "storage:\n  s3:\n    bucket: x\n".write(to: s3, atomically: true, encoding: .utf8)
        #expect(throws: StoreLocation.Error.configWithoutFilesystemRoot(path: s3.path)) {
            try StoreLocation.resolve(root: nil, config: s3.path, stateDirectory: nil)
        }
        #expect(throws: StoreLocation.Error.noStoreGiven(triedConfig: "/nonexistent/config.yml")) {
            try StoreLocation.resolve(root: nil, config: nil, stateDirectory: nil, defaultConfig: "/nonexistent/config.yml")
        }
        #expect(throws: StoreLocation.Error.self) {
            try StoreLocation.resolve(root: directory.path, config: nil, stateDirectory: directory.path + "/docker/registry/v2/state")
        }
    }

    @Test func secondWriterFailsFastNamingTheHolder() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-lock-\(UUID())").path
        let first = try StoreLock(stateDirectory: directory, mode: .exclusive, command: "regkeeper gc")
        do {
            _ = try StoreLock(stateDirectory: directory, mode: .shared, command: "regkeeper verify")
            Issue.record("a second lock was granted")
        } catch {
            guard case .held(_, let holder) = error else { Issue.record("unexpected \(error)"); return }
            #expect(holder.contains("pid \(getpid())") && holder.contains("regkeeper gc"))
            #expect(holder.contains(/exclusive since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/), "the note says since when: \(holder)")
        }
        withExtendedLifetime(first) {}
    }
}

@Suite struct StoreLockTests {
    @Test func readersShareWritersExclude() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-lock-\(UUID())").path
        let reader = try StoreLock(stateDirectory: directory, mode: .shared, command: "regkeeper verify")
        let second = try StoreLock(stateDirectory: directory, mode: .shared, command: "regkeeper backup")
        #expect(throws: StoreLock.Error.self) { try StoreLock(stateDirectory: directory, mode: .exclusive, command: "regkeeper gc") }
        withExtendedLifetime((reader, second)) {}
    }

    /// A refused lock must leave the holder alone: its descriptor closed once and the holder's
    /// note kept (a refusal used to run deinit, which closed the descriptor a second time,
    /// perhaps another thread's file by then, and deleted the holder's note).
    @Test func refusalLeavesTheHolderAndItsNoteAlone() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-lock-\(UUID())").path
        let holder = try StoreLock(stateDirectory: directory, mode: .exclusive, command: "regkeeper gc")
        let note = directory + "/lock.\(getpid())"
        #expect(FileManager.default.fileExists(atPath: note))
        #expect(throws: StoreLock.Error.self) { try StoreLock(stateDirectory: directory, mode: .shared, command: "regkeeper report") }
        #expect(FileManager.default.fileExists(atPath: note), "the holder's note survives a refused run")
        withExtendedLifetime(holder) {}
    }

    @Test func staleNotesOfDeadProcessesAreIgnored() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-lock-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A note left by a process that died (pid far beyond pid_max).
        try "pid 99999999, regkeeper gc, exclusive since yesterday".write(toFile: directory + "/lock.99999999", atomically: true, encoding: .utf8)
        let holder = try StoreLock(stateDirectory: directory, mode: .exclusive, command: "regkeeper retain")
        do {
            _ = try StoreLock(stateDirectory: directory, mode: .shared, command: "regkeeper report")
            Issue.record("the lock was granted twice")
        } catch {
            guard case .held(_, let text) = error else { Issue.record("\(error)"); return }
            #expect(text.contains("regkeeper retain") && !text.contains("99999999"))
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/lock.99999999"))
        withExtendedLifetime(holder) {}
    }
}
