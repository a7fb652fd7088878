import Foundation
import Integrity
import RegistryHarness
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport
import Testing

/// The built `regkeeper verify` binary: exit statuses, JSON, quarantine listing, and the
/// unreadable case, which needs a user that file permissions bind.
@Suite struct VerifyCommandTests {
    @Test func cleanStoreExitsZeroAndDamageExitsFive() throws {
        let fixture = try SampleImageStore(.local)
        let clean = try regkeeper(fixture, ["--json"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(try decode(clean.stdout).findings.isEmpty)

        let layer = fixture.other.layers[1]
        try fixture.damage(layer) { $0[3] ^= 0x10 }
        let damaged = try regkeeper(fixture, ["--quiet"])
        #expect(damaged.status == 5)
        #expect(damaged.stdout.hasPrefix("corrupt \(Layout.blobData(layer)) (\(layer)): content hashes to sha256:"))
        #expect(damaged.stdout.hasSuffix("; breaks team/other:latest\n"))
        #expect(damaged.stderr == "regkeeper: damage found: 1 finding(s)\n")
    }

    @Test func quarantineThenListQuarantine() throws {
        let fixture = try SampleImageStore(.local)
        let layer = fixture.app.layers[0]
        try fixture.damage(layer) { $0[0] ^= 0x01 }
        let quarantined = try regkeeper(fixture, ["--quarantine", "--json"])
        #expect(quarantined.status == 5, "\(quarantined.stderr)")
        let report = try decode(quarantined.stdout)
        #expect(report.counts.quarantined == 1)
        #expect(report.findings.map(\.kind) == [.corrupt])

        let listed = try regkeeper(fixture, ["--list-quarantine", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let records = try JSONDecoder.iso8601.decode([QuarantineRecord].self, from: Data(listed.stdout.utf8))
        #expect(records.map(\.digest) == [layer.description])
        #expect(records.first?.affectedTags == ["app:v1", "team/other:latest"])
        #expect(FileManager.default.fileExists(atPath: records[0].quarantinePath + "/data"))

        // Quarantine changes the store, so it is a run in the history.
        let history = try run(Self.binary, ["history", "--json", "--root", try #require(fixture.root).path, "--state-dir", fixture.stateDirectory.path])
        #expect(history.status == 0, "\(history.stderr)")
        let runs = try JSONDecoder.iso8601.decode([RunSummary].self, from: Data(history.stdout.utf8))
        #expect(runs.map(\.command) == ["verify --quarantine"])
        #expect(runs.first?.counts["quarantined"] == 1)
    }

    /// FIFOs where the registry keeps a layer link, a tag's link and a blob's content: verify
    /// must not wait for a writer that never comes. It names each and ends (the runner kills
    /// it after 60 s); gc's dry run ends too, refusing.
    @Test func fifosInTheStoreAreNamedWithoutWaiting() throws {
        let fixture = try SampleImageStore(.local)
        let root = try #require(fixture.root)
        let layerLink = Layout.layerLinkDirectory("app", fixture.app.layers[0]).appending("link")!
        let tagLink = Layout.tagCurrentLink("team/other", "latest")
        let blob = Layout.blobData(fixture.other.layers[1])
        for path in [layerLink, tagLink, blob] {
            let file = root.appendingPathComponent(path.description)
            try FileManager.default.removeItem(at: file)
            #expect(mkfifo(file.path, 0o644) == 0)
        }
        let verify = try regkeeper(fixture, [])
        #expect(verify.status == 5, "\(verify.stdout)\(verify.stderr)")
        for path in [layerLink, tagLink, blob.parent!] {
            #expect(verify.stdout.contains(path.description), "\(path) in \(verify.stdout)")
        }
        // gc cannot tell what the tag's link would say: it refuses, naming it.
        let gc = try run(Self.binary, ["gc", "--dry-run", "--root", root.path, "--state-dir", fixture.stateDirectory.path])
        #expect(gc.status == 3 && gc.stderr.contains("refusing to sweep") && gc.stderr.contains("\(tagLink): not a regular file"), "\(gc.stdout)\(gc.stderr)")
    }

    @Test func badInputCannotRun() throws {
        let fixture = try SampleImageStore(.local)
        #expect(try regkeeper(fixture, ["--budget", "lots"]).status == 64)
        #expect(try regkeeper(fixture, ["--list-quarantine", "--quarantine"]).status == 64)
        let missing = try run(Self.binary, ["verify", "--root", "/nonexistent/store"])
        #expect(missing.status == 1)
    }

    /// Root reads any file, so the check runs as `nobody` through setpriv when the tests run
    /// as root; as any other user, the mode alone binds.
    @Test func unreadableBlobIsUnreadable() throws {
        let fixture = try SampleImageStore(.local)
        let root = try #require(fixture.root)
        let layer = fixture.app.layers[1]
        let data = root.appendingPathComponent(Layout.blobData(layer).description).path
        #expect(chmod(data, 0) == 0)
        try FileManager.default.createDirectory(at: fixture.stateDirectory, withIntermediateDirectories: true)
        var command = [Self.binary, "verify", "--root", root.path, "--state-dir", fixture.stateDirectory.path, "--json"]
        if getuid() == 0 {
            let nobody = try #require(getpwnam("nobody")?.pointee)
            #expect(chown(fixture.stateDirectory.path, nobody.pw_uid, nobody.pw_gid) == 0)
            command = ["/usr/bin/setpriv", "--reuid=\(nobody.pw_uid)", "--regid=\(nobody.pw_gid)", "--clear-groups", "--"] + command
        }
        let result = try run(command[0], Array(command.dropFirst()))
        #expect(result.status == 5, "\(result.stderr)")
        let report = try decode(result.stdout)
        #expect(report.findings.map(\.kind) == [.unreadable])
        #expect(report.findings.map(\.path) == [Layout.blobData(layer)] && report.findings.map(\.digest) == [layer])
        #expect(report.findings.map { $0.affectedTags.map(\.description) } == [["app:v1"]])
        #expect(report.findings.first?.message.contains("Permission denied") == true)
    }

    /// verify closes the state database without checkpointing (its end would wait for two
    /// fsyncs): its records stay in the write-ahead log, where the next run reads them, until
    /// another command's close moves them into the database file.
    @Test func recordsLeftInTheWriteAheadLogAreReadAndLaterCheckpointed() throws {
        let fixture = try SampleImageStore(.local)
        let log = fixture.stateDirectory.appendingPathComponent("state.db-wal")
        let first = try regkeeper(fixture, ["--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let blobs = try decode(first.stdout).counts.blobsHashed
        #expect(blobs > 0)
        let logged = try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int ?? 0
        #expect(logged > 0, "the records are in the log")

        func recentlyVerified() throws -> (recent: Int, hashed: Int) {
            let again = try regkeeper(fixture, ["--json", "--max-age", "1h"])
            #expect(again.status == 0, "\(again.stderr)")
            let counts = try decode(again.stdout).counts
            return (counts.recentlyVerified, counts.blobsHashed)
        }
        #expect(try recentlyVerified() == (blobs, 0), "read back from the log")

        let history = try run(Self.binary, ["history", "--json", "--root", try #require(fixture.root).path, "--state-dir", fixture.stateDirectory.path])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(!FileManager.default.fileExists(atPath: log.path), "checkpointed and removed by history's close")
        #expect(try recentlyVerified() == (blobs, 0), "read back from the database file")
    }

    // MARK: Running the binary

    static let binary = BuiltProducts.executable("regkeeper")

    private func regkeeper(_ fixture: SampleImageStore, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let root = try #require(fixture.root)
        return try run(Self.binary, ["verify", "--root", root.path, "--state-dir", fixture.stateDirectory.path] + arguments)
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the regkeeper executable first (swift build)")
        let output = try ProcessRunner.runBlocking(executable, arguments, allowFailure: true)
        return (output.status, output.stdoutText, output.stderrText)
    }

    private func decode(_ json: String) throws -> VerifyReport {
        try JSONDecoder.iso8601.decode(VerifyReport.self, from: Data(json.utf8))
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

