import Archive
import ArgumentParser
import Foundation
import Logging
import StateDatabase
import Operations
import RegistryModel
import RegistryStore
import TarFormat

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a store from a full archive and its incrementals.",
        discussion: """
            Give the full archive, then its incrementals in order, or --catalog DIR --latest to \
            take the latest chain the catalog records. A plain `tar --zstd -cf` archive of a \
            store is accepted on its own. Members are streamed into \
            <root>/.regkeeper-restore-…, each blob checked against its digest and each member \
            against the archive's index as it is written, with link mtimes kept (retention ages \
            survive); then the tree is renamed into place. --dry-run reads and checks every \
            member the same way, writes nothing, and tells what would be restored and, with \
            --merge, which of the target's differing files would be kept. A refused archive (truncated, corrupt, \
            a flipped byte, '..', absolute paths, links, a broken chain) leaves the target as it \
            was, and a refused restore creates nothing (no target directory, no state \
            database). A restore writes no more than the index declares (its sum must fit in \
            the free space; a member the index lists with another size is refused before it \
            is written); a plain tar's members are capped by --max-member-size; members under \
            docker/ outside the registry layout are refused. --latest refuses while the \
            catalog records unreadable archives. A non-empty target is refused unless --merge, which adds what is missing (blobs, \
            then _layers, revisions, tags) and never replaces a file; a merge cut short leaves \
            whole files and no link to an absent blob, and running it again completes it. \
            Stop the registry first, or restart it afterwards.

            EXIT STATUS: 0 success; 1 could not run; 2 another run holds the target's lock; 3 \
            refused (bad archive, broken chain, non-empty target), nothing changed; 4 restored, \
            but --merge kept differing files of the target or some blobs were corrupt when \
            archived.
            """
    )

    @Argument(help: ArgumentHelp("Archives: the full one first, then its incrementals.", valueName: "file"))
    var files: [String] = []

    @Option(name: .long, help: ArgumentHelp("The store root to restore into, or s3://BUCKET/PREFIX (an empty bucket prefix).", valueName: "dir"))
    var root: String

    @Option(name: .customLong("s3-endpoint"), help: ArgumentHelp("S3 endpoint for an s3:// root (default: AWS_ENDPOINT_URL, else AWS).", valueName: "url"))
    var s3Endpoint: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("For an s3:// root: where the lock and the staging area live (default: /var/lib/regkeeper/<bucket>).", valueName: "dir"))
    var stateDirectory: String?

    @Flag(name: .long, help: "Add what is missing to a non-empty store; never overwrite.")
    var merge = false

    @Option(name: .customLong("repository"), help: ArgumentHelp("Restore only this repository and the blobs it needs (repeatable).", valueName: "name"))
    var repositories: [String] = []

    @Option(name: .long, help: ArgumentHelp("Backup catalog directory, with --latest.", valueName: "dir"))
    var catalog: String?

    @Flag(name: .long, help: "Restore the latest chain recorded in --catalog.")
    var latest = false

    @Option(name: .long, parsing: .unconditional, help: .span("Wait this long for another run's lock (e.g. 10m).", default: .zero), transform: TimeSpan.init(parsing:))
    var wait = TimeSpan.zero

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @Flag(name: .long, help: "Print nothing but errors.")
    var quiet = false

    @Flag(name: .long, help: "Read and check the archives as a restore does and tell what it would restore (and, with --merge, keep); write nothing.")
    var dryRun = false

    @Option(name: .customLong("log-level"), help: ArgumentHelp("Log to standard error from this level up: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: Logger.Level = .warning

    @Option(name: .customLong("max-member-size"), parsing: .unconditional, help: .size("The largest member a plain tar archive may hold (default 4GiB); a regkeeper archive's index bounds its own."), transform: ByteCount.init(parsing:))
    var maxMemberSize: ByteCount?

    func validate() throws {
        if latest != files.isEmpty { throw ValidationError("give archives, or --catalog DIR --latest") }
        if latest, catalog == nil { throw ValidationError("--latest needs --catalog DIR") }
        if let maxMemberSize, maxMemberSize.bytes == 0 { throw ValidationError("--max-member-size: give a positive size such as 8GiB, not 0") }
        if let bad = repositories.first(where: { RepositoryName($0) == nil }) { throw ValidationError("'\(bad)' is not a repository name") }
    }

    func run() async throws {
        var options = RestoreOptions(merge: merge, dryRun: dryRun)
        if !repositories.isEmpty { options.repositories = Set(repositories.compactMap { RepositoryName($0) }) }
        if let maxMemberSize { options.maxPlainMemberSize = UInt64(maxMemberSize.bytes) }
        let reporter = commandReporter(quiet: quiet || json, logLevel: logLevel)
        let result: RestoreResult
        let target: String
        var uploaded: StoreCopy.Totals?
        if root.hasPrefix("s3://") {
            (result, uploaded, target) = try await restoreIntoBucket(options, reporter)
        } else {
            var restore = RestoreStore(target: root, options: options, arguments: CommandLine.arguments.joined(separator: " "))
            restore.reporter = reporter
            target = restore.target
            // Everything that can be refused without the lock is refused before the target,
            // its lock or its state database exist: "not changed" must be true.
            let chain = try await restore.openChain(files: files, latestIn: latest ? catalog : nil)
            // A dry run only reads the target, and an absent one needs no lock at all.
            var lock: StoreLock?
            if !dryRun {
                try restore.createTarget()
                lock = try takeLock(StoreLocation(root: target), .exclusive, wait: .seconds(wait.seconds))
            } else if FileManager.default.fileExists(atPath: target) {
                lock = try takeLock(StoreLocation(root: target), .shared, wait: .seconds(wait.seconds))
            }
            defer { withExtendedLifetime(lock) {} }
            result = try await restore.run(chain)
        }
        if json {
            try writeJSON(result)
        } else if !quiet {
            let (restored, kept, skipped) = dryRun ? ("dry run: would restore", "would keep", "would skip") : ("restored", "kept", "skipped")
            printLine("\(restored) \(result.blobs) blobs (\(result.blobBytes.formattedBytes)), \(result.links) links, \(result.otherFiles) other files into \(target)"
                + (uploaded.map { dryRun ? "" : ": \($0.files) objects, \($0.bytes.formattedBytes) uploaded" } ?? ""))
            for conflict in result.conflicts { printLine("\(kept): \(conflict.escapedForTerminal)") }
            for member in result.skipped { printLine("\(skipped): \(member)") }
        }
        if !result.conflicts.isEmpty || result.skipped.contains(where: { $0.hasPrefix("blob ") }) {
            throw CommandFailure("\(dryRun ? "a restore would end" : "restored") with \(result.conflicts.count) conflict(s) and \(result.skipped.count) skipped member(s)", status: ExitStatus.partialFailure)
        }
    }

    /// Into an empty bucket prefix (how a store migrates from disk to S3), under its lock in
    /// the local state directory.
    private func restoreIntoBucket(_ options: RestoreOptions, _ reporter: any ProgressReporter) async throws -> (RestoreResult, StoreCopy.Totals, String) {
        if merge { throw CommandFailure("--merge is not available for an s3:// root", status: ExitStatus.failure) }
        let location = StoreLocation(
            s3: try S3StoreConfig.parse(url: root, endpoint: s3Endpoint, environment: ProcessInfo.processInfo.environment),
            stateDirectory: stateDirectory.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        let lock = try takeLock(location, dryRun ? .shared : .exclusive, wait: .seconds(wait.seconds))
        defer { withExtendedLifetime(lock) {} }
        var restore = RestoreIntoBucket(bucket: try openStorage(location), location: location, options: options)
        restore.reporter = reporter
        let (result, uploaded) = try await restore.run(files: files, latestIn: latest ? catalog : nil)
        return (result, uploaded, location.root)
    }
}
