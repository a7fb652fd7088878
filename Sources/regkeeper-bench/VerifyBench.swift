import ArgumentParser
import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StateDatabase
import StoreTestSupport

/// `regkeeper verify` against `find | xargs -P<cores> sha256sum` and against the hardware
/// (`openssl speed` on one core, times the cores), on a warm page cache so that hashing, not
/// the disk, is what is measured.
struct VerifyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "verify throughput against sha256sum and the SHA-256 hardware limit.")

    @Option(help: "Where to build (or reuse) the benchmark stores.")
    var directory = "/tmp/regkeeper-bench/verify"

    @Option(name: .customLong("large-blob-mib"), help: "Large blobs, in MiB each (their total is the large store).")
    var largeBlobMiB = 64

    @Option(help: "Number of large blobs.")
    var largeBlobs = 16

    @Option(help: "Small blobs, 16 KiB each.")
    var smallBlobs = 8192

    @Option(help: "Runs of each measurement; the best counts.")
    var runs = 3

    func run() async throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let large = URL(fileURLWithPath: directory).appendingPathComponent("large")
        let small = URL(fileURLWithPath: directory).appendingPathComponent("small")
        log("building stores in \(directory) (reused when present)…")
        let largeBytes = try BenchStore(root: large, blobSizes: Array(repeating: largeBlobMiB << 20, count: largeBlobs), layersPerImage: 1).ensure()
        let smallBytes = try BenchStore(root: small, blobSizes: Array(repeating: 16 << 10, count: smallBlobs), layersPerImage: 32).ensure()
        warmPageCache(large)
        warmPageCache(small)

        let perCore = try opensslSHA256BytesPerSecond()
        let hardware = perCore * Double(cores)
        print(String(format: "hardware: openssl speed -evp sha256 -bytes 1048576: %.2f GB/s per core x %d cores = %.2f GB/s",
                     perCore / 1e9, cores, hardware / 1e9))

        for (name, root, bytes, count) in [("large", large, largeBytes, largeBlobs), ("small", small, smallBytes, smallBlobs)] {
            warmPageCache(root)
            let (wall, hashSeconds, hashed) = try await bestRun(runs) { try await ourVerify(root, jobs: cores) }
            let pipeline = try best(of: runs) {
                try measure("/bin/sh", ["-c", "find '\(root.path)/docker/registry/v2/blobs' -name data -print0 | xargs -0 -P\(cores) -n64 sha256sum > /dev/null"])
            }.seconds
            let ours = Double(hashed) / hashSeconds
            let sums = Double(bytes) / pipeline
            print(String(format: "%@ blobs (%d, %.0f MiB): regkeeper verify %.2f GB/s hashing (%.2f s whole run, %.2f GB/s); sha256sum pipeline %.2f GB/s (%.2f s); %.0f%% of hardware, %.1fx sha256sum",
                         name, count, Double(bytes) / 1_048_576, ours / 1e9, wall, Double(bytes) / wall / 1e9, sums / 1e9, pipeline,
                         ours / hardware * 100, ours / sums))
        }
    }

    /// One in-process run on a fresh state database: (wall seconds, hash seconds, bytes hashed).
    private func ourVerify(_ root: URL, jobs: Int) async throws -> (Double, Double, Int64) {
        let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("verify-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: stateDirectory) }
        let state = try StateStore.open(at: stateDirectory.appendingPathComponent("state.db"))
        var options = VerifyOptions()
        options.jobs = jobs
        let start = ContinuousClock.now
        let report = try await Verifier(storage: try LocalStorage(root: root.path), state: state, options: options).run()
        let wall = (ContinuousClock.now - start) / .seconds(1)
        guard report.isClean else { throw BenchError("the benchmark store is damaged: \(report.findings.first!)") }
        return (wall, report.hashSeconds, report.counts.bytesHashed)
    }

    private func bestRun(_ runs: Int, _ body: () async throws -> (Double, Double, Int64)) async throws -> (Double, Double, Int64) {
        var results: [(Double, Double, Int64)] = []
        for _ in 0..<max(1, runs) { results.append(try await body()) }
        return results.min { $0.1 < $1.1 }!
    }
}

