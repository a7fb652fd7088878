import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport
import Testing

/// The built `regkeeper` binary, run as an operator would: exit statuses, output, refusals.
@Suite struct GCCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func regkeeper(_ arguments: [String]) throws -> Run {
        try run(productsDirectory.appendingPathComponent("regkeeper").path, arguments)
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Run {
        let output = try ProcessRunner.runBlocking(executable, arguments, allowFailure: true)
        return Run(status: output.status, stdout: output.stdoutText, stderr: output.stderrText)
    }

    static var productsDirectory: URL { BuiltProducts.directory }

    /// A store root with its registry tree, which regkeeper requires even when it is empty.
    static func store(_ build: (StoreBuilder) throws -> Void) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-cli-\(UUID())")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("docker/registry/v2"), withIntermediateDirectories: true)
        try build(StoreBuilder(storage: LocalStorage(root: root.path)))
        return root
    }

    let old = Date().addingTimeInterval(-86_400)

    @Test func dryRunListsThePlanAndDeletesNothing() async throws {
        let old = old
        var orphan: Digest!
        let root = try Self.store { builder in
            try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: old)
            orphan = try builder.blob(layerBytes("orphan"), modified: old)
        }
        let run = try Self.regkeeper(["gc", "--dry-run", "--root", root.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("blob \(orphan!)"))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(Layout.blobData(orphan).description).path))

        let json = try Self.regkeeper(["gc", "--dry-run", "--json", "--root", root.path])
        let plan = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let blobs = plan?["blobs"] as? [[String: Any]]
        #expect(blobs?.map { $0["digest"] as? String } == [orphan.description])

        let metrics = root.appendingPathComponent("gc.prom").path
        let real = try Self.regkeeper(["gc", "--settle", "0", "--root", root.path, "--metrics-file", metrics])
        #expect(real.status == 0, "\(real.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent(Layout.blobData(orphan).description).path))

        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(text.contains("regkeeper_gc_blobs_deleted 1\n"))
        #expect(text.contains("regkeeper_gc_last_run_success 1\n"))
        let history = try StateStore.open(at: root.appendingPathComponent(".regkeeper/state.db"))
        let runs = try await history.runs(limit: 10)
        #expect(runs.map(\.command) == ["gc"])
        #expect(runs.first?.status == "success")
        let detail = try await history.run(runs[0].id)
        #expect(detail.deletions.map(\.digest) == [orphan.description])
    }

    /// `trash: {keepFor}` in <state-dir>/regkeeper.yaml makes every gc trash what it sweeps;
    /// `--no-trash` overrides it, and a bad file refuses the run before anything is touched.
    @Test func settingsFileMakesTrashTheDefault() throws {
        let old = old
        var first: Digest!
        var second: Digest!
        let root = try Self.store { builder in
            try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: old)
            first = try builder.blob(layerBytes("first orphan"), modified: old)
        }
        let state = root.appendingPathComponent(".regkeeper")
        let settings = state.appendingPathComponent("regkeeper.yaml")
        let blobPath = { (digest: Digest) in root.appendingPathComponent(Layout.blobData(digest).description).path }
        let trashRuns = { try FileManager.default.contentsOfDirectory(atPath: state.appendingPathComponent("trash").path).filter { $0.hasPrefix("run-") } }
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)

        try "trash:\n  keepfor: 48h\n".write(to: settings, atomically: true, encoding: .utf8)
        let refused = try Self.regkeeper(["gc", "--root", root.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("regkeeper.yaml:2: unknown key trash.keepfor"), "\(refused.stderr)")
        #expect(FileManager.default.fileExists(atPath: blobPath(first)))

        try "trash:\n  keepFor: 48h\n".write(to: settings, atomically: true, encoding: .utf8)
        let trashed = try Self.regkeeper(["gc", "--settle", "0", "--root", root.path])
        #expect(trashed.status == 0, "\(trashed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: blobPath(first)))
        #expect(try trashRuns().count == 1)
        let undone = try Self.regkeeper(["gc", "undo", "--last", "--root", root.path])
        #expect(undone.status == 0, "\(undone.stderr)")
        #expect(FileManager.default.fileExists(atPath: blobPath(first)), "the settings' trash is the one undo reads")

        second = try StoreBuilder(storage: LocalStorage(root: root.path)).blob(layerBytes("second orphan"), modified: old)
        let deleted = try Self.regkeeper(["gc", "--no-trash", "--settle", "0", "--root", root.path])
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: blobPath(first)))
        #expect(!FileManager.default.fileExists(atPath: blobPath(second)))
        #expect(try trashRuns().isEmpty, "--no-trash deletes outright")
    }

    @Test func brokenManifestRefusesWithStatus3() throws {
        let old = old
        var orphan: Digest!
        let root = try Self.store { builder in
            try builder.manifest(Data("{broken".utf8), in: "app", modified: old)
            orphan = try builder.blob(layerBytes("orphan"), modified: old)
        }
        let run = try Self.regkeeper(["gc", "--root", root.path])
        #expect(run.status == 3)
        #expect(run.stderr.contains("app@sha256:") && run.stderr.contains("--allow-broken"))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(Layout.blobData(orphan).description).path))
        #expect(try Self.regkeeper(["gc", "--allow-broken", "--settle", "0", "--root", root.path]).status == 0)
    }

    @Test func heldLockFailsFastWithStatus2() throws {
        let root = try Self.store { _ in }
        let lock = try StoreLock(stateDirectory: root.appendingPathComponent(".regkeeper").path, mode: .exclusive, command: "test holder")
        let run = try Self.regkeeper(["gc", "--settle", "0", "--root", root.path])
        #expect(run.status == 2)
        #expect(run.stderr.contains("test holder"))
        withExtendedLifetime(lock) {}
    }

    @Test func logLevelControlsLogLines() throws {
        let root = try Self.store { _ in }
        let info = try Self.regkeeper(["gc", "--dry-run", "--quiet", "--log-level", "info", "--root", root.path])
        #expect(info.status == 0)
        #expect(info.stderr.contains("mark finished in"))
        let quiet = try Self.regkeeper(["gc", "--dry-run", "--quiet", "--root", root.path])
        #expect(quiet.stderr.isEmpty && quiet.stdout.isEmpty)
        #expect(try Self.regkeeper(["gc", "--log-level", "loud", "--root", root.path]).status == 64)
    }

    @Test func badInputIsAClearError() throws {
        let missing = try Self.regkeeper(["gc", "--root", "/nonexistent/store"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nonexistent/store"))
        let noStore = try Self.regkeeper(["gc", "--config", "/nonexistent/config.yml"])
        #expect(noStore.status == 1)
        #expect(noStore.stderr.contains("/nonexistent/config.yml"))
        let duration = try Self.regkeeper(["gc", "--grace-period", "soon", "--root", "/tmp"])
        #expect(duration.status == 64)
        #expect(duration.stderr.contains("soon"))
    }
}
