import RegistryModel
import RegistryStore

/// Why an archive could not be written, read, verified or restored. Every case names the
/// archive file and, where there is one, the member and digest.
public enum ArchiveError: Error, Sendable, CustomStringConvertible {
    /// Opening, reading or writing a file outside the store failed.
    case io(path: String, operation: String, errno: Errno)
    case storage(StorageError)
    /// The zstd or tar layer refused the stream (truncation, corrupt frame, `..`, links, …).
    case damaged(archive: String, reason: String)
    /// Neither a regkeeper archive nor a zstd-compressed tar.
    case notAnArchive(archive: String, reason: String)
    /// The metadata says regkeeper wrote it, but the index at the end is missing: cut short.
    case truncated(archive: String, reason: String)
    case unsupportedVersion(archive: String, found: Int)
    case blobDigestMismatch(archive: String, member: String, expected: Digest, actual: Digest)
    case memberMismatch(archive: String, member: String, reason: String)
    case indexMismatch(archive: String, reason: String)
    /// An incremental archive was given without the one it builds on.
    case missingArchive(id: ArchiveID, file: String?, neededBy: String)
    case chainOutOfOrder(archive: String, expectedParent: ArchiveID?, found: String)
    case notAChainStart(archive: String, id: ArchiveID)
    /// A blob the snapshot needs is in none of the archives given.
    case missingBlob(digest: Digest, archive: ArchiveID)
    case targetNotEmpty(path: String)
    case outputExists(path: String)
    case noFullBackup(catalog: String)
    case catalog(path: String, reason: String)
    case unknownRepository(RepositoryName)
    case plainArchiveInChain(archive: String)

    public var description: String {
        switch self {
        case .io(let path, let operation, let errno): "\(path): \(operation) failed: \(errno)"
        case .storage(let error): error.description
        case .damaged(let archive, let reason): "\(archive): damaged archive: \(reason)"
        case .notAnArchive(let archive, let reason): "\(archive): not a backup archive (\(reason))"
        case .truncated(let archive, let reason): "\(archive): truncated archive: \(reason)"
        case .unsupportedVersion(let archive, let found):
            "\(archive): archive format version \(found); this regkeeper reads up to \(ArchiveFormat.version)"
        case .blobDigestMismatch(let archive, let member, let expected, let actual):
            "\(archive): member \(member) holds content with digest \(actual), not \(expected)"
        case .memberMismatch(let archive, let member, let reason): "\(archive): member \(member): \(reason)"
        case .indexMismatch(let archive, let reason): "\(archive): index does not match the archive: \(reason)"
        case .missingArchive(let id, let file, let neededBy):
            "missing archive \(id)\(file.map { " (\($0))" } ?? ""), which \(neededBy) builds on"
        case .chainOutOfOrder(let archive, let expectedParent, let found):
            "\(archive) does not follow \(found) in the chain" + (expectedParent.map { " (it builds on \($0))" } ?? "")
        case .notAChainStart(let archive, let id):
            "\(archive) (\(id)) is incremental; the chain must start with its full archive"
        case .missingBlob(let digest, let archive): "blob \(digest) should be in archive \(archive), which does not carry it"
        case .targetNotEmpty(let path): "\(path) already holds a store; restore into an empty directory or pass --merge"
        case .outputExists(let path): "\(path) already exists; refusing to overwrite an archive"
        case .noFullBackup(let catalog): "the catalog \(catalog) records no archive to build on; take a full backup first"
        case .catalog(let path, let reason): "backup catalog \(path): \(reason)"
        case .unknownRepository(let name): "repository \(name) is not in the archive"
        case .plainArchiveInChain(let archive):
            "\(archive) is a plain tar archive (no regkeeper index); it can only be restored on its own"
        }
    }
}
