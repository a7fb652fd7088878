import ArgumentParser
import Foundation
import Operations
import StateDatabase

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List recorded runs and what each deleted.",
        discussion: """
            Runs are recorded in <state-dir>/state.db by the commands that change the store. \
            A run whose process died reads "unfinished".

            EXIT STATUS: 0 success; 1 the database cannot be read or the run does not exist.
            """,
        subcommands: [HistoryListCommand.self, HistoryShowCommand.self],
        defaultSubcommand: HistoryListCommand.self
    )
}

struct HistoryListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the most recent runs.")

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: ArgumentHelp("How many runs to list, newest first.", valueName: "n"))
    var limit = 20

    @Flag(name: .long, help: "Print the runs as JSON.")
    var json = false

    func run() async throws {
        let runs = try await ReadHistory(location: try store.stateLocation()).runs(limit: limit)
        if json { return try writeJSON(runs) }
        if runs.isEmpty { printLine("no runs recorded yet") }
        for run in runs { printLine(describe(run)) }
    }
}

struct HistoryShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one run and everything it deleted.")

    @OptionGroup var store: StoreOptions

    @Argument(help: ArgumentHelp("The run's id, as `history` lists it.", valueName: "run"))
    var run: Int64

    @Flag(name: .long, help: "Print the run as JSON.")
    var json = false

    func run() async throws {
        guard let detail = try await ReadHistory(location: try store.stateLocation()).run(RunID(rawValue: run)) else {
            throw CommandFailure("no run \(run): no runs recorded yet", status: ExitStatus.failure)
        }
        if json { return try writeJSON(detail) }
        printLine(describe(detail.summary))
        printLine("  command: \(detail.summary.arguments)")
        for deletion in detail.deletions {
            var subject = deletion.repository ?? ""
            if let tag = deletion.tag { subject += ":\(tag)" }
            if let digest = deletion.digest { subject += (subject.isEmpty ? "" : " ") + "(\(digest))" }
            let bytes = deletion.bytes > 0 ? " \(deletion.bytes.formattedBytes)" : ""
            printLine("  \(deletion.kind) \(subject)\(bytes): \(deletion.reason)")
        }
    }
}

private func describe(_ run: RunSummary) -> String {
    let formatter = ISO8601DateFormatter()
    let counts = run.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    let bytes = run.bytes.map { $0 > 0 ? ", freed \($0.formattedBytes)" : "" } ?? ""
    return "run \(run.id)  \(formatter.string(from: run.startedAt))  \(run.command)  \(run.status)" + (counts.isEmpty ? "" : "  \(counts)") + bytes
}
