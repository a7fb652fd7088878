import Foundation
import RegistryModel

/// Reads the layout: repositories and their links, blobs, uploads. Damage is collected as
/// findings and the walk goes on, because one bad link must not stop a whole run; a finding
/// that `hidesContent` tells every caller that decides what is unused to refuse.
public struct StoreScanner: Sendable {
    public let storage: any StoreStorage

    public init(storage: any StoreStorage) { self.storage = storage }

    /// Link files are a digest, at most `sha512:` + 128 hex; anything longer is garbage.
    static let linkSizeLimit = 4096

    // MARK: Listing

    /// A directory's entries; an absent directory has none, and any other failure is a finding
    /// (a refused symbolic link named as one), so that no caller can mistake it for empty.
    public func listing(_ directory: StorePath, _ findings: inout [StoreFinding]) -> [DirectoryEntry] {
        listing(directory, &findings) { () throws(StorageError) in try storage.list(directory) }
    }

    /// What `list` gives for `directory` (a plain, probing or reading listing), with the same
    /// rule: absent is empty, any other failure a finding.
    private func listing<Entry>(
        _ directory: StorePath, _ findings: inout [StoreFinding], _ list: () throws(StorageError) -> [Entry]
    ) -> [Entry] {
        do {
            return try list()
        } catch .notFound {
            return []
        } catch {
            findings.append(finding(reading: directory, error))
            return []
        }
    }

    /// `error` from reading `path` as a finding. A refused symbolic link is traced to the
    /// component that is one, so that the message names what the operator must replace.
    public func finding(reading path: StorePath, _ error: StorageError) -> StoreFinding {
        guard case .symlinkRefused = error else { return .unreadable(path: path, reason: error.description) }
        var prefix = StorePath.root
        for component in path.components {
            prefix = prefix.appending(trusted: component)
            if (try? storage.status(prefix))??.kind == .symlink { return .symlink(path: prefix) }
        }
        return .symlink(path: path)
    }

    /// An entry that should be a directory: a symbolic link or anything else is a finding.
    private func expectDirectory(_ entry: DirectoryEntry, at path: StorePath, otherwise reason: String, _ findings: inout [StoreFinding]) -> Bool {
        switch entry.kind {
        case .directory: return true
        case .symlink: findings.append(.symlink(path: path))
        default: findings.append(.stray(path: path, reason: reason))
        }
        return false
    }

    // MARK: Repositories

    /// Every repository: a directory under `repositories/` holding `_manifests`, `_layers` or
    /// `_uploads`. Names nest, so the walk continues below a repository too.
    public func repositories() -> (names: [RepositoryName], findings: [StoreFinding]) {
        var names: [RepositoryName] = []
        var findings: [StoreFinding] = []
        var pending = [Layout.repositoriesRoot]
        while let directory = pending.popLast() {
            var isRepository = false
            for entry in listing(directory, &findings) {
                guard let child = directory.appending(entry.name) else { continue }
                if entry.name.hasPrefix("_") {
                    if [Layout.manifestsDirectoryName, Layout.layersDirectoryName, Layout.uploadsDirectoryName].contains(entry.name) {
                        // A symbolic link here is reported by the repository's own scan.
                        isRepository = true
                    }
                    continue
                }
                guard expectDirectory(entry, at: child, otherwise: "file where repositories hold directories", &findings) else { continue }
                if RepositoryName.isValidComponent(entry.name) {
                    pending.append(child)
                } else {
                    findings.append(.stray(path: child, reason: "not a valid repository name component"))
                }
            }
            if isRepository, let name = Layout.repositoryName(at: directory) { names.append(name) }
        }
        return (names.sorted(), findings)
    }

    /// How much of a repository to read.
    public enum Depth: Sendable {
        /// Every link file's content: what verify and backup need to report damaged links.
        case complete
        /// What marking needs, at a fraction of the system calls: sha256 revision links are
        /// stat'ed (their directory names the digest), tag histories are listed, sha256
        /// `_layers` are skipped; only tags' current links and links of other algorithms
        /// (which may name another blob) are read.
        case marking
    }

