import Foundation
import RegistryModel

/// Turns a policy and a snapshot of the store into a plan. Pure: no storage, no clock, so the
/// same inputs always give the same plan, and every selector is tested without a disk.
public enum RetentionPlanner {
    /// `pulls` is read only by `pulledWithin` selectors; the plan notes how far it reaches.
    public static func plan(
        policy: RetentionPolicy, repositories: [RepositoryCandidates], ungoverned: Int = 0, store: String? = nil, now: Date,
        pulls: PullEvidence = .none
    ) -> RetentionPlan {
        var plans: [RepositoryPlan] = []
        plans.reserveCapacity(repositories.count)
        var left = ungoverned
        for candidates in repositories.sorted(by: { $0.name < $1.name }) {
            guard let rule = policy.rule(for: candidates.name) else {
                left += 1
                continue
            }
            plans.append(plan(candidates, rule: rule, policy: policy, now: now, pulls: pulls))
        }
        var plan = RetentionPlan(
            policy: policy.file, store: store, createdAt: now, maxDeletePercent: policy.safety.maxDeletePercent,
            repositories: plans, ungoverned: left)
        if let window = policy.longestPulledWithin {
            plan.pullHistory = PullHistoryNote(
                since: pulls.coverage?.since, until: pulls.coverage?.until, windowSeconds: window.seconds,
                shortfall: pulls.shortfall(window: window, now: now))
        }
        return plan
    }

    /// One repository under the rule that governs it.
    public static func plan(
        _ candidates: RepositoryCandidates, rule: RetentionPolicy.Rule, policy: RetentionPolicy, now: Date, pulls: PullEvidence = .none
    ) -> RepositoryPlan {
        RepositoryPlanning(candidates: candidates, rule: rule, policy: policy, now: now, pulls: pulls).run()
    }
}

/// The working state of one repository's plan.
private struct RepositoryPlanning {
    let candidates: RepositoryCandidates
    let rule: RetentionPolicy.Rule
    let policy: RetentionPolicy
    let now: Date
    let pulls: PullEvidence
    let tags: [TagCandidate]

    init(candidates: RepositoryCandidates, rule: RetentionPolicy.Rule, policy: RetentionPolicy, now: Date, pulls: PullEvidence) {
        self.candidates = candidates
        self.rule = rule
        self.policy = policy
        self.now = now
        self.pulls = pulls
        tags = candidates.tags.sorted { $0.tag < $1.tag }
    }

