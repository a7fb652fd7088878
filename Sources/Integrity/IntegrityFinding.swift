import RegistryModel
import RegistryStore

/// A tagged image, the unit an operator re-pushes: `repository:tag`.
public struct TagReference: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public var repository: RepositoryName
    public var tag: Tag

    public init(repository: RepositoryName, tag: Tag) {
        self.repository = repository
        self.tag = tag
    }

    public var description: String { "\(repository):\(tag)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.repository, lhs.tag) < (rhs.repository, rhs.tag)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let colon = text.lastIndex(of: ":"), let repository = RepositoryName(text[..<colon]),
              let tag = Tag(text[text.index(after: colon)...]) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid repository:tag '\(text)'")
        }
        self.init(repository: repository, tag: tag)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One piece of damage, with where it is and which images it breaks. A value handed to a
/// consumer, never a thrown error: a run that finds damage still checks everything else.
public struct IntegrityFinding: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
        /// Content does not hash to the digest in its path.
        case corrupt
        /// Shorter than a manifest descriptor says (and so not the pushed content).
        case truncated
        /// Another size than a manifest descriptor says.
        case sizeMismatch = "size-mismatch"
        /// Permission or I/O error.
        case unreadable
        /// A tag, manifest, child or layer reference to a blob (or repository link) that is absent.
        case missing
        /// A `_layers`, revision or tag link to an absent blob that nothing tagged needs.
        case danglingLink = "dangling-link"
        /// A manifest that does not parse, or whose descriptor is not a digest.
        case badManifest = "bad-manifest"
        /// A link file that is empty or does not hold a digest.
        case badLink = "bad-link"
        /// Something in the layout that does not belong there.
        case stray

        public static func < (lhs: Self, rhs: Self) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    public var kind: Kind
    /// Relative to the store root.
    public var path: StorePath
    public var digest: Digest?
    /// Tagged images that can no longer be pulled because of this.
    public var affectedTags: [TagReference]
    /// One line: what is wrong, in words that say what to do.
    public var message: String
    /// Where `--quarantine` moved the blob (absolute), when it did.
    public var quarantinedTo: String?

    public init(
        kind: Kind, path: StorePath, digest: Digest?, affectedTags: [TagReference] = [], message: String,
        quarantinedTo: String? = nil
    ) {
        self.kind = kind
        self.path = path
        self.digest = digest
        self.affectedTags = affectedTags.sorted()
        self.message = message
        self.quarantinedTo = quarantinedTo
    }

    public var description: String {
        var line = "\(kind.rawValue) \(path)"
        if let digest { line += " (\(digest))" }
        line += ": \(message)"
        if !affectedTags.isEmpty { line += "; breaks " + affectedTags.map(\.description).joined(separator: ", ") }
        if let quarantinedTo { line += "; moved to \(quarantinedTo)" }
        return line
    }

    private enum CodingKeys: String, CodingKey {
        case kind, path, digest, affectedTags = "affected_tags", message, quarantinedTo = "quarantined_to"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let pathText = try container.decode(String.self, forKey: .path)
        guard let path = StorePath(relative: pathText) else {
            throw DecodingError.dataCorruptedError(forKey: .path, in: container, debugDescription: "invalid store path '\(pathText)'")
        }
        self.init(
            kind: try container.decode(Kind.self, forKey: .kind), path: path,
            digest: try container.decodeIfPresent(Digest.self, forKey: .digest),
            affectedTags: try container.decode([TagReference].self, forKey: .affectedTags),
            message: try container.decode(String.self, forKey: .message),
            quarantinedTo: try container.decodeIfPresent(String.self, forKey: .quarantinedTo))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(path.description, forKey: .path)
        try container.encodeIfPresent(digest, forKey: .digest)
        try container.encode(affectedTags, forKey: .affectedTags)
        try container.encode(message, forKey: .message)
        try container.encodeIfPresent(quarantinedTo, forKey: .quarantinedTo)
    }
}

extension IntegrityFinding {
    /// The scanner's layout findings in this vocabulary.
    init(_ finding: StoreFinding) {
        switch finding {
        case .badLink(let path, _, let recovered):
            self.init(kind: .badLink, path: path, digest: recovered, message: finding.description)
        case .stray(let path, let reason):
            self.init(kind: .stray, path: path, digest: nil, message: reason)
        case .unreadable(let path, let reason):
            self.init(kind: .unreadable, path: path, digest: nil, message: reason)
        case .symlink(let path):
            self.init(kind: .unreadable, path: path, digest: nil, message: "symbolic link, not followed; replace it with the directory or file it points to")
        }
    }
}
