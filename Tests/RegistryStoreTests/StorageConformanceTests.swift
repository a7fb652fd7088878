import Foundation
import RegistryHarness
import RegistryStore
import S3Store
import StoreTestSupport
import Testing

/// One contract, three drivers: what gc and retention rely on must hold for each. The S3 one
/// runs on a real Ceph RGW started by the harness, in a fresh bucket, under a root prefix.
@Suite struct StorageConformanceTests {
    static func drivers() async throws -> [(String, any StoreStorage)] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-conformance-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let bucket = try await CephCluster.shared().makeBucket("conformance")
        return [
            ("local", try LocalStorage(root: directory.path)), ("memory", InMemoryStorage()),
            ("s3", S3Storage(client: S3Client(endpoint: bucket), rootDirectory: "/store")),
        ]
    }

    let file = StorePath(relative: "docker/registry/v2/a/b/file")!

    @Test func writeReadStatList() async throws {
        for (name, storage) in try await Self.drivers() {
            let modified = Date(timeIntervalSince1970: 1_700_000_000.25)
            try storage.writeAtomically(file, Data("hello".utf8), modified: modified)
            #expect(try storage.read(file, limit: 100) == Data("hello".utf8), "\(name)")
            let status = try #require(try storage.status(file))
            #expect(status.kind == .file && status.size == 5, "\(name)")
            #expect(abs(status.modified.timeIntervalSince(modified)) < 0.001, "\(name)")
            #expect(try storage.list(file.parent!) == [DirectoryEntry(name: "file", kind: .file)], "\(name)")
            #expect(try storage.status(file.parent!)?.kind == .directory, "\(name)")
            #expect(try storage.status(file.parent!.appending("missing")!) == nil, "\(name)")
            #expect(throws: StorageError.notFound(file.parent!.appending("missing")!)) { try storage.list(file.parent!.appending("missing")!) }
            #expect(throws: StorageError.self) { try storage.read(file, limit: 4) }
            var chunks: [Int] = []
            try storage.readChunks(file, chunkSize: 2) { chunks.append($0.count) }
            #expect(chunks == [2, 2, 1], "\(name)")
        }
    }

    @Test func renameRemoveAndEmptyDirectories() async throws {
        for (name, storage) in try await Self.drivers() {
            try storage.writeAtomically(file, Data("x".utf8), modified: nil)
            let moved = StorePath(relative: "docker/registry/v2/c/d/moved")!
            try storage.rename(file.parent!, to: moved)
            #expect(try storage.read(moved.appending("file")!, limit: 10) == Data("x".utf8), "\(name)")
            #expect(try storage.status(file) == nil, "\(name)")
            #expect(try storage.removeIfEmpty(moved) == false, "\(name)")
            #expect(try storage.remove(moved) == true, "\(name)")
            #expect(try storage.remove(moved) == false, "\(name)")
            #expect(try storage.removeIfEmpty(moved.parent!) == true, "\(name)")
        }
    }

    @Test func refusesChangesOutsideTheRegistryTree() async throws {
        for (name, storage) in try await Self.drivers() {
            let outside = StorePath(relative: "etc/passwd")!
            #expect(throws: StorageError.outsideRegistryTree(outside), "\(name)") { try storage.writeAtomically(outside, Data(), modified: nil) }
            #expect(throws: StorageError.outsideRegistryTree(outside), "\(name)") { try storage.remove(outside) }
            #expect(throws: StorageError.outsideRegistryTree(StorePath(relative: "docker/registry/v2")!), "\(name)") {
                try storage.remove(StorePath(relative: "docker/registry/v2")!)
            }
        }
    }

    @Test func listRecursivelyFindsEveryFileAtAnyDepth() async throws {
        for (name, storage) in try await Self.drivers() {
            let base = StorePath(relative: "docker/registry/v2/repositories/app")!
            let files = ["_layers/sha256/aa/link", "_manifests/tags/v1/current/link", "_manifests/revisions/sha256/bb/link"]
            for (index, file) in files.enumerated() {
                try storage.writeAtomically(StorePath(relative: "\(base)/\(file)")!, Data(repeating: 7, count: index + 1), modified: nil)
            }
            let found = try storage.listRecursively(base)
            #expect(found.map(\.path.description).sorted() == files.map { "\(base)/\($0)" }.sorted(), "\(name)")
            #expect(found.map(\.status.size).sorted() == [1, 2, 3], "\(name)")
            #expect(throws: StorageError.notFound(base.appending("missing")!), "\(name)") { try storage.listRecursively(base.appending("missing")!) }
        }
    }

    /// One pass tells live revision links from deleted ones: a child with its probe file, one
    /// without, and a plain file.
    @Test func listProbingReportsEachChildsProbe() async throws {
        for (name, storage) in try await Self.drivers() {
            let revisions = StorePath(relative: "docker/registry/v2/repositories/app/_manifests/revisions/sha256")!
            try storage.writeAtomically(revisions.appending("aa")!.appending("link")!, Data("sha256:aa".utf8), modified: nil)
            try storage.writeAtomically(revisions.appending("bb")!.appending("other")!, Data("x".utf8), modified: nil)
            try storage.writeAtomically(revisions.appending("stray")!, Data("x".utf8), modified: nil)
            let probed = try storage.list(revisions, probing: "link").sorted { $0.entry.name < $1.entry.name }
            #expect(probed.map(\.entry) == [
                DirectoryEntry(name: "aa", kind: .directory), DirectoryEntry(name: "bb", kind: .directory), DirectoryEntry(name: "stray", kind: .file),
            ], "\(name)")
            #expect(probed.map { $0.probe?.size } == [9, nil, nil], "\(name)")
            #expect(probed.allSatisfy { $0.probeFailure == nil }, "\(name)")
            #expect(throws: StorageError.notFound(revisions.appending("none")!), "\(name)") { try storage.list(revisions.appending("none")!, probing: "link") }
        }
    }

    /// A repository's layer links in one pass: each child's link read with its status; a child
    /// without one, a link too large and a plain file come back without content.
    @Test func listReadingReadsEachChildsFile() async throws {
        for (name, storage) in try await Self.drivers() {
            let layers = StorePath(relative: "docker/registry/v2/repositories/app/_layers/sha256")!
            let modified = Date(timeIntervalSince1970: 1_700_000_000)
            try storage.writeAtomically(layers.appending("aa")!.appending("link")!, Data("sha256:aa".utf8), modified: modified)
            try storage.writeAtomically(layers.appending("bb")!.appending("other")!, Data("x".utf8), modified: nil)
            try storage.writeAtomically(layers.appending("cc")!.appending("link")!, Data(repeating: 0x61, count: 200), modified: nil)
            try storage.writeAtomically(layers.appending("stray")!, Data("x".utf8), modified: nil)
            let read = try storage.list(layers, reading: "link", limit: 100).sorted { $0.entry.name < $1.entry.name }
            #expect(read.map(\.entry) == [
                DirectoryEntry(name: "aa", kind: .directory), DirectoryEntry(name: "bb", kind: .directory),
                DirectoryEntry(name: "cc", kind: .directory), DirectoryEntry(name: "stray", kind: .file),
            ], "\(name)")
            #expect(read.map { $0.file.map { String(decoding: $0.data, as: UTF8.self) } } == ["sha256:aa", nil, nil, nil], "\(name)")
            let status = try #require(read[0].file?.status)
            #expect(status.kind == .file && status.size == 9 && abs(status.modified.timeIntervalSince(modified)) < 0.001, "\(name)")
            #expect(throws: StorageError.notFound(layers.appending("none")!), "\(name)") { try storage.list(layers.appending("none")!, reading: "link", limit: 100) }
        }
    }

    @Test func pathsCannotEscape() {
        #expect(StorePath(relative: "../x") == nil)
        #expect(StorePath(relative: "a/../../x") == nil)
        #expect(StorePath(relative: "/etc/passwd") == nil)
        #expect(StorePath(relative: "./a//b/")?.description == "a/b")
        #expect(StorePath.root.appending("..") == nil)
        #expect(StorePath.root.appending("a/b") == nil)
    }
}

