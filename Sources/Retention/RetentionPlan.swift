import Foundation
import RegistryModel
import RegistryStore

/// What a policy decides for a store, with the reason for every decision: rendered by
/// `--dry-run`, saved by `--plan-out`, applied by `RetentionExecutor`.
public struct RetentionPlan: Sendable, Codable, Hashable {
    /// Bumped when a saved plan's shape changes, so an old file is refused rather than misread.
    public static let currentFormat = 1

    public var format = RetentionPlan.currentFormat
    public var policy: String
    /// The store root the plan was made for; applying it elsewhere is refused.
    public var store: String?
    public var createdAt: Date
    public var maxDeletePercent: Int
    public var repositories: [RepositoryPlan]
    /// Repositories no rule governs.
    public var ungoverned: Int
    /// Set when the policy asks about pulls: how far the imported registry logs reach.
    public var pullHistory: PullHistoryNote?

    public init(policy: String, store: String?, createdAt: Date, maxDeletePercent: Int, repositories: [RepositoryPlan], ungoverned: Int) {
        self.policy = policy
        self.store = store
        self.createdAt = createdAt
        self.maxDeletePercent = maxDeletePercent
        self.repositories = repositories
        self.ungoverned = ungoverned
    }

    /// Repositories that would lose more than `maxDeletePercent` of their tags.
    public var tripped: [RepositoryPlan] { repositories.filter(\.breaker.tripped) }

    public var tagsDeleted: Int { repositories.reduce(0) { $0 + $1.tagsDeleted.count } }
    public var tagsKept: Int { repositories.reduce(0) { $0 + $1.tags.count - $1.tagsDeleted.count } }
    public var manifestsDeleted: Int { repositories.reduce(0) { $0 + $1.manifestsDeleted.count } }
    public var isEmpty: Bool { tagsDeleted == 0 && manifestsDeleted == 0 }
}

public struct RepositoryPlan: Sendable, Codable, Hashable {
    public var repository: RepositoryName
    public var rule: String
    /// Every tag, sorted by name.
    public var tags: [TagDecision]
    /// Every manifest no kept tag points to: deleted, or kept with the reason.
    public var manifests: [ManifestDecision]
    public var breaker: BreakerVerdict
    public var findings: [String]

    public var tagsDeleted: [TagDecision] { tags.filter { $0.action == .delete } }
    public var manifestsDeleted: [ManifestDecision] { manifests.filter { $0.action == .delete } }
}

public enum Action: String, Sendable, Codable, Hashable {
    case keep
    case delete
}

public struct TagDecision: Sendable, Codable, Hashable {
    public var tag: Tag
    /// What the tag pointed to when planned; applying refuses if it points elsewhere by then.
    public var digest: Digest?
    public var pushedAt: Date?
    public var action: Action
    /// The selector that kept it, or `protect`, `in-use`, `referrer`, `fail-closed`; nil when deleted.
    public var decidedBy: String?
    public var reason: String
}

public struct ManifestDecision: Sendable, Codable, Hashable {
    public var digest: Digest
    public var pushedAt: Date
    public var action: Action
    /// It was tagged before this plan and no kept tag points to it after.
    public var becomesUntagged: Bool
    public var reason: String
}

/// The circuit breaker's reading for one repository.
public struct BreakerVerdict: Sendable, Codable, Hashable {
    public var tags: Int
    public var deleted: Int
    public var tripped: Bool

    public var percent: Double { tags == 0 ? 0 : Double(deleted) * 100 / Double(tags) }
}

extension RetentionPlan {
    /// The saved form: stable key order and dates to the second, so plans diff cleanly in review.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data, file: String) throws(RetentionError) -> RetentionPlan {
        struct Header: Decodable { var format: Int? }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let header: Header
        do {
            header = try decoder.decode(Header.self, from: data)
        } catch {
            throw .planUnreadable(file: file, reason: "not a plan file (\(error))")
        }
        guard header.format == currentFormat else {
            throw .planUnreadable(file: file, reason: "plan format \(header.format.map(String.init) ?? "(none)") is not \(currentFormat), the one this regkeeper writes; make the plan again")
        }
        do {
            return try decoder.decode(RetentionPlan.self, from: data)
        } catch {
            throw .planUnreadable(file: file, reason: "\(error)")
        }
    }
}

/// Why retention stopped before or while applying.
public enum RetentionError: Error, Hashable, Sendable, CustomStringConvertible {
    case planUnreadable(file: String, reason: String)
    case circuitBreaker(maxDeletePercent: Int, repositories: [String])
    case otherStore(planned: String, given: String)
    /// Parts of the store could not be read: a policy could judge a tag old because newer
    /// ones are hidden, so nothing is planned.
    case incompleteStore([StoreFinding])
    /// The policy asks about pulls, and the imported logs do not cover its window.
    case insufficientPullHistory(String)

    public var description: String {
        switch self {
        case .planUnreadable(let file, let reason):
            "cannot use plan \(file): \(reason)"
        case .circuitBreaker(let max, let repositories):
            (["circuit breaker: nothing was changed, because \(repositories.count) repositor\(repositories.count == 1 ? "y" : "ies") would lose more than \(max)% of their tags:"]
                + repositories.prefix(20).map { "  \($0)" } + (repositories.count > 20 ? ["  … and \(repositories.count - 20) more"] : [])
                + ["review the plan (--dry-run), then raise safety.maxDeletePercent in the policy or pass --force"])
                .joined(separator: "\n")
        case .otherStore(let planned, let given):
            "the plan was made for the store at \(planned), not \(given); make a new plan for this store"
        case .incompleteStore(let findings):
            (["refusing to plan: \(findings.count) path(s) of the store cannot be read, so tags hidden there could change every decision:"]
                + findings.map { "  \($0)" }
                + ["make them readable by the user running retain, and replace symbolic links with what they point to"])
                .joined(separator: "\n")
        case .insufficientPullHistory(let shortfall):
            "refusing to apply a policy with pulledWithin: \(shortfall); no evidence of pulls is not evidence that nobody pulled (import older logs with `regkeeper pulls import`, or pass --force)"
        }
    }
}
