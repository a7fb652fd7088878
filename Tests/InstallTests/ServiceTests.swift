import Foundation
import RegistryHarness
import Testing

/// Each installed service started as systemd would start it (its `ExecStart=` lines, in the
/// environment file's environment, see `ServiceRun`) against a store pushed through the real
/// registry, which keeps serving meanwhile; the outcomes are checked in the store, the
/// metrics, the backups and with skopeo.
@Suite struct ServiceTests {
    struct Setup {
        var install: ScratchInstall
        var root: URL
        var server: RegistryServer
        var sample: SampleStore
        var backups: URL { install.directory.appendingPathComponent("backup") }
        var metrics: URL { install.directory.appendingPathComponent("metrics") }
        var registry: URL { root.appendingPathComponent("docker/registry/v2") }

        func start(_ service: String) throws -> [ServiceRun.Step] {
            try ServiceRun(unit: try install.unit(service)).start()
        }

        func metric(_ file: String, _ line: String) throws -> Bool {
            try String(contentsOf: metrics.appendingPathComponent(file), encoding: .utf8).contains(line + "\n")
        }

        func regkeeper(_ arguments: [String]) throws -> ProcessOutput {
            try ProcessRunner.runBlocking(install.prefix.appendingPathComponent("bin/regkeeper").path, arguments, timeout: 120, allowFailure: true)
        }
    }

    /// The installed units and a pushed store, the environment file pointing at it all: the
    /// operator's one edit.
    static func withSetup(policy: String = "", pullLog: String? = nil, _ body: (Setup) async throws -> Void) async throws {
        let install = try ScratchInstall.make()
        defer { install.remove() }
        let root = install.directory.appendingPathComponent("store")
        let server = try await RegistryServer.start(root: root)
        defer { server.stop() }
        let sample = try await SampleStore.push(to: RegistryClient(server: server))
        // Pushed two hours ago, as far as gc's grace period and retention's ages can tell.
        try ProcessRunner.runBlocking("/usr/bin/find", [root.path, "-exec", "touch", "-h", "-d", "2 hours ago", "{}", "+"])

        let config = install.directory.appendingPathComponent("config.yml")
        try "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: \(root.path)\n".write(to: config, atomically: true, encoding: .utf8)
        let policyFile = install.directory.appendingPathComponent("policy.yaml")
        try policy.write(to: policyFile, atomically: true, encoding: .utf8)
        let setup = Setup(install: install, root: root, server: server, sample: sample)
        for directory in [setup.backups, setup.metrics] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        var overrides = [
            "REGKEEPER_CONFIG": config.path, "REGKEEPER_POLICY": policyFile.path,
            "REGKEEPER_BACKUP_DIR": setup.backups.path, "REGKEEPER_METRICS_DIR": setup.metrics.path,
        ]
        if let pullLog {
            let log = install.directory.appendingPathComponent("access.log")
            try pullLog.write(to: log, atomically: true, encoding: .utf8)
            overrides["REGKEEPER_PULL_LOGS"] = log.path
        }
        try EnvironmentFile.rewrite(install.environmentFile, overrides: overrides)
        try await body(setup)
    }

    static func expectSucceeded(_ steps: [ServiceRun.Step], count: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(steps.count == count, sourceLocation: sourceLocation)
        for step in steps {
            #expect(step.output.status == 0, "\(step.command.joined(separator: " ")): \(step.output.stderrText)", sourceLocation: sourceLocation)
        }
    }