/// The local driver on a real directory: symlinks inside the store are never followed.
@Suite struct LocalStorageSymlinkTests {
    @Test func neverFollowsSymlinks() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-symlink-\(UUID())")
        let root = base.appendingPathComponent("root")
        let outside = base.appendingPathComponent("outside")
        let manager = FileManager.default
        try manager.createDirectory(at: root.appendingPathComponent("docker/registry/v2/blobs"), withIntermediateDirectories: true)
        try manager.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: outside.appendingPathComponent("data"))
        try manager.createSymbolicLink(at: root.appendingPathComponent("docker/registry/v2/blobs/evil"), withDestinationURL: outside)
        try manager.createSymbolicLink(at: root.appendingPathComponent("docker/registry/v2/file-link"), withDestinationURL: outside.appendingPathComponent("data"))
        defer { try? manager.removeItem(at: base) }

        let storage = try LocalStorage(root: root.path)
        let throughDirectory = StorePath(relative: "docker/registry/v2/blobs/evil/data")!
        #expect(throws: StorageError.symlinkRefused(throughDirectory)) { try storage.read(throughDirectory, limit: 100) }
        #expect(throws: StorageError.symlinkRefused(throughDirectory.parent!)) { try storage.remove(throughDirectory) }
        #expect(throws: StorageError.symlinkRefused(throughDirectory.parent!)) { try storage.writeAtomically(throughDirectory, Data(), modified: nil) }
        let fileLink = StorePath(relative: "docker/registry/v2/file-link")!
        #expect(throws: StorageError.symlinkRefused(fileLink)) { try storage.read(fileLink, limit: 100) }
        #expect(try storage.status(fileLink)?.kind == .symlink)
        #expect(try storage.list(StorePath(relative: "docker/registry/v2/blobs")!) == [DirectoryEntry(name: "evil", kind: .symlink)])
        // Removing the link removes the link only.
        #expect(try storage.remove(StorePath(relative: "docker/registry/v2/blobs/evil")!))
        #expect(try storage.remove(fileLink))
        #expect(manager.fileExists(atPath: outside.appendingPathComponent("data").path))
    }

    /// Reading every child's link never reads through a symbolic link: not a link that is one,
    /// not a child directory that is one.
    @Test func listReadingNeverFollowsSymlinks() async throws {
        try await withTemporaryDirectory { base in
            let manager = FileManager.default
            let layers = base.appendingPathComponent("root/docker/registry/v2/repositories/app/_layers/sha256")
            let outside = base.appendingPathComponent("outside")
            try manager.createDirectory(at: layers.appendingPathComponent("aa"), withIntermediateDirectories: true)
            try manager.createDirectory(at: outside.appendingPathComponent("cc"), withIntermediateDirectories: true)
            try Data("sha256:outside".utf8).write(to: outside.appendingPathComponent("cc/link"))
            try manager.createSymbolicLink(at: layers.appendingPathComponent("aa/link"), withDestinationURL: outside.appendingPathComponent("cc/link"))
            try manager.createSymbolicLink(at: layers.appendingPathComponent("cc"), withDestinationURL: outside.appendingPathComponent("cc"))

            let storage = try LocalStorage(root: base.appendingPathComponent("root").path)
            let read = try storage.list(StorePath(relative: "docker/registry/v2/repositories/app/_layers/sha256")!, reading: "link", limit: 100)
                .sorted { $0.entry.name < $1.entry.name }
            #expect(read.map(\.entry) == [DirectoryEntry(name: "aa", kind: .directory), DirectoryEntry(name: "cc", kind: .symlink)])
            #expect(read.allSatisfy { $0.file == nil })
        }
    }
}

