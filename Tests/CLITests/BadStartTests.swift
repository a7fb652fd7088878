import Foundation
import RegistryHarness
import RegistryStore
import Testing

/// The mistakes an operator makes when starting a run: a malformed or negative span, a root
/// that holds no store, a store on a read-only filesystem, a hostile policy. Each gets one
/// `regkeeper:` line naming what is at fault and the documented exit status, never a crash
/// or a Foundation error dump.
@Suite struct BadStartTests {
    typealias Run = GCCommandTests.Run

    func regkeeper(_ arguments: [String]) throws -> Run {
        try GCCommandTests.regkeeper(arguments)
    }

    /// Exactly one line on standard error, starting `regkeeper: ` and holding every fragment.
    func expectOneLine(_ run: Run, status: Int32, naming fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == status, "\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("regkeeper: ") && run.stderr.hasSuffix("\n"), "\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(run.stderr.contains(fragment), "\(fragment) in \(run.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// A store with nothing in it but its registry tree.
    static func emptyStore() throws -> URL {
        try GCCommandTests.store { _ in }
    }

    // MARK: Spans and sizes

    /// Every duration option of every command, with the command line before it.
    static let durationOptions: [([String], String)] = [
        (["gc"], "--grace-period"), (["gc"], "--upload-max-age"), (["gc"], "--trash-keep"), (["gc"], "--wait"), (["gc"], "--settle"),
        (["gc", "undo", "--last"], "--wait"),
        (["retain", "--policy", "p.yaml"], "--grace-period"), (["retain", "--policy", "p.yaml"], "--wait"), (["retain", "--policy", "p.yaml"], "--settle"),
        (["verify"], "--max-age"), (["verify"], "--time-limit"), (["verify"], "--wait"),
        (["report"], "--upload-max-age"), (["report"], "--wait"),
        (["backup", "--output", "x.tar.zst"], "--wait"), (["history"], "--wait"),
        (["restore", "a.tar.zst"], "--wait"),
    ]

    /// `-1h` once read as a flag ("missing value"); now every duration option says that
    /// durations are not negative, as a usage error.
    @Test(arguments: durationOptions)
    func negativeDurationsAreRefusedByName(command: [String], option: String) throws {
        let run = try regkeeper(command + [option, "-1h", "--root", "/nonexistent/store"])
        expectOneLine(run, status: 64, naming: ["'-1h'", option, "durations are not negative"])
    }

    @Test func negativeSizesAreRefusedByName() throws {
        let run = try regkeeper(["verify", "--budget", "-5GiB", "--root", "/nonexistent/store"])
        expectOneLine(run, status: 64, naming: ["'-5GiB'", "--budget", "sizes are not negative"])
    }

    /// Spans and sizes are parsed into their types when the command line is: a malformed one
    /// says which option and what to write, a zero where zero makes no sense is refused, and
    /// good ones (defaults shown in --help) reach the run.
    @Test func spansAndSizesAreParsedWithTheCommandLine() throws {
        expectOneLine(try regkeeper(["gc", "--grace-period", "soon", "--root", "/nonexistent/store"]), status: 64,
                      naming: ["'soon'", "--grace-period", "not a duration", "regkeeper gc --help"])
        expectOneLine(try regkeeper(["gc", "--grace-period", "--dry-run", "--root", "/nonexistent/store"]), status: 64,
                      naming: ["'--dry-run'", "--grace-period", "not a duration"])
        expectOneLine(try regkeeper(["verify", "--budget", "5 GiB", "--root", "/nonexistent/store"]), status: 64,
                      naming: ["'5 GiB'", "--budget", "not a size"])
        expectOneLine(try regkeeper(["verify", "--time-limit", "0", "--root", "/nonexistent/store"]), status: 64,
                      naming: ["--time-limit", "positive"])
        expectOneLine(try regkeeper(["verify", "--budget", "0", "--root", "/nonexistent/store"]), status: 64,
                      naming: ["--budget", "positive"])

        let root = try Self.emptyStore()
        let gc = try regkeeper(["gc", "--dry-run", "--quiet", "--grace-period", "0", "--upload-max-age", "1d12h", "--trash-keep", "1w", "--wait", "1s", "--root", root.path])
        #expect(gc.status == 0, "\(gc.stderr)")
        let verify = try regkeeper(["verify", "--quiet", "--max-age", "30d", "--budget", "1KiB", "--time-limit", "1m", "--root", root.path])
        #expect(verify.status == 0, "\(verify.stderr)")
        let help = try regkeeper(["gc", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("(e.g. 1h, 0). (default: 1h)") && help.contains("than this. (default: 1w)"), "\(help)")
    }

    // MARK: A root that is no store

    /// Every command that reads an existing store, each with what it needs besides the store.
    static let storeCommands: [[String]] = [
        ["gc"], ["gc", "--dry-run"], ["gc", "undo", "--last"], ["retain", "--dry-run", "--policy", defaultPolicy],
        ["verify"], ["verify", "--list-quarantine"], ["report"], ["backup", "--dry-run"],
    ]

    /// The policy the project ships, so that retain gets as far as the store.
    static let defaultPolicy = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("policies/default.yaml").path

    /// A mistyped --root used to be an empty, healthy store (exit 0) and got a .regkeeper
    /// directory; now it is refused before anything is locked or written.
    @Test(arguments: storeCommands)
    func aRootWithoutARegistryTreeIsNoStore(command: [String]) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-not-a-store-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let run = try regkeeper(command + ["--root", root.path])
        expectOneLine(run, status: 1, naming: ["not a registry store: \(root.path) has no docker/registry/v2"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).isEmpty, "nothing is created in a root that is no store")
    }

    @Test func aLinkedOrFileRegistryTreeIsRefusedByName() throws {
        let linked = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-linked-\(UUID())")
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-elsewhere-\(UUID())")
        try FileManager.default.createDirectory(at: linked.appendingPathComponent("docker/registry"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: linked.appendingPathComponent("docker/registry/v2"), withDestinationURL: elsewhere)
        expectOneLine(try regkeeper(["gc", "--root", linked.path]), status: 1,
                      naming: ["\(linked.path)/docker/registry/v2", "symbolic link"])

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-file-tree-\(UUID())")
        try FileManager.default.createDirectory(at: file.appendingPathComponent("docker"), withIntermediateDirectories: true)
        try Data().write(to: file.appendingPathComponent("docker/registry"))
        expectOneLine(try regkeeper(["report", "--root", file.path]), status: 1,
                      naming: ["\(file.path)/docker/registry is not a directory"])
    }

    /// History and the backup catalog live in the state directory: they still answer for a
    /// root without a registry tree.
    @Test func stateOnlyCommandsNeedNoRegistryTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-state-only-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let history = try regkeeper(["history", "--root", root.path])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(history.stdout.contains("no runs recorded yet"))
        // No backup was ever taken here: the catalog is missing (and not created), but the
        // registry tree is not what is asked for.
        let list = try regkeeper(["backup", "list", "--root", root.path])
        #expect(!list.stderr.contains("not a registry store") && list.stderr.contains("backup catalog"), "\(list.stderr)")
    }

    // MARK: A store whose state directory cannot be created

    /// A store mounted read-only (say, a snapshot to verify): even the read-only commands need
    /// the lock in <root>/.regkeeper. Once a Foundation error dump, now the directory, the
    /// cause and --state-dir; with --state-dir elsewhere, verify runs.
    @Test(.enabled(if: getuid() == 0, "mounts a read-only tmpfs"))
    func aReadOnlyStoreNamesTheStateDirectoryAndTheFix() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-read-only-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try ProcessRunner.runBlocking("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", root.path])
        defer { _ = try? ProcessRunner.runBlocking("umount", [root.path]) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("docker/registry/v2"), withIntermediateDirectories: true)
        try ProcessRunner.runBlocking("mount", ["-o", "remount,ro", root.path])

        for command in [["gc"], ["verify"], ["report"], ["backup", "--dry-run"]] {
            expectOneLine(try regkeeper(command + ["--root", root.path]), status: 1,
                          naming: ["cannot create state directory \(root.path)/.regkeeper", "Read-only file system", "--state-dir DIR on a writable filesystem"])
        }
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-state-\(UUID())")
        let verify = try regkeeper(["verify", "--quiet", "--root", root.path, "--state-dir", elsewhere.path])
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    /// The same for a user who may not write the root (the registry's files, another user's run).
    @Test(.enabled(if: getuid() == 0, "runs regkeeper as nobody through setpriv"))
    func anUnwritableRootNamesTheStateDirectoryAndTheFix() throws {
        let root = try Self.emptyStore()
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: root.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.path) }
        let binary = GCCommandTests.productsDirectory.appendingPathComponent("regkeeper").path
        for command in [["gc", "--dry-run"], ["verify"], ["report"]] {
            let run = try GCCommandTests.run("setpriv", ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", binary] + command + ["--root", root.path])
            expectOneLine(run, status: 1, naming: ["cannot create state directory \(root.path)/.regkeeper", "Permission denied", "--state-dir DIR"])
        }
    }

