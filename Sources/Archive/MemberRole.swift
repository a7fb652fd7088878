import Foundation
import RegistryModel
import RegistryStore

/// What a store path inside an archive is, as far as a restore is concerned.
enum MemberRole: Equatable {
    case blob(Digest)
    case link(RepositoryName, LinkKind)
    case upload(RepositoryName)
    case other

    enum LinkKind: Int, Comparable {
        case layer, revision, tagHistory, tagCurrent
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Classifies by the layout's shape; `Layout` builds the expected path again, so a name that
    /// merely looks right in one place cannot pass.
    init(_ path: StorePath) {
        self = .other
        let c = path.components
        let registry = Layout.registryRoot.components.count
        guard c.count > registry + 1, path.hasPrefix(Layout.registryRoot) else { return }
        if c[registry] == "blobs", c.count == registry + 5, let algorithm = Digest.Algorithm(name: c[registry + 1]),
           let digest = Digest(algorithm: algorithm, hex: c[registry + 3]), Layout.blobData(digest) == path {
            self = .blob(digest)
            return
        }
        guard c[registry] == "repositories",
              let marker = c.firstIndex(where: { $0.hasPrefix("_") }), marker > registry + 1,
              let name = RepositoryName(c[(registry + 1)..<marker].joined(separator: "/")) else { return }
        let rest = Array(c[marker...])
        switch rest.first {
        case Layout.layersDirectoryName:
            if rest.count == 4, let digest = Self.digest(rest[1], rest[2]), Layout.layerLink(name, digest) == path {
                self = .link(name, .layer)
            }
        case Layout.manifestsDirectoryName:
            if rest.count == 5, rest[1] == "revisions", let digest = Self.digest(rest[2], rest[3]),
               Layout.revisionLink(name, digest) == path {
                self = .link(name, .revision)
            } else if rest.count >= 5, rest[1] == "tags", let tag = Tag(rest[2]) {
                if Layout.tagCurrentLink(name, tag) == path {
                    self = .link(name, .tagCurrent)
                } else if rest.count == 7, let digest = Self.digest(rest[4], rest[5]), Layout.tagIndexLink(name, tag, digest) == path {
                    self = .link(name, .tagHistory)
                }
            }
        case Layout.uploadsDirectoryName:
            if rest.count >= 3 { self = .upload(name) }
        default:
            break
        }
    }

    private static func digest(_ algorithm: String, _ hex: String) -> Digest? {
        Digest.Algorithm(name: algorithm).flatMap { Digest(algorithm: $0, hex: hex) }
    }

    /// Position in the order a store is put in place: blobs, `_layers`, revisions, tag history,
    /// tags, uploads; anything a link names is there before the link.
    var placementRank: Int {
        switch self {
        case .blob: 0
        case .link(_, let kind): 1 + kind.rawValue
        case .upload: 5
        case .other: 6
        }
    }

    var repository: RepositoryName? {
        switch self {
        case .link(let name, _), .upload(let name): name
        case .blob, .other: nil
        }
    }
}
