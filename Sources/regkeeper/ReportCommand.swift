import ArgumentParser
import Foundation
import GarbageCollection
import Operations
import RegistryModel
import RegistryStore
import Reporting

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Store statistics: content, what gc would reclaim, the largest repositories.",
        discussion: """
            Reads the store once (shared lock): repositories, tags, manifests (tagged, untagged, \
            index children, referrers), blobs and bytes, what gc would reclaim with and without \
            --delete-untagged (ignoring the grace period), uploads, and the repositories holding \
            the most bytes, split into bytes only they keep alive (exclusive) and shared ones. \
            When registry logs were imported (`regkeeper pulls import`), each repository's tags \
            never pulled within the span the logs cover are listed too.

            EXIT STATUS: 0 success; 1 could not run (no docker/registry/v2 under the root, a \
            state directory that cannot be created: give --state-dir for a read-only store); \
            2 another run holds the lock; 64 usage error.
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "How many repositories to list by size.")
    var top = 10

    @Option(name: .long, parsing: .unconditional, help: .span("Uploads older than this count as abandoned.", default: GCOptions().uploadMaxAge), transform: TimeSpan.init(parsing:))
    var uploadMaxAge = GCOptions().uploadMaxAge

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must not be negative") }
    }

    func run() async throws {
        let location = try store.location()
        let lock = try takeLock(location, .shared, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        let storage = try openStorage(location)
        var report = try await StoreReporter(storage: storage, jobs: output.jobs, top: top, uploadMaxAge: uploadMaxAge).report()
        report.unpulled = try await FindUnpulledTags(storage: storage, location: location, jobs: output.jobs).run()
        if output.json { try writeJSON(report) } else if !output.quiet { render(report) }
        guard report.reclaimableIsKnown else {
            throw CommandFailure(
                (["what gc would free is unknown: \(report.unreadable.count) path(s) cannot be read, and gc refuses to sweep until they can:"]
                    + report.unreadable.map { "  \($0)" }).joined(separator: "\n"),
                status: ExitStatus.refused)
        }
    }

    private func render(_ report: StoreReport) {
        let manifests = report.manifests
        printLine("""
            repositories  \(report.repositories)
            tags          \(report.tags)
            manifests     \(manifests.total) (\(manifests.tagged) tagged, \(manifests.untagged) untagged, \(manifests.indexChildren) index children, \(manifests.referrers) referrers)
            blobs         \(report.blobs), \(report.bytes.formattedBytes)
            gc would free \(report.reclaimableIsKnown ? "\(report.reclaimable.blobs) blobs, \(report.reclaimable.bytes.formattedBytes); with --delete-untagged \(report.reclaimableUntagged.blobs) blobs, \(report.reclaimableUntagged.bytes.formattedBytes)" : "unknown (unreadable paths, see below)")
            uploads       \(report.uploads), \(report.uploadBytes.formattedBytes); abandoned \(report.abandonedUploads), \(report.abandonedUploadBytes.formattedBytes)
            """)
        defer { renderUnpulled(report.unpulled) }
        guard !report.topRepositories.isEmpty else { return }
        printLine("\nlargest repositories             bytes    exclusive       shared  tags  manifests")
        for usage in report.topRepositories {
            let name = usage.repository.value.count > 28 ? String(usage.repository.value.prefix(27)) + "…" : usage.repository.value
            printLine(name.padding(toLength: 28, withPad: " ", startingAt: 0)
                + [usage.bytes, usage.exclusiveBytes, usage.sharedBytes].map { $0.formattedBytes.leftPadded(13) }.joined()
                + String(usage.tags).leftPadded(6) + String(usage.manifests).leftPadded(11))
        }
        for finding in report.findings { printLine("warning: \(finding)") }
    }

    private func renderUnpulled(_ unpulled: UnpulledTags?) {
        guard let unpulled else {
            printLine("\npulls         no registry log imported (regkeeper pulls import)")
            return
        }
        let span = "\(PullsImportCommand.time(unpulled.since)) to \(PullsImportCommand.time(unpulled.until))"
        defer {
            if !unpulled.gaps.isEmpty {
                printLine("  no log imported for " + unpulled.gaps.map { "\(PullsImportCommand.time($0.start)) to \(PullsImportCommand.time($0.end))" }
                    .joined(separator: ", ") + ": pulls then are unknown (import the rotated logs that cover it)")
            }
        }
        guard !unpulled.repositories.isEmpty else {
            printLine("\nevery tag was pulled within the imported logs (\(span))")
            return
        }
        printLine("\ntags never pulled within the imported logs (\(span)):")
        for repository in unpulled.repositories {
            printLine("  \(repository.repository): \(repository.unpulled.count) of \(repository.tags) tags: "
                + repository.unpulled.map(\.value).joined(separator: ", "))
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
