import Foundation
import RegistryModel

/// One repository's links as read from disk at one moment.
public struct RepositoryState: Sendable {
    public var name: RepositoryName
    /// Revision links by the digest of their directory.
    public var revisions: [Digest: Link] = [:]
    /// Revision directories left without a link: manifests deleted through the API.
    public var deletedRevisions: Set<Digest> = []
    public var tags: [Tag: TagState] = [:]
    /// `_layers` links by the digest of their directory.
    public var layers: [Digest: Link] = [:]
    public var uploads: [Upload] = []

    public init(name: RepositoryName) { self.name = name }

    /// The manifests every tag points to now; when a tag's current link is unreadable, every
    /// manifest in its history counts, so that a damaged link never makes an image collectable.
    public var taggedManifests: Set<Digest> {
        var tagged: Set<Digest> = []
        for state in tags.values {
            if let current = state.current {
                tagged.insert(current)
            } else {
                tagged.formUnion(state.history ?? [])
            }
        }
        return tagged
    }
}

/// A link file: the digest it names, and when it was written.
public struct Link: Sendable, Hashable {
    /// The digest the file names, or the one its directory names when the file is damaged.
    public var target: Digest
    public var modified: Date
    /// True when the file was empty or garbled and `target` was recovered from its path.
    public var recovered: Bool

    public init(target: Digest, modified: Date, recovered: Bool = false) {
        self.target = target
        self.modified = modified
        self.recovered = recovered
    }
}

public struct TagState: Sendable, Hashable {
    /// Nil when `current/link` is missing, empty or garbled.
    public var current: Digest?
    /// When the tag last moved: the mtime of `current/link`.
    public var modified: Date?
    /// Every manifest in `index/`: what the tag has pointed to. Nil when the scan skipped it
    /// (a marking scan lists it only for tags whose current link is unreadable).
    public var history: Set<Digest>?

    public init(current: Digest?, modified: Date?, history: Set<Digest>?) {
        self.current = current
        self.modified = modified
        self.history = history
    }
}

public struct Upload: Sendable, Hashable {
    public var uuid: String
    /// From `startedat`, or the directory's mtime when that file is missing or garbled.
    public var startedAt: Date
    public var bytes: Int64

    public init(uuid: String, startedAt: Date, bytes: Int64) {
        self.uuid = uuid
        self.startedAt = startedAt
        self.bytes = bytes
    }
}

/// Something in the layout that is not as the registry writes it. Reported, never fatal.
public enum StoreFinding: Sendable, Hashable, CustomStringConvertible, Encodable {
    /// A link file that is empty or does not hold a digest.
    case badLink(path: StorePath, content: String, recovered: Digest?)
    /// An entry that does not belong in the layout (bad name, symlink, missing `data`).
    case stray(path: StorePath, reason: String)
    /// A path that could not be read (permission, I/O, a file where a directory belongs).
    case unreadable(path: StorePath, reason: String)
    /// A symbolic link inside the store. The registry follows it, the tools do not, so what it
    /// leads to is unknown to them.
    case symlink(path: StorePath)

    public var kind: String {
        switch self {
        case .badLink: "bad-link"
        case .stray: "stray"
        case .unreadable: "unreadable"
        case .symlink: "symlink"
        }
    }

    /// True when the tools could not see what lies at the path: content the registry may
    /// serve is hidden from them, so nothing may be judged unused while it stands.
    public var hidesContent: Bool {
        switch self {
        case .unreadable, .symlink: true
        case .badLink, .stray: false
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, path, message }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(path.description, forKey: .path)
        try container.encode(description, forKey: .message)
    }

    public var path: StorePath {
        switch self {
        case .badLink(let path, _, _), .stray(let path, _), .unreadable(let path, _), .symlink(let path): path
        }
    }

    public var description: String {
        switch self {
        case .badLink(let path, let content, let recovered):
            let shown = content.isEmpty ? "an empty file" : "'\(content.prefix(80))'"
            return "bad link \(path): holds \(shown)" + (recovered.map { "; using \($0) from its path" } ?? "")
        case .stray(let path, let reason): return "stray \(path): \(reason)"
        case .unreadable(let path, let reason): return "unreadable \(path): \(reason)"
        case .symlink(let path):
            return "symbolic link \(path): not followed; replace it with the directory or file it points to"
        }
    }
}

/// A blob present under `blobs/`.
public struct BlobEntry: Sendable, Hashable {
    public var digest: Digest
    /// False when the blob directory has no `data` file (a half-removed or half-written blob).
    public var hasData: Bool

    public init(digest: Digest, hasData: Bool) {
        self.digest = digest
        self.hasData = hasData
    }
}
