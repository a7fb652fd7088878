import ArgumentParser
import Foundation

@main
struct Regkeeper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regkeeper",
        abstract: "Keeps a Docker/OCI registry's filesystem store healthy.",
        discussion: """
            The store is found from --root (the registry's rootdirectory), else --config (the \
            registry's config.yml), else /etc/docker/registry/config.yml; it must hold \
            docker/registry/v2 (not a symbolic link). State (the lock, databases) lives in \
            --state-dir, default <root>/.regkeeper; every command takes its lock there, so for a \
            store on a read-only filesystem give --state-dir on a writable one.

            Spans are a number and a unit (s, m, h, d, w) or a sum such as 1d12h, sizes a number \
            and an optional unit (KiB, MiB, GiB, TiB; kB, MB, GB, TB); neither is negative. A \
            failure is one line on standard error starting with "regkeeper:" (a list of \
            problems, such as a policy's, follows on lines of its own).

            EXIT STATUS: 0 success; 1 could not run (bad input, no docker/registry/v2 under the \
            root, a state directory that cannot be created, unreadable store); 2 another run \
            holds the lock; 3 refused (gc: broken manifests; retain: circuit breaker, imported \
            pull history too short for pulledWithin, or the store changed since the plan); 4 finished, but some deletions failed; 5 verify found \
            damage; 64 usage error (unknown option, malformed or negative span or size).
            """,
        version: "0.1.0",
        subcommands: [GCCommand.self, VerifyCommand.self, BackupCommand.self, RestoreCommand.self, RetainCommand.self, PolicyCommand.self, HistoryCommand.self, ReportCommand.self, PullsCommand.self]
    )

    /// ArgumentParser's own `main`, except that every failure ends here as one `regkeeper:`
    /// line (cron mails and journald show it whole) with the status `ExitStatus` documents:
    /// a `ReportedFailure` with its own, a usage error with 64, anything unforeseen with 1.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let failure as any ReportedFailure {
            report(failure.description, status: failure.exitStatus)
        } catch let status as ExitCode {
            exit(withError: status)
        } catch {
            switch exitCode(for: error) {
            case .success: exit(withError: error)  // --help, --version
            case ExitStatus.usage: break
            default: report("\(error)", status: ExitStatus.failure)
            }
            let message = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            report("\(message) (see '\(commandPath(CommandLine.arguments.dropFirst())) --help')", status: ExitStatus.usage)
        }
    }

    private static func report(_ message: String, status: ExitCode) -> Never {
        FileHandle.standardError.write(Data("regkeeper: \(message)\n".utf8))
        exit(withError: status)
    }

    /// `regkeeper gc undo`: the command the arguments name, to point at its own --help.
    private static func commandPath(_ arguments: ArraySlice<String>) -> String {
        var command: any ParsableCommand.Type = Regkeeper.self
        var path = ["regkeeper"]
        for argument in arguments {
            guard let subcommand = command.configuration.subcommands.first(where: { $0.configuration.commandName == argument }) else { break }
            command = subcommand
            path.append(argument)
        }
        return path.joined(separator: " ")
    }
}
