import ArgumentParser

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regkeeper-bench",
        abstract: "Measures regkeeper side by side with the peer tools on this machine.",
        subcommands: [GCBench.self, RetentionBench.self]
    )
}
