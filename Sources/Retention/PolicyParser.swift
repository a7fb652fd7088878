import Foundation
import RegistryModel
import Yams

extension RetentionPolicy {
    /// Reads and checks a policy file and the in-use list it names (relative to the policy).
    public static func load(file: String) throws(PolicyErrors) -> RetentionPolicy {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw PolicyErrors([.unreadable(file: file, reason: Self.describe(error))])
        }
        return try parse(text, file: file) { path in try String(contentsOfFile: path, encoding: .utf8) }
    }

    /// How deeply a policy may nest: far beyond any real policy (fewer than 10 levels), far
    /// below the few thousand that overflow the parser's stack.
    public static let maximumNesting = 64

    /// Checks policy text; `readFile` fetches the in-use list, so tests need no disk.
    public static func parse(
        _ text: String, file: String, readFile: (String) throws -> String
    ) throws(PolicyErrors) -> RetentionPolicy {
        if let line = YAMLNesting.firstLine(deeperThan: maximumNesting, in: text) {
            throw PolicyErrors([.nestedTooDeep(file: file, line: line, limit: maximumNesting)])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw PolicyErrors([Self.syntaxError(error, file: file)])
        } catch {
            throw PolicyErrors([.syntax(file: file, line: 0, reason: "\(error)")])
        }
        guard let root else { throw PolicyErrors([.invalid(file: file, line: 1, reason: "the file is empty; a policy needs at least version and rules")]) }
        let (policy, errors) = withoutActuallyEscaping(readFile) { read in
            var parser = PolicyParser(file: file, readFile: read)
            let policy = parser.policy(root)
            return (policy, parser.errors)
        }
        guard errors.isEmpty, let policy else { throw PolicyErrors(errors) }
        return policy
    }

    private static func syntaxError(_ error: YamlError, file: String) -> PolicyError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { $0.text + ", " } ?? ""
            return .syntax(file: file, line: mark.line, reason: "not valid YAML: \(detail)\(problem)")
        default:
            return .syntax(file: file, line: 0, reason: "not valid YAML: \(error)")
        }
    }

    static func describe(_ error: any Error) -> String {
        let cocoa = error as NSError
        if cocoa.domain == NSCocoaErrorDomain, let underlying = cocoa.userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if cocoa.domain == NSCocoaErrorDomain, cocoa.code == NSFileReadNoSuchFileError { return "no such file" }
        return cocoa.localizedDescription
    }
}

/// Walks the composed YAML nodes, which carry line numbers, collecting every problem rather
/// than stopping at the first.
private struct PolicyParser {
    let file: String
    let readFile: (String) throws -> String
    var errors: [PolicyError] = []

    init(file: String, readFile: @escaping (String) throws -> String) {
        self.file = file
        self.readFile = readFile
    }

    mutating func policy(_ root: Node) -> RetentionPolicy? {
        guard let top = mapping(root, "the policy", allowed: ["version", "rules", "protect", "safety"]) else { return nil }
        if let version = top["version"] {
            if int(version, "version") != 1 {
                fail(version, "unsupported policy version '\(version.string ?? "?")'; this regkeeper reads version 1")
            }
        } else {
            fail(root, "missing 'version: 1'")
        }
        var rules: [RetentionPolicy.Rule] = []
        if let rulesNode = top["rules"] {
            for node in sequence(rulesNode, "rules") {
                if let rule = rule(node) {
                    if let earlier = rules.first(where: { $0.name == rule.name }) {
                        fail(node, "rule name '\(rule.name)' is already used by the rule on line \(earlier.line)")
                    }
                    rules.append(rule)
                }
            }
            if rules.isEmpty, errors.isEmpty { fail(rulesNode, "'rules' is empty: a policy needs at least one rule") }
        } else {
            fail(root, "missing 'rules'")
        }
        var protection = RetentionPolicy.Protection()
        if let protect = top["protect"], let fields = mapping(protect, "protect", allowed: ["tags", "inUse"]) {
            if let tags = fields["tags"] { protection.tags = tagPatterns(tags, "protect.tags") }
            if let inUse = fields["inUse"] { protection.inUse = inUseList(inUse) }
        }
        var safety = RetentionPolicy.Safety(maxDeletePercent: RetentionPolicy.defaultMaxDeletePercent)
        if let safetyNode = top["safety"], let fields = mapping(safetyNode, "safety", allowed: ["maxDeletePercent"]) {
            if let percent = fields["maxDeletePercent"], let value = int(percent, "maxDeletePercent") {
                if (0...100).contains(value) {
                    safety.maxDeletePercent = value
                } else {
                    fail(percent, "maxDeletePercent must be between 0 and 100, not \(value)")
                }
            }
        }
        return RetentionPolicy(file: file, rules: rules, protection: protection, safety: safety)
    }