/// `openssl speed` prints bytes per second in thousands ("sha256  1923507.81k").
func opensslSHA256BytesPerSecond() throws -> Double {
    let output = try capture("/usr/bin/openssl", ["speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "3"])
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("sha256") }),
          let field = line.split(separator: " ").last, field.hasSuffix("k"), let thousands = Double(field.dropLast()) else {
        throw BenchError("cannot parse openssl speed output: \(output)")
    }
    return thousands * 1000
}

/// Runs a command and returns its standard output. Spawned with an empty signal mask:
/// Foundation's `Process` leaves signals blocked in the child, and `openssl speed` then never
/// sees the SIGALRM that ends each measurement.
func capture(_ executable: String, _ arguments: [String]) throws -> String {
    var pipe: [Int32] = [0, 0]
    guard Glibc.pipe(&pipe) == 0 else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
    posix_spawn_file_actions_addclose(&actions, pipe[0])
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigfillset(&defaults)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    close(pipe[1])
    defer { close(pipe[0]) }
    guard spawned == 0 else { throw BenchError("cannot run \(executable): \(String(cString: strerror(spawned)))") }
    var output = Data()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while let count = try? SystemCall.retrying({ read(pipe[0], &chunk, chunk.count) }), count > 0 {
        output.append(contentsOf: chunk[..<count])
    }
    var status: Int32 = 0
    _ = try? SystemCall.retrying { Int(waitpid(pid, &status, 0)) }
    guard status == 0 else { throw BenchError("\(executable) exited with status \(status)") }
    return String(decoding: output, as: UTF8.self)
}

/// Random blobs in images (one repository per image, each tagged), written straight to disk
/// in the registry's layout; reused when its shape marker matches.
struct BenchStore {
    let root: URL
    let blobSizes: [Int]
    let layersPerImage: Int

    /// Returns the bytes of the layer blobs.
    func ensure() throws -> Int64 {
        let shape = "\(blobSizes.count) blobs, \(blobSizes.reduce(0, +)) bytes, \(layersPerImage) per image"
        let marker = root.appendingPathComponent("shape")
        let total = blobSizes.reduce(Int64(0)) { $0 + Int64($1) }
        if (try? String(contentsOf: marker, encoding: .utf8)) == shape { return total }
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var random = UInt64(0x5EED)
        for (image, start) in stride(from: 0, to: blobSizes.count, by: layersPerImage).enumerated() {
            let name = RepositoryName("bench/image-\(image)")!
            var layers: [(Digest, Int)] = []
            for size in blobSizes[start..<min(start + layersPerImage, blobSizes.count)] {
                let data = Self.randomBytes(size, &random)
                let digest = try write(data)
                try link(Layout.layerLink(name, digest), digest)
                layers.append((digest, size))
            }
            let config = Data(#"{"architecture":"amd64","os":"linux","image":\#(image)}"#.utf8)
            let configDigest = try write(config)
            try link(Layout.layerLink(name, configDigest), configDigest)
            var manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":["#
            manifest += layers.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#($0.0)","size":\#($0.1)}"# }.joined(separator: ",")
            manifest += "]}"
            let digest = try write(Data(manifest.utf8))
            try link(Layout.revisionLink(name, digest), digest)
            try link(Layout.tagCurrentLink(name, "latest"), digest)
            try link(Layout.tagIndexLink(name, "latest", digest), digest)
        }
        try shape.write(to: marker, atomically: true, encoding: .utf8)
        return total
    }

    private func write(_ data: Data) throws -> Digest {
        let digest = StoreBuilder.digest(of: data)
        try put(Layout.blobData(digest), data)
        return digest
    }

    private func link(_ path: StorePath, _ digest: Digest) throws {
        try put(path, Data(digest.description.utf8))
    }

    private func put(_ path: StorePath, _ data: Data) throws {
        let url = root.appendingPathComponent(path.description)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    /// Incompressible bytes (SplitMix64), so that no layer of the stack can shortcut the work.
    private static func randomBytes(_ count: Int, _ state: inout UInt64) -> Data {
        var data = Data(count: (count + 7) & ~7)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                words[index] = z ^ (z >> 31)
            }
        }
        return data.prefix(count)
    }
}