    func run() -> RepositoryPlan {
        var decisions = [TagDecision?](repeating: nil, count: tags.count)
        let name = candidates.name
        let inUseTags = policy.protection.inUse?.tags[name] ?? [:]
        let inUseDigests = policy.protection.inUse?.digests[name] ?? [:]

        // Protection and fail-closed cases first; cosign-style tags wait for their subject.
        var ranked: [Int] = []
        var referrerTags: [(index: Int, subject: Digest)] = []
        for (index, candidate) in tags.enumerated() {
            if candidate.digest == nil || candidate.pushedAt == nil {
                decisions[index] = keep(candidate, by: "fail-closed", "current link unreadable: kept, with every manifest it ever pointed to")
                continue
            }
            // Protected tags still count in ranks: protection adds to what selectors keep.
            ranked.append(index)
            if let protected = policy.protection.tags.first(where: { $0.matches(candidate.tag) }) {
                decisions[index] = keep(candidate, by: "protect", "protected by protect.tags \(protected.text)")
            } else if let source = inUseTags[candidate.tag] {
                decisions[index] = keep(candidate, by: "in-use", "in use (\(source))")
            } else if let digest = candidate.digest, let source = inUseDigests[digest] {
                decisions[index] = keep(candidate, by: "in-use", "points to \(digest), in use (\(source))")
            } else if let subject = Self.cosignSubject(candidate.tag), candidates.manifests[subject] != nil {
                ranked.removeLast()
                referrerTags.append((index, subject))
            }
        }
        let evaluations = rule.keep.map {
            SelectorEvaluation($0, tags: tags, population: ranked, now: now, repository: name, pulls: pulls)
        }
        for index in ranked where decisions[index] == nil {
            decisions[index] = decide(index, evaluations)
        }

        // Manifests: what kept tags, protection and young untagged manifests hold alive.
        var taggedBefore: Set<Digest> = []
        for candidate in tags { if let digest = candidate.digest { taggedBefore.insert(digest) } }
        var kept: [Digest: String] = [:]
        var roots: [(Digest, String)] = []
        for (index, candidate) in tags.enumerated() {
            guard let decision = decisions[index], decision.action == .keep else { continue }
            if let digest = candidate.digest {
                roots.append((digest, "tagged \(candidate.tag)"))
            } else {
                roots += candidate.history.sorted().map { ($0, "in the history of tag \(candidate.tag), whose current link is unreadable") }
            }
        }
        for (digest, source) in inUseDigests.sorted(by: { $0.key < $1.key }) where candidates.manifests[digest] != nil {
            roots.append((digest, "in use (\(source))"))
        }
        let cosignTargets = Dictionary(referrerTags.compactMap { entry in tags[entry.index].digest.map { ($0, entry.subject) } },
                                       uniquingKeysWith: { first, _ in first })
        let deletesUntagged = rule.untagged?.delete == true
        let olderThan = rule.untagged?.olderThan ?? TimeSpan(seconds: 0)
        let cutoff = now.addingTimeInterval(-TimeInterval(olderThan.seconds))
        var referrers: [Digest: [Digest]] = [:]
        var cosignBySubject: [Digest: [Int]] = [:]
        for entry in referrerTags { cosignBySubject[entry.subject, default: []].append(entry.index) }
        for (digest, manifest) in candidates.manifests.sorted(by: { $0.key < $1.key }) {
            if case .loaded(_, let subject?) = manifest.content { referrers[subject, default: []].append(digest) }
            guard deletesUntagged else {
                roots.append((digest, rule.untagged == nil ? "rule \(rule.name) has no untagged section" : "rule \(rule.name) sets untagged.delete: false"))
                continue
            }
            switch manifest.content {
            case .unreadable(let reason):
                roots.append((digest, "cannot be read (\(reason)): kept with everything it may reference"))
            case .notLoaded:
                roots.append((digest, "not read"))
            case .loaded(_, let subject):
                guard manifest.pushedAt > cutoff else { continue }
                // A young referrer or signature lives and dies with its subject.
                let hasSubjectHere = subject.map { candidates.manifests[$0] != nil } ?? false
                if !hasSubjectHere, cosignTargets[digest] == nil {
                    roots.append((digest, "pushed \(Self.age(now, manifest.pushedAt)) ago, within untagged.olderThan \(olderThan)"))
                }
            }
        }
        var stack = roots.reversed().map { $0 }
        while let (digest, reason) = stack.popLast() {
            guard kept[digest] == nil, let manifest = candidates.manifests[digest] else { continue }
            kept[digest] = reason
            for index in cosignBySubject[digest] ?? [] {
                if let target = tags[index].digest { stack.append((target, "target of tag \(tags[index].tag), kept with its subject \(digest)")) }
            }
            for referrer in referrers[digest] ?? [] { stack.append((referrer, "referrer of kept \(digest)")) }
            if case .loaded(let children, _) = manifest.content {
                for child in children.reversed() { stack.append((child, "child of kept index \(digest)")) }
            }
        }
        for entry in referrerTags {
            let candidate = tags[entry.index]
            decisions[entry.index] = kept[entry.subject] != nil
                ? keep(candidate, by: "referrer", "signature or attestation of \(entry.subject), which is kept")
                : TagDecision(tag: candidate.tag, digest: candidate.digest, pushedAt: candidate.pushedAt, action: .delete,
                              decidedBy: nil, reason: "signature or attestation of \(entry.subject), which this plan deletes")
        }

        let finalDecisions = decisions.map { $0! }
        var taggedAfter: Set<Digest> = []
        for decision in finalDecisions where decision.action == .keep { if let digest = decision.digest { taggedAfter.insert(digest) } }
        var manifests: [ManifestDecision] = []
        for (digest, manifest) in candidates.manifests.sorted(by: { $0.key < $1.key }) where !taggedAfter.contains(digest) {
            let becomesUntagged = taggedBefore.contains(digest)
            if let reason = kept[digest] {
                manifests.append(ManifestDecision(digest: digest, pushedAt: manifest.pushedAt, action: .keep, becomesUntagged: becomesUntagged, reason: reason))
                continue
            }
            var reason = "untagged, pushed \(Self.age(now, manifest.pushedAt)) ago, older than untagged.olderThan \(olderThan)"
            if case .loaded(_, let subject?) = manifest.content, candidates.manifests[subject] != nil {
                reason = "referrer of \(subject), which this plan deletes"
            } else if let subject = cosignTargets[digest] {
                reason = "signature or attestation of \(subject), which this plan deletes"
            }
            manifests.append(ManifestDecision(digest: digest, pushedAt: manifest.pushedAt, action: .delete, becomesUntagged: becomesUntagged, reason: reason))
        }
        let deleted = finalDecisions.count { $0.action == .delete }
        let breaker = BreakerVerdict(
            tags: finalDecisions.count, deleted: deleted, tripped: deleted * 100 > policy.safety.maxDeletePercent * finalDecisions.count)
        return RepositoryPlan(repository: name, rule: rule.name, tags: finalDecisions, manifests: manifests, breaker: breaker, findings: candidates.findings)
    }

