import Foundation
import RegistryHarness
import Testing

/// Retention by last pull end to end, through the binary: docker-registry logs its requests to files (the text or
/// JSON application log, and the access log), skopeo pulls some tags, the built binary
/// imports the logs and applies a `pulledWithin` policy; pulled tags stay, the others go, and
/// every kept tag pulls afterwards.
@Suite(.serialized) struct PullRetentionTests {
    let binary = BuiltProducts.executable("regkeeper")

    func regkeeper(_ arguments: [String]) async throws -> ProcessOutput {
        try await ProcessRunner.run(binary, arguments, timeout: 120, allowFailure: true)
    }

    /// Which of the registry's logs the import reads.
    enum Source: String, CaseIterable, CustomTestStringConvertible {
        case text, json, access
        var testDescription: String { rawValue }
    }

    @Test(arguments: Source.allCases) func pulledTagsStayUnpulledGo(source: Source) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build regkeeper first (swift build)")
        let log = RegistryServer.RequestLog(formatter: source == .json ? "json" : "text", accessLog: source == .access)
        try await withRegistry(log: log) { server, client in
            let directory = server.root.deletingLastPathComponent()
            var builder = ImageBuilder(client: client, seed: 17)
            for tag in ["pulled", "idle", "old"] { _ = try await builder.pushImage(repository: "app", tag: tag) }
            let index = try await builder.pushIndex(repository: "app", tag: "multi")
            _ = try await builder.pushImage(repository: "tools/lint", tag: "idle")
            let byDigest = try await builder.pushImage(repository: "tools/lint", tag: "pinned")

            let policy = directory.appendingPathComponent("policy.yaml")
            try """
                version: 1
                rules:
                  - name: in-use
                    repositories: ["**"]
                    keep: [{pulledWithin: 4w}]
                safety: {maxDeletePercent: 100}
                """.write(to: policy, atomically: true, encoding: .utf8)
            let store = ["--root", server.root.path]
            let refused = try await regkeeper(["retain", "--policy", policy.path] + store)
            #expect(refused.status == 3, "no log imported yet: \(refused.stderrText)")

            try await Skopeo.pull(server: server, repository: "app", reference: "pulled")
            try await Skopeo.pull(server: server, repository: "app", reference: "multi")
            try await Skopeo.pull(server: server, repository: "tools/lint", reference: byDigest.digest)

            let logFile = try #require(source == .access ? server.accessLog : server.applicationLog)
            let text = try String(contentsOf: logFile, encoding: .utf8)
            #expect(text.contains(source == .json ? #""msg":"response completed""# : source == .text ? #"msg="response completed""# : #""GET /v2/app/manifests/pulled HTTP/1.1" 200"#),
                    "the registry logs requests in the \(source) format: \(text.prefix(2000))")

            // This registry's log starts now; a rotated log carries the history from five weeks ago
            // up to an hour ago (what lies between two imported logs must be a quiet registry).
            let rotated = directory.appendingPathComponent("registry.log.1")
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
            let then = formatter.string(from: Date().addingTimeInterval(-35 * 86_400))
            let lately = formatter.string(from: Date().addingTimeInterval(-3600))
            try (#"127.0.0.1 - - [\#(then)] "GET /v2/app/manifests/old HTTP/1.1" 200 528 "" "docker/20.10""# + "\n"
                + #"127.0.0.1 - - [\#(lately)] "GET /v2/ HTTP/1.1" 200 2 "" "docker/20.10""# + "\n")
                .write(to: rotated, atomically: true, encoding: .utf8)

            let imported = try await regkeeper(["pulls", "import", rotated.path, logFile.path] + store)
            #expect(imported.status == 0, "\(imported.stderrText)")
            #expect(!imported.stdoutText.contains("malformed"), "\(imported.stdoutText)")
            #expect(imported.stdoutText.contains("imported pull history: "), "\(imported.stdoutText)")

            let plan = try await regkeeper(["retain", "--dry-run", "--policy", policy.path] + store)
            #expect(plan.stdoutText.contains("never pulled since"), "\(plan.stdoutText)")
            #expect(plan.stdoutText.contains("last pulled 35d ago, not within 4w"), "\(plan.stdoutText)")
            let applied = try await regkeeper(["retain", "--policy", policy.path, "--gc", "--grace-period", "0", "--settle", "0"] + store)
            #expect(applied.status == 0, "\(applied.stderrText)")

            #expect(try await client.tags(repository: "app") == ["multi", "pulled"])
            #expect(try await client.tags(repository: "tools/lint") == ["pinned"])
            for (repository, tag) in [("app", "pulled"), ("app", "multi"), ("tools/lint", "pinned")] {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
            for child in index.children { try await Skopeo.pull(server: server, repository: "app", reference: child.digest) }
            for (repository, tag) in [("app", "idle"), ("app", "old"), ("tools/lint", "idle")] {
                #expect(await !Skopeo.pullSucceeds(server: server, repository: repository, reference: tag))
            }
        }
    }
}