    private mutating func rule(_ node: Node) -> RetentionPolicy.Rule? {
        guard let fields = mapping(node, "a rule", allowed: ["name", "repositories", "exclude", "keep", "untagged"]) else { return nil }
        let name = fields["name"].flatMap { string($0, "name") }
        if fields["name"] == nil { fail(node, "a rule needs a 'name'; plans and history cite it") }
        let label = name ?? "rule on line \(line(node))"
        var repositories: [RepositoryPattern] = []
        if let patterns = fields["repositories"] {
            repositories = repositoryPatterns(patterns, "\(label): repositories")
            if repositories.isEmpty, sequence(patterns, "repositories").isEmpty {
                fail(patterns, "\(label): 'repositories' is empty, so the rule governs nothing")
            }
        } else {
            fail(node, "\(label): missing 'repositories' (use [\"**\"] for every repository)")
        }
        let exclude = fields["exclude"].map { repositoryPatterns($0, "\(label): exclude") } ?? []
        var keep: [RetentionPolicy.Selector] = []
        if let keepNode = fields["keep"] {
            for (index, selectorNode) in sequence(keepNode, "keep").enumerated() {
                if let selector = selector(selectorNode, index: index, rule: label) { keep.append(selector) }
            }
        } else {
            fail(node, "\(label): missing 'keep' (write 'keep: []' to keep no tag but protected ones)")
        }
        let untagged = fields["untagged"].flatMap { self.untagged($0, rule: label) }
        return RetentionPolicy.Rule(
            name: name ?? "", line: line(node), repositories: repositories, exclude: exclude, keep: keep, untagged: untagged)
    }

    private mutating func selector(_ node: Node, index: Int, rule: String) -> RetentionPolicy.Selector? {
        let context = "\(rule): keep[\(index + 1)]"
        guard let fields = mapping(node, context, allowed: ["name", "tags", "newest", "pushedWithin", "pulledWithin", "semver"]) else { return nil }
        let name = fields["name"].flatMap { string($0, "\(context).name") }
        var selector = RetentionPolicy.Selector(
            label: name ?? "keep[\(index + 1)]", line: line(node), tags: [], newest: nil, pushedWithin: nil, pulledWithin: nil, semver: nil)
        if let tags = fields["tags"] { selector.tags = tagPatterns(tags, "\(context).tags") }
        if let newest = fields["newest"] { selector.newest = positive(newest, "\(context).newest") }
        if let within = fields["pushedWithin"] { selector.pushedWithin = duration(within, "\(context).pushedWithin") }
        if let within = fields["pulledWithin"] { selector.pulledWithin = duration(within, "\(context).pulledWithin") }
        if let semver = fields["semver"],
           let semverFields = mapping(semver, "\(context).semver", allowed: ["newest", "per", "prereleases"]) {
            var rank = RetentionPolicy.SemverRank(newest: nil, per: .none, prereleases: true)
            if let newest = semverFields["newest"] { rank.newest = positive(newest, "\(context).semver.newest") }
            if let per = semverFields["per"], let text = string(per, "\(context).semver.per") {
                if let grouping = RetentionPolicy.Grouping(rawValue: text) {
                    rank.per = grouping
                } else {
                    fail(per, "\(context).semver.per: '\(text)' is not one of major, minor, patch, none")
                }
            }
            if let prereleases = semverFields["prereleases"] {
                if let value = prereleases.bool { rank.prereleases = value } else { fail(prereleases, "\(context).semver.prereleases must be true or false") }
            }
            selector.semver = rank
        }
        if fields.keys.allSatisfy({ $0 == "name" }) {
            fail(node, "\(context) sets no field, so it would keep nothing; use tags, newest, pushedWithin, pulledWithin or semver")
        }
        return selector
    }

