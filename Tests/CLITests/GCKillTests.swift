import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// `kill -9` of a real `regkeeper gc` inside each phase of its sweep (detach, settle, re-read,
/// put back, delete), then a rerun: the store must serve every tag after the kill and after
/// the rerun, the rerun must first put back what the killed run took out, and the store must
/// end with exactly the blobs the tags and the links written "during" the run need.
@Suite(.serialized) struct GCKillTests {
    /// Garbage the sweep deletes, and garbage whose `_layers` links look written during the run
    /// (dated tomorrow), which the re-read must put back: every phase then has work to do.
    static let deleted = 1500
    static let putBack = 1500

    @Test(arguments: ["detach: 1024 of", "settle started", "re-read started", "put back started", "delete started"])
    func killedInsideAPhaseThenRerunLosesNothing(trigger: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-kill-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("source")
        let server = try await RegistryServer.start(root: source)
        let store = try await SampleStore.push(to: RegistryClient(server: server))
        server.stop()
        let builder = StoreBuilder(storage: try LocalStorage(root: source.path))
        for index in 0..<Self.deleted { try builder.blob(layerBytes("garbage-\(index)", size: 32)) }
        var linked: Set<Digest> = []
        for index in 0..<Self.putBack {
            let digest = try builder.blob(layerBytes("linked-\(index)", size: 32))
            try builder.linkLayer("pushing/now", digest)
            linked.insert(digest)
        }
        try ProcessRunner.runBlocking("/usr/bin/find", [source.path, "-exec", "touch", "-h", "-d", "2 hours ago", "{}", "+"])
        let links = source.appendingPathComponent("docker/registry/v2/repositories/pushing/now/_layers")
        try ProcessRunner.runBlocking("/usr/bin/find", [links.path, "-name", "link", "-exec", "touch", "-d", "tomorrow", "{}", "+"])
        let expected = Set(store.blobsOfTaggedImages.compactMap { Digest($0) }).union(linked)
        let phase = trigger.split(separator: ":").first!.replacingOccurrences(of: " started", with: "")

        // A phase can be short; a kill that landed after it ended is tried again on a new copy.
        var landed = false
        for attempt in 0..<5 where !landed {
            let copy = directory.appendingPathComponent("copy-\(attempt)")
            try ProcessRunner.runBlocking("/bin/cp", ["-a", source.path, copy.path])
            let arguments = ["gc", "--delete-untagged", "--grace-period", "0", "--upload-max-age", "0", "--root", copy.path]
            let lines = try Self.runKilled(arguments + ["--quiet", "--settle", "3s", "--log-level", "debug"], onLineContaining: trigger)
            landed = !lines.contains { $0.contains("\(phase) finished") }

            let served = try await RegistryServer.start(root: copy)
            defer { served.stop() }
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: served, repository: repository, reference: tag)
            }
            let rerun = try GCCommandTests.regkeeper(arguments + ["--settle", "0"])
            #expect(rerun.status == 0, "\(rerun.stderr)")
            if landed { #expect(rerun.stderr.contains("put back"), "the rerun settles the killed run first: \(rerun.stderr)") }
            for (repository, tag) in store.tagReferences {
                try await Skopeo.pull(server: served, repository: repository, reference: tag)
            }
            #expect(try await blobDigests(in: LocalStorage(root: copy.path)) == expected, "killed at '\(trigger)'")
            let sweep = copy.appendingPathComponent(".regkeeper/sweep")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: sweep.path)) ?? []).isEmpty, "nothing stranded outside the store")
        }
        #expect(landed, "no kill landed inside '\(phase)' in 5 tries")
    }

    /// Runs the binary, SIGKILLs it as soon as a line of its standard error contains
    /// `trigger`, and returns every line it wrote.
    static func runKilled(_ arguments: [String], onLineContaining trigger: String) throws -> [String] {
        let process = Process()
        process.executableURL = GCCommandTests.productsDirectory.appendingPathComponent("regkeeper")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var buffer = Data()
        var lines: [String] = []
        var killed = false
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex...newline)
                if !killed, lines.last!.contains(trigger) {
                    kill(process.processIdentifier, SIGKILL)
                    killed = true
                }
            }
        }
        process.waitUntilExit()
        #expect(killed && process.terminationReason == .uncaughtSignal, "the run ended before '\(trigger)': \(lines.suffix(5))")
        return lines
    }
}
