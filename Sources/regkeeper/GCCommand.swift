import ArgumentParser
import Foundation
import GarbageCollection
import Operations
import RegistryModel
import RegistryStore
import StateDatabase

struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Mark what the store's manifests reference and sweep the rest.",
        discussion: """
            Roots are every manifest revision of every repository; with --delete-untagged, only \
            tagged manifests, plus the children of kept indexes and the referrers (subject) of \
            kept manifests. Sweeps unreferenced blobs older than --grace-period, removes links \
            left dangling and uploads older than --upload-max-age.

            Safe while the registry serves pushes: everything the plan would delete is first \
            renamed into <state-dir>/sweep/, out of the registry's sight (a mount of such a blob \
            falls back to an upload, a manifest naming it is refused with "blob unknown"). After \
            --settle, every link written since the run began is re-read, in the store and in the \
            sweep area, and what it needs is put back; only the rest is deleted. The state \
            directory must be on the store's filesystem. A run killed midway leaves the sweep \
            area behind; the next command that takes the exclusive lock puts it all back first. \
            Restart the registry afterwards (or run it with storage.cache.blobdescriptor off): \
            its in-memory cache may still claim that swept blobs exist.

            gc refuses to delete anything (exit 3) when part of the tree that decides what is \
            live cannot be read: an unreadable directory or link, a symbolic link inside \
            repositories/, or repositories/ absent while blobs/ holds data. --allow-broken does \
            not override that.

            With --trash, swept items are moved (renamed) into <state-dir>/trash/run-N-… \
            instead of deleted; `regkeeper gc undo N` puts run N back. Every run purges trash \
            older than --trash-keep. A `trash: {keepFor: 72h}` section in \
            <state-dir>/regkeeper.yaml makes --trash the default with that window; the flags \
            (--no-trash among them) still win.

            EXIT STATUS: 0 success; 1 could not run; 2 another run holds the lock; 3 refused to \
            sweep because paths or manifests cannot be read (see --allow-broken); 4 some \
            deletions failed.
            """,
        subcommands: [UndoCommand.self]
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    @Flag(name: .long, help: "Print the plan without deleting anything.")
    var dryRun = false

    @Flag(name: .long, help: "Keep only tagged manifests, their children and referrers.")
    var deleteUntagged = false

    @Option(name: .long, parsing: .unconditional, help: .span("Keep unreferenced blobs younger than this (e.g. 1h, 0).", default: GCOptions().gracePeriod), transform: TimeSpan.init(parsing:))
    var gracePeriod = GCOptions().gracePeriod

    @Option(name: .long, parsing: .unconditional, help: .span("Purge uploads started longer ago than this.", default: GCOptions().uploadMaxAge), transform: TimeSpan.init(parsing:))
    var uploadMaxAge = GCOptions().uploadMaxAge

    @Flag(name: .long, help: "Sweep even when manifests cannot be read, keeping all their repositories link.")
    var allowBroken = false

    @Option(name: .long, parsing: .unconditional, help: .span("Keep doomed items out of the registry's sight this long before re-reading links pushes wrote.", default: GCOptions().settle), transform: TimeSpan.init(parsing:))
    var settle = GCOptions().settle

    @Option(name: .long, help: ArgumentHelp("Write Prometheus metrics here (node_exporter textfile collector).", valueName: "file"))
    var metricsFile: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Move swept items into the trash in the state directory instead of deleting them (default: as regkeeper.yaml says, else no).")
    var trash: Bool?

    @Option(name: .long, parsing: .unconditional, help: .span("Purge trash older than this; every run does (default: regkeeper.yaml's trash.keepFor, else 72h)."), transform: TimeSpan.init(parsing:))
    var trashKeep: TimeSpan?

    func run() async throws {
        try await collect()
    }

    private func collect() async throws {
        let location = try store.location()
        let settings: StoreSettings
        do {
            settings = try StoreSettings.load(location)
        } catch {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        }
        let lock = try takeLock(location, dryRun ? .shared : .exclusive, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        var options = GCOptions()
        options.deleteUntagged = deleteUntagged
        options.gracePeriod = gracePeriod
        options.uploadMaxAge = uploadMaxAge
        options.allowBroken = allowBroken
        options.settle = settle
        options.jobs = output.jobs
        let timings = TimingReporter(output.reporter)
        var collection = CollectGarbage(
            storage: try openStorage(location), location: location, options: options, dryRun: dryRun,
            arguments: CommandLine.arguments.joined(separator: " "), metricsFile: metricsFile, reporter: timings)
        (collection.trash, collection.trashKeepFor) = settings.trashChoice(flag: trash, keepFor: trashKeep)
        if collection.trash, location.s3 != nil {
            throw CommandFailure("the trash lives in the state directory's filesystem and cannot hold a bucket's items: gc --trash is not available on s3:// stores", status: ExitStatus.failure)
        }
        let outcome: CollectGarbage.Outcome
        do {
            outcome = try await collection.run()
        } catch let error as GCError {
            throw CommandFailure(error.description, status: ExitStatus.refused)
        }
        switch outcome {
        case .planned(let plan):
            if output.json { try writeJSON(plan) } else if !output.quiet { renderPlan(plan, timings) }
        case .swept(let result, let run):
            if output.json { try writeJSON(result) } else if !output.quiet { renderResult(result, run: run, timings) }
            if !result.failures.isEmpty {
                throw CommandFailure(
                    "\(result.failures.count) deletion(s) failed:\n  " + result.failures.map(\.description).joined(separator: "\n  "),
                    status: ExitStatus.partialFailure)
            }
        }
    }

    private func renderPlan(_ plan: GCPlan, _ timings: TimingReporter) {
        for removal in plan.manifests {
            printLine("manifest \(removal.repository)@\(removal.digest): \(removal.reason)")
        }
        for blob in plan.blobs {
            printLine("blob \(blob.digest) (\(blob.bytes.formattedBytes)): \(blob.reason)")
        }
        for link in plan.links {
            printLine("\(link.kind) link \(link.repository)@\(link.digest): \(link.reason)")
        }
        for upload in plan.uploads {
            printLine("upload \(upload.repository) \(upload.uuid) (\(upload.bytes.formattedBytes)), started \(upload.startedAt)")
        }
        renderSummary(plan, verb: "would free", timings)
    }

    private func renderResult(_ result: GCResult, run: RunID, _ timings: TimingReporter) {
        renderSummary(result.applied, verb: "freed", timings)
        printLine("recorded as run \(run) (regkeeper history show \(run))")
        if !result.protectedBlobs.isEmpty || !result.protectedManifests.isEmpty {
            printLine("put back for pushes during the run: \(result.protectedBlobs.count) blob(s), \(result.protectedManifests.count) manifest(s)")
        }
        if !result.applied.isEmpty {
            printLine("restart the registry (or run it with storage.cache.blobdescriptor off): its cache may still list swept blobs")
        }
    }

    private func renderSummary(_ plan: GCPlan, verb: String, _ timings: TimingReporter) {
        let counts = plan.counts
        printLine("""
            \(counts.repositories) repositories, \(counts.manifests) manifests, \(counts.blobs) blobs: \
            \(counts.blobsMarked) marked, \(counts.blobsInGracePeriod) in grace period
            \(plan.blobs.count) blobs, \(plan.manifests.count) untagged manifests, \(plan.links.count) dangling links, \
            \(plan.uploads.count) uploads: \(verb) \(plan.bytesFreed.formattedBytes)
            """)
        for finding in plan.findings { printLine("warning: \(finding)") }
        for broken in plan.broken {
            printLine("broken: \(broken.repository)@\(broken.digest) (\(broken.referencedBy)): \(broken.reason)")
        }
        printLine("time: " + timings.phases.map { "\($0.name) \($0.elapsed.formattedSeconds)" }.joined(separator: ", "))
    }
}

