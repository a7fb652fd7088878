@testable import Archive
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// A small store with every kind of content a backup must tell apart.
struct Fixture {
    let root: URL
    let storage: LocalStorage
    let builder: StoreBuilder
    var tagged: [StoreBuilder.Image] = []
    var orphan: Digest!
    var untagged: StoreBuilder.Image!
    let old = Date(timeIntervalSince1970: 1_700_000_000.123456)

    init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        storage = try LocalStorage(root: root.path)
        builder = StoreBuilder(storage: storage)
        let base = try builder.image("library/app", tag: "v1", layers: [layerBytes("base", size: 70_000), layerBytes("app1")], modified: old)
        let other = try builder.image("team-b/tools/builder", tag: "1.0", layers: [layerBytes("base", size: 70_000), layerBytes("tool")], mediaType: .dockerManifest, modified: old)
        let child = try builder.image("multi/arch", tag: nil, layers: [layerBytes("arm")], modified: old, seed: "arm")
        try builder.index("multi/arch", tag: "2.0", children: [child.manifest], modified: old)
        untagged = try builder.image("library/app", tag: nil, layers: [layerBytes("old-app")], modified: old, seed: "untagged")
        let deleted = try builder.image("library/app", tag: nil, layers: [layerBytes("deleted")], modified: old, seed: "deleted")
        try builder.deleteManifest(deleted.manifest, in: "library/app")
        orphan = try builder.blob(layerBytes("orphan"), modified: old)
        try builder.upload("library/app", uuid: "abandoned-1", startedAt: old)
        tagged = [base, other, child]
    }

    func plan(includeGarbage: Bool = false) async throws -> BackupPlan {
        var planner = BackupPlanner(storage: storage)
        planner.includeGarbage = includeGarbage
        return try await planner.plan()
    }

    func backup(to path: URL, catalog: URL, incremental: Bool = false) async throws -> BackupResult {
        var backup = Backup(storage: storage, catalogDirectory: catalog.path, toolVersion: "test", sourceRoot: root.path)
        backup.incremental = incremental
        return try await backup.run(output: path.path)
    }
}

/// Every file under a root, with content and mtime, relative to the root.
func files(under root: URL, excluding prefixes: [String] = [".regkeeper"]) throws -> [String: (Data, Date)] {
    var result: [String: (Data, Date)] = [:]
    guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [:] }
    while let relative = walker.nextObject() as? String {
        guard walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular,
              !prefixes.contains(where: { relative.hasPrefix($0) }) else { continue }
        let url = root.appendingPathComponent(relative)
        result[relative] = (try Data(contentsOf: url), (walker.fileAttributes?[.modificationDate] as? Date) ?? .distantPast)
    }
    return result
}

/// The store paths a plan says the archive holds: its blobs and links.
func snapshotPaths(_ plan: BackupPlan) -> Set<String> {
    Set(plan.blobs.map { Layout.blobData($0.digest).description } + plan.links.map(\.path.description))
}

func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

func restore(_ archives: [URL], into target: URL, options: RestoreOptions = RestoreOptions()) throws -> RestoreResult {
    let chain = try ArchiveChain(try archives.map { url throws(ArchiveError) in try ArchiveReader(path: url.path) })
    return try RestoreExecutor(target: target.path, options: options).restore(chain)
}
