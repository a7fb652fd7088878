import Foundation
import RegistryModel
import RegistryStore

/// The store drivers a test can run on.
public enum Driver: String, CaseIterable, Sendable, CustomStringConvertible {
    case inMemory
    case local

    public var description: String { rawValue }
}

/// A store of single- and multi-arch images, one layer shared across repositories, and a
/// state directory beside it, on either driver: what verify's tests run on, in process
/// (`IntegrityTests`) and through the binary (`CLITests`).
public final class SampleImageStore: @unchecked Sendable {
    public let storage: any StoreStorage
    public let stateDirectory: URL
    /// The local store's root; nil for the in-memory driver.
    public let root: URL?
    public let builder: StoreBuilder

    public let shared = layerBytes("shared", size: 4096)
    public let app: StoreBuilder.Image
    public let other: StoreBuilder.Image
    public let children: [StoreBuilder.Image]
    public let index: Digest

    public init(_ driver: Driver) throws {
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

    public var allBlobs: Set<Digest> {
        app.blobs.union(other.blobs).union(children.flatMap(\.blobs)).union([index])
    }

    /// Replaces a blob's bytes in place, as a disk error would.
    public func damage(_ digest: Digest, _ change: (inout Data) -> Void) throws {
        var data = try storage.read(Layout.blobData(digest), limit: .max)
        change(&data)
        try storage.writeAtomically(Layout.blobData(digest), data, modified: nil)
    }
}
