import ArgumentParser

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regkeeper-bench",
        abstract: "Measures regkeeper side by side with the peer tools on this machine.",
        subcommands: [GCBench.self, RetentionBench.self, VerifyBench.self, BackupBench.self, RestoreBench.self, PullsBench.self]
    )
}