    private mutating func untagged(_ node: Node, rule: String) -> RetentionPolicy.Untagged? {
        guard let fields = mapping(node, "\(rule): untagged", allowed: ["delete", "olderThan"]) else { return nil }
        var result = RetentionPolicy.Untagged(delete: false, olderThan: RetentionPolicy.defaultUntaggedAge)
        if let delete = fields["delete"] {
            if let value = delete.bool { result.delete = value } else { fail(delete, "\(rule): untagged.delete must be true or false") }
        } else {
            fail(node, "\(rule): untagged needs 'delete: true' or 'delete: false'")
        }
        if let age = fields["olderThan"], let span = duration(age, "\(rule): untagged.olderThan") {
            if span < RetentionPolicy.minimumUntaggedAge {
                fail(age, "\(rule): untagged.olderThan \(span) is below 1h: a multi-arch push uploads its children untagged before the index that names them")
            } else {
                result.olderThan = span
            }
        }
        return result
    }

    private mutating func inUseList(_ node: Node) -> InUseList? {
        guard let relative = string(node, "protect.inUse") else { return nil }
        let base = (file as NSString).deletingLastPathComponent
        let path = relative.hasPrefix("/") || base.isEmpty ? relative : base + "/" + relative
        let text: String
        do {
            text = try readFile(path)
        } catch {
            fail(node, "protect.inUse: cannot read \(path): \(RetentionPolicy.describe(error))")
            return nil
        }
        switch InUseList.parse(text, file: path) {
        case .success(let list): return list
        case .failure(let failure):
            errors += failure.errors
            return nil
        }
    }

    // MARK: Typed access

    /// A mapping with string keys, refusing keys outside `allowed` and duplicates.
    private mutating func mapping(_ node: Node, _ context: String, allowed: [String]) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            fail(node, "\(context) must be a mapping of keys to values")
            return nil
        }
        var fields: [String: Node] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                fail(key, "\(context): keys must be plain words")
                continue
            }
            guard allowed.contains(scalar.string) else {
                fail(key, "unknown key '\(scalar.string)' in \(context) (allowed: \(allowed.joined(separator: ", ")))")
                continue
            }
            guard fields[scalar.string] == nil else {
                fail(key, "'\(scalar.string)' is given twice in \(context)")
                continue
            }
            fields[scalar.string] = value
        }
        return fields
    }

    private mutating func sequence(_ node: Node, _ context: String) -> [Node] {
        switch node {
        case .sequence(let sequence): return Array(sequence)
        case .scalar where node.null != nil: return []
        default:
            fail(node, "\(context) must be a list")
            return []
        }
    }

    private mutating func string(_ node: Node, _ context: String) -> String? {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            fail(node, "\(context) must be a non-empty string")
            return nil
        }
        return scalar.string
    }

    private mutating func int(_ node: Node, _ context: String) -> Int? {
        guard case .scalar = node, let value = node.int else {
            fail(node, "\(context) must be a whole number, not '\(node.string ?? "a collection")'")
            return nil
        }
        return value
    }

    private mutating func positive(_ node: Node, _ context: String) -> Int? {
        guard let value = int(node, context) else { return nil }
        guard value >= 1 else {
            fail(node, "\(context) must be at least 1, not \(value)")
            return nil
        }
        return value
    }

    private mutating func duration(_ node: Node, _ context: String) -> TimeSpan? {
        guard let text = string(node, context) else { return nil }
        guard let span = TimeSpan(text), span.seconds > 0 else {
            fail(node, "\(context): '\(text)' is not a duration like 30s, 15m, 12h, 7d or 4w")
            return nil
        }
        return span
    }

    /// A list of strings; a single string stands for a list of one.
    private mutating func strings(_ node: Node, _ context: String) -> [(String, Node)] {
        if case .scalar(let scalar) = node, !scalar.string.isEmpty { return [(scalar.string, node)] }
        return sequence(node, context).compactMap { item in string(item, context).map { ($0, item) } }
    }

    private mutating func tagPatterns(_ node: Node, _ context: String) -> [TagPattern] {
        strings(node, context).compactMap { text, item in
            switch TagPattern.parse(text) {
            case .success(let pattern): return pattern
            case .failure(let problem):
                fail(item, "\(context): \(problem)")
                return nil
            }
        }
    }

    private mutating func repositoryPatterns(_ node: Node, _ context: String) -> [RepositoryPattern] {
        strings(node, context).compactMap { text, item in
            switch RepositoryPattern.parse(text) {
            case .success(let pattern): return pattern
            case .failure(let problem):
                fail(item, "\(context): \(problem)")
                return nil
            }
        }
    }

    private func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    private mutating func fail(_ node: Node, _ reason: String) {
        errors.append(.invalid(file: file, line: line(node), reason: reason))
    }
}
