import ArgumentParser
import Foundation
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
        guard let state = try openHistory(store) else {
            if json { try writeJSON([RunSummary]()) } else { printLine("no runs recorded yet") }
            return
        }
        let runs = try await readHistory { try await state.runs(limit: limit) }
        if json { return try writeJSON(runs) }
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
        guard let state = try openHistory(store) else {
            throw CommandFailure("no run \(run): no runs recorded yet", status: ExitStatus.failure)
        }
        let id = RunID(rawValue: run)
        let detail = try await readHistory { try await state.run(id) }
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

/// The state database, or nil when none was ever written: listing history must not create one.
private func openHistory(_ store: StoreOptions) throws -> StateStore? {
    let url = URL(fileURLWithPath: try store.stateLocation().stateDatabasePath)
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    do {
        return try StateStore.open(at: url)
    } catch {
        throw CommandFailure("\(error)", status: ExitStatus.failure)
    }
}

private func readHistory<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw CommandFailure("\(error)", status: ExitStatus.failure)
    }
}

private func describe(_ run: RunSummary) -> String {
    let formatter = ISO8601DateFormatter()
    let counts = run.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    let bytes = run.bytes.map { $0 > 0 ? ", freed \($0.formattedBytes)" : "" } ?? ""
    return "run \(run.id)  \(formatter.string(from: run.startedAt))  \(run.command)  \(run.status)" + (counts.isEmpty ? "" : "  \(counts)") + bytes
}
