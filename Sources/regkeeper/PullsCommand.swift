import ArgumentParser
import Foundation
import Operations
import PullLog
import StateDatabase

struct PullsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pulls",
        abstract: "Learn pulls from the registry's logs, for retention by last pull.",
        subcommands: [PullsImportCommand.self]
    )
}

struct PullsImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Record the last pull of every repository, manifest and tag from registry logs.",
        discussion: """
            Reads Distribution's access log (Combined Log Format) or its application log \
            (log.formatter text or json, at log.level info or debug: a request ends in a \
            "response completed" entry), from files (rotated ones and .gz too) or standard \
            input (-). A pull is a GET of /v2/<name>/manifests/<reference> answered 200; a pull \
            by tag is resolved to the manifest the tag pointed to at that moment, from the \
            tag's history in the store. Each log is remembered by its first line and read on \
            from where the last import stopped, so importing again is harmless and a grown log \
            costs only what is new; a last line without its newline is left for the next import. \
            Malformed lines are counted and listed by number, never fatal.

            Run it before `retain` with a policy that uses pulledWithin (regkeeper-policy(5)).

            EXIT STATUS: 0 success (malformed lines included); 1 a log cannot be read, or the \
            state database cannot be written; 2 another run holds the lock; 64 usage error.
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Registry logs, oldest first; - reads standard input.", valueName: "file"))
    var inputs: [String]

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one log file, or - for standard input") }
        guard inputs.filter({ $0 == "-" }).count <= 1 else { throw ValidationError("standard input (-) can be read only once") }
    }

    func run() async throws {
        let location = try store.location()
        let lock = try takeLock(location, .shared, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        let outcome = try await ImportPulls(storage: try openStorage(location), location: location, inputs: inputs).run()
        if output.json {
            try writeJSON(ImportReport(outcome))
        } else if !output.quiet {
            render(outcome)
        }
    }

    private func render(_ outcome: ImportPulls.Outcome) {
        for reading in outcome.readings {
            let name = reading.input == "-" ? "standard input" : reading.input
            if reading.fingerprint.isEmpty {
                printLine("\(name): no complete line yet (\(reading.unfinishedBytes) bytes), nothing imported")
                continue
            }
            if let restarted = reading.restarted { printLine("\(name): read from the start: \(restarted)") }
            let new = reading.to.lines - reading.from.lines
            let range = new > 0 ? "lines \(reading.from.lines + 1)–\(reading.to.lines)" : "no new line after line \(reading.to.lines)"
            printLine("\(name): \(range), \(reading.entries) entries, \(reading.pulls) pulls")
            if reading.malformed > 0 {
                let listed = reading.malformedLines.map(String.init).joined(separator: ", ")
                let more = reading.malformed > reading.malformedLines.count ? ", …" : ""
                printLine("\(name): \(reading.malformed) malformed line(s) skipped: line \(listed)\(more)")
            }
            if reading.unfinishedBytes > 0 {
                printLine("\(name): last line unfinished (\(reading.unfinishedBytes) bytes, no newline yet): left for the next import")
            }
        }
        var summary = "recorded \(outcome.records) last pull(s) by repository, manifest and tag"
        if outcome.inexactPulls > 0 { summary += "; \(outcome.inexactPulls) pull(s) by tag resolved from the tag's history, not for certain" }
        if outcome.unresolvedPulls > 0 { summary += "; \(outcome.unresolvedPulls) pull(s) of tags the store no longer has, skipped" }
        printLine(summary)
        if let coverage = outcome.coverage {
            printLine("imported pull history: \(Self.time(coverage.since)) to \(Self.time(coverage.until))")
        } else {
            printLine("imported pull history: none yet (no dated entry read)")
        }
    }

    static func time(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }
}

/// What `pulls import --json` prints.
private struct ImportReport: Encodable {
    var logs: [LogReading]
    var records: Int
    var unresolvedPulls: Int
    var inexactPulls: Int
    var coverage: PullCoverage?

    init(_ outcome: ImportPulls.Outcome) {
        logs = outcome.readings
        records = outcome.records
        unresolvedPulls = outcome.unresolvedPulls
        inexactPulls = outcome.inexactPulls
        coverage = outcome.coverage
    }
}
