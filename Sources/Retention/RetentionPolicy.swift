import Foundation
import RegistryModel

/// A parsed and validated retention policy (see regkeeper-policy(5)). Built only by
/// `RetentionPolicy.load`, so every value the planner sees has passed the checker.
public struct RetentionPolicy: Sendable {
    /// The file it was read from, as given; plans and messages name it.
    public var file: String
    public var rules: [Rule]
    public var protection: Protection
    public var safety: Safety

    public struct Rule: Sendable {
        public var name: String
        public var line: Int
        public var repositories: [RepositoryPattern]
        public var exclude: [RepositoryPattern]
        public var keep: [Selector]
        /// Nil: manifests left without a tag are listed but never deleted.
        public var untagged: Untagged?

        /// The rule governs a repository its patterns match and its excludes do not.
        public func governs(_ repository: RepositoryName) -> Bool {
            repositories.contains { $0.matches(repository) } && !exclude.contains { $0.matches(repository) }
        }
    }

    /// Keeps a tag that passes every field it sets.
    public struct Selector: Sendable {
        /// `keep[2]`, or the selector's `name` when it has one: how plans and history cite it.
        public var label: String
        public var line: Int
        /// The population ranks are computed in; empty means every tag.
        public var tags: [TagPattern]
        public var newest: Int?
        public var pushedWithin: TimeSpan?
        /// Pulled (by this tag, or by the digest it points to) within this span, as the
        /// imported registry logs tell (`regkeeper pulls import`).
        public var pulledWithin: TimeSpan?
        public var semver: SemverRank?

        /// The fields as written, e.g. `tags v*, newest 5, pushedWithin 90d`.
        public var summary: String {
            var parts: [String] = []
            if !tags.isEmpty { parts.append("tags " + tags.map(\.text).joined(separator: "|")) }
            if let newest { parts.append("newest \(newest)") }
            if let pushedWithin { parts.append("pushedWithin \(pushedWithin)") }
            if let pulledWithin { parts.append("pulledWithin \(pulledWithin)") }
            if let semver {
                var text = "semver"
                if let newest = semver.newest { text += " newest \(newest)" }
                if semver.per != .none { text += " per \(semver.per.rawValue)" }
                if !semver.prereleases { text += " without pre-releases" }
                parts.append(text)
            }
            return parts.joined(separator: ", ")
        }
    }

    public struct SemverRank: Sendable, Hashable {
        /// Nil keeps every tag that parses.
        public var newest: Int?
        public var per: Grouping
        /// False: pre-release tags are neither ranked nor kept by this selector.
        public var prereleases: Bool
    }

    /// Which versions are ranked together: `minor` ranks 1.4.x apart from 1.5.x.
    public enum Grouping: String, Sendable, Hashable, CaseIterable {
        case major, minor, patch, none
    }

    public struct Untagged: Sendable, Hashable {
        public var delete: Bool
        /// Manifests pushed more recently stay: a multi-arch push uploads its children
        /// untagged before the index that names them.
        public var olderThan: TimeSpan
    }

    /// Overrides every rule.
    public struct Protection: Sendable {
        public var tags: [TagPattern] = []
        public var inUse: InUseList?
    }

    public struct Safety: Sendable, Hashable {
        /// A repository that would lose a larger share of its tags stops the whole apply.
        public var maxDeletePercent: Int
    }

    /// Applies when the policy has no `safety` section: fail closed, a policy that deletes
    /// most of a repository has to say so.
    public static let defaultMaxDeletePercent = 50
    /// Applies when `untagged` sets `delete` but no `olderThan`.
    public static let defaultUntaggedAge = TimeSpan(seconds: 86_400)
    /// Shorter ages are refused: they would race multi-arch pushes.
    public static let minimumUntaggedAge = TimeSpan(seconds: 3600)

    /// The longest `pulledWithin` of any selector: how far back the imported logs must reach
    /// before the policy may be applied. Nil when no selector asks about pulls.
    public var longestPulledWithin: TimeSpan? {
        rules.flatMap(\.keep).compactMap(\.pulledWithin).max()
    }

    /// The first rule that governs the repository; nil leaves it alone.
    public func rule(for repository: RepositoryName) -> Rule? {
        rules.first { $0.governs(repository) }
    }
}

/// Why a policy (or its in-use list) was refused: always a file, a line and a reason.
public enum PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    /// Not YAML at all: the parser's own message.
    case syntax(file: String, line: Int, reason: String)
    /// YAML, but not a policy: unknown key, wrong type, bad glob, duration or count.
    case invalid(file: String, line: Int, reason: String)
    /// A line of an in-use list that names no image reference.
    case inUseEntry(file: String, line: Int, reason: String)
    /// Nested deeper than `limit` (see `YAMLNesting`): refused before parsing, which would
    /// overflow the stack.
    case nestedTooDeep(file: String, line: Int, limit: Int)

    public var file: String {
        switch self {
        case .unreadable(let file, _), .syntax(let file, _, _), .invalid(let file, _, _), .inUseEntry(let file, _, _), .nestedTooDeep(let file, _, _): file
        }
    }

    /// 1-based; 0 for a file that could not be read at all.
    public var line: Int {
        switch self {
        case .unreadable: 0
        case .syntax(_, let line, _), .invalid(_, let line, _), .inUseEntry(_, let line, _), .nestedTooDeep(_, let line, _): line
        }
    }

    public var reason: String {
        switch self {
        case .unreadable(_, let reason), .syntax(_, _, let reason), .invalid(_, _, let reason), .inUseEntry(_, _, let reason): reason
        case .nestedTooDeep(_, _, let limit): "nested deeper than \(limit) levels; a policy needs fewer than 10"
        }
    }

    public var description: String {
        line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)"
    }
}

/// Every problem the checker found in one file, so that one run of `policy check` lists them all.
public struct PolicyErrors: Error, Hashable, Sendable, CustomStringConvertible {
    public var errors: [PolicyError]

    public init(_ errors: [PolicyError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