    // MARK: A machine without libcurl

    /// libcurl is loaded on the first S3 request, not linked: on a machine without it, local
    /// stores work and an s3:// root gets one line naming the library and its package. The
    /// library is hidden by mounting an empty file over it in a private mount namespace;
    /// the same command outside it reaches libcurl (a refused connection), so the check can fail.
    @Test(.enabled(if: getuid() == 0, "mounts over libcurl in a private mount namespace"))
    func withoutLibcurlLocalStoresWorkAndS3NamesTheLibrary() throws {
        let root = try Self.emptyStore()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-state-\(UUID())")
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-no-libcurl-\(UUID())")
        try Data().write(to: empty)
        defer { try? FileManager.default.removeItem(at: empty) }
        let library = try ProcessRunner.runBlocking("/bin/sh", ["-c", "ldconfig -p | awk '/libcurl\\.so\\.4 /{print $NF; exit}'"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(library.hasSuffix("libcurl.so.4"), "ldconfig knows no libcurl.so.4: \(library)")
        let binary = GCCommandTests.productsDirectory.appendingPathComponent("regkeeper").path
        let s3 = ["report", "--root", "s3://registry", "--s3-endpoint", "http://127.0.0.1:1", "--state-dir", state.path]
        func withoutLibcurl(_ arguments: [String]) throws -> Run {
            try GCCommandTests.run("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c",
                                               "mount --bind \"$1\" \"$2\" && shift 2 && exec env AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b \"$@\"",
                                               "without-libcurl", empty.path, library, binary] + arguments)
        }

        let local = try withoutLibcurl(["verify", "--quiet", "--root", root.path, "--state-dir", state.path])
        #expect(local.status == 0, "\(local.stderr)")
        expectOneLine(try withoutLibcurl(s3), status: 1,
                      naming: ["s3:// roots need libcurl (Debian package libcurl4), which could not be loaded", "libcurl.so.4"])
        let reached = try GCCommandTests.run("/usr/bin/env", ["AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b", binary] + s3)
        expectOneLine(reached, status: 1, naming: ["ListObjectsV2 failed", "(curl error 7)"])
    }

    // MARK: A hostile policy

    /// A policy nested thousands of levels deep, one way YAML nests, and the line on which its
    /// 65th level opens; named by its shape in test results rather than by 20,000 brackets.
    struct DeepPolicy: Sendable, CustomTestStringConvertible {
        var shape: String
        var text: String
        var line: Int
        var testDescription: String { shape }
    }

    static let deepPolicies = [
        DeepPolicy(shape: "flow sequences", text: String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000), line: 1),
        DeepPolicy(shape: "flow mappings", text: String(repeating: "{a: ", count: 5000) + "1" + String(repeating: "}", count: 5000), line: 1),
        DeepPolicy(shape: "block sequences", text: (0..<5000).map { String(repeating: " ", count: 2 * $0) + "-" }.joined(separator: "\n"), line: 65),
        DeepPolicy(shape: "block mappings", text: (0..<5000).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " 1", line: 65),
    ]

    /// Yams recursed until the stack overflowed (SIGSEGV) on such files; now both commands
    /// that read policies refuse them with FILE:LINE before Yams sees them.
    @Test(arguments: deepPolicies)
    func aDeeplyNestedPolicyIsRefusedBeforeParsing(_ deep: DeepPolicy) throws {
        let policy = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-deep-\(UUID()).yaml")
        try (deep.text + "\n").write(to: policy, atomically: true, encoding: .utf8)
        let reason = "\(policy.path):\(deep.line): nested deeper than 64 levels"

        let check = try regkeeper(["policy", "check", policy.path])
        #expect(check.status == 1, "\(deep.shape): \(check.stderr)")
        #expect(check.stderr == "\(reason); a policy needs fewer than 10\nregkeeper: 1 of 1 policy file(s) are invalid\n", "\(deep.shape)")

        let retain = try regkeeper(["retain", "--dry-run", "--policy", policy.path, "--root", try Self.emptyStore().path])
        expectOneLine(retain, status: 1, naming: ["regkeeper: invalid policy: " + reason])
    }
}
