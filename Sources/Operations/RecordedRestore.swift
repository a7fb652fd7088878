import Archive
import Foundation
import RegistryStore
import StateDatabase

/// A restore changes the target store, so it is recorded in the target's run history like
/// every other command that does.
public struct RecordedRestore: Sendable {
    public var target: String
    public var options: RestoreOptions
    public var arguments: String
    public var reporter: any ProgressReporter = SilentReporter()

    public init(target: String, options: RestoreOptions, arguments: String) {
        self.target = target
        self.options = options
        self.arguments = arguments
    }

    public func run(_ chain: ArchiveChain) async throws -> RestoreResult {
        let history = try StateStore.open(at: URL(fileURLWithPath: StoreLocation(root: target).stateDatabasePath))
        let run = try await history.beginRun(command: options.merge ? "restore --merge" : "restore", arguments: arguments)
        let result: RestoreResult
        do {
            var executor = RestoreExecutor(target: target, options: options)
            executor.reporter = reporter
            result = try executor.restore(chain)
        } catch {
            try? await history.finishRun(run, outcome: .failure, counts: [:], bytes: 0)
            throw error
        }
        try await history.finishRun(
            run, outcome: result.conflicts.isEmpty ? .success : .failure,
            counts: [
                "blobs": Int64(result.blobs), "links": Int64(result.links),
                "conflicts": Int64(result.conflicts.count), "skipped": Int64(result.skipped.count),
            ],
            bytes: result.blobBytes)
        return result
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