    /// Reads one repository's revisions, tags, layer links and uploads.
    public func scanRepository(_ name: RepositoryName, depth: Depth = .complete) -> (state: RepositoryState, findings: [StoreFinding]) {
        var state = RepositoryState(name: name)
        var findings: [StoreFinding] = []
        for algorithm in Digest.Algorithm.allCases {
            let revisions = Layout.revisionsDirectory(name, algorithm)
            // A layer pushed as sha512 is stored under its sha256 and linked as
            // `_layers/sha512/<hex>/link` holding `sha256:…`: such links are always read.
            switch algorithm == .sha256 ? depth : .complete {
            case .complete:
                for (digest, link) in digestLinks(revisions, algorithm, &findings) {
                    if let link { state.revisions[digest] = link } else { state.deletedRevisions.insert(digest) }
                }
                for (digest, link) in digestLinks(Layout.layersDirectory(name, algorithm), algorithm, &findings) {
                    if let link { state.layers[digest] = link }
                }
            case .marking:
                for (digest, probe) in probedDigestDirectories(revisions, algorithm, &findings) {
                    if let probe {
                        state.revisions[digest] = probe
                    } else {
                        state.deletedRevisions.insert(digest)
                    }
                }
            }
        }
        state.tags = tags(of: name, depth: depth, &findings)
        state.uploads = uploads(of: name, &findings)
        // A link above several listings (`_manifests`) is met once per listing: say it once.
        var seen: Set<StoreFinding> = []
        return (state, findings.filter { seen.insert($0).inserted })
    }

    /// Digest directories of `<alg>/` with their link's status; a link that cannot be
    /// stat'ed is reported and counted as present (fail closed), a missing one maps to nil.
    private func probedDigestDirectories(
        _ directory: StorePath, _ algorithm: Digest.Algorithm, _ findings: inout [StoreFinding]
    ) -> [(Digest, Link?)] {
        let entries = listing(directory, &findings) { () throws(StorageError) in try storage.list(directory, probing: Layout.linkFileName) }
        return entries.compactMap { probed in
            guard let path = directory.appending(probed.entry.name),
                  expectDirectory(probed.entry, at: path, otherwise: "not a digest directory", &findings) else { return nil }
            guard let digest = Digest(algorithm: algorithm, hex: probed.entry.name) else {
                findings.append(.stray(path: path, reason: "not a digest directory"))
                return nil
            }
            if let failure = probed.probeFailure {
                findings.append(finding(reading: path.appending(trusted: Layout.linkFileName), failure))
                return (digest, Link(target: digest, modified: .distantFuture, recovered: true))
            }
            return (digest, probed.probe.map { Link(target: digest, modified: $0.modified) })
        }
    }

    /// Digest directory names under `<alg>/`, without reading their links; a listing that
    /// fails and an entry that is a symbolic link are findings.
    public func digestDirectories(_ directory: StorePath, _ algorithm: Digest.Algorithm, _ findings: inout [StoreFinding]) -> [Digest] {
        listing(directory, &findings).compactMap { entry in
            guard let path = directory.appending(entry.name) else { return nil }
            if entry.kind == .symlink {
                findings.append(.symlink(path: path))
                return nil
            }
            return entry.kind == .directory ? Digest(algorithm: algorithm, hex: entry.name) : nil
        }
    }

    /// Reads a `<alg>/<hex>/link` tree; a directory with no link maps to nil.
    private func digestLinks(
        _ directory: StorePath, _ algorithm: Digest.Algorithm, _ findings: inout [StoreFinding]
    ) -> [(Digest, Link?)] {
        // Each link is read from the listed directory; one that could not be is looked at
        // again by its path, which tells absent, symbolic link and unreadable apart.
        let entries = listing(directory, &findings) { () throws(StorageError) in
            try storage.list(directory, reading: Layout.linkFileName, limit: Self.linkSizeLimit)
        }
        var links: [(Digest, Link?)] = []
        links.reserveCapacity(entries.count)
        for read in entries {
            let entry = read.entry
            guard let path = directory.appending(entry.name),
                  expectDirectory(entry, at: path, otherwise: "not a digest directory", &findings) else { continue }
            guard let digest = Digest(algorithm: algorithm, hex: entry.name) else {
                findings.append(.stray(path: path, reason: "not a digest directory"))
                continue
            }
            links.append((digest, readLink(path.appending(trusted: Layout.linkFileName), recovering: digest, read: read.file, &findings)))
        }
        return links
    }

