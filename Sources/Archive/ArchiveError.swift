import RegistryModel
import RegistryStore
import TarFormat

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
    /// The stream ends and its table of contents follows, but more bytes come after it: the
    /// archive may be whole, with something appended.
    case trailingData(archive: String, end: Int64, extra: Int64)
    /// A member the index (or the tar header) declares larger than a restore may write: the
    /// index's own size for a regkeeper archive, `--max-member-size` for a plain tar.
    case memberTooLarge(archive: String, member: String, size: UInt64, limit: UInt64, reason: String)
    /// A member under `docker/registry/v2` that is no blob, link or upload of the registry's layout.
    case outsideLayout(archive: String, member: String)
    case duplicateMember(archive: String, member: String)
    /// Writing a member into the staging area failed (ENOSPC, EIO, …).
    case stagingWrite(member: String, operation: String, errno: Errno)
    /// What the archives declare does not fit in the target's filesystem.
    case notEnoughSpace(target: String, needed: UInt64, available: UInt64)
    /// A merge failed after it began placing files: the target holds part of it.
    case mergeInterrupted(target: String, placed: Int, cause: String)
    case targetNotADirectory(path: String)
    /// A restore target inside another store's `docker/` tree would nest a store in it.
    case targetInsideStore(target: String, store: String)
    /// `--merge` could not read a directory or file of the target it must compare with: it
    /// refuses before placing anything rather than stop half-way.
    case targetUnreadable(path: String, errno: Errno)
    case outputInsideStore(output: String, store: String)
    case outputDirectoryMissing(path: String)
    /// Parts of the store could not be read (unreadable, symbolic links): an archive without
    /// them would be restored on the worst day as if it were the whole store.
    case incompleteStore([StoreFinding])
    /// `reindex` found files it could not read; the latest chain may be missing its newest.
    case unreadableInCatalog(catalog: String, files: [UnreadableArchive])

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
            "\(archive): member \(member.escapedForTerminal) holds content with digest \(actual), not \(expected)"
        case .memberMismatch(let archive, let member, let reason): "\(archive): member \(member.escapedForTerminal): \(reason.escapedForTerminal)"
        case .indexMismatch(let archive, let reason): "\(archive): index does not match the archive: \(reason.escapedForTerminal)"
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
        case .trailingData(let archive, let end, let extra):
            "\(archive): \(extra) byte(s) of unexpected data after the archive's end at offset \(end) (appended to it?); "
                + "the archive before them may be whole: check a copy cut with `truncate -s \(end)`"
        case .memberTooLarge(let archive, let member, let size, let limit, let reason):
            "\(archive): member \(member.escapedForTerminal) declares \(size) bytes, more than \(limit) (\(reason))"
        case .outsideLayout(let archive, let member):
            "\(archive): member \(member.escapedForTerminal) is not part of a registry store's layout (no blob, link or upload)"
        case .duplicateMember(let archive, let member):
            "\(archive): duplicate member \(member.escapedForTerminal)"
        case .stagingWrite(let member, let operation, let errno):
            "writing member \(member.escapedForTerminal) failed (\(operation)): \(errno)"
        case .notEnoughSpace(let target, let needed, let available):
            "the archives hold \(needed) bytes to restore, but \(target)'s filesystem has \(available) bytes free"
        case .mergeInterrupted(let target, let placed, let cause):
            "the merge into \(target) stopped after \(placed) rename(s) of files or whole directories: \(cause); the target holds what was placed "
                + "(blobs before the links naming them); run the same restore --merge again to complete it"
        case .targetNotADirectory(let path): "\(path) exists and is not a directory"
        case .targetUnreadable(let path, let errno):
            "\(path): cannot be read (\(errno)); a merge compares every file the target holds with the archive's"
        case .targetInsideStore(let target, let store):
            "\(target) is inside the store at \(store); restore into a store's root (the registry's rootdirectory), not into its tree"
        case .outputInsideStore(let output, let store):
            "\(output) is inside the registry tree of the store being backed up (\(store)); write archives elsewhere, ideally on another disk"
        case .outputDirectoryMissing(let path): "the output directory \(path) does not exist"
        case .incompleteStore(let findings):
            (["refusing to back up: \(findings.count) path(s) of the store cannot be read, and an archive without them would restore as if it were the whole store:"]
                + findings.map { "  \($0)" }
                + ["make them readable by the user running backup, and replace symbolic links with what they point to; no archive was written"])
                .joined(separator: "\n")
        case .unreadableInCatalog(let catalog, let files):
            "the backup catalog \(catalog) lists \(files.count) unreadable archive(s), which may be the newest backup; "
                + "--latest restores none. Unreadable: " + files.map(\.description).joined(separator: "; ")
                + ". Name the archives to restore, or move the damaged ones away and run `backup reindex` again"
        }
    }
}
