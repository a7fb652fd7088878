import Foundation
import Archive
import GarbageCollection
import Integrity
import RegistryHarness
import RegistryModel
import RegistryStore
import Reporting
import Retention
import StateDatabase

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
    /// The CI-cache policy shipped in `policies/`, applied to a repository of build tags.
    public let ciPolicy: String

    public init(workDirectory: URL, ciPolicy: String) {
        self.workDirectory = workDirectory
        self.ciPolicy = ciPolicy
    }

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
        let builds = try await step("push CI builds") {
            var builder = ImageBuilder(client: client, seed: 7)
            let base = builder.makeBlob()
            var builds: [PushedImage] = []
            for number in 1...12 {
                builds.append(try await builder.pushImage(repository: "ci/app", tag: "build-\(number)", sharedLayers: [base]))
            }
            return (builds, "ci/app: build-1 … build-12 sharing a base layer")
        }
        try ageStore(root)
        let storage = try LocalStorage(root: root.path)
        try ageBuilds(builds, storage: storage)

        try await step("report") {
            let report = try await StoreReporter(storage: storage, jobs: 2).report()
            return ((), "\(report.repositories) repositories, \(report.tags) tags, \(report.manifests.total) manifests, \(report.blobs) blobs; "
                + "gc could free \(report.reclaimable.blobs) blobs, \(report.reclaimableUntagged.blobs) with --delete-untagged")
        }
        let deletedTags = try await step("retain \(URL(fileURLWithPath: ciPolicy).lastPathComponent)") {
            let policy = try RetentionPolicy.load(file: ciPolicy)
            let collected = try await CandidateCollector(storage: storage, jobs: 2).collect(for: policy)
            let plan = RetentionPlanner.plan(
                policy: policy, repositories: collected.repositories, ungoverned: collected.ungoverned, store: root.path, now: Date())
            let result = try await RetentionExecutor(storage: storage).execute(plan, force: false)
            let deleted = result.repositories.flatMap(\.deletedTags)
            return (deleted, "deleted \(deleted.map(\.value).sorted().joined(separator: ", ")) (older than a week, not among the 10 newest builds)")
        }
        var options = GCOptions()
        options.uploadMaxAge = TimeSpan(seconds: 3600)

        try await step("gc --dry-run") {
            let plan = try await GarbageCollector(storage: storage, options: options).plan()
            return ((), "would delete \(plan.blobs.count) blobs (\(plan.bytesFreed) bytes), \(plan.links.count) dangling links, \(plan.uploads.count) abandoned upload(s)")
        }
        options.deleteUntagged = true
        try await step("gc --delete-untagged") {
            let plan = try await GarbageCollector(storage: storage, options: options).plan()
            // No push races the demo: a one-second settle shows the protocol without the 30 s wait.
            let result = try await SweepExecutor(
                storage: storage, area: SweepArea(stateDirectory: StoreLocation(root: root.path).stateDirectory), settle: TimeSpan(seconds: 1)
            ).execute(plan)
            return ((), "deleted \(result.applied.blobs.count) blobs and \(result.applied.manifests.count) untagged manifest "
                + "(taken out of the registry's sight first, settled 1 s, links re-read); "
                + "kept the multi-arch children and the signature the peer's --delete-untagged removes")
        }
        try await step("verify") {
            let state = try StateStore.open(at: URL(fileURLWithPath: StoreLocation(root: root.path).stateDatabasePath))
            let report = try await Verifier(storage: storage, state: state, options: VerifyOptions()).run()
            guard report.isClean else { throw DemoError.damage(report.findings.map(\.description)) }
            return ((), "rehashed \(report.counts.blobsHashed) blobs (\(report.counts.bytesHashed) bytes), checked every link and reference: clean")
        }
        let deleted = Set(deletedTags.map(\.value))
        let kept = store.tagReferences + builds.flatMap(\.tags).filter { !deleted.contains($0) }.map { ("ci/app", $0) }
        try await step("pull every kept tag") {
            for (repository, tag) in kept {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            try await Skopeo.pull(server: server, repository: store.referrer.repository, reference: store.referrer.digest)
            for tag in deleted where await Skopeo.pullSucceeds(server: server, repository: "ci/app", reference: tag) {
                throw DemoError.deletedTagStillPulls(tag)
            }
            return ((), "\(kept.count) tags and the signature pull with skopeo copy --all; the \(deleted.count) deleted tags do not")
        }

        let archive = workDirectory.appendingPathComponent("full.tar.zst").path
        try await step("backup") {
            let backup = Backup(storage: storage, catalogDirectory: workDirectory.appendingPathComponent("catalog").path,
                                toolVersion: "demo", sourceRoot: root.path)
            let result = try await backup.run(output: archive)
            return ((), "\(result.blobsWritten) blobs and \(result.linksWritten) links in \(URL(fileURLWithPath: archive).lastPathComponent) (\(result.archiveBytes) bytes, zstd)")
        }
        let restored = workDirectory.appendingPathComponent("restored")
        try await step("restore to a new root") {
            let result = try RestoreExecutor(target: restored.path).restore(ArchiveChain([ArchiveReader(path: archive)]))
            return ((), "\(result.blobs) blobs verified against their digests, \(result.links) links with their times")
        }
        let restoredStorage = try LocalStorage(root: restored.path)
        try await step("verify restored store") {
            let state = try StateStore.open(at: URL(fileURLWithPath: StoreLocation(root: restored.path).stateDatabasePath))
            let report = try await Verifier(storage: restoredStorage, state: state, options: VerifyOptions()).run()
            guard report.isClean else { throw DemoError.damage(report.findings.map(\.description)) }
            return ((), "rehashed \(report.counts.blobsHashed) blobs: clean")
        }
        try await step("pull from restored") {
            let second = try await RegistryServer.start(root: restored)
            defer { second.stop() }
            for (repository, tag) in kept {
                try await Skopeo.pull(server: second, repository: repository, reference: tag)
            }
            return ((), "a second docker-registry on the restored root serves all \(kept.count) tags")
        }
    }

    /// Build N was pushed 20 − N days ago: the newest ten are kept, two are older than both
    /// the policy's week and its ten newest.
    private func ageBuilds(_ builds: [PushedImage], storage: LocalStorage) throws {
        for (index, build) in builds.enumerated() {
            guard let tag = build.tags.first.flatMap({ Tag($0) }), let name = RepositoryName(build.repository) else { continue }
            let pushed = Date().addingTimeInterval(-Double(20 - index) * 86_400)
            for path in [Layout.tagCurrentLink(name, tag)] + (Digest(build.digest).map { [Layout.revisionLink(name, $0)] } ?? []) {
                try FileManager.default.setAttributes([.modificationDate: pushed], ofItemAtPath: storage.absolutePath(path))
            }
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

enum DemoError: Error, CustomStringConvertible {
    case deletedTagStillPulls(String)
    case damage([String])

    var description: String {
        switch self {
        case .deletedTagStillPulls(let tag): "ci/app:\(tag) was deleted by retention but still pulls"
        case .damage(let findings): "verify found damage:\n  " + findings.joined(separator: "\n  ")
        }
    }
}