    private func keep(_ candidate: TagCandidate, by: String, _ reason: String) -> TagDecision {
        TagDecision(tag: candidate.tag, digest: candidate.digest, pushedAt: candidate.pushedAt, action: .keep, decidedBy: by, reason: reason)
    }

    /// The first selector that keeps the tag decides; with none, every selector's miss is told.
    private func decide(_ index: Int, _ evaluations: [SelectorEvaluation]) -> TagDecision {
        let candidate = tags[index]
        for evaluation in evaluations {
            if let kept = evaluation.keeps(index, tags: tags, now: now) {
                return keep(candidate, by: evaluation.selector.label, "\(evaluation.selector.summary): \(kept)")
            }
        }
        let misses = evaluations.map { "\($0.selector.label): \($0.miss(index, tags: tags, now: now))" }
        return TagDecision(
            tag: candidate.tag, digest: candidate.digest, pushedAt: candidate.pushedAt, action: .delete, decidedBy: nil,
            reason: "no selector kept it" + (misses.isEmpty ? " (keep is empty)" : ": " + misses.joined(separator: "; ")))
    }

    /// The digest a cosign-style tag (`sha256-<hex>.sig`, `.att`, `.sbom`) belongs to.
    static func cosignSubject(_ tag: Tag) -> Digest? {
        let value = tag.value
        guard value.hasPrefix("sha256-") else { return nil }
        for suffix in [".sig", ".att", ".sbom"] where value.hasSuffix(suffix) {
            let hex = value.dropFirst("sha256-".count).dropLast(suffix.count)
            return Digest(algorithm: .sha256, hex: hex)
        }
        return nil
    }