    /// Reads a link file. Nil when there is none; a damaged one is reported and, when its path
    /// names a digest, recovered from that. `read`: its content and status when already read.
    public func readLink(
        _ path: StorePath, recovering fallback: Digest?, read: (data: Data, status: FileStatus)? = nil, _ findings: inout [StoreFinding]
    ) -> Link? {
        let status: FileStatus
        let data: Data
        // A plain file is read with its status in one go (one GET on S3 instead of a HEAD and
        // a GET); anything else (absent, a link, unreadable) is told apart after a stat.
        if let (bytes, found) = read ?? (try? storage.readWithStatus(path, limit: Self.linkSizeLimit)) {
            (data, status) = (bytes, found)
        } else {
            do {
                guard let found = try storage.status(path) else { return nil }
                guard found.kind == .file else {
                    switch found.kind {
                    case .symlink: findings.append(.symlink(path: path))
                    // What the registry would read there is unknown (it would wait on a FIFO):
                    // content hidden, so gc refuses rather than take the link for absent.
                    case .other: findings.append(.unreadable(path: path, reason: "not a regular file (a FIFO, socket or device); not read"))
                    default: findings.append(.stray(path: path, reason: "link is not a file"))
                    }
                    return fallback.map { Link(target: $0, modified: found.modified, recovered: true) }
                }
                status = found
                data = try storage.read(path, limit: Self.linkSizeLimit)
            } catch {
                findings.append(finding(reading: path, error))
                return fallback.map { Link(target: $0, modified: .distantFuture, recovered: true) }
            }
        }
        let parsed: Digest? = data.withUnsafeBytes { Digest(utf8: $0.bindMemory(to: UInt8.self)) }
        if let parsed { return Link(target: parsed, modified: status.modified) }
        findings.append(.badLink(path: path, content: String(decoding: data, as: UTF8.self), recovered: fallback))
        return fallback.map { Link(target: $0, modified: status.modified, recovered: true) }
    }

    private func tags(of name: RepositoryName, depth: Depth, _ findings: inout [StoreFinding]) -> [Tag: TagState] {
        let directory = Layout.tagsDirectory(name)
        var tags: [Tag: TagState] = [:]
        for entry in listing(directory, &findings) {
            guard let path = directory.appending(entry.name),
                  expectDirectory(entry, at: path, otherwise: "not a tag directory", &findings) else { continue }
            guard let tag = Tag(entry.name) else {
                findings.append(.stray(path: path, reason: "not a tag directory"))
                continue
            }
            let current = readLink(Layout.tagCurrentLink(name, tag), recovering: nil, &findings)
            var history: Set<Digest>?
            if depth == .complete || current == nil {
                var listed: Set<Digest> = []
                for algorithm in Digest.Algorithm.allCases {
                    let index = Layout.tagIndexDirectory(name, tag, algorithm)
                    switch depth {
                    case .complete:
                        for (digest, link) in digestLinks(index, algorithm, &findings) { listed.insert(link?.target ?? digest) }
                    case .marking:
                        listed.formUnion(digestDirectories(index, algorithm, &findings))
                    }
                }
                history = listed
            }
            tags[tag] = TagState(current: current?.target, modified: current?.modified, history: history)
        }
        return tags
    }

    private func uploads(of name: RepositoryName, _ findings: inout [StoreFinding]) -> [Upload] {
        var uploads: [Upload] = []
        for entry in listing(Layout.uploadsDirectory(name), &findings) where entry.kind == .directory {
            guard let path = Layout.uploadDirectory(name, uuid: entry.name),
                  let startedAtPath = Layout.uploadStartedAt(name, uuid: entry.name) else { continue }
            let directoryStatus = try? storage.status(path)
            var startedAt = directoryStatus?.modified ?? .distantFuture
            if let text = try? storage.read(startedAtPath, limit: 256),
               let parsed = Self.parseRFC3339(String(decoding: text, as: UTF8.self)) {
                startedAt = parsed
            }
            let bytes = (try? storage.status(path.appending(trusted: "data")))??.size ?? 0
            uploads.append(Upload(uuid: entry.name, startedAt: startedAt, bytes: bytes))
        }
        return uploads
    }

    static func parseRFC3339(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: trimmed) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        // Go writes up to nine fractional digits, more than Foundation parses: drop them.
        if let dot = trimmed.firstIndex(of: "."),
           let zone = trimmed[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
            return formatter.date(from: String(trimmed[..<dot]) + String(trimmed[zone...]))
        }
        return formatter.date(from: trimmed)
    }
}
