import Archive
import ArgumentParser
import Foundation
import Operations
import RegistryStore
import TarFormat

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write the store's tags, links and the blobs they need to a zstd-compressed tar archive.",
        discussion: """
            Safe while the registry runs: tags, then revision links, then _layers links are read \
            first (the snapshot), then the blobs they reference are archived, each hashed as it \
            is written; a blob whose bytes do not match its digest is listed as excluded and not \
            relied on. Garbage blobs and uploads are left out unless --include-garbage. The \
            archive is written to .NAME.partial-PID-… beside FILE, fsync'd and renamed, so FILE \
            exists only when complete. Takes the shared lock, so gc cannot sweep meanwhile.

            --dry-run reads the snapshot (and, with --incremental, the catalog) and prints \
            what the archive would hold, writing nothing: --json lists every blob it would \
            carry. It does not hash blobs, so a corrupt one is only found by the backup itself \
            (or verify).

            --incremental writes only blobs no archive of the catalog's latest chain carries, \
            plus every link. The catalog (backup-catalog.db) lives in --catalog, default the \
            state directory; `backup list` shows it, `backup reindex DIR` rebuilds it.

            EXIT STATUS: 0 success; 1 could not run (bad input, unreadable store, FILE exists, no \
            full backup to build on); 2 another run holds the lock; 3 refused, no archive written: \
            part of the store cannot be read (an unreadable directory, a symbolic link inside \
            repositories/); 4 archive written, but some blobs were missing or corrupt in the \
            store and are not in it.
            """,
        subcommands: [BackupListCommand.self, BackupReindexCommand.self, BackupVerifyCommand.self]
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("output"), help: ArgumentHelp("The archive to write (e.g. /backup/registry-full.tar.zst).", valueName: "file"))
    var outputFile: String?

    @Flag(name: .long, help: "Write only blobs not in an earlier archive of the catalog's chain.")
    var incremental = false

    @Option(name: .long, help: ArgumentHelp("Directory of the backup catalog (default: the state directory).", valueName: "dir"))
    var catalog: String?

    @Option(name: .long, help: ArgumentHelp("zstd compression level (1-19).", valueName: "n"))
    var level = 1

    @Flag(name: .long, help: "Also archive unreferenced blobs and uploads.")
    var includeGarbage = false

    @Option(name: .long, help: ArgumentHelp("Write Prometheus metrics here (node_exporter textfile collector).", valueName: "file"))
    var metricsFile: String?

    @Flag(name: .long, help: "Print what the archive would hold; write nothing.")
    var dryRun = false

    func validate() throws {
        guard (1...19).contains(level) else { throw ValidationError("--level must be between 1 and 19") }
        if dryRun, metricsFile != nil { throw ValidationError("--metrics-file records a backup; a --dry-run writes none") }
    }

    func run() async throws {
        guard outputFile != nil || dryRun else {
            throw CommandFailure("give --output FILE (or a subcommand: list, reindex, verify)", status: ExitStatus.failure)
        }
        let location = try store.location()
        if !dryRun { removePartialArchivesOnSignal() }
        let lock = try takeLock(location, .shared, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        var backup = Backup(
            storage: try openStorage(location), catalogDirectory: catalog ?? location.stateDirectory,
            toolVersion: "regkeeper " + (Regkeeper.configuration.version), sourceRoot: location.root)
        backup.incremental = incremental
        backup.includeGarbage = includeGarbage
        backup.writer.level = level
        backup.writer.jobs = output.jobs
        backup.writer.reporter = output.reporter
        guard let outputFile, !dryRun else { return try await showPlan(backup) }
        let result = try await BackUpStore(backup: backup, metricsFile: metricsFile).run(output: outputFile)
        if output.json {
            try writeJSON(result)
        } else if !output.quiet {
            let metadata = result.index.metadata
            printLine("\(metadata.kind) archive \(result.id) written to \(result.path)")
            printLine("\(result.blobsWritten) blobs (\(result.blobBytesWritten.formattedBytes)), \(result.linksWritten) links, \(result.inheritedBlobs) blobs in earlier archives; archive \(Int64(result.archiveBytes).formattedBytes)")
            if let parent = metadata.parent { printLine("builds on \(parent)") }
        }
        if !result.findings.isEmpty {
            throw storeProblems(result.findings)
        }
    }
}

/// SIGINT and SIGTERM remove this run's partial archive, then end the process as the signal
/// would have: a killed cron backup leaves no hidden file behind. Made once (a global is
/// initialized once, thread-safely), never changed, and kept for the life of the process: a
/// released source stops delivering.
nonisolated(unsafe) private let partialArchiveSignalSources: [any DispatchSourceSignal] = [SIGINT, SIGTERM].map { number in
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler {
        PartialArchives.removeAll()
        signal(number, SIG_DFL)
        // To the process, not this thread: libdispatch's threads block signals.
        kill(getpid(), number)
    }
    source.resume()
    return source
}

private func removePartialArchivesOnSignal() {
    _ = partialArchiveSignalSources
}

extension BackupCommand {
    /// Blobs missing or unreadable in the store: the archive (or plan) goes without them.
    private func storeProblems(_ findings: [BackupFinding]) -> CommandFailure {
        CommandFailure("\(findings.count) problem(s) in the store:\n  " + findings.map(\.description).joined(separator: "\n  "), status: ExitStatus.partialFailure)
    }

