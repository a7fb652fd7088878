import Archive
import Foundation
import RegistryHarness
import RegistryStore
import StoreTestSupport
import Testing

/// Partial archives of killed backups do not pile up: a backup removes every stale one in its
/// output directory, whatever archive name it was for, and SIGINT or SIGTERM removes the
/// run's own.
@Suite(.serialized) struct PartialArchiveTests {
    func partials(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".partial-") }.sorted()
    }

    @Test func staleAndInterruptedPartialsAreRemoved() async throws {
        try await withTemporaryDirectory { directory in
            let pushed = try await PushedStore.push(into: directory)
            // Incompressible layers, so that a backup runs long enough to be signalled.
            let random = FileHandle(forReadingAtPath: "/dev/urandom")!
            try StoreBuilder(storage: try LocalStorage(root: pushed.root.path))
                .image("big/app", tag: "v1", layers: (0..<4).map { _ in random.readData(ofLength: 48 << 20) })
            let backups = directory.appendingPathComponent("backups")
            try FileManager.default.createDirectory(at: backups, withIntermediateDirectories: true)

            // A killed run's partial under yesterday's name, a live run's, and a file that only
            // looks alike.
            let stale = ".registry-20260101.tar.zst.partial-\(try deadProcessID())-1a2b3c"
            let live = ".registry-other.tar.zst.partial-\(getpid())-ff"
            let unrelated = "notes.partial-1-x"
            for name in [stale, live, unrelated] { try Data(count: 1 << 20).write(to: backups.appendingPathComponent(name)) }
            let today = backups.appendingPathComponent("registry-20260102.tar.zst")
            let run = try Regkeeper.run(["backup", "--root", pushed.root.path, "--catalog", backups.path, "--output", today.path, "--quiet"])
            #expect(run.status == 0, "\(run)")
            #expect(try partials(backups) == [live, unrelated].sorted(), "only the dead run's partial is removed")

            for signal in [SIGTERM, SIGINT] {
                let name = "registry-signal-\(signal).tar.zst"
                let process = Process()
                process.executableURL = Regkeeper.binary
                process.arguments = ["backup", "--root", pushed.root.path, "--catalog", backups.path, "--output",
                                     backups.appendingPathComponent(name).path, "--quiet"]
                try process.run()
                var signalled = false
                while process.isRunning {
                    let own = try partials(backups).first { $0.hasPrefix("." + name) }
                    if let own, fileSize(backups.appendingPathComponent(own)) > 16 << 20 {
                        kill(process.processIdentifier, signal)
                        signalled = true
                        break
                    }
                    // On this thread: a suspended task may not be resumed in time on a pool busy with other suites.
                    usleep(2000)
                }
                process.waitUntilExit()
                #expect(signalled, "the backup finished before it could be signalled")
                #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == signal, "ends as the signal would")
                #expect(try partials(backups) == [live, unrelated].sorted(), "signal \(signal): the run's partial is removed")
                #expect(!FileManager.default.fileExists(atPath: backups.appendingPathComponent(name).path))
            }
        }
    }
}
