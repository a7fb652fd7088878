import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport

enum Driver: String, CaseIterable, Sendable, CustomStringConvertible {
    case inMemory
    case local

    var description: String { rawValue }
}

/// A store of single- and multi-arch images, one layer shared across repositories, and a
/// state directory, on either driver.
final class Fixture: @unchecked Sendable {
    let storage: any StoreStorage
    let stateDirectory: URL
    /// The local store's root; nil for the in-memory driver.
    let root: URL?
    let builder: StoreBuilder

    let shared = layerBytes("shared", size: 4096)
    let app: StoreBuilder.Image
    let other: StoreBuilder.Image
    let children: [StoreBuilder.Image]
    let index: Digest

    init(_ driver: Driver) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stateDirectory = directory.appendingPathComponent("state")
        switch driver {
        case .inMemory:
            storage = InMemoryStorage()
            root = nil
        case .local:
            let root = directory.appendingPathComponent("store")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            storage = try LocalStorage(root: root.path)
            self.root = root
        }
        let builder = StoreBuilder(storage: storage)
        self.builder = builder
        let shared = shared
        app = try builder.image("app", tag: "v1", layers: [shared, layerBytes("app-1", size: 8192)])
        other = try builder.image("team/other", tag: "latest", layers: [shared, layerBytes("other", size: 1024)])
        children = try ["amd64", "arm64"].map {
            try builder.image("multi/arch", tag: nil, layers: [layerBytes($0, size: 2048)], mediaType: .dockerManifest, seed: $0)
        }
        index = try builder.index("multi/arch", tag: "1.0", children: children.map(\.manifest), mediaType: .dockerManifestList)
    }

    deinit {
        try? FileManager.default.removeItem(at: stateDirectory.deletingLastPathComponent())
    }

    var allBlobs: Set<Digest> {
        app.blobs.union(other.blobs).union(children.flatMap(\.blobs)).union([index])
    }

    func state() throws -> StateStore {
        try StateStore.open(at: stateDirectory.appendingPathComponent("state.db"))
    }

    func verify(
        maxAge: TimeSpan? = nil, budget: Int64? = nil, timeLimit: Duration? = nil, quarantine: Bool = false,
        at now: Date = Date()
    ) async throws -> VerifyReport {
        var options = VerifyOptions()
        options.jobs = 2
        options.maxAge = maxAge
        options.budget = budget.map { ByteCount(bytes: $0) }
        options.timeLimit = timeLimit
        options.quarantineDirectory = quarantine ? stateDirectory.appendingPathComponent("quarantine").path : nil
        let consumed = Consumed()
        let report = try await Verifier(storage: storage, state: try state(), options: options, findings: { consumed.append($0) }, now: { now }).run()
        // The consumer sees exactly what the report lists.
        precondition(Set(consumed.all) == Set(report.findings) && consumed.all.count == report.findings.count)
        return report
    }

    /// Replaces a blob's bytes in place, as a disk error would.
    func damage(_ digest: Digest, _ change: (inout Data) -> Void) throws {
        var data = try storage.read(Layout.blobData(digest), limit: .max)
        change(&data)
        try storage.writeAtomically(Layout.blobData(digest), data, modified: nil)
    }
}

final class Consumed: @unchecked Sendable {
    private let lock = NSLock()
    private var findings: [IntegrityFinding] = []

    func append(_ finding: IntegrityFinding) { lock.withLock { findings.append(finding) } }
    var all: [IntegrityFinding] { lock.withLock { findings } }
}

/// The parts of a finding a test pins: kind, path, digest and the tags it breaks.
struct Seen: Hashable, CustomStringConvertible {
    var kind: IntegrityFinding.Kind
    var path: String
    var digest: Digest?
    var tags: [String]

    init(_ kind: IntegrityFinding.Kind, _ path: StorePath, _ digest: Digest?, _ tags: [String] = []) {
        self.kind = kind
        self.path = path.description
        self.digest = digest
        self.tags = tags
    }

    init(_ finding: IntegrityFinding) {
        self.init(finding.kind, finding.path, finding.digest, finding.affectedTags.map(\.description))
    }

    var description: String { "\(kind.rawValue) \(path) \(digest?.description ?? "-") \(tags)" }
}

extension VerifyReport {
    var seen: [Seen] { findings.map(Seen.init) }
}