    @Test func nightlyAppliesThePolicyThenTrashesWhatItFreed() async throws {
        let policy = """
            version: 1
            rules:
              - name: app
                repositories: ["library/app"]
                keep:
                  - tags: ["latest"]
                untagged: {delete: true, olderThan: 1h}
            safety:
              maxDeletePercent: 100
            """
        // The registry's access log, as the environment file names it: one pull of latest, a
        // minute ago (after the push, two hours ago, so it resolves through the tag's history).
        let time = DateFormatter()
        time.locale = Locale(identifier: "en_US_POSIX")
        time.timeZone = TimeZone(identifier: "UTC")
        time.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
        let pullLog = "127.0.0.1 - - [\(time.string(from: Date().addingTimeInterval(-60)))] "
            + #""GET /v2/library/app/manifests/latest HTTP/1.1" 200 248 "" "skopeo/1.9.3""# + "\n"
        try await Self.withSetup(policy: policy, pullLog: pullLog) { setup in
            let v1 = setup.sample.tagged.first { $0.repository == "library/app" && $0.tags.contains("v1") }!
            let kept = setup.sample.tagged.filter { $0.digest != v1.digest }.reduce(setup.sample.referrer.allBlobDigests) { $0.union($1.allBlobDigests) }
            let freed = v1.allBlobDigests.subtracting(kept)
            #expect(!freed.isEmpty)

            let unit = try setup.install.unit("regkeeper-nightly.service")
            let steps = try ServiceRun(unit: unit).start()
            Self.expectSucceeded(steps, count: 3)
            #expect(steps.first?.command.prefix(2) == ["/bin/sh", "-c"] && steps.dropFirst().map { $0.command[1] } == ["retain", "gc"])
            #expect(steps[2].command.contains("--trash"))
            let pulls = try ProcessRunner.runBlocking("/usr/bin/sqlite3", [
                setup.root.appendingPathComponent(".regkeeper/state.db").path, "SELECT repository, tag FROM pulls",
            ])
            #expect(pulls.stdoutText == "library/app|latest\n", "the pull was imported before retention")

            let tags = setup.registry.appendingPathComponent("repositories/library/app/_manifests/tags")
            #expect(try FileManager.default.contentsOfDirectory(atPath: tags.path).sorted() == ["latest"])
            let inStore = { (digest: String) in
                let hex = digest.dropFirst("sha256:".count)
                return FileManager.default.fileExists(atPath: setup.registry.appendingPathComponent("blobs/sha256/\(hex.prefix(2))/\(hex)/data").path)
            }
            for digest in freed.union([setup.sample.orphan.digest]) { #expect(!inStore(digest), "\(digest) is still in the store") }
            for digest in kept { #expect(inStore(digest), "\(digest) was swept") }
            let trash = try FileManager.default.contentsOfDirectory(atPath: setup.root.appendingPathComponent(".regkeeper/trash").path)
            #expect(trash.contains { $0.hasPrefix("run-") }, "gc --trash kept what it swept")
            #expect(try setup.metric("regkeeper-retain.prom", "regkeeper_retain_last_run_success 1"))
            #expect(try setup.metric("regkeeper-gc.prom", "regkeeper_gc_last_run_success 1"))

            // systemd then restarts the registry the environment file names; the test's own here.
            #expect(try unit.commands("ExecStartPost", environment: try unit.environment()) == [["/bin/systemctl", "try-restart", "docker-registry.service"]])
            try await setup.server.restart()
            for (repository, tag) in setup.sample.tagReferences where !(repository == "library/app" && tag == "v1") {
                try await Skopeo.pull(server: setup.server, repository: repository, reference: tag)
            }
            #expect(await !Skopeo.pullSucceeds(server: setup.server, repository: "library/app", reference: "v1"))
        }
    }

    @Test func verifyPassesOnAHealthyStoreAndFailsOnDamage() async throws {
        try await Self.withSetup { setup in
            let unit = try setup.install.unit("regkeeper-verify.service")
            let healthy = try ServiceRun(unit: unit).start()
            Self.expectSucceeded(healthy, count: 1)
            #expect(healthy[0].command.contains("--max-age") && healthy[0].command.contains("7d"))
            #expect(healthy[0].command.contains("--time-limit") && healthy[0].command.contains("1h"))
            #expect(try setup.metric("regkeeper-verify.prom", "regkeeper_verify_last_run_success 1"))
            let metrics = try String(contentsOf: setup.metrics.appendingPathComponent("regkeeper-verify.prom"), encoding: .utf8)
            let findings = metrics.split(separator: "\n").filter { $0.hasPrefix("regkeeper_verify_findings{") }
            #expect(!findings.isEmpty && findings.allSatisfy { $0.hasSuffix(" 0") }, "\(metrics)")

            // A layer cut short is found even though --max-age skips rehashing it: sizes are
            // checked on every run.
            let layer = setup.sample.tagged[0].layers[0].digest.dropFirst("sha256:".count)
            let data = setup.registry.appendingPathComponent("blobs/sha256/\(layer.prefix(2))/\(layer)/data")
            try FileHandle(forWritingTo: data).truncate(atOffset: 10)
            let damaged = try ServiceRun(unit: unit).start()
            #expect(damaged.count == 1 && damaged[0].output.status == 5, "\(damaged.last?.output.stderrText ?? "")")
            let after = try String(contentsOf: setup.metrics.appendingPathComponent("regkeeper-verify.prom"), encoding: .utf8)
            #expect(after.split(separator: "\n").contains { $0.hasPrefix("regkeeper_verify_findings{") && !$0.hasSuffix(" 0") }, "\(after)")
        }
    }

    @Test func backupsChainFullThenIncrementalAndRestore() async throws {
        try await Self.withSetup { setup in
            // Until a full backup exists, the nightly incremental refuses: the full one runs first.
            let early = try setup.start("regkeeper-backup.service")
            #expect(early.count == 1 && early[0].output.status == 1, "\(early[0].output.stderrText)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: setup.backups.path).filter { $0.hasSuffix(".tar.zst") }.isEmpty)

            Self.expectSucceeded(try setup.start("regkeeper-backup-full.service"), count: 1)
            var builder = ImageBuilder(client: RegistryClient(server: setup.server), seed: 99)
            let late = try await builder.pushImage(repository: "late/app", tag: "v1")
            Self.expectSucceeded(try setup.start("regkeeper-backup.service"), count: 1)
            #expect(try setup.metric("regkeeper-backup.prom", "regkeeper_backup_last_run_success 1"))

            let archives = try FileManager.default.contentsOfDirectory(atPath: setup.backups.path).filter { $0.hasSuffix(".tar.zst") }.sorted()
            #expect(archives.count == 2)
            #expect(archives.contains { $0.wholeMatch(of: /registry-\d{8}T\d{6}-full\.tar\.zst/) != nil }, "\(archives)")
            #expect(archives.contains { $0.wholeMatch(of: /registry-\d{8}T\d{6}-incremental\.tar\.zst/) != nil }, "\(archives)")

            // The chain restores, and every tag pulls from it, the one pushed in between too.
            let restored = setup.install.directory.appendingPathComponent("restored")
            let restore = try setup.regkeeper(["restore", "--catalog", setup.backups.path, "--latest", "--root", restored.path])
            #expect(restore.status == 0, "\(restore.stderrText)")
            let server = try await RegistryServer.start(root: restored)
            defer { server.stop() }
            for (repository, tag) in setup.sample.tagReferences + [(late.repository, "v1")] {
                try await Skopeo.pull(server: server, repository: repository, reference: tag)
            }
        }
    }
}
