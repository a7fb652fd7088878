import ArgumentParser

@main
struct Regkeeper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regkeeper",
        abstract: "Keeps a Docker/OCI registry's filesystem store healthy.",
        discussion: """
            The store is found from --root (the registry's rootdirectory), else --config (the \
            registry's config.yml), else /etc/docker/registry/config.yml. State (the lock, \
            databases) lives in --state-dir, default <root>/.regkeeper.

            EXIT STATUS: 0 success; 1 could not run (bad input, unreadable store); 2 another \
            run holds the lock; 3 refused (gc: broken manifests; retain: circuit breaker, or the store changed since the plan); 4 finished, but some \
            deletions failed; 5 verify found damage; 64 usage error.
            """,
        version: "0.1.0",
        subcommands: [GCCommand.self, VerifyCommand.self, BackupCommand.self, RestoreCommand.self, RetainCommand.self, PolicyCommand.self, HistoryCommand.self, ReportCommand.self, DemoCommand.self]
    )
}
