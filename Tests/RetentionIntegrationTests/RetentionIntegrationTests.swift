import Foundation
import GarbageCollection
import RegistryHarness
import RegistryModel
import RegistryStore
import Retention
import StoreTestSupport
import Testing

/// A shipped policy applied to a store written by Debian's docker-registry, then gc, then every
/// kept tag pulled back with skopeo.
@Suite(.serialized) struct RetentionIntegrationTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func semverReleasePolicyThenGCKeepsEveryKeptTagPullable() async throws {
        try await withRegistry { server, client in
            var builder = ImageBuilder(client: client, seed: 7)
            let repository = "releases/app"
            var images: [String: PushedImage] = [:]
            for tag in ["v1.0.0", "v1.0.1", "v1.0.2", "v2.0.0-rc.1", "v2.0.0-rc.2", "v2.0.0-rc.3", "v2.0.0", "nightly-1", "prod-2023"] {
                images[tag] = try await builder.pushImage(repository: repository, tag: tag)
            }
            // The newest 1.0 release is multi-arch: its children are untagged revisions.
            images["v1.0.3"] = try await builder.pushIndex(repository: repository, tag: "v1.0.3")
            images["latest"] = try await builder.retag(images["v2.0.0"]!, as: "latest")
            let keptReferrer = try await builder.pushReferrer(repository: repository, subject: images["v2.0.0"]!)
            let droppedReferrer = try await builder.pushReferrer(repository: repository, subject: images["v1.0.0"]!)
            let untaggedOld = try await builder.pushImage(repository: repository, tag: nil)
            let other = try await builder.pushImage(repository: "other/thing", tag: "old")

            try backdateEverything(server.root)
            let ages: [String: Double] = ["v1.0.0": 100, "v1.0.1": 90, "v1.0.2": 80, "v1.0.3": 70, "v2.0.0-rc.1": 60, "v2.0.0-rc.2": 55,
                                          "v2.0.0-rc.3": 50, "v2.0.0": 40, "latest": 40, "nightly-1": 30, "prod-2023": 200]
            for (tag, days) in ages { try backdate(server.root, repository, tag: tag, digest: images[tag]!.digest, days: days) }
            for child in images["v1.0.3"]!.children { try backdate(server.root, repository, tag: nil, digest: child.digest, days: 70) }
            try backdate(server.root, repository, tag: nil, digest: keptReferrer.digest, days: 39)
            try backdate(server.root, repository, tag: nil, digest: untaggedOld.digest, days: 20)
            try backdate(server.root, "other/thing", tag: "old", digest: other.digest, days: 400)

            let policy = try RetentionPolicy.load(file: Self.packageRoot.appendingPathComponent("policies/semver-releases.yaml").path)
            let storage = try LocalStorage(root: server.root.path)
            let collected = try await CandidateCollector(storage: storage, jobs: 2).collect(for: policy)
            let plan = RetentionPlanner.plan(policy: policy, repositories: collected.repositories, ungoverned: collected.ungoverned,
                                             store: server.root.path, now: Date())
            let app = try #require(plan.repositories.first { $0.repository.value == repository })
            let deletedTags = Set(app.tagsDeleted.map(\.tag.value))
            #expect(deletedTags == ["v1.0.0", "v2.0.0-rc.1", "nightly-1"])
            #expect(Set(app.manifestsDeleted.map(\.digest.description))
                    == Set([images["v1.0.0"]!, images["v2.0.0-rc.1"]!, images["nightly-1"]!].map(\.digest) + [droppedReferrer.digest, untaggedOld.digest]))
            #expect(plan.repositories.first { $0.repository.value == "other/thing" }?.tagsDeleted.isEmpty == true)
            #expect(plan.tripped.isEmpty)

            let result = try await RetentionExecutor(storage: storage).execute(plan, force: false)
            #expect(result.refused.isEmpty && result.failures.isEmpty)
            var options = GCOptions()
            options.gracePeriod = TimeSpan(seconds: 0)
            options.jobs = 2
            let gcPlan = try await GarbageCollector(storage: storage, options: options).plan()
            #expect(gcPlan.broken.isEmpty)
            let swept = try await SweepExecutor(testing: storage).execute(gcPlan)
            #expect(swept.failures.isEmpty)
            let freed = Set(swept.applied.blobs.map(\.digest.description))
            // The referrers share the empty config blob `{}`; the kept one holds it alive.
            let goneBlobs = images["v1.0.0"]!.allBlobDigests.union(droppedReferrer.allBlobDigests).subtracting(keptReferrer.allBlobDigests)
            #expect(freed.isSuperset(of: goneBlobs))
            #expect(freed.isDisjoint(with: keptReferrer.allBlobDigests.union(images["v1.0.3"]!.allBlobDigests)))

            let keptTags = Set(ages.keys).subtracting(deletedTags)
            #expect(Set(try await client.tags(repository: repository)) == keptTags)
            for tag in keptTags.sorted() {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            for child in images["v1.0.3"]!.children {
                try await Skopeo.pull(server: server, repository: repository, reference: child.digest)
            }
            try await Skopeo.pull(server: server, repository: repository, reference: keptReferrer.digest)
            try await Skopeo.pull(server: server, repository: "other/thing", reference: "old")
            for tag in deletedTags.sorted() {
                #expect(try await client.manifestExists(repository: repository, reference: tag) == false, "\(tag)")
            }
            for gone in [images["v1.0.0"]!.digest, droppedReferrer.digest, untaggedOld.digest] {
                #expect(await Skopeo.pullSucceeds(server: server, repository: repository, reference: gone) == false)
            }
            let again = RetentionPlanner.plan(
                policy: policy, repositories: try await CandidateCollector(storage: storage, jobs: 2).collect(for: policy).repositories, now: Date())
            #expect(again.isEmpty, "a second run deletes nothing")
        }
    }
}

extension SweepExecutor {
    /// The sweep area in the store's default state directory, on its filesystem.
    init(testing storage: LocalStorage) {
        self.init(storage: storage, area: SweepArea(stateDirectory: storage.rootPath + "/.regkeeper"), settle: TimeSpan(seconds: 0))
    }
}
