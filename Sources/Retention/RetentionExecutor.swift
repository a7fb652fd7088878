import Foundation
import RegistryModel
import RegistryStore
import StateDatabase

/// What applying a plan did, repository by repository.
public struct RetentionResult: Sendable, Codable {
    public struct Repository: Sendable, Codable, Hashable {
        public var repository: RepositoryName
        public var deletedTags: [Tag] = []
        public var deletedManifests: [Digest] = []
        /// Set when the repository changed since the plan in a way that matters; what was
        /// deleted before the change was seen is listed above.
        public var refused: String?
        /// Deletions that failed; the rest of the repository went on.
        public var failures: [String] = []
        /// Planned deletions found already done, or made moot by a newer push.
        public var skipped: [String] = []
    }

    public var repositories: [Repository] = []
    public var forced: Bool

    public var tagsDeleted: Int { repositories.reduce(0) { $0 + $1.deletedTags.count } }
    public var manifestsDeleted: Int { repositories.reduce(0) { $0 + $1.deletedManifests.count } }
    public var refused: [Repository] { repositories.filter { $0.refused != nil } }
    public var failures: [String] { repositories.flatMap { entry in entry.failures.map { "\(entry.repository): \($0)" } } }
}

/// Applies a plan the way the registry's API deletes: a tag is its directory under
/// `_manifests/tags/`, a manifest its revision link. Blobs are gc's business.
///
/// The caller holds the store's exclusive lock; pushes can still happen, so every deletion is
/// checked against the store as it is at that moment, and a repository whose tags moved since
/// the plan is refused rather than guessed at.
public struct RetentionExecutor: Sendable {
    public let storage: any StoreStorage
    public let reporter: any ProgressReporter

    public init(storage: any StoreStorage, reporter: any ProgressReporter = SilentReporter()) {
        self.storage = storage
        self.reporter = reporter
    }

    /// Revision links whose mtime is this much newer than planned were pushed again since.
    static let clockSlack: TimeInterval = 2

    /// Applies `plan`; `record` receives each repository's deletions once they are done, for
    /// the run history. Throws `RetentionError.circuitBreaker` before touching anything when
    /// the breaker tripped, and `RetentionError.insufficientPullHistory` when the plan's pull
    /// history does not cover its `pulledWithin`, and `force` is false.
    public func execute(
        _ plan: RetentionPlan, force: Bool,
        record: @Sendable ([DeletionRecord]) async throws -> Void = { _ in }
    ) async throws -> RetentionResult {
        let tripped = plan.tripped
        if !tripped.isEmpty, !force {
            throw RetentionError.circuitBreaker(
                maxDeletePercent: plan.maxDeletePercent,
                repositories: tripped.map { "\($0.repository): \($0.breaker.deleted) of \($0.breaker.tags) tags (\(Int($0.breaker.percent.rounded()))%)" })
        }
        if let shortfall = plan.pullHistory?.shortfall, !force {
            throw RetentionError.insufficientPullHistory(shortfall)
        }
        var result = RetentionResult(forced: force && (!tripped.isEmpty || plan.pullHistory?.shortfall != nil))
        let work = plan.repositories.filter { !$0.tagsDeleted.isEmpty || !$0.manifestsDeleted.isEmpty }
        let loader = ManifestLoader(storage: storage)
        _ = try await reporter.phase("apply") {
            for (done, repositoryPlan) in work.enumerated() {
                let (outcome, records) = apply(repositoryPlan, loader: loader)
                result.repositories.append(outcome)
                if !records.isEmpty { try await record(records) }
                reporter.progress("apply", done: Int64(done + 1), total: Int64(work.count), unit: .items)
            }
        }
        return result
    }

