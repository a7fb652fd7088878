import Archive
import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `kill -9` of the real `regkeeper` binary in the middle of a backup and of a restore, then a
/// rerun: no file with the archive's name until it is complete, no half store in the target.
@Suite(.serialized) struct KillTests {
    static var regkeeper: URL { URL(fileURLWithPath: BuiltProducts.executable("regkeeper")) }

    static func run(_ arguments: [String]) throws -> (Int32, String) {
        let run = try Regkeeper.run(arguments)
        return (run.status, run.stdout + run.stderr)
    }

    /// Starts the binary and kills it once `landed` says it is mid-way.
    static func killMidway(_ arguments: [String], landed: () -> Bool) async throws -> Bool {
        let process = Process()
        process.executableURL = regkeeper
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var killedMidway = false
        while process.isRunning {
            if landed() {
                kill(process.processIdentifier, SIGKILL)
                killedMidway = true
                break
            }
            // On this thread: a suspended task may not be resumed in time on a pool busy with other suites.
            usleep(2000)
        }
        process.waitUntilExit()
        return killedMidway && process.terminationReason == .uncaughtSignal
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test func killedBackupAndRestoreThenRerun() async throws {
        try await withTemporaryDirectory { directory in
            let source = directory.appendingPathComponent("source")
            let server = try await RegistryServer.start(root: source)
            let store = try await SampleStore.push(to: RegistryClient(server: server))
            server.stop()
            // Large incompressible layers, so that both runs take long enough to be killed in.
            let builder = StoreBuilder(storage: try LocalStorage(root: source.path))
            let random = FileHandle(forReadingAtPath: "/dev/urandom")!
            let layers = (0..<6).map { _ in random.readData(ofLength: 48 << 20) }
            let big = try builder.image("big/app", tag: "v1", layers: layers)
            let references = store.tagReferences + [("big/app", "v1")]

            let archive = directory.appendingPathComponent("full.tar.zst")
            let backup = ["backup", "--root", source.path, "--output", archive.path, "--quiet"]
            let killed = try await Self.killMidway(backup) {
                let partial = (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.first { $0.hasPrefix(".full.tar.zst.partial-") }
                return partial.map { Self.size(directory.appendingPathComponent($0).path) > 32 << 20 } ?? false
            }
            #expect(killed, "the backup finished before it could be killed")
            #expect(!FileManager.default.fileExists(atPath: archive.path), "no file under the archive's name")
            let (status, output) = try Self.run(backup)
            #expect(status == 0, "\(output)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".partial-") }
            #expect(left.isEmpty, "the dead run's partial file is removed: \(left)")
            #expect(ArchiveVerifier().verify([archive.path]).isValid)

            let target = directory.appendingPathComponent("restored")
            let restore = ["restore", archive.path, "--root", target.path, "--quiet"]
            let killedRestore = try await Self.killMidway(restore) {
                guard let staging = (try? FileManager.default.contentsOfDirectory(atPath: target.path))?.first(where: { $0.hasPrefix(".regkeeper-restore-") }) else { return false }
                let blobs = target.appendingPathComponent(staging).appendingPathComponent("docker/registry/v2/blobs/sha256")
                return ((try? FileManager.default.subpathsOfDirectory(atPath: blobs.path)) ?? []).filter { $0.hasSuffix("/data") }.count >= 3
            }
            #expect(killedRestore, "the restore finished before it could be killed")
            #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent("docker").path), "no half store")
            let (restoreStatus, restoreOutput) = try Self.run(restore)
            #expect(restoreStatus == 0, "\(restoreOutput)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).allSatisfy { !$0.hasPrefix(".regkeeper-restore-") })

            // The store loses big/app and its layers; a merge bringing them back is killed while
            // it stages them: the target is left as it was, and the rerun completes it.
            let registry = target.appendingPathComponent("docker/registry/v2")
            try FileManager.default.removeItem(at: registry.appendingPathComponent("repositories/big"))
            for layer in big.layers { try FileManager.default.removeItem(at: target.appendingPathComponent(Layout.blobData(layer).description).deletingLastPathComponent()) }
            let lost = try ProcessRunner.runBlocking("/usr/bin/find", [registry.path, "-printf", "%P %s %T@\\n"]).stdoutText
            let merge = ["restore", archive.path, "--root", target.path, "--merge", "--quiet"]
            let killedMerge = try await Self.killMidway(merge) {
                guard let staging = (try? FileManager.default.contentsOfDirectory(atPath: target.path))?.first(where: { $0.hasPrefix(".regkeeper-restore-") }) else { return false }
                let blobs = target.appendingPathComponent(staging).appendingPathComponent("docker/registry/v2/blobs/sha256")
                return ((try? FileManager.default.subpathsOfDirectory(atPath: blobs.path)) ?? []).filter { $0.hasSuffix("/data") }.count >= 3
            }
            #expect(killedMerge, "the merge finished before it could be killed")
            #expect(try ProcessRunner.runBlocking("/usr/bin/find", [registry.path, "-printf", "%P %s %T@\\n"]).stdoutText == lost, "the killed merge placed nothing")
            let (mergeStatus, mergeOutput) = try Self.run(merge)
            #expect(mergeStatus == 0, "\(mergeOutput)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).allSatisfy { !$0.hasPrefix(".regkeeper-restore-") })
            let served = try await RegistryServer.start(root: target)
            defer { served.stop() }
            for (repository, tag) in references {
                try await Skopeo.pull(server: served, repository: repository, reference: tag, timeout: 120)
            }
        }
    }
}
