import Foundation
import RegistryModel
import RegistryStore
@testable import Retention
import StoreTestSupport

/// An in-memory store with a fixed clock, written through StoreBuilder, ages set through link
/// mtimes the way the registry records them.
struct RetentionFixture {
    let storage = InMemoryStorage()
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    var builder: StoreBuilder { StoreBuilder(storage: storage) }

    func daysAgo(_ days: Double) -> Date { now.addingTimeInterval(-days * 86_400) }

    /// Pushes a one-layer image; its tag and revision are dated `days` ago.
    @discardableResult
    func push(_ repository: RepositoryName, _ tag: Tag?, days: Double, seed: String? = nil, subject: Digest? = nil) throws -> Digest {
        let seed = seed ?? "\(repository):\(tag?.value ?? "untagged")"
        return try builder.image(repository, tag: tag, layers: [layerBytes(seed)], subject: subject, modified: daysAgo(days), seed: seed).manifest
    }

    /// Points an existing tag (or a new one) at `digest`, dated `days` ago.
    func tag(_ tag: Tag, in repository: RepositoryName, to digest: Digest, days: Double) throws {
        try builder.tag(tag, in: repository, to: digest, modified: daysAgo(days))
    }

    func policy(_ yaml: String, inUse: String? = nil) throws -> RetentionPolicy {
        try RetentionPolicy.parse(yaml, file: "/policies/test.yaml") { path in
            guard path == "/policies/in-use.txt", let inUse else { throw CocoaError(.fileReadNoSuchFile) }
            return inUse
        }
    }

    func plan(_ policy: RetentionPolicy) async throws -> RetentionPlan {
        let collected = try await CandidateCollector(storage: storage, jobs: 2).collect(for: policy)
        return RetentionPlanner.plan(policy: policy, repositories: collected.repositories, ungoverned: collected.ungoverned, now: now)
    }

    func plan(_ yaml: String, inUse: String? = nil) async throws -> RetentionPlan {
        try await plan(policy(yaml, inUse: inUse))
    }

    /// Tags the store holds now, as `repo:tag`.
    func tags(_ repository: RepositoryName) -> Set<String> {
        Set(StoreScanner(storage: storage).scanRepository(repository).state.tags.keys.map(\.value))
    }

    func liveRevisions(_ repository: RepositoryName) -> Set<Digest> {
        Set(StoreScanner(storage: storage).scanRepository(repository).state.revisions.keys)
    }
}

extension RetentionPlan {
    func repository(_ name: RepositoryName) -> RepositoryPlan? { repositories.first { $0.repository == name } }

    func kept(_ name: RepositoryName) -> Set<String> {
        Set(repository(name)?.tags.filter { $0.action == .keep }.map(\.tag.value) ?? [])
    }

    func deleted(_ name: RepositoryName) -> Set<String> {
        Set(repository(name)?.tags.filter { $0.action == .delete }.map(\.tag.value) ?? [])
    }

    func decision(_ name: RepositoryName, _ tag: String) -> TagDecision? {
        repository(name)?.tags.first { $0.tag.value == tag }
    }

    func manifest(_ name: RepositoryName, _ digest: Digest) -> ManifestDecision? {
        repository(name)?.manifests.first { $0.digest == digest }
    }

    func manifestsDeleted(_ name: RepositoryName) -> Set<Digest> {
        Set(repository(name)?.manifestsDeleted.map(\.digest) ?? [])
    }
}

/// A policy of one rule over every repository, with the given `keep` list (YAML flow or block).
func onlyRule(keep: String, untagged: String = "", extra: String = "") -> String {
    """
    version: 1
    rules:
      - name: only
        repositories: ["**"]
        keep:
    \(keep.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
    \(untagged.isEmpty ? "" : "    untagged: \(untagged)")
    safety:
      maxDeletePercent: 100
    \(extra)
    """
}
