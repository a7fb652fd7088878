import ArgumentParser
import Foundation
import RegistryModel
import Retention
import StoreTestSupport

/// Planning time of `retain` for a large store: the planner is pure, so the store is handed to
/// it as candidates (what `CandidateCollector` reads from disk) and only planning is timed.
struct RetentionBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retain", abstract: "retain planning time on 2,000 repositories × 25 tags.")

    @Option(help: "Repositories.")
    var repositories = 2000

    @Option(help: "Tags per repository.")
    var tags = 25

    @Option(help: "Runs; the best time counts.")
    var runs = 5

    func run() throws {
        let now = Date()
        let policy = try RetentionPolicy.parse(Self.policy, file: "bench.yaml") { _ in "" }
        let candidates = Self.candidates(repositories: repositories, tags: tags, now: now)
        var best = Double.infinity
        var plan: RetentionPlan?
        for _ in 0..<max(1, runs) {
            let start = ContinuousClock.now
            plan = RetentionPlanner.plan(policy: policy, repositories: candidates, now: now)
            let (seconds, attoseconds) = (ContinuousClock.now - start).components
            best = min(best, Double(seconds) + Double(attoseconds) / 1e18)
        }
        guard let plan else { return }
        print(String(format: "retain plan: %d repositories × %d tags in %.3f s (best of %d); keep %d, delete %d tags and %d manifests",
                     repositories, tags, best, runs, plan.tagsKept, plan.tagsDeleted, plan.manifestsDeleted))
    }

    /// The policy of the retention issue, with every selector kind in play.
    static let policy = """
        version: 1
        rules:
          - name: services
            repositories: ["team-1*/**", "team-2/**"]
            exclude: ["team-1/service-1*"]
            keep:
              - tags: ["latest", "stable"]
              - tags: ["v*"]
                newest: 5
                pushedWithin: 90d
              - semver: {newest: 3, per: minor}
              - pushedWithin: 14d
            untagged: {delete: true, olderThan: 7d}
          - name: default
            repositories: ["**"]
            keep:
              - newest: 10
        protect:
          tags: ["prod-*"]
        safety:
          maxDeletePercent: 100
        """

    /// Per repository: semver tags, build tags, `latest`, a multi-arch index with two
    /// untagged children, a referrer and a few untagged revisions, spread over 200 days.
    static func candidates(repositories: Int, tags: Int, now: Date) -> [RepositoryCandidates] {
        (0..<repositories).map { repositoryIndex in
            let name = RepositoryName("team-\(repositoryIndex % 20)/service-\(repositoryIndex)")!
            var manifests: [Digest: ManifestCandidate] = [:]
            var tagCandidates: [TagCandidate] = []
            func digest(_ seed: String) -> Digest { StoreBuilder.digest(of: Data("\(name)/\(seed)".utf8)) }
            for tagIndex in 0..<tags {
                let pushed = now.addingTimeInterval(-Double((tagIndex * 7 + repositoryIndex) % 200) * 86_400)
                let tag: String = switch tagIndex % 5 {
                case 0: tagIndex == 0 ? "latest" : "build-\(tagIndex)"
                case 1, 2: "v1.\(tagIndex % 4).\(tagIndex)"
                case 3: "v2.0.\(tagIndex)-rc.\(tagIndex % 3)"
                default: "sha-\(tagIndex)"
                }
                let manifest = digest("m\(tagIndex)")
                var children: [Digest] = []
                if tagIndex == 1 {
                    children = [digest("child-a"), digest("child-b")]
                    for child in children { manifests[child] = ManifestCandidate(pushedAt: pushed, content: .loaded(children: [], subject: nil)) }
                }
                manifests[manifest] = ManifestCandidate(pushedAt: pushed, content: .loaded(children: children, subject: nil))
                tagCandidates.append(TagCandidate(tag: Tag(tag)!, digest: manifest, pushedAt: pushed))
            }
            manifests[digest("referrer")] = ManifestCandidate(pushedAt: now, content: .loaded(children: [], subject: digest("m1")))
            for untagged in 0..<3 {
                manifests[digest("untagged-\(untagged)")] = ManifestCandidate(
                    pushedAt: now.addingTimeInterval(-Double(untagged * 5) * 86_400), content: .loaded(children: [], subject: nil))
            }
            return RepositoryCandidates(name: name, tags: tagCandidates, manifests: manifests)
        }
    }
}
