import RegistryModel
import RegistryStore

/// What the mark phase decided for one repository.
public struct RepositoryMark: Sendable {
    public var repository: RepositoryName
    /// Manifests walked and kept in this repository.
    public var kept: Set<Digest> = []
    /// Blobs that must survive: kept manifests, their configs and layers.
    public var marked: Set<Digest> = []
    /// Revisions (by directory digest) no kept tag, index or subject needs.
    var untagged: [Digest] = []
    var broken: [GCPlan.BrokenManifest] = []
    /// Revision links whose manifest blob is gone: links the sweep removes.
    var missingRevisions: [Digest] = []
}

/// Marks what a repository keeps alive. Traversal is per repository ("manifest traversed" is
/// kept apart from "blob marked"), so a manifest already marked from another repository is
/// still walked here, and a sparse index elsewhere cannot hide this repository's layers.
public struct MarkPhase: Sendable {
    let loader: ManifestLoader
    let deleteUntagged: Bool

    public init(loader: ManifestLoader, deleteUntagged: Bool) {
        self.loader = loader
        self.deleteUntagged = deleteUntagged
    }

    public func mark(_ state: RepositoryState) -> RepositoryMark {
        var mark = RepositoryMark(repository: state.name)
        var roots: [(Digest, String)] = []
        for (tag, tagState) in state.tags.sorted(by: { $0.key < $1.key }) {
            if let current = tagState.current {
                roots.append((current, "tag \(tag)"))
            } else {
                // Fail closed: with the current link unreadable, any manifest the tag ever named may be it.
                roots += (tagState.history ?? []).sorted().map { ($0, "history of tag \(tag) (current link unreadable)") }
            }
        }
        if !deleteUntagged {
            for (digest, link) in state.revisions.sorted(by: { $0.key < $1.key }) {
                roots.append((link.target, "revision"))
                if link.target != digest { roots.append((digest, "revision directory")) }
            }
        }
        let aliases = Self.aliases(state)
        traverse(roots, state.name, aliases, &mark)
        guard deleteUntagged else {
            mark.missingRevisions = missingRevisions(state, mark)
            return mark
        }

        // Referrers (signatures, SBOMs) live as long as their subject; a referrer of a referrer too.
        var pending = state.revisions.values.map(\.target).filter { !mark.kept.contains($0) }
        var changed = true
        while changed {
            changed = false
            var stillPending: [Digest] = []
            for digest in pending {
                switch loader.load(digest) {
                case .success(let manifest):
                    if let subject = manifest.subject, mark.kept.contains(subject.digest) {
                        traverse([(digest, "referrer of \(subject.digest)")], state.name, aliases, &mark)
                        changed = true
                    } else {
                        stillPending.append(digest)
                    }
                case .failure(let error):
                    // It may be a referrer of a kept image: keep it and report it.
                    traverse([(digest, "untagged revision (\(error))")], state.name, aliases, &mark)
                }
            }
            pending = stillPending
        }
        mark.untagged = state.revisions.filter { !mark.kept.contains($0.value.target) }.map(\.key).sorted()
        mark.missingRevisions = missingRevisions(state, mark)
        return mark
    }

    /// Kept revisions whose manifest blob is gone (the loader caches every answer).
    private func missingRevisions(_ state: RepositoryState, _ mark: RepositoryMark) -> [Digest] {
        state.revisions.filter { _, link in
            mark.kept.contains(link.target) && loader.load(link.target) == .failure(.missing)
        }.map(\.key).sorted()
    }

    /// Links of this repository that name another blob than their directory: a layer pushed
    /// as `sha512:…` is stored under its sha256 and served through such a link, so marking
    /// the digest a manifest names must mark the blob its link names too.
    static func aliases(_ state: RepositoryState) -> [Digest: Digest] {
        var aliases: [Digest: Digest] = [:]
        for (digest, link) in state.layers where link.target != digest { aliases[digest] = link.target }
        return aliases
    }

    private func traverse(
        _ roots: [(Digest, String)], _ repository: RepositoryName, _ aliases: [Digest: Digest], _ mark: inout RepositoryMark
    ) {
        var stack = roots.reversed().map { $0 }
        while let (digest, via) = stack.popLast() {
            guard mark.kept.insert(digest).inserted else { continue }
            mark.marked.insert(digest)
            switch loader.load(digest) {
            case .success(let manifest):
                for blob in manifest.blobReferences {
                    mark.marked.insert(blob.digest)
                    if let alias = aliases[blob.digest] { mark.marked.insert(alias) }
                }
                for child in manifest.children.reversed() { stack.append((child.digest, "child of \(digest)")) }
            case .failure(let error):
                mark.broken.append(GCPlan.BrokenManifest(
                    repository: repository, digest: digest, reason: error.description, referencedBy: via))

            }
        }
    }
}
