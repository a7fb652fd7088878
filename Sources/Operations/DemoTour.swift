import Foundation
import GarbageCollection
import RegistryHarness
import RegistryModel
import RegistryStore

/// One step of the demo and what it showed.
public struct DemoStep: Sendable {
    public var name: String
    public var summary: String
    public var elapsed: Duration
}

/// A tour of the suite on a small real store: a registry on loopback, images pushed through
/// its API, each tool run on it, every kept tag pulled back with skopeo.
public struct DemoTour: Sendable {
    public let workDirectory: URL

    public init(workDirectory: URL) { self.workDirectory = workDirectory }

    /// Runs the tour, handing each step to `report` as it finishes.
    public func run(report: (DemoStep) -> Void) async throws {
        let clock = ContinuousClock()
        func step<T>(_ name: String, _ body: () async throws -> (T, String)) async throws -> T {
            let start = clock.now
            let (value, summary) = try await body()
            report(DemoStep(name: name, summary: summary, elapsed: clock.now - start))
            return value
        }

        let root = workDirectory.appendingPathComponent("store")
        let server = try await step("start registry") {
            let server = try await RegistryServer.start(root: root)
            return (server, "docker-registry serving \(root.path) on 127.0.0.1:\(server.port)")
        }
        defer { server.stop() }
        let client = RegistryClient(server: server)
        let store = try await step("push images") {
            let store = try await SampleStore.push(to: client)
            return (store, "\(store.tagReferences.count) tags in 4 repositories (multi-arch, Docker and OCI, a signature), "
                + "1 retagged, 1 deleted, 1 orphan blob, 1 abandoned upload")
        }
        try ageStore(root)
        let storage = try LocalStorage(root: root.path)
        var options = GCOptions()
        options.uploadMaxAge = TimeSpan(seconds: 3600)

        try await step("gc --dry-run") {
            let plan = try await GarbageCollector(storage: storage, options: options).plan()
            return ((), "would delete \(plan.blobs.count) blobs (\(plan.bytesFreed) bytes), \(plan.links.count) dangling links, \(plan.uploads.count) upload")
        }
        options.deleteUntagged = true
        try await step("gc --delete-untagged") {
            let plan = try await GarbageCollector(storage: storage, options: options).plan()
            let result = try await SweepExecutor(storage: storage).execute(plan)
            return ((), "deleted \(result.applied.blobs.count) blobs and \(result.applied.manifests.count) untagged manifest; "
                + "kept the multi-arch children and the signature the peer's --delete-untagged removes")
        }
        try await step("pull every tag") {
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            try await Skopeo.pull(server: server, repository: store.referrer.repository, reference: store.referrer.digest)
            return ((), "\(store.tagReferences.count) tags and the signature pull with skopeo copy --all")
        }
    }

    /// Backdates every file by two hours, as if the images had been pushed earlier: gc's
    /// grace period and its re-read of fresh links would otherwise keep everything.
    private func ageStore(_ root: URL) throws {
        let earlier = Date().addingTimeInterval(-7200)
        let files = FileManager.default.enumerator(atPath: root.path)
        while let relative = files?.nextObject() as? String {
            try FileManager.default.setAttributes([.modificationDate: earlier], ofItemAtPath: root.appendingPathComponent(relative).path)
        }
    }
}
