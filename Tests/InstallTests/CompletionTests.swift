import Foundation
import RegistryHarness
import Testing

/// The installed bash completion completes what an operator types, called the way bash calls
/// it: COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set, then the function `complete -p`
/// names, with the command, the current word and the one before.
@Suite struct CompletionTests {
    static func withInstalledScript(_ body: (String) throws -> Void) throws {
        try Checkout.requireBuilt()
        let destdir = try Checkout.temporaryDirectory("completion")
        defer { try? FileManager.default.removeItem(at: destdir) }
        try Checkout.make("install-built", ["DESTDIR": destdir.path])
        try body(destdir.appendingPathComponent("usr/local/share/bash-completion/completions/regkeeper").path)
    }

    /// What bash offers after `words` (the last one being typed, maybe empty).
    static func complete(_ words: [String], script: String) throws -> [String] {
        let quoted = words.map { "'\($0)'" }.joined(separator: " ")
        let program = """
            source '\(script)'
            function=$(complete -p regkeeper | sed -n 's/.*-F \\([^ ]*\\) regkeeper$/\\1/p')
            COMP_WORDS=(\(quoted))
            COMP_CWORD=\(words.count - 1)
            COMP_LINE='\(words.joined(separator: " "))'
            COMP_POINT=${#COMP_LINE}
            "$function" regkeeper "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let output = try ProcessRunner.runBlocking("/bin/bash", ["-c", program])
        return output.stdoutText.split(separator: "\n").map(String.init)
    }

    @Test func completesSubcommandsAndOptions() throws {
        try Self.withInstalledScript { script in
            let registered = try ProcessRunner.runBlocking("/bin/bash", ["-c", "source '\(script)'; complete -p regkeeper"]).stdoutText
            #expect(registered.contains("-F _regkeeper regkeeper"), "\(registered)")

            let subcommands = try Self.complete(["regkeeper", ""], script: script)
            for command in ["gc", "verify", "backup", "restore", "retain", "policy", "history", "report"] {
                #expect(subcommands.contains(command), "\(command) is not offered: \(subcommands)")
            }
            #expect(try Self.complete(["regkeeper", "ba"], script: script) == ["backup"])
            #expect(try Self.complete(["regkeeper", "gc", "--de"], script: script) == ["--delete-untagged"])
            #expect(try Self.complete(["regkeeper", "retain", "--pol"], script: script) == ["--policy"])
            #expect(try Self.complete(["regkeeper", "verify", "--log-level", ""], script: script) == ["trace", "debug", "info", "notice", "warning", "error", "critical"])
            let backup = try Self.complete(["regkeeper", "backup", ""], script: script)
            #expect(Set(["list", "reindex", "verify", "--incremental", "--output"]).isSubset(of: backup), "\(backup)")
        }
    }
}
