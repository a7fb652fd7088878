import RegistryModel
import RegistryStore

/// A size a manifest declares for a blob it references.
struct DeclaredSize: Hashable, Sendable {
    var size: Int64
    var manifest: Digest
    var repository: RepositoryName
}

/// Who references what: which tags reach each blob (through index → child → config/layers),
/// the sizes manifests declare, and the references that lead nowhere.
///
/// Built per repository, because a pull is per repository: the registry serves a blob only
/// through the repository's own `_layers` and revision links.
struct ReferenceGraph: Sendable {
    /// Tags whose pull needs the digest.
    var reach: [Digest: Set<TagReference>] = [:]
    var declaredSizes: [Digest: [DeclaredSize]] = [:]
    /// Manifests present but unreadable or unparsable.
    var manifestProblems: [Digest: ManifestLoadError] = [:]
    /// Absent digests a tag or a manifest references, with who references them.
    var absentReferences: [Digest: [String]] = [:]
    /// Present blobs that a repository needs but has no link for.
    var missingLinks: [IntegrityFinding] = []
    var manifestsTraversed = 0
    var tags = 0

    /// - Parameters:
    ///   - present: digests whose `data` exists.
    ///   - threads: manifests read at once (`threadedMap`: with a cold cache, each is a disk read).
    static func build(
        _ repositories: [RepositoryState], present: Set<Digest>, loader: ManifestLoader, threads: Int
    ) async throws -> ReferenceGraph {
        let parts = try await threadedMap(repositories, threads: threads, name: "graph") { state in
            RepositoryWalk(state: state, present: present, loader: loader).run()
        }
        var graph = ReferenceGraph()
        for part in parts {
            graph.reach.merge(part.reach) { $0.union($1) }
            graph.declaredSizes.merge(part.declaredSizes) { $0 + $1 }
            graph.manifestProblems.merge(part.manifestProblems) { first, _ in first }
            graph.absentReferences.merge(part.absentReferences) { $0 + $1 }
            graph.missingLinks += part.missingLinks
            graph.manifestsTraversed += part.manifestsTraversed
            graph.tags += part.tags
        }
        return graph
    }

    func tags(reaching digest: Digest) -> [TagReference] {
        reach[digest].map { $0.sorted() } ?? []
    }

    /// Findings for references that lead nowhere: one `missing` per absent digest that a tag or
    /// manifest needs, then a `dangling-link` per link to an absent digest that nothing needs
    /// (reporting those links as well would say the same damage twice).
    func referenceFindings(_ repositories: [RepositoryState], present: Set<Digest>) -> [IntegrityFinding] {
        var findings = missingLinks
        for (digest, referrers) in absentReferences.sorted(by: { $0.key < $1.key }) {
            let shown = referrers.sorted().prefix(3).joined(separator: "; ")
            let more = referrers.count > 3 ? " and \(referrers.count - 3) more" : ""
            findings.append(IntegrityFinding(
                kind: .missing, path: Layout.blobData(digest), digest: digest, affectedTags: tags(reaching: digest),
                message: "blob is absent but referenced by \(shown)\(more)"))
        }
        for state in repositories {
            var links: [(StorePath, Digest, String)] = []
            links += state.layers.map { (Layout.layerLink(state.name, $0.key), $0.value.target, "_layers link") }
            links += state.revisions.map { (Layout.revisionLink(state.name, $0.key), $0.value.target, "revision link") }
            for (tag, tagState) in state.tags {
                if let current = tagState.current { links.append((Layout.tagCurrentLink(state.name, tag), current, "current link of tag \(tag)")) }
                links += (tagState.history ?? []).map { (Layout.tagIndexLink(state.name, tag, $0), $0, "history link of tag \(tag)") }
            }
            for (path, target, what) in links.sorted(by: { $0.0 < $1.0 })
            where !present.contains(target) && absentReferences[target] == nil {
                findings.append(IntegrityFinding(
                    kind: .danglingLink, path: path, digest: target,
                    message: "\(what) names a blob that is absent; nothing tagged needs it (gc removes such links)"))
            }
        }
        return findings
    }
}

/// The walk of one repository: every manifest reachable from its tags and revisions, once.
private struct RepositoryWalk {
    let state: RepositoryState
    let present: Set<Digest>
    let loader: ManifestLoader

