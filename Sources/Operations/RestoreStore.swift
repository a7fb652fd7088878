import Archive
import Foundation
import RegistryStore
import StateDatabase

/// Why a restore did not complete, and what it left: the exit status and the sentence an
/// operator acts on follow from the case (`ExitStatus.swift`).
public enum RestoreFailure: Error, CustomStringConvertible {
    /// Refused (a bad archive, a broken chain, a non-empty target, a target inside a store):
    /// nothing was written.
    case refused(ArchiveError, target: String)
    /// Could not read the archives or write the staging area; the target is as it was.
    case failed(ArchiveError, target: String)
    /// The catalog could not name a chain (unreadable, no full backup); nothing was written.
    case noChain(ArchiveError)
    /// A merge stopped while placing files; its message says what it left and how to finish.
    case mergeInterrupted(ArchiveError)
    /// The run could not be recorded in the target's history (its state database).
    case history(any Error, target: String)
    /// A failure of the filesystem the executor met outside its own operations.
    case other(any Error, target: String)
    /// A bucket prefix that already holds a store: only an empty one is restored into.
    case bucketNotEmpty(bucket: String)
    /// An upload into a bucket failed part way.
    case upload(StorageError, bucket: String)

    public var description: String {
        switch self {
        case .refused(let error, let target), .failed(let error, let target):
            "\(error); \(target) was not changed"
        case .noChain(let error), .mergeInterrupted(let error):
            error.description
        case .other(let error, let target):
            "\(target): \((error as NSError).localizedDescription)"
        case .history(let error, let target):
            "cannot record the run in \(target)'s state database: \(error)"
        case .bucketNotEmpty(let bucket):
            "\(bucket) already holds \(Layout.registryRoot); restore only into an empty prefix"
        case .upload(let error, let bucket):
            "upload into \(bucket) failed: \(error); blobs may be there without links (gc collects them); restore again into an empty prefix"
        }
    }

    /// The failure an error met while restoring into `target` is: the executor's errors are
    /// `ArchiveError`s, but for the store it opens.
    init(_ error: any Error, target: String) {
        switch error {
        case let error as ArchiveError: self.init(error, target: target)
        case let error as StorageError: self = .failed(.storage(error), target: target)
        default: self = .other(error, target: target)
        }
    }

    /// The failure an `ArchiveError` met while restoring into `target` is.
    init(_ error: ArchiveError, target: String) {
        switch error {
        case .catalog, .noFullBackup: self = .noChain(error)
        case .mergeInterrupted: self = .mergeInterrupted(error)
        case .io, .storage, .stagingWrite: self = .failed(error, target: target)
        default: self = .refused(error, target: target)
        }
    }
}

/// `regkeeper restore` into a local root: the chain opened and checked before anything
/// exists, the restore (or its dry run), and the run recorded in the target's history. A
/// restore refused after the target was created removes what it created: "not changed" is
/// true of the filesystem too.
public struct RestoreStore: Sendable {
    public let target: String
    public var options: RestoreOptions
    /// The command line, for the run history.
    public var arguments: String
    public var reporter: any ProgressReporter = SilentReporter()
    private let created: CreatedPaths

    public init(target: String, options: RestoreOptions, arguments: String) {
        self.target = URL(fileURLWithPath: target).standardizedFileURL.path
        self.options = options
        self.arguments = arguments
        created = CreatedPaths(target: self.target, stateDirectory: StoreLocation(root: self.target).stateDirectory)
    }

    /// The archives to restore, checked as a chain against the target before it is created.
    public func openChain(files: [String], latestIn catalog: String?) async throws(RestoreFailure) -> ArchiveChain {
        do {
            return try await RestoreChain.open(files: files, latestIn: catalog, target: target, options: options)
        } catch {
            throw RestoreFailure(error, target: target)
        }
    }

