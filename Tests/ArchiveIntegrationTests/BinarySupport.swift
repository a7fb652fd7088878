import Foundation
import RegistryHarness
import Testing

/// Runs the built `regkeeper` binary as an operator would, optionally under `/usr/bin/time -v`
/// so that a test can assert what the run cost: its peak memory and the bytes it wrote.
enum Regkeeper {
    struct Run: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut = false
        /// Maximum resident set size, from `time -v` (measured runs only).
        var peakMemory: Int?
        /// Bytes the run wrote to filesystems (pages it dirtied, kept or not), from `time -v`.
        var bytesWritten: Int?

        var description: String { "exit \(status)\(timedOut ? " (timed out)" : "")\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    static var binary: URL { KillTests.regkeeper }

    static func run(_ arguments: [String], measured: Bool = false, timeout: Double = 300) throws -> Run {
        let usage = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-time-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: usage) }
        let command = measured ? ["/usr/bin/time", "-v", "-o", usage.path, binary.path] + arguments : [binary.path] + arguments
        var run: Run
        do {
            let output = try ProcessRunner.runBlocking(command[0], Array(command.dropFirst()), timeout: timeout, allowFailure: true)
            run = Run(status: output.status, stdout: output.stdoutText, stderr: output.stderrText)
        } catch ProcessError.timedOut(_, _, let stderr) {
            run = Run(status: -1, stdout: "", stderr: stderr, timedOut: true)
        }
        if measured, let report = try? String(contentsOf: usage, encoding: .utf8) {
            func field(_ name: String) -> Int? {
                report.split(separator: "\n").first { $0.contains(name) }.flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
            }
            run.peakMemory = field("Maximum resident set size (kbytes)").map { $0 * 1024 }
            run.bytesWritten = field("File system outputs").map { $0 * 512 }
            // time(1) reports the child's exit status as its own, and a signal as 128+n.
        }
        return run
    }
}

/// A store pushed through the real registry (the sample images, then the registry stopped).
struct PushedStore {
    var root: URL
    var store: SampleStore

    static func push(into directory: URL, name: String = "source", seed: UInt64 = 1, layerSize: Int = 4096) async throws -> PushedStore {
        let root = directory.appendingPathComponent(name)
        let server = try await RegistryServer.start(root: root)
        defer { server.stop() }
        let store = try await SampleStore.push(to: RegistryClient(server: server), seed: seed, layerSize: layerSize)
        return PushedStore(root: root, store: store)
    }

    /// A pushed store, its full backup (`full.tar.zst`) and a restore of it into `target`,
    /// all through the binary: the live store a merge or a restore check then runs against.
    static func backedUpAndRestored(in directory: URL) async throws -> (PushedStore, archive: URL, target: URL) {
        let pushed = try await push(into: directory)
        let archive = directory.appendingPathComponent("full.tar.zst")
        let backup = try Regkeeper.run(["backup", "--root", pushed.root.path, "--output", archive.path, "--quiet"])
        try #require(backup.status == 0, "\(backup)")
        let target = directory.appendingPathComponent("target")
        let restore = try Regkeeper.run(["restore", archive.path, "--root", target.path, "--quiet"])
        try #require(restore.status == 0, "\(restore)")
        return (pushed, archive, target)
    }
}

/// Serves `root` with the real registry and pulls every reference with every platform.
func expectEveryTagPulls(_ references: [(repository: String, tag: String)], from root: URL) async throws {
    let served = try await RegistryServer.start(root: root)
    defer { served.stop() }
    for (repository, tag) in references {
        try await Skopeo.pull(server: served, repository: repository, reference: tag)
    }
}

/// The pid of a process that has exited and been reaped: no live process has it (until the
/// kernel wraps around, which a test does not wait for).
func deadProcessID() throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    return process.processIdentifier
}

func fileSize(_ url: URL) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int) ?? -1
}

/// `tar --zstd -cf` of `members` (archive path, file on disk) in that order.
func plainTar(_ archive: URL, _ members: [(name: String, file: URL)], in directory: URL) throws {
    let stage = directory.appendingPathComponent("tar-stage-\(UUID().uuidString)")
    for member in members {
        let path = stage.appendingPathComponent(member.name)
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        // A name given twice is linked once and archived twice.
        if !FileManager.default.fileExists(atPath: path.path) { try FileManager.default.linkItem(at: member.file, to: path) }
    }
    defer { try? FileManager.default.removeItem(at: stage) }
    // --hard-dereference: a member named twice is stored twice, not as a hard link.
    let result = try ProcessRunner.runBlocking(
        "/usr/bin/tar", ["--zstd", "--hard-dereference", "-cf", archive.path, "-C", stage.path] + members.map(\.name), timeout: 300)
    #expect(result.status == 0, "\(result)")
}

/// A sparse file of `size` zeros: costs no disk, compresses to almost nothing.
func zeros(_ url: URL, size: UInt64) throws {
    FileManager.default.createFile(atPath: url.path, contents: nil)
    let handle = try FileHandle(forWritingTo: url)
    try handle.truncate(atOffset: size)
    try handle.close()
}

