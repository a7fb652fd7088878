import ArgumentParser
import Foundation
import Retention

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Work with retention policy files (see regkeeper-policy(5)).",
        subcommands: [PolicyCheckCommand.self]
    )
}

struct PolicyCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate retention policies without touching a store.",
        discussion: """
            Reads each FILE and the in-use list it names, and reports every problem as \
            FILE:LINE: REASON: unknown keys, wrong types, bad globs or regular expressions, bad \
            durations, unreadable or malformed in-use lists, and nesting deeper than 64 levels \
            (refused before the YAML is parsed; see regkeeper-policy(5)).

            EXIT STATUS: 0 every file is a valid policy; 1 at least one is not.
            """
    )

    @Argument(help: ArgumentHelp("Policy files to check.", valueName: "file"))
    var files: [String]

    @Flag(name: .long, help: "Print nothing for valid files.")
    var quiet = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one policy file") }
    }

    func run() async throws {
        var invalid = 0
        for file in files {
            do {
                let policy = try RetentionPolicy.load(file: file)
                guard !quiet else { continue }
                let rules = policy.rules.map(\.name).joined(separator: ", ")
                let inUse = policy.protection.inUse.map { list in
                    ", in-use list \(list.file) (\(list.tags.values.reduce(0) { $0 + $1.count }) tags, \(list.digests.values.reduce(0) { $0 + $1.count }) digests)"
                } ?? ""
                printLine("\(file): ok: \(policy.rules.count) rule(s) (\(rules)), maxDeletePercent \(policy.safety.maxDeletePercent)\(inUse)")
            } catch {
                invalid += 1
                FileHandle.standardError.write(Data("\(error)\n".utf8))
            }
        }
        if invalid > 0 {
            throw CommandFailure("\(invalid) of \(files.count) policy file(s) are invalid", status: ExitStatus.failure)
        }
    }
}