    private func showPlan(_ backup: Backup) async throws {
        if let outputFile, FileManager.default.fileExists(atPath: outputFile) {
            throw CommandFailure(ArchiveError.outputExists(path: URL(fileURLWithPath: outputFile).path).description, status: ExitStatus.failure)
        }
        let plan: BackupPlan
        do {
            plan = try await backup.plan()
        } catch let error as ArchiveError {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        }
        if output.json {
            try writeJSON(plan)
        } else if !output.quiet {
            printLine("dry run: a \(plan.kind) archive would hold \(plan.blobsToWrite.count) blobs (\(plan.bytesToWrite.formattedBytes)) and \(plan.links.count) links; \(plan.inherited.count) blobs are in earlier archives")
            if let parent = plan.chain.last { printLine("it would build on \(parent.id) (\(parent.file))") }
            if !plan.garbageBlobs.isEmpty || !plan.extraFiles.isEmpty {
                printLine("of those, \(plan.garbageBlobs.count) unreferenced blobs and \(plan.extraFiles.count) upload files (--include-garbage)")
            }
        }
        if !plan.findings.isEmpty {
            throw storeProblems(plan.findings)
        }
    }
}

extension BackupCommand {
    /// Where the catalog is: --catalog, else the store's state directory. The subcommands
    /// take `--catalog`, `--json` and the store options from here: ArgumentParser hands an
    /// option both a command and its subcommand declare to the command, so a subcommand's
    /// own declaration would stay unset.
    func catalogDirectory() throws -> String {
        if let catalog { return catalog }
        return try store.stateLocation().stateDirectory
    }
}

struct BackupListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the archives in the backup catalog and what each builds on.",
        discussion: """
            Options (see `regkeeper backup --help`): --catalog DIR, else the state directory of \
            --root or --config; --json.

            Lists, as UNREADABLE, the files the last reindex could not read.

            EXIT STATUS: 0 success; 1 could not read the catalog (or there is none).
            """
    )

    @ParentCommand var backup: BackupCommand

    func run() async throws {
        let listing = try await ListBackups(catalogDirectory: try backup.catalogDirectory()).run()
        let (entries, unreadable) = (listing.archives, listing.unreadable)
        if backup.output.json { return try writeJSON(listing) }
        if entries.isEmpty { printLine("no archives recorded") }
        for file in unreadable { printLine("UNREADABLE \(file.description.escapedForTerminal)") }
        let formatter = ISO8601DateFormatter()
        for entry in entries {
            let parent = entry.parent.map { " on \($0)" } ?? ""
            printLine("\(entry.id)  \(entry.kind.rawValue)\(parent)  \(formatter.string(from: entry.createdAt))  \(entry.blobCount) blobs \(entry.blobBytes.formattedBytes), archive \(entry.archiveBytes.formattedBytes)  \(entry.path)")
        }
    }
}

/// `backup list --json`: the archives, and the files the last reindex could not read.
struct BackupReindexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the backup catalog from the archives in a directory.",
        discussion: """
            Reads the index at the end of every file in DIR but hidden ones and the catalog's \
            own (nothing is decompressed) and replaces the catalog's content with them. A file \
            that is no readable archive (cut short, empty, damaged, not an archive) is named \
            and recorded as unreadable: `restore --latest` then refuses, since it may be the \
            newest backup. Options (see `regkeeper backup --help`): --catalog DIR, --json, --quiet.

            EXIT STATUS: 0 success; 1 could not run; 4 rebuilt, but some files were unreadable \
            (each is named).
            """
    )

    @Argument(help: ArgumentHelp("Directory holding the archives.", valueName: "dir"))
    var directory: String

    @ParentCommand var backup: BackupCommand

    func run() async throws {
        let outcome: Reindex.Outcome
        do {
            outcome = try await Reindex().run(directory: directory, catalogDirectory: try backup.catalogDirectory())
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("\(error)", status: ExitStatus.failure)
        }
        if backup.output.json { try writeJSON(outcome) } else if !backup.output.quiet {
            printLine("catalog rebuilt from \(outcome.archives.count) archive(s)")
        }
        if !outcome.unreadable.isEmpty {
            throw CommandFailure(
                "\(outcome.unreadable.count) file(s) in \(directory) could not be read as archives and are not in the catalog; restore --latest refuses until they are moved away and the directory reindexed:\n  "
                    + outcome.unreadable.map { $0.description.escapedForTerminal }.joined(separator: "\n  "),
                status: ExitStatus.partialFailure)
        }
    }
}

struct BackupVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check archives without restoring them: every member's digest, the index, the chain.",
        discussion: """
            Decompresses every archive given, hashes every member and compares it with the \
            index and each blob with its digest. Given a full archive and its incrementals in \
            order, also checks that they form one chain that carries every blob the last needs.

            EXIT STATUS: 0 every archive is intact; 1 could not run; 3 an archive is damaged or \
            the chain is broken.
            """
    )

    @Argument(help: ArgumentHelp("Archives, a full one first then its incrementals.", valueName: "file"))
    var files: [String]

    @ParentCommand var backup: BackupCommand

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one archive") }
    }

    func run() async throws {
        let report = ArchiveVerifier().verify(files)
        if backup.output.json {
            try writeJSON(report)
        } else {
            for archive in report.archives {
                let what = [archive.kind?.rawValue, archive.id?.rawValue].compactMap { $0 }.joined(separator: " ")
                if let error = archive.error {
                    printLine("FAILED \(archive.path): \(error)")
                } else {
                    printLine("ok \(archive.path) (\(what.isEmpty ? "plain tar" : what)): \(archive.members) members, \(Int64(archive.bytes).formattedBytes)")
                }
                for excluded in archive.excludedBlobs { printLine("  excluded (corrupt when archived): \(excluded)") }
            }
            if let chain = report.chainError { printLine("FAILED chain: \(chain)") }
        }
        if !report.isValid {
            throw CommandFailure("verification failed", status: ExitStatus.refused)
        }
    }
}
