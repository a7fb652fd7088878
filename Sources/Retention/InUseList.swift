import Foundation
import RegistryModel

/// Image references something still runs (for example `kubectl get pods -A -o
/// jsonpath='{..image}'`), one per line: `repo:tag`, `repo@sha256:…` or `repo:tag@sha256:…`,
/// optionally behind a registry host, which is ignored. Blank lines and `#` comments are skipped.
public struct InUseList: Sendable, Hashable {
    public struct Source: Sendable, Hashable, Codable, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var description: String { "\((file as NSString).lastPathComponent):\(line)" }
    }

    public var file: String
    public private(set) var tags: [RepositoryName: [Tag: Source]] = [:]
    public private(set) var digests: [RepositoryName: [Digest: Source]] = [:]

    public init(file: String) { self.file = file }

    /// Parses the list's text; every bad line is reported, none is skipped silently.
    public static func parse(_ text: String, file: String) -> Result<InUseList, PolicyErrors> {
        var list = InUseList(file: file)
        var errors: [PolicyError] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let entry = line.trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else { continue }
            let source = Source(file: file, line: index + 1)
            switch reference(entry) {
            case .success(let (repository, tag, digest)):
                if let tag { list.tags[repository, default: [:]][tag] = list.tags[repository]?[tag] ?? source }
                if let digest { list.digests[repository, default: [:]][digest] = list.digests[repository]?[digest] ?? source }
            case .failure(let problem):
                errors.append(.inUseEntry(file: file, line: index + 1, reason: problem.description))
            }
        }
        return errors.isEmpty ? .success(list) : .failure(PolicyErrors(errors))
    }

    /// Splits `[host/]name[:tag][@digest]` the way Docker reads references: a first
    /// component with a dot or a port, or `localhost`, is a registry host.
    static func reference(_ text: String) -> Result<(RepositoryName, Tag?, Digest?), PatternProblem> {
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let digestText = rest[rest.index(after: at)...]
            guard let parsed = Digest(digestText) else {
                return .failure(PatternProblem("'\(digestText)' is not a digest like sha256:<64 hex>"))
            }
            digest = parsed
            rest = rest[..<at]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false)
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" {
            components.removeFirst()
        }
        var tag: Tag?
        if let last = components.last, let colon = last.firstIndex(of: ":") {
            let tagText = last[last.index(after: colon)...]
            guard let parsed = Tag(tagText) else { return .failure(PatternProblem("'\(tagText)' is not a valid tag")) }
            tag = parsed
            components[components.count - 1] = last[..<colon]
        }
        let nameText = components.joined(separator: "/")
        guard let name = RepositoryName(nameText) else {
            return .failure(PatternProblem("'\(nameText)' is not a valid repository name"))
        }
        guard tag != nil || digest != nil else {
            return .failure(PatternProblem("'\(text)' names no tag and no digest; write \(nameText):TAG or \(nameText)@sha256:…"))
        }
        return .success((name, tag, digest))
    }
}