struct UndoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undo",
        abstract: "Put a gc --trash run back exactly as it was.",
        discussion: """
            Moves every item of the run's trash back to its place, blobs before links. An item \
            whose place holds something again (re-pushed since) stays in the trash and is listed.

            EXIT STATUS: 0 restored; 1 could not run (no such run in the trash); 2 another run \
            holds the lock; 4 some items were refused.
            """
    )

    @OptionGroup var store: StoreOptions

    @Argument(help: ArgumentHelp("The run number gc printed (see regkeeper history).", valueName: "run"))
    var run: Int64?

    @Flag(name: .long, help: "The latest trashed run.")
    var last = false

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if (run == nil) == !last { throw ValidationError("give a run number or --last") }
    }

    func run() async throws {
        let location = try store.location()
        let lock = try takeLock(location, .exclusive, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        let undo = UndoGarbageCollection(storage: try openStorage(location), location: location, arguments: CommandLine.arguments.joined(separator: " "))
        let (number, restoration): (Int64, Trash.Restoration)
        do {
            (number, restoration) = try await undo.run(last ? nil : run)
        } catch let failure as UndoGarbageCollection.Failure {
            throw CommandFailure(failure.description, status: ExitStatus.failure)
        }
        if json {
            try writeJSON(restoration)
        } else {
            printLine("run \(number): restored \(restoration.restored.count) item(s)")
            for refusal in restoration.refused { printLine("kept in the trash: \(refusal.path): \(refusal.reason)") }
        }
        if !restoration.refused.isEmpty {
            throw CommandFailure("\(restoration.refused.count) item(s) were re-created since run \(number) and stay in the trash", status: ExitStatus.partialFailure)
        }
    }
}