    private func apply(_ plan: RepositoryPlan, loader: ManifestLoader) -> (RetentionResult.Repository, [DeletionRecord]) {
        let name = plan.repository
        var outcome = RetentionResult.Repository(repository: name)
        var records: [DeletionRecord] = []
        let scanner = StoreScanner(storage: storage)
        let deletions = Set(plan.manifestsDeleted.map(\.digest))

        if let change = changeThatMatters(plan, now: scanner.scanRepository(name).state, deletions: deletions, loader: loader) {
            outcome.refused = change
            return (outcome, records)
        }
        for decision in plan.tagsDeleted {
            guard let planned = decision.digest else { continue }
            // Read again right before the removal: a push may have moved the tag a moment ago.
            var findings: [StoreFinding] = []
            guard let link = scanner.readLink(Layout.tagCurrentLink(name, decision.tag), recovering: nil, &findings) else {
                outcome.skipped.append("tag \(decision.tag) is already gone")
                continue
            }
            guard link.target == planned, !link.recovered else {
                outcome.refused = "tag \(decision.tag) moved from \(planned) to \(link.target) while applying; its untagged manifests were left alone"
                return (outcome, records)
            }
            let path = Layout.tagDirectory(name, decision.tag)
            do {
                try storage.remove(path)
                outcome.deletedTags.append(decision.tag)
                records.append(DeletionRecord(
                    repository: name.value, tag: decision.tag.value, digest: planned.description, kind: .tag,
                    reason: "\(plan.rule)/\(decision.reason)", bytes: 0, path: path.description))
            } catch {
                outcome.failures.append("tag \(decision.tag): \(error)")
            }
        }
        guard !deletions.isEmpty else { return (outcome, records) }

        // After the tags went, no tag may point at a manifest about to go, however it got there.
        let state = scanner.scanRepository(name).state
        let tagged = state.taggedManifests
        for decision in plan.manifestsDeleted {
            if tagged.contains(decision.digest) {
                outcome.skipped.append("manifest \(decision.digest) is tagged again; kept")
                continue
            }
            guard let link = state.revisions[decision.digest] else {
                outcome.skipped.append("manifest \(decision.digest) is already deleted")
                continue
            }
            guard link.modified <= decision.pushedAt.addingTimeInterval(Self.clockSlack) else {
                outcome.skipped.append("manifest \(decision.digest) was pushed again since the plan; kept")
                continue
            }
            let path = Layout.revisionLink(name, decision.digest)
            do {
                try storage.remove(path)
                outcome.deletedManifests.append(decision.digest)
                records.append(DeletionRecord(
                    repository: name.value, digest: decision.digest.description, kind: .revisionLink,
                    reason: "\(plan.rule)/untagged: \(decision.reason)", bytes: 0, path: path.description))
            } catch {
                outcome.failures.append("manifest \(decision.digest): \(error)")
            }
        }
        return (outcome, records)
    }

    /// The first difference between the plan and the repository now that would make applying
    /// the plan delete something the policy did not decide to delete; nil when it is safe.
    private func changeThatMatters(
        _ plan: RepositoryPlan, now state: RepositoryState, deletions: Set<Digest>, loader: ManifestLoader
    ) -> String? {
        var planned: [Tag: Digest?] = [:]
        for decision in plan.tags { planned[decision.tag] = decision.digest }
        for decision in plan.tagsDeleted {
            guard let current = state.tags[decision.tag] else { continue }
            if current.current != decision.digest {
                let now = current.current.map(\.description) ?? "an unreadable link"
                return "tag \(decision.tag) moved from \(decision.digest.map(\.description) ?? "?") to \(now) since the plan was made"
            }
        }
        for (tag, tagState) in state.tags.sorted(by: { $0.key < $1.key }) {
            guard let current = tagState.current else {
                if !(tagState.history ?? []).isDisjoint(with: deletions) { return "tag \(tag) has an unreadable link and may point to a manifest the plan deletes" }
                continue
            }
            if let before = planned[tag], before == current { continue }
            if deletions.contains(current) { return "tag \(tag) now points to \(current), which the plan deletes" }
            // A manifest pushed since the plan may be an index over manifests the plan deletes.
            var stack = [current]
            var seen: Set<Digest> = []
            while let digest = stack.popLast() {
                guard seen.insert(digest).inserted else { continue }
                if deletions.contains(digest) { return "tag \(tag) now points to \(current), which needs \(digest), a manifest the plan deletes" }
                if case .success(let manifest) = loader.load(digest) { stack += manifest.children.map(\.digest) }
            }
        }
        return nil
    }
}