    /// Creates the target directory, so that its lock can be taken (a dry run creates nothing).
    public func createTarget() throws(RestoreFailure) {
        var path = ""
        for component in target.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o755) != 0, errno != EEXIST { throw .failed(.io(path: path, operation: "mkdir", errno: .current), target: target) }
        }
    }

    /// Restores `chain`; the caller holds the target's lock (exclusive, or shared for a dry run).
    public func run(_ chain: ArchiveChain) async throws(RestoreFailure) -> RestoreResult {
        var executor = RestoreExecutor(target: target, options: options)
        executor.reporter = reporter
        // A dry run changes nothing, so it is no run of the target's history.
        guard !options.dryRun else {
            do {
                return try executor.restore(chain)
            } catch {
                throw RestoreFailure(error, target: target)
            }
        }
        let history: StateStore
        let run: RunID
        do {
            history = try StateStore.open(at: URL(fileURLWithPath: StoreLocation(root: target).stateDatabasePath))
            run = try await history.beginRun(command: options.merge ? "restore --merge" : "restore", arguments: arguments)
        } catch {
            created.removeIfUnchanged()
            throw .history(error, target: target)
        }
        let result: RestoreResult
        do {
            result = try executor.restore(chain)
        } catch {
            try? await history.finishRun(run, outcome: .failure, counts: [:], bytes: 0)
            let failure = RestoreFailure(error, target: target)
            if case .mergeInterrupted = failure {} else { created.removeIfUnchanged() }
            throw failure
        }
        do {
            try await history.finishRun(
                run, outcome: result.conflicts.isEmpty ? .success : .failure,
                counts: [
                    "blobs": Int64(result.blobs), "links": Int64(result.links),
                    "conflicts": Int64(result.conflicts.count), "skipped": Int64(result.skipped.count),
                ],
                bytes: result.blobBytes)
        } catch {
            throw .history(error, target: target)
        }
        return result
    }
}

/// `regkeeper restore` into a bucket (how a store migrates from disk to S3): the chain is
/// restored, every blob checked against its digest, into a staging directory under the local
/// state directory, then uploaded blobs first and tags last, each file keeping its time; the
/// staging directory is removed. Only into an empty bucket prefix.
public struct RestoreIntoBucket {
    public let bucket: any StoreStorage
    public let location: StoreLocation
    public var options: RestoreOptions
    public var reporter: any ProgressReporter = SilentReporter()
    /// Parallel uploads.
    public var jobs = 16

    public init(bucket: any StoreStorage, location: StoreLocation, options: RestoreOptions) {
        self.bucket = bucket
        self.location = location
        self.options = options
    }

    /// What was restored, and the objects and bytes uploaded (none for a dry run). The caller
    /// holds the bucket's lock.
    public func run(files: [String], latestIn catalog: String?) async throws(RestoreFailure) -> (RestoreResult, uploaded: StoreCopy.Totals) {
        let present: [DirectoryEntry]
        do throws(StorageError) {
            present = try bucket.list(Layout.registryRoot)
        } catch .notFound {
            present = []
        } catch {
            throw .failed(.storage(error), target: location.root)
        }
        if !present.isEmpty { throw .bucketNotEmpty(bucket: location.root) }
        let staging = location.stateDirectory + "/restore-staging-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let result: RestoreResult
        do {
            let chain = try await RestoreChain.open(files: files, latestIn: catalog, target: staging, options: options)
            var executor = RestoreExecutor(target: staging, options: options)
            executor.reporter = reporter
            result = try executor.restore(chain)
        } catch {
            throw RestoreFailure(error, target: location.root)
        }
        guard !options.dryRun else { return (result, StoreCopy.Totals()) }
        do {
            return (result, try StoreCopy.copy(from: LocalStorage(root: staging), to: bucket, jobs: jobs))
        } catch {
            throw .upload(error, bucket: location.root)
        }
    }
}

/// The target directory and state directory a restore is about to create, so that a restore
/// refused after the lock was taken removes them again: a refused restore leaves no trace.
private struct CreatedPaths: Sendable {
    let target: String
    let stateDirectory: String
    let targetExisted: Bool
    let stateExisted: Bool

    init(target: String, stateDirectory: String) {
        self.target = target
        self.stateDirectory = stateDirectory
        targetExisted = FileManager.default.fileExists(atPath: target)
        stateExisted = FileManager.default.fileExists(atPath: stateDirectory)
    }

    /// Removes the state directory if this run made it, then the target if this run made it
    /// and it is empty again (rmdir refuses otherwise).
    func removeIfUnchanged() {
        if !stateExisted { try? FileManager.default.removeItem(atPath: stateDirectory) }
        if !targetExisted { rmdir(target) }
    }
}
/// The archives a restore reads, checked as a chain (the right order, nothing missing, every
/// repository asked for present), and the target checked, before anything is written: the
/// files given, or the latest restorable chain a catalog records.
public enum RestoreChain {
    public static func open(
        files: [String], latestIn catalog: String?, target: String, options: RestoreOptions
    ) async throws(ArchiveError) -> ArchiveChain {
        try RestoreExecutor.checkTarget(target)
        var paths = files
        if let catalog {
            paths = try await BackupCatalog.openExisting(directory: catalog).latestRestorableChain().map(\.path)
        }
        var readers: [ArchiveReader] = []
        for path in paths { readers.append(try ArchiveReader(path: path)) }
        let chain = try ArchiveChain(readers)
        _ = try chain.neededBlobs(repositories: options.repositories)
        return chain
    }
}
