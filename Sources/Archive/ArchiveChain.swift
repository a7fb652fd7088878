import RegistryModel

/// Archives given in order, checked to form one chain: a full archive, then incrementals each
/// building on the one before it.
public struct ArchiveChain {
    public let readers: [ArchiveReader]

    /// A plain tar archive (no index) stands alone; regkeeper archives must chain.
    public var isPlain: Bool { readers.count == 1 && readers[0].index == nil }

    public var last: ArchiveReader { readers[readers.count - 1] }

    public init(_ readers: [ArchiveReader]) throws(ArchiveError) {
        precondition(!readers.isEmpty, "a chain needs at least one archive")
        self.readers = readers
        if readers.count == 1, readers[0].index == nil { return }
        if let plain = readers.first(where: { $0.index == nil }) { throw .plainArchiveInChain(archive: plain.path) }
        let metadata = readers.map { $0.index!.metadata }
        let ids = metadata.map(\.id)
        if metadata[0].kind != .full {
            let root = metadata[0].chain.first
            if let root, ids.contains(root.id) {
                throw .chainOutOfOrder(archive: readers[0].path, expectedParent: metadata[0].parent, found: "the start")
            }
            throw .missingArchive(id: root?.id ?? metadata[0].parent ?? metadata[0].id, file: root?.file, neededBy: readers[0].path)
        }
        for position in 1..<readers.count {
            let current = metadata[position]
            guard let parent = current.parent, current.kind == .incremental else {
                throw .chainOutOfOrder(archive: readers[position].path, expectedParent: nil, found: readers[position - 1].path)
            }
            if parent == ids[position - 1] { continue }
            if ids.contains(parent) {
                throw .chainOutOfOrder(archive: readers[position].path, expectedParent: parent, found: readers[position - 1].path)
            }
            throw .missingArchive(id: parent, file: current.chain.last(where: { $0.id == parent })?.file, neededBy: readers[position].path)
        }
        let last = metadata[metadata.count - 1]
        if last.chain.map(\.id) != Array(ids.dropLast()) {
            let missing = last.chain.first { !ids.contains($0.id) }
            throw .missingArchive(id: missing?.id ?? last.id, file: missing?.file, neededBy: readers[readers.count - 1].path)
        }
    }

    /// The blobs to restore (all, or those the named repositories need), each with the archive
    /// that carries it; refuses a chain whose archives do not carry what the last one expects.
    public func neededBlobs(repositories: Set<RepositoryName>?) throws(ArchiveError) -> [Digest: ArchiveID] {
        guard let index = last.index else { return [:] }
        if let repositories {
            let known = Set(index.repositories.map(\.name))
            if let unknown = repositories.sorted().first(where: { !known.contains($0) }) { throw .unknownRepository(unknown) }
        }
        var carried: [ArchiveID: Set<Digest>] = [:]
        for reader in readers {
            carried[reader.index!.metadata.id] = Set(reader.index!.carriedBlobs.map(\.digest))
        }
        var needed: [Digest: ArchiveID] = [:]
        for blob in index.blobsNeeded(by: repositories) {
            guard carried[blob.archive]?.contains(blob.digest) == true else { throw .missingBlob(digest: blob.digest, archive: blob.archive) }
            needed[blob.digest] = blob.archive
        }
        return needed
    }
}
