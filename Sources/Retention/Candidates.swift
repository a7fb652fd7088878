import Foundation
import RegistryModel
import RegistryStore

/// What the planner knows of one repository: a snapshot read once, so that planning is a pure
/// function and a benchmark or a test can hand it any shape of store.
public struct RepositoryCandidates: Sendable {
    public var name: RepositoryName
    public var tags: [TagCandidate]
    /// Live revisions (a revision directory with a link) by digest.
    public var manifests: [Digest: ManifestCandidate]
    /// Damage met while reading, already turned into decisions that keep things.
    public var findings: [String]

    public init(name: RepositoryName, tags: [TagCandidate], manifests: [Digest: ManifestCandidate], findings: [String] = []) {
        self.name = name
        self.tags = tags
        self.manifests = manifests
        self.findings = findings
    }
}

public struct TagCandidate: Sendable, Hashable {
    public var tag: Tag
    /// Nil when `current/link` is unreadable: the tag is then kept, and so is its whole history.
    public var digest: Digest?
    /// When the tag last moved (mtime of `current/link`).
    public var pushedAt: Date?
    /// Every manifest in the tag's `index/`, used only when `digest` is unknown.
    public var history: Set<Digest>

    public init(tag: Tag, digest: Digest?, pushedAt: Date?, history: Set<Digest> = []) {
        self.tag = tag
        self.digest = digest
        self.pushedAt = pushedAt
        self.history = history
    }
}

public struct ManifestCandidate: Sendable, Hashable {
    /// Mtime of the revision link.
    public var pushedAt: Date
    public var content: Content

    public enum Content: Sendable, Hashable {
        /// Not read, because the governing rule never deletes untagged manifests.
        case notLoaded
        case loaded(children: [Digest], subject: Digest?)
        /// Its children and subject are unknown, so it is kept (fail closed).
        case unreadable(String)
    }

    public init(pushedAt: Date, content: Content) {
        self.pushedAt = pushedAt
        self.content = content
    }
}

/// Reads the candidates of every repository a policy governs.
public struct CandidateCollector: Sendable {
    public let storage: any StoreStorage
    public let jobs: Int
    public let reporter: any ProgressReporter

    public init(storage: any StoreStorage, jobs: Int, reporter: any ProgressReporter = SilentReporter()) {
        self.storage = storage
        self.jobs = jobs
        self.reporter = reporter
    }

    public struct Collected: Sendable {
        public var repositories: [RepositoryCandidates]
        /// Repositories no rule governs: left alone, counted for the summary.
        public var ungoverned: Int
        public var findings: [StoreFinding]
    }

    /// Manifests are read only where the rule may delete untagged ones, since only there do
    /// children and subjects change a decision. Throws `RetentionError.incompleteStore` when
    /// part of the store cannot be read.
    public func collect(for policy: RetentionPolicy) async throws -> Collected {
        let scanner = StoreScanner(storage: storage)
        let loader = ManifestLoader(storage: storage)
        let (names, findings) = scanner.repositories()
        let governed = names.compactMap { name in policy.rule(for: name).map { (name, $0.untagged?.delete == true) } }
        let scanned = try await boundedMap(governed, jobs: jobs) { name, loadManifests in
            let (state, findings) = scanner.scanRepository(name)
            return (Self.candidates(state, loader: loadManifests ? loader : nil, findings: findings), findings)
        }
        let all = findings + scanned.flatMap(\.1)
        let hidden = all.filter(\.hidesContent)
        guard hidden.isEmpty else { throw RetentionError.incompleteStore(hidden) }
        return Collected(repositories: scanned.map(\.0), ungoverned: names.count - governed.count, findings: all)
    }

    static func candidates(_ state: RepositoryState, loader: ManifestLoader?, findings: [StoreFinding]) -> RepositoryCandidates {
        let tags = state.tags.map { tag, tagState in
            TagCandidate(tag: tag, digest: tagState.current, pushedAt: tagState.modified, history: tagState.history ?? [])
        }.sorted { $0.tag < $1.tag }
        var manifests: [Digest: ManifestCandidate] = [:]
        manifests.reserveCapacity(state.revisions.count)
        for (digest, link) in state.revisions {
            let content: ManifestCandidate.Content
            if let loader {
                switch loader.load(digest) {
                case .success(let manifest):
                    content = .loaded(children: manifest.children.map(\.digest), subject: manifest.subject?.digest)
                case .failure(let error):
                    content = .unreadable(error.description)
                }
            } else {
                content = .notLoaded
            }
            // A link whose content was recovered from its path may be a write cut short: keep it young.
            manifests[digest] = ManifestCandidate(pushedAt: link.recovered ? .distantFuture : link.modified, content: content)
        }
        return RepositoryCandidates(name: state.name, tags: tags, manifests: manifests, findings: findings.map(\.description))
    }
}
