import Foundation
import RegistryModel
import RegistryStore

/// Reads the snapshot a backup holds, in the order that makes it consistent with a running
/// registry: every repository's tags first, then revision links, then `_layers` links.
///
/// The registry writes blobs and `_layers` links, then the manifest blob, then its revision
/// link, then the tag, so each later read finds everything an earlier one points to: a push
/// racing the backup is either whole in the snapshot or not in it. Blobs are immutable and
/// gc is held off by the shared lock, so what the links name stays readable.
public struct BackupPlanner: Sendable {
    public let storage: any StoreStorage
    public var includeGarbage = false
    public var jobs = 2

    public init(storage: any StoreStorage) { self.storage = storage }

    private struct RepositoryLinks: Sendable {
        var name: RepositoryName
        var tagCurrent: [(Tag, Link)] = []
        var tagHistory: [(Tag, Link, Digest)] = []
        /// Tags whose current link is unreadable: their history is kept whole (fail closed).
        var unreadableTags: [Tag] = []
        var revisions: [Digest: Link] = [:]
        var layers: [Digest: Link] = [:]
        var findings: [StoreFinding] = []
    }

    /// - Parameter archived: blobs earlier archives of `chain` carry, for an incremental backup.
    public func plan(chain: [ChainLink] = [], archived: [Digest: ArchiveID] = [:], at date: Date = Date()) async throws -> BackupPlan {
        let scanner = StoreScanner(storage: storage)
        let (names, repositoryFindings) = scanner.repositories()
        var findings = repositoryFindings.map(BackupFinding.store)

        var repositories = try await boundedMap(names, jobs: jobs) { name in Self.readTags(scanner, name) }
        repositories = try await boundedMap(repositories, jobs: jobs) { state in Self.readLinks(scanner, state, .revision) }
        let loader = ManifestLoader(storage: storage)
        var needed: [RepositoryName: Set<Digest>] = [:]
        var allNeeded = Set<Digest>()
        let walks = try await boundedMap(repositories, jobs: jobs) { repository in Self.walk(repository, loader) }
        for (repository, (blobs, walkFindings)) in zip(repositories, walks) {
            needed[repository.name] = blobs
            allNeeded.formUnion(blobs)
            findings += walkFindings
        }
        repositories = try await boundedMap(repositories, jobs: jobs) { state in Self.readLinks(scanner, state, .layer) }

        let storage = storage
        let statuses = try await boundedMap(allNeeded.sorted(), jobs: jobs) { digest in
            (digest, Result { () throws(StorageError) in try storage.status(Layout.blobData(digest)) })
        }
        var blobs: [BackupPlan.BlobFile] = []
        var present = Set<Digest>()
        for (digest, status) in statuses {
            switch status {
            case .success(let status?) where status.kind == .file:
                blobs.append(.init(digest: digest, size: status.size, modified: status.modified))
                present.insert(digest)
            case .success:
                findings.append(.missingBlob(digest, referencedBy: Self.referrers(of: digest, needed)))
            case .failure(let error):
                findings.append(.unreadableBlob(digest, reason: error.description))
            }
        }

        for repository in repositories { findings += repository.findings.map(BackupFinding.store) }
        // Grouped by kind across repositories, in the order a restore places them, into one list
        // made at its size; each repository's `_layers` links are dropped as they become files,
        // so that a million of them are not held twice over.
        var links: [BackupPlan.LinkFile] = []
        links.reserveCapacity(repositories.reduce(0) { $0 + $1.layers.count + $1.revisions.count + $1.tagHistory.count + $1.tagCurrent.count })
        for index in repositories.indices {
            let repository = repositories[index]
            repositories[index].layers = [:]
            for (digest, link) in repository.layers.sorted(by: { $0.key < $1.key })
            where includeGarbage || present.contains(link.target) {
                links.append(.init(path: Layout.layerLink(repository.name, digest), target: link.target, modified: link.modified))
            }
        }
        for repository in repositories {
            for (digest, link) in repository.revisions.sorted(by: { $0.key < $1.key }) {
                links.append(.init(path: Layout.revisionLink(repository.name, digest), target: link.target, modified: link.modified))
            }
        }
        for repository in repositories {
            for (tag, link, digest) in repository.tagHistory {
                links.append(.init(path: Layout.tagIndexLink(repository.name, tag, digest), target: link.target, modified: link.modified))
            }
        }
        for repository in repositories {
            for (tag, link) in repository.tagCurrent {
                links.append(.init(path: Layout.tagCurrentLink(repository.name, tag), target: link.target, modified: link.modified))
            }
        }

        var garbage: [BackupPlan.BlobFile] = []
        var extraFiles: [StorePath] = []
        if includeGarbage {
            (garbage, extraFiles) = try await self.garbage(excluding: present, names: names, &findings)
        }
        return BackupPlan(
            createdAt: date, links: links, blobs: blobs,
            inherited: archived.filter { present.contains($0.key) },
            repositories: needed.mapValues { $0.intersection(present) },
            extraFiles: extraFiles, garbageBlobs: garbage, chain: chain, findings: findings)
    }

