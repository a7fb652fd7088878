import ArgumentParser
import Foundation
import Integrity
import Operations
import RegistryModel
import RegistryStore
import StateDatabase

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Rehash every blob, check every reference, and report all damage.",
        discussion: """
            Rehashes each blob (SHA-256 or SHA-512, as its digest says) and compares it with \
            its path; checks sizes against manifest descriptors, that every tag, index, config \
            and layer reference leads to a blob the repository links, that manifests parse, and \
            that the layout holds nothing stray. Each finding names its kind, path, digest and \
            the tags that can no longer pull. Kinds: corrupt, truncated, size-mismatch, \
            unreadable, missing, dangling-link, bad-manifest, bad-link, stray.

            Only reads the store (under the shared lock, so gc does not sweep meanwhile), unless \
            --quarantine is given: corrupt blobs then move to <state-dir>/quarantine (exclusive \
            lock), so the registry answers "blob unknown" and a re-push heals the image. Restart \
            the registry afterwards (or run it with storage.cache.blobdescriptor off): its cache \
            may still claim the blob exists.

            For scheduled scrubs, --max-age, --budget and --time-limit rehash the least recently \
            verified blobs first and remember each result in <state-dir>/state.db, so that \
            nightly runs cover the whole store over a week. The reference and size checks run \
            in full every time.

            EXIT STATUS: 0 no damage found; 1 could not run (no docker/registry/v2 under the \
            root, a state directory that cannot be created: give --state-dir for a read-only \
            store); 2 another run holds the lock; 5 damage found (every finding is still \
            reported); 64 usage error (a negative span or size, a zero --time-limit or --budget).
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, parsing: .unconditional, help: .span("Skip blobs verified good within this span and unchanged since (e.g. 30d)."), transform: TimeSpan.init(parsing:))
    var maxAge: TimeSpan?

    @Option(name: .long, parsing: .unconditional, help: .size("Rehash at most this much, least recently verified first (e.g. 50GiB)."), transform: ByteCount.init(parsing:))
    var budget: ByteCount?

    @Option(name: .long, parsing: .unconditional, help: .span("Start no new blob after this long (e.g. 20m)."), transform: TimeSpan.init(parsing:))
    var timeLimit: TimeSpan?

    @Flag(name: .long, help: "Move corrupt blobs into <state-dir>/quarantine so a re-push heals them.")
    var quarantine = false

    @Option(name: .long, help: ArgumentHelp("Write Prometheus metrics here (node_exporter textfile collector).", valueName: "file"))
    var metricsFile: String?

    @Flag(name: .long, help: "List quarantined blobs and exit.")
    var listQuarantine = false

    func validate() throws {
        if let timeLimit, timeLimit.seconds == 0 { throw ValidationError("--time-limit: give a positive duration such as 20m or 1h, not 0") }
        if let budget, budget.bytes == 0 { throw ValidationError("--budget: give a positive size such as 50GiB or 500MB, not 0") }
        if listQuarantine, quarantine || maxAge != nil || budget != nil || timeLimit != nil {
            throw ValidationError("--list-quarantine takes no other verify options")
        }
    }

    func run() async throws {
        if listQuarantine { try await listQuarantined() } else { try await verify() }
    }

    private func verify() async throws {
        let location = try store.location()
        let lock = try takeLock(location, quarantine ? .exclusive : .shared, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        var options = VerifyOptions()
        options.jobs = output.jobs
        options.maxAge = maxAge
        options.budget = budget
        options.timeLimit = timeLimit.map { .seconds($0.seconds) }
        options.quarantineDirectory = quarantine ? location.stateDirectory + "/quarantine" : nil

        let bar = VerifyProgressBar()
        let timings = TimingReporter(output.logged(output.quiet || output.json ? SilentReporter() : bar))
        let json = output.json
        let verification = VerifyStore(
            storage: try openStorage(location), location: location, options: options,
            arguments: CommandLine.arguments.joined(separator: " "), metricsFile: metricsFile, reporter: timings,
            findings: { finding in
                // Findings are what a cron job mails, so --quiet prints them too.
                if !json { bar.printAbove(finding.description) }
            })
        let report: VerifyReport
        do {
            report = try await verification.run()
        } catch let error as VerifyError {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("\(error)", status: ExitStatus.failure)
        }
        bar.finish()
        if output.json { try writeJSON(report) } else if !output.quiet { renderSummary(report, timings) }
        if !report.isClean {
            throw CommandFailure("damage found: \(report.findings.count) finding(s)", status: ExitStatus.damageFound)
        }
    }

    private func listQuarantined() async throws {
        let location = try store.location()
        let records: [QuarantineRecord]
        do {
            records = try await ListQuarantine(location: location).run()
        } catch {
            throw CommandFailure("cannot read the quarantine list: \(error)", status: ExitStatus.failure)
        }
        if output.json { return try writeJSON(records) }
        for record in records {
            let date = ISO8601DateFormatter().string(from: record.quarantinedAt)
            printLine("\(date) \(record.digest) (\(record.bytes.formattedBytes)) -> \(record.quarantinePath)")
            printLine("    \(record.reason)" + (record.affectedTags.isEmpty ? "" : "; re-push " + record.affectedTags.joined(separator: ", ")))
        }
        if !output.quiet { printLine("\(records.count) quarantined blob(s)") }
    }

    private func renderSummary(_ report: VerifyReport, _ timings: TimingReporter) {
        let counts = report.counts
        printLine("\(counts.repositories) repositories, \(counts.tags) tags, \(counts.manifests) manifests, \(counts.blobs) blobs (\(counts.bytes.formattedBytes))")
        var hashed = "rehashed \(counts.blobsHashed) blobs, \(counts.bytesHashed.formattedBytes)"
        if report.hashSeconds > 0, counts.bytesHashed > 0 {
            hashed += String(format: " at %.2f GB/s", Double(counts.bytesHashed) / report.hashSeconds / 1e9)
        }
        if counts.recentlyVerified > 0 { hashed += "; \(counts.recentlyVerified) verified within --max-age, skipped" }
        if let stop = report.stoppedBy {
            hashed += "; \(counts.deferred) blobs (\(counts.deferredBytes.formattedBytes)) left for a later run (\(stop.rawValue))"
        }
        printLine(hashed)
        if counts.quarantined > 0 { printLine("quarantined \(counts.quarantined) blob(s): restart the registry so its cache forgets them, then re-push") }
        if report.isClean {
            printLine("no damage found")
        } else {
            let byKind = Dictionary(grouping: report.findings, by: \.kind).sorted { $0.key < $1.key }
            printLine("damage: " + byKind.map { "\($0.value.count) \($0.key.rawValue)" }.joined(separator: ", "))
            let broken = Set(report.findings.flatMap(\.affectedTags)).sorted()
            if !broken.isEmpty { printLine("cannot pull: " + broken.map(\.description).joined(separator: ", ")) }
        }
        // Hashing starts with the first shard listed; the scan and the graph run beside it.
        printLine("time: " + timings.phases.map { "\($0.name) \($0.elapsed.formattedSeconds)" }.joined(separator: ", ") + " (overlapping)")
    }
}