@Suite struct DetachTests {
    /// A trash on another filesystem cannot take a rename: the item stays, the error says why.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/shm"))) func detachAcrossFilesystemsLeavesTheItem() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-detach-\(UUID())")
        let trash = "/dev/shm/regkeeper-trash-\(UUID())"
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(at: root)
            try? FileManager.default.removeItem(atPath: trash)
        }
        var stat1 = stat(), stat2 = stat()
        guard stat(root.path, &stat1) == 0, stat("/dev/shm", &stat2) == 0, stat1.st_dev != stat2.st_dev else { return }
        let storage = try LocalStorage(root: root.path)
        let file = StorePath(relative: "docker/registry/v2/blobs/sha256/aa/x/data")!
        try storage.writeAtomically(file, Data("keep me".utf8), modified: nil)
        do {
            try storage.detach(file.parent!, into: trash)
            Issue.record("a rename across filesystems succeeded")
        } catch {
            #expect(error.description.contains("must be on the store's filesystem"))
        }
        #expect(try storage.read(file, limit: 100) == Data("keep me".utf8))
    }
}

/// What a sweep needs of a driver besides the basic contract: a detached area that can be read
/// like the store, listed, moved whole and discarded.
@Suite struct DetachedAreaTests {
    @Test func detachedItemsCanBeReadListedMovedAndDiscarded() async throws {
        for (name, storage) in try await StorageConformanceTests.drivers() {
            let parent = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-area-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: parent) }
            let blob = StorePath(relative: "docker/registry/v2/blobs/sha256/ab/abcd/data")!
            let modified = Date(timeIntervalSince1970: 1_700_000_000)
            try storage.writeAtomically(blob, Data("bytes".utf8), modified: modified)
            #expect(try storage.detachedAreas(under: parent).isEmpty, "\(name)")
            try storage.detach(blob.parent!, into: parent + "/run-1")
            #expect(try storage.status(blob) == nil, "\(name): out of the store")
            #expect(try storage.detachedAreas(under: parent) == ["run-1"], "\(name)")
            let area = try storage.detachedArea(parent + "/run-1")
            #expect(try area.read(blob, limit: 100) == Data("bytes".utf8), "\(name): read where it stood")
            #expect(try area.status(blob)?.modified == modified, "\(name): with its mtime")
            try storage.moveDetached(from: parent + "/run-1", to: parent + "/trash/run-1")
            #expect(try storage.detachedFiles(in: parent + "/trash/run-1") == [blob], "\(name)")
            try storage.discardDetached(in: parent + "/trash/run-1")
            #expect(try storage.detachedFiles(in: parent + "/trash/run-1").isEmpty, "\(name)")
            try storage.discardDetached(in: parent + "/never-made")
        }
    }

    /// gc's re-read tells links written during a run by their time: a detached and
    /// reattached link must keep its own, or it would look freshly written and pin its blob.
    @Test func detachAndReattachKeepTheModificationTime() async throws {
        for (name, storage) in try await StorageConformanceTests.drivers() {
            let parent = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-area-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: parent) }
            let link = StorePath(relative: "docker/registry/v2/repositories/app/_layers/sha256/ab/link")!
            let old = Date(timeIntervalSince1970: 1_600_000_000)
            try storage.writeAtomically(link, Data("sha256:ab".utf8), modified: old)
            try storage.detach(link.parent!, into: parent + "/run")
            #expect(try storage.detachedArea(parent + "/run").status(link)?.modified == old, "\(name): in the area")
            try storage.reattach(link, from: parent + "/run")
            #expect(try storage.status(link)?.modified == old, "\(name): back in the store")
            #expect(throws: StorageError.alreadyExists(link), "\(name)") {
                try storage.detach(link.parent!, into: parent + "/run2")
                try storage.writeAtomically(link, Data("again".utf8), modified: nil)
                try storage.reattach(link, from: parent + "/run2")
            }
        }
    }

    /// Linux answers EPERM both for a directory and for an immutable file; only the first is
    /// worth descending into, and the second must be reported as what it is.
    @Test func anImmutableFileIsReportedAsNotPermitted() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-immutable-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let storage = try LocalStorage(root: root.path)
        let file = StorePath(relative: "docker/registry/v2/blobs/sha256/ab/abcd/data")!
        try storage.writeAtomically(file, Data("x".utf8), modified: nil)
        let absolute = storage.absolutePath(file)
        try #require(Process.run(URL(fileURLWithPath: "/usr/bin/chattr"), arguments: ["+i", absolute]).waitForExit() == 0, "chattr needs root and ext4")
        defer {
            _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/chattr"), arguments: ["-i", absolute]).waitForExit()
            try? FileManager.default.removeItem(at: root)
        }
        #expect(throws: StorageError.system(operation: "unlink", path: file, errno: Errno(EPERM))) {
            try storage.remove(file.parent!)
        }
    }
}

extension Process {
    func waitForExit() -> Int32 {
        waitUntilExit()
        return terminationStatus
    }
}