    private static func readTags(_ scanner: StoreScanner, _ name: RepositoryName) -> RepositoryLinks {
        var state = RepositoryLinks(name: name)
        let directory = Layout.tagsDirectory(name)
        for entry in scanner.listing(directory, &state.findings).sorted(by: { $0.name < $1.name }) {
            guard entry.kind == .directory, let tag = Tag(entry.name) else {
                let path = directory.appending(entry.name) ?? directory
                state.findings.append(entry.kind == .symlink ? .symlink(path: path) : .stray(path: path, reason: "not a tag directory"))
                continue
            }
            // Only a link whose file holds a digest is carried: a guess from the path would
            // move a tag on restore, so a garbled current link is reported and left out.
            if let current = scanner.readLink(Layout.tagCurrentLink(name, tag), recovering: nil, &state.findings) {
                state.tagCurrent.append((tag, current))
            } else {
                state.unreadableTags.append(tag)
            }
            for algorithm in Digest.Algorithm.allCases {
                let index = Layout.tagIndexDirectory(name, tag, algorithm)
                for digest in scanner.digestDirectories(index, algorithm, &state.findings).sorted() {
                    if let link = scanner.readLink(Layout.tagIndexLink(name, tag, digest), recovering: digest, &state.findings) {
                        state.tagHistory.append((tag, link, digest))
                    }
                }
            }
        }
        return state
    }

    private enum LinkDirectory { case revision, layer }

    private static func readLinks(_ scanner: StoreScanner, _ state: RepositoryLinks, _ kind: LinkDirectory) -> RepositoryLinks {
        var state = state
        for algorithm in Digest.Algorithm.allCases {
            let directory = kind == .revision ? Layout.revisionsDirectory(state.name, algorithm) : Layout.layersDirectory(state.name, algorithm)
            for digest in scanner.digestDirectories(directory, algorithm, &state.findings) {
                let path = kind == .revision ? Layout.revisionLink(state.name, digest) : Layout.layerLink(state.name, digest)
                // A damaged revision or `_layers` link is recovered from its directory name.
                guard var link = scanner.readLink(path, recovering: digest, &state.findings) else { continue }
                if link.modified == .distantFuture { link.modified = Date() }
                if kind == .revision { state.revisions[digest] = link } else { state.layers[digest] = link }
            }
        }
        return state
    }

    /// The blobs a repository needs: every revision and tagged manifest, the manifests they
    /// group, and their configs and layers. Walked per repository, like gc's mark, so a
    /// manifest walked elsewhere cannot hide this repository's children.
    private static func walk(_ state: RepositoryLinks, _ loader: ManifestLoader) -> (Set<Digest>, [BackupFinding]) {
        var roots = state.revisions.values.map(\.target) + state.tagCurrent.map(\.1.target)
        let unreadable = Set(state.unreadableTags)
        roots += state.tagHistory.filter { unreadable.contains($0.0) }.map(\.1.target)
        var needed = Set<Digest>()
        var walked = Set<Digest>()
        var findings: [BackupFinding] = []
        var stack = roots
        while let digest = stack.popLast() {
            guard walked.insert(digest).inserted else { continue }
            needed.insert(digest)
            switch loader.load(digest) {
            case .success(let manifest):
                needed.formUnion(manifest.blobReferences.map(\.digest))
                stack += manifest.children.map(\.digest)
            case .failure(.missing):
                break  // reported once, by the status pass
            case .failure(let error):
                findings.append(.unparsableManifest(digest, reason: "\(error) in \(state.name)"))
            }
        }
        return (needed, findings)
    }

    private static func referrers(of digest: Digest, _ needed: [RepositoryName: Set<Digest>]) -> String {
        let names = needed.filter { $0.value.contains(digest) }.keys.sorted().map(\.value)
        return names.isEmpty ? "a link" : names.joined(separator: ", ")
    }

    /// Every other blob and every upload file, for `--include-garbage`.
    private func garbage(excluding present: Set<Digest>, names: [RepositoryName], _ findings: inout [BackupFinding])
        async throws -> ([BackupPlan.BlobFile], [StorePath]) {
        let scanner = StoreScanner(storage: storage)
        let (all, blobFindings) = try await scanner.blobs(jobs: jobs)
        findings += blobFindings.map(BackupFinding.store)
        var garbage: [BackupPlan.BlobFile] = []
        for blob in all where blob.hasData && !present.contains(blob.digest) {
            if let status = try storage.status(Layout.blobData(blob.digest)), status.kind == .file {
                garbage.append(.init(digest: blob.digest, size: status.size, modified: status.modified))
            }
        }
        var files: [StorePath] = []
        for name in names {
            var pending = [Layout.uploadsDirectory(name)]
            while let directory = pending.popLast() {
                let entries: [DirectoryEntry]
                do {
                    entries = try storage.list(directory)
                } catch {
                    if error.isNotFound { continue }
                    throw error
                }
                for entry in entries {
                    guard let path = directory.appending(entry.name) else { continue }
                    switch entry.kind {
                    case .directory: pending.append(path)
                    case .file: files.append(path)
                    default: findings.append(.store(.stray(path: path, reason: "not a file or directory")))
                    }
                }
            }
        }
        return (garbage.sorted { $0.digest < $1.digest }, files.sorted())
    }
}