    /// Coarse ages for reasons: `3d`, `5h`, `12m`, `40s`.
    static func age(_ now: Date, _ date: Date) -> String {
        let seconds = max(0, Int64(now.timeIntervalSince(date)))
        if date == .distantFuture { return "at an unknown time (damaged link), counted as 0s" }
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds >= size {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}

/// One selector's view of a repository: which tags its patterns match, and their ranks by
/// push time and by version among them, computed once per repository.
private struct SelectorEvaluation {
    let selector: RetentionPolicy.Selector
    let repository: RepositoryName
    let pulls: PullEvidence
    /// Indexed like the repository's tags; false for tags outside the ranked population.
    var matched: [Bool]
    var matchedCount = 0
    var newestRank: [Int]
    var semver: [(version: SemanticVersion, group: String, rank: Int, groupSize: Int)?]

    init(_ selector: RetentionPolicy.Selector, tags: [TagCandidate], population: [Int], now: Date, repository: RepositoryName, pulls: PullEvidence) {
        self.selector = selector
        self.repository = repository
        self.pulls = pulls
        matched = [Bool](repeating: false, count: tags.count)
        newestRank = [Int](repeating: 0, count: tags.count)
        semver = Array(repeating: nil, count: tags.count)
        var members: [Int] = []
        for index in population where selector.tags.isEmpty || selector.tags.contains(where: { $0.matches(tags[index].tag) }) {
            matched[index] = true
            members.append(index)
        }
        matchedCount = members.count
        if selector.newest != nil {
            let byTime = members.sorted { left, right in
                let (l, r) = (tags[left].pushedAt ?? .distantPast, tags[right].pushedAt ?? .distantPast)
                return l != r ? l > r : tags[left].tag < tags[right].tag
            }
            for (rank, index) in byTime.enumerated() { newestRank[index] = rank + 1 }
        }
        if let rank = selector.semver {
            var groups: [String: [(Int, SemanticVersion)]] = [:]
            for index in members {
                guard let version = SemanticVersion(tags[index].tag.value), rank.prereleases || !version.isPrerelease else { continue }
                let group = switch rank.per {
                case .major: "\(version.major)"
                case .minor: "\(version.major).\(version.minor)"
                case .patch: "\(version.major).\(version.minor).\(version.patch)"
                case .none: ""
                }
                groups[group, default: []].append((index, version))
            }
            for (group, entries) in groups {
                let ordered = entries.sorted { left, right in
                    if left.1 != right.1 { return right.1 < left.1 }
                    let (l, r) = (tags[left.0].pushedAt ?? .distantPast, tags[right.0].pushedAt ?? .distantPast)
                    return l != r ? l > r : tags[left.0].tag < tags[right.0].tag
                }
                for (position, entry) in ordered.enumerated() {
                    semver[entry.0] = (entry.1, group, position + 1, ordered.count)
                }
            }
        }
    }

    /// Why the selector keeps the tag, or nil when a field rejects it.
    func keeps(_ index: Int, tags: [TagCandidate], now: Date) -> String? {
        guard matched[index] else { return nil }
        var facts: [String] = []
        if !selector.tags.isEmpty { facts.append("matches \(selector.tags.map(\.text).joined(separator: "|"))") }
        if let newest = selector.newest {
            guard newestRank[index] <= newest else { return nil }
            facts.append("newest #\(newestRank[index]) of \(matchedCount)")
        }
        if let within = selector.pushedWithin {
            guard let pushed = tags[index].pushedAt, now.timeIntervalSince(pushed) <= TimeInterval(within.seconds) else { return nil }
            facts.append("pushed \(RepositoryPlanning.age(now, pushed)) ago")
        }
        if let within = selector.pulledWithin {
            guard let pull = pulls.lastPull(repository, tags[index].tag, tags[index].digest),
                  now.timeIntervalSince(pull.at) <= TimeInterval(within.seconds) else { return nil }
            facts.append("pulled \(pull.byDigest ? "by digest " : "")\(RepositoryPlanning.age(now, pull.at)) ago")
        }
        if let rank = selector.semver {
            guard let entry = semver[index], entry.rank <= (rank.newest ?? .max) else { return nil }
            let group = entry.group.isEmpty ? "" : " in \(entry.group).x"
            facts.append("version \(entry.version) #\(entry.rank) of \(entry.groupSize)\(group)")
        }
        return facts.joined(separator: ", ")
    }

    /// The first field that rejects the tag, in words.
    func miss(_ index: Int, tags: [TagCandidate], now: Date) -> String {
        guard matched[index] else { return "does not match \(selector.tags.map(\.text).joined(separator: "|"))" }
        if let newest = selector.newest, newestRank[index] > newest {
            return "newest #\(newestRank[index]) of \(matchedCount), beyond \(newest)"
        }
        if let within = selector.pushedWithin, let pushed = tags[index].pushedAt, now.timeIntervalSince(pushed) > TimeInterval(within.seconds) {
            return "pushed \(RepositoryPlanning.age(now, pushed)) ago, not within \(within)"
        }
        if let within = selector.pulledWithin {
            guard let pull = pulls.lastPull(repository, tags[index].tag, tags[index].digest) else {
                guard let since = pulls.coverage?.since else { return "no pull history imported" }
                return "never pulled since \(PullEvidence.day(since))"
            }
            if now.timeIntervalSince(pull.at) > TimeInterval(within.seconds) {
                return "last pulled \(RepositoryPlanning.age(now, pull.at)) ago, not within \(within)"
            }
        }
        if let rank = selector.semver {
            guard let entry = semver[index] else {
                let version = SemanticVersion(tags[index].tag.value)
                return version == nil ? "not a semantic version" : "pre-release, excluded"
            }
            let group = entry.group.isEmpty ? "" : " in \(entry.group).x"
            return "version \(entry.version) #\(entry.rank) of \(entry.groupSize)\(group), beyond \(rank.newest ?? 0)"
        }
        return "rejected"
    }
}