    func run() -> ReferenceGraph {
        var graph = ReferenceGraph()
        var edges: [Digest: [Digest]] = [:]
        var visited: Set<Digest> = []
        var stack: [(Digest, String)] = []
        var tagRoots: [(TagReference, [Digest])] = []

        for (tag, tagState) in state.tags.sorted(by: { $0.key < $1.key }) {
            let reference = TagReference(repository: state.name, tag: tag)
            // Fail closed: with the current link unreadable, any manifest the tag named may be it.
            let roots = tagState.current.map { [$0] } ?? (tagState.history ?? []).sorted()
            tagRoots.append((reference, roots))
            for root in roots {
                if present.contains(root), state.revisions[root] == nil {
                    graph.missingLinks.append(IntegrityFinding(
                        kind: .missing, path: Layout.revisionLink(state.name, root), digest: root, affectedTags: [reference],
                        message: "tag \(reference) names a manifest that has no revision link in \(state.name): the registry answers 'manifest unknown'"))
                }
                stack.append((root, "tag \(reference)"))
            }
        }
        graph.tags = state.tags.count
        // Untagged revisions are walked too (their damage is damage), but an absent one is only
        // a dangling link: no tag and no manifest asks for it.
        for link in state.revisions.values.sorted(by: { $0.target < $1.target }) where present.contains(link.target) {
            stack.append((link.target, "revision link of \(state.name)"))
        }

        while let (digest, referrer) = stack.popLast() {
            guard present.contains(digest) else {
                graph.absentReferences[digest, default: []].append(referrer)
                continue
            }
            guard visited.insert(digest).inserted else { continue }
            graph.manifestsTraversed += 1
            let manifest: Manifest
            switch loader.load(digest) {
            case .success(let loaded): manifest = loaded
            case .failure(.missing):
                graph.absentReferences[digest, default: []].append(referrer)
                continue
            case .failure(let problem):
                graph.manifestProblems[digest] = problem
                continue
            }
            var targets: [Digest] = []
            for reference in manifest.blobReferences {
                // The registry serves a blob through the repository's link, which for a
                // digest of another algorithm (sha512) names the blob stored under sha256.
                var blob = reference
                blob.digest = state.layers[reference.digest]?.target ?? reference.digest
                targets.append(blob.digest)
                declare(blob, by: digest, into: &graph)
                if !present.contains(blob.digest) {
                    graph.absentReferences[blob.digest, default: []].append("manifest \(digest) in \(state.name)")
                } else if state.layers[reference.digest] == nil {
                    graph.missingLinks.append(IntegrityFinding(
                        kind: .missing, path: Layout.layerLink(state.name, blob.digest), digest: blob.digest,
                        message: "manifest \(digest) references it but \(state.name) has no _layers link: the registry answers 'blob unknown'"))
                }
            }
            for child in manifest.children {
                targets.append(child.digest)
                declare(child, by: digest, into: &graph)
                if present.contains(child.digest), state.revisions[child.digest] == nil {
                    graph.missingLinks.append(IntegrityFinding(
                        kind: .missing, path: Layout.revisionLink(state.name, child.digest), digest: child.digest,
                        message: "index \(digest) lists it but \(state.name) has no revision link: the registry answers 'manifest unknown'"))
                }
                stack.append((child.digest, "index \(digest) in \(state.name)"))
            }
            edges[digest] = targets
        }

        for (reference, roots) in tagRoots {
            var reached: Set<Digest> = []
            var pending = roots
            while let digest = pending.popLast() {
                guard reached.insert(digest).inserted else { continue }
                graph.reach[digest, default: []].insert(reference)
                pending += edges[digest] ?? []
            }
        }
        // A missing link breaks the tags that reach its blob through this repository.
        // Several manifests may need the same link: report it once.
        var seen: Set<StorePath> = []
        graph.missingLinks = graph.missingLinks.compactMap { finding in
            guard seen.insert(finding.path).inserted else { return nil }
            var finding = finding
            if let digest = finding.digest {
                finding.affectedTags = Array(graph.reach[digest] ?? []).sorted()
            }
            return finding
        }
        return graph
    }

    private func declare(_ descriptor: Descriptor, by manifest: Digest, into graph: inout ReferenceGraph) {
        guard let size = descriptor.size else { return }
        graph.declaredSizes[descriptor.digest, default: []].append(
            DeclaredSize(size: size, manifest: manifest, repository: state.name))
    }
}
