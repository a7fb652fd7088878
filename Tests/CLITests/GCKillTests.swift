import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `kill -9` of a real `regkeeper gc` process at several points, then a rerun: the store
/// must still serve every tag, and end with exactly the blobs the tags need.
@Suite(.serialized) struct GCKillTests {
    @Test func killedSweepThenRerunLeavesAServableStore() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-kill-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("source")
        let server = try await RegistryServer.start(root: source)
        let store = try await SampleStore.push(to: RegistryClient(server: server))
        server.stop()
        // Thousands of garbage blobs, so that the sweep takes long enough to be killed in.
        let builder = StoreBuilder(storage: try LocalStorage(root: source.path))
        for index in 0..<3000 { try builder.blob(layerBytes("garbage-\(index)", size: 32)) }
        try ProcessRunner.runBlocking("/usr/bin/find", [source.path, "-exec", "touch", "-h", "-d", "2 hours ago", "{}", "+"])
        let expected = Set(store.blobsOfTaggedImages.compactMap { Digest($0) })
        let before = try await blobDigests(in: LocalStorage(root: source.path)).count
        var killedMidSweep = 0

        // Kill points spread over the length of a full run on this machine.
        let timed = directory.appendingPathComponent("timed")
        try ProcessRunner.runBlocking("/bin/cp", ["-a", source.path, timed.path])
        let clock = ContinuousClock()
        let started = clock.now
        _ = try GCCommandTests.regkeeper(["gc", "--delete-untagged", "--grace-period", "0", "--quiet", "--root", timed.path])
        let (seconds, attoseconds) = (clock.now - started).components
        let full = Double(seconds) + Double(attoseconds) / 1e18

        /// Kills a run on a fresh copy after `delay`, checks the store serves every tag before
        /// and after a rerun, and returns how many blobs the killed run left.
        func killAndRerun(after delay: Double) async throws -> Int {
            let copy = directory.appendingPathComponent("kill-\(delay)")
            try ProcessRunner.runBlocking("/bin/cp", ["-a", source.path, copy.path])
            let arguments = ["gc", "--delete-untagged", "--grace-period", "0", "--upload-max-age", "0", "--quiet", "--root", copy.path]
            let process = Process()
            process.executableURL = GCCommandTests.productsDirectory.appendingPathComponent("regkeeper")
            process.arguments = arguments
            try process.run()
            try await Task.sleep(for: .seconds(delay))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let left = try await blobDigests(in: LocalStorage(root: copy.path)).count

            let served = try await RegistryServer.start(root: copy)
            defer { served.stop() }
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: served, repository: repository, reference: tag)
            }
            let rerun = try GCCommandTests.regkeeper(arguments)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: served, repository: repository, reference: tag)
            }
            #expect(try await blobDigests(in: LocalStorage(root: copy.path)) == expected, "killed after \(delay) s")
            return left
        }

        var (early, late) = (0.0, full)
        for delay in [0.3, 0.5, 0.7, 0.85].map({ $0 * full }) {
            let left = try await killAndRerun(after: delay)
            if left == before { early = max(early, delay) } else if left <= expected.count { late = min(late, delay) } else { killedMidSweep += 1 }
        }
        // One run's length only estimates the next: narrow in on the sweep until a kill lands in it.
        for _ in 0..<10 where killedMidSweep == 0 {
            let delay = (early + late) / 2
            let left = try await killAndRerun(after: delay)
            if left == before { early = delay } else if left <= expected.count { late = delay } else { killedMidSweep += 1 }
        }
        #expect(killedMidSweep > 0, "no kill landed inside the sweep: the store is too small for these delays")
    }
}
