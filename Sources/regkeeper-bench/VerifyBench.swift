import ArgumentParser
import CSHA256
import Dispatch
import Foundation
import Integrity
import RegistryModel
import RegistryStore
import StoreTestSupport

/// `regkeeper verify` as an operator runs it (the whole process, a fresh state directory) on a
/// store that mixes layers of tens of MiB with configs, manifests and small layers of a few
/// KiB, against the machine's SHA-256 limit measured in the same run (`openssl speed -multi`
/// on every core), against `xargs -P<cores> sha256sum`, and, with a cold page cache, against
/// reading the same files. verify compresses two blobs at once per core, which goes past what
/// `openssl speed` (one message per process) calls the limit; the rate of that compression
/// alone, in memory on every core, is measured too and the whole process set against it.
struct VerifyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Whole-process verify throughput against the SHA-256 limit, sha256sum and sequential reads.")

    @Option(help: "Where to build (or reuse) the benchmark store.")
    var directory = "/tmp/regkeeper-bench/verify"

    @Option(name: .customLong("large-blob-mib"), help: "Size of each large layer, in MiB.")
    var largeBlobMiB = 64

    @Option(help: "Number of large layers.")
    var largeBlobs = 16

    @Option(help: "Small blobs of 1-8 KiB (configs, manifests, small layers), 8 an image.")
    var smallBlobs = 3400

    @Option(help: "Runs of each measurement, interleaved; the best counts.")
    var runs = 3

    @Flag(inversion: .prefixedNo, help: "Also measure with a cold page cache (drops it: needs root).")
    var cold = true

    @Option(help: "The regkeeper binary to time (default: the one built beside this benchmark); `make bench` gives the static build that `make install` and the .deb ship.")
    var regkeeper: String?

    func run() async throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let root = URL(fileURLWithPath: directory).appendingPathComponent("mixed")
        log("building the store in \(root.path) (reused when present)…")
        let store = try MixedStore(root: root, largeBlobs: largeBlobs, largeBlobBytes: largeBlobMiB << 20, smallBlobs: smallBlobs).ensure()
        let regkeeper = self.regkeeper ?? siblingExecutable("regkeeper")
        let blobs = root.appendingPathComponent(Layout.blobsRoot.description).path
        let sums = "find '\(blobs)' -name data -print0 | xargs -0 -P\(cores) -n64 sha256sum > /dev/null"
        let reads = "find '\(blobs)' -name data -print0 | xargs -0 cat > /dev/null"
        print(String(format: "store: %d blobs, %.2f GiB (%d × %d MiB, %d of 1-8 KiB); load average %@",
                     store.blobs, Double(store.bytes) / 1_073_741_824, largeBlobs, largeBlobMiB, store.blobs - largeBlobs, loadAverage()))

        let limit = try opensslSHA256BytesPerSecond(processes: cores)
        print(String(format: "SHA-256 limit: openssl speed -multi %d -evp sha256 -bytes 1048576 -seconds 3: %.2f GB/s", cores, limit / 1e9))
        let lanes = csha256_available() != 0 ? laneCompressionBytesPerSecond(threads: cores) : nil
        if let lanes {
            print(String(format: "regkeeper's SHA-256 compression, three messages a core, in memory on %d threads: %.2f GB/s (%.2fx openssl)", cores, lanes / 1e9, lanes / limit))
        }
        let gigabytes = { (seconds: Double) in Double(store.bytes) / seconds / 1e9 }

        warmPageCache(root)
        _ = try verifyRun(regkeeper, root, cores)
        var hashPhase: [Double] = []
        let warm = try bestInterleaved(runs, [
            ("regkeeper verify", {
                let run = try verifyRun(regkeeper, root, cores)
                hashPhase.append(run.hashGBs)
                return Measurement(seconds: run.seconds, peakBytes: 0)
            }),
            ("xargs sha256sum", { try measure("/bin/sh", ["-c", sums]) }),
        ])
        print(String(format: "warm: regkeeper verify %.2f GB/s whole process (%.3f s) = %.1f%% of the limit; its hash phase (first shard listed to last record written, scan and graph inside it) %.2f GB/s = %.1f%%; xargs -P%d sha256sum %.2f GB/s (regkeeper %.1fx); load average %@",
                     gigabytes(warm[0].seconds), warm[0].seconds, gigabytes(warm[0].seconds) / limit * 100e9,
                     hashPhase.max()!, hashPhase.max()! / limit * 100e9, cores, gigabytes(warm[1].seconds),
                     warm[1].seconds / warm[0].seconds, loadAverage()))
        if let lanes {
            print(String(format: "warm: the whole process at %.1f%% of regkeeper's own compression in memory", gigabytes(warm[0].seconds) / lanes * 100e9))
        }
        guard cold else { return }

        // The store comes off the disk; each contender's own executables are loaded again
        // before it is timed (`--version`), as they would be on a machine that runs them daily:
        // loading regkeeper's 31 MB from a cold cache alone takes 0.08-0.17 s.
        let dropped = { (executables: [String]) throws -> Void in
            guard (try? "3".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)) != nil else {
                throw BenchError("cannot drop the page cache (echo 3 > /proc/sys/vm/drop_caches needs root): give --no-cold")
            }
            for executable in executables { _ = try capture(executable, ["--version"]) }
        }
        let tools = ["/usr/bin/find", "/usr/bin/xargs"]
        sync()
        let coldRuns = try bestInterleaved(runs, [
            ("regkeeper verify", { try dropped([regkeeper]); return Measurement(seconds: try verifyRun(regkeeper, root, cores).seconds, peakBytes: 0) }),
            ("xargs sha256sum", { try dropped(tools + ["/usr/bin/sha256sum"]); return try measure("/bin/sh", ["-c", sums]) }),
            ("sequential read (cat)", { try dropped(tools + ["/usr/bin/cat"]); return try measure("/bin/sh", ["-c", reads]) }),
        ])
        print(String(format: "cold: regkeeper verify %.2f GB/s whole process (%.3f s); reading the same files (find | xargs cat) %.2f GB/s: verify at %.1f%% of it; xargs -P%d sha256sum %.2f GB/s (regkeeper %.2fx); load average %@",
                     gigabytes(coldRuns[0].seconds), coldRuns[0].seconds, gigabytes(coldRuns[2].seconds),
                     coldRuns[2].seconds / coldRuns[0].seconds * 100, cores, gigabytes(coldRuns[1].seconds),
                     coldRuns[1].seconds / coldRuns[0].seconds, loadAverage()))
    }

    /// One whole `regkeeper verify` process on a fresh state directory, timed from spawn to
    /// exit: (wall seconds, the hash phase's own GB/s from its JSON report).
    private func verifyRun(_ regkeeper: String, _ root: URL, _ jobs: Int) throws -> (seconds: Double, hashGBs: Double) {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("verify-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: state) }
        let start = ContinuousClock.now
        let output = try capture(regkeeper, ["verify", "--json", "--jobs", "\(jobs)", "--root", root.path, "--state-dir", state.path])
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        struct Report: Decodable {
            struct Counts: Decodable { var bytesHashed: Int64 }
            var counts: Counts
            var hashSeconds: Double
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(output.utf8))
        return (seconds, Double(report.counts.bytesHashed) / report.hashSeconds / 1e9)
    }
}

/// The 1-, 5- and 15-minute load averages, which every figure is printed with: the machine is
/// shared, and a figure taken under load says little of the hardware.
func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

/// Bytes a second of `csha256_blocks_x3` over three buffers of a read (`BlobHasher.chunkSize`,
/// as `LaneHasher`'s lanes), on `threads` threads for about a second: what verify's hashing
/// threads could do with nothing else to do.
func laneCompressionBytesPerSecond(threads: Int) -> Double {
    let bytes = BlobHasher.chunkSize
    let rounds = 4000
    let start = ContinuousClock.now
    DispatchQueue.concurrentPerform(iterations: threads) { _ in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * bytes, alignment: 64)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
        var first = [UInt32](repeating: 0, count: 8), second = first, third = first
        let data = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for _ in 0..<rounds { csha256_blocks_x3(&first, data, &second, data + bytes, &third, data + 2 * bytes, bytes / 64) }
    }
    return Double(threads * rounds * 3 * bytes) / ((ContinuousClock.now - start) / .seconds(1))
}

/// `openssl speed -multi N` prints the sum over its N processes, in thousands of bytes per
/// second ("sha256  1923507.81k"), each process timed in CPU time.
func opensslSHA256BytesPerSecond(processes: Int = 1) throws -> Double {
    let multi = processes > 1 ? ["-multi", "\(processes)"] : []
    let output = try capture("/usr/bin/openssl", ["speed"] + multi + ["-evp", "sha256", "-bytes", "1048576", "-seconds", "3"])
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

/// Images as registries hold them, written straight to disk in the registry's layout: each
/// with a config of 1-3 KiB, a manifest and 6 small layers of 1-8 KiB (8 small blobs an
/// image), and the first `largeBlobs` images with one large layer too. Reused when its shape
/// marker matches.
struct MixedStore {
    let root: URL
    let largeBlobs: Int
    let largeBlobBytes: Int
    let smallBlobs: Int

    /// Blobs and the bytes of their data, all of which verify hashes.
    func ensure() throws -> (blobs: Int, bytes: Int64) {
        let images = max(largeBlobs, (smallBlobs + 7) / 8)
        let shape = "mixed: \(images) images, \(largeBlobs) x \(largeBlobBytes) bytes"
        let marker = root.appendingPathComponent("shape")
        let totals = root.appendingPathComponent("totals")
        if (try? String(contentsOf: marker, encoding: .utf8)) == shape,
           let line = try? String(contentsOf: totals, encoding: .utf8), case let fields = line.split(separator: " "),
           fields.count == 2, let blobs = Int(fields[0]), let bytes = Int64(fields[1]) {
            return (blobs, bytes)
        }
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var random = UInt64(0x5EED)
        var blobs = 0
        var bytes: Int64 = 0
        func blob(_ data: Data) throws -> Digest {
            let digest = StoreBuilder.digest(of: data)
            try put(Layout.blobData(digest), data)
            blobs += 1
            bytes += Int64(data.count)
            return digest
        }
        for image in 0..<images {
            let name = RepositoryName("bench/image-\(image)")!
            var layers: [(Digest, Int)] = []
            if image < largeBlobs { layers.append((try blob(Self.randomBytes(largeBlobBytes, &random)), largeBlobBytes)) }
            for _ in 0..<6 {
                let size = 1024 + Int(Self.next(&random) % 7168)
                layers.append((try blob(Self.randomBytes(size, &random)), size))
            }
            let padding = String(repeating: "0", count: 1000 + Int(Self.next(&random) % 2048))
            let config = Data(#"{"architecture":"amd64","os":"linux","image":\#(image),"history":"\#(padding)"}"#.utf8)
            let configDigest = try blob(config)
            for (digest, _) in layers + [(configDigest, 0)] { try link(Layout.layerLink(name, digest), digest) }
            var manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":["#
            manifest += layers.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#($0.0)","size":\#($0.1)}"# }.joined(separator: ",")
            manifest += "]}"
            let digest = try blob(Data(manifest.utf8))
            try link(Layout.revisionLink(name, digest), digest)
            try link(Layout.tagCurrentLink(name, "latest"), digest)
            try link(Layout.tagIndexLink(name, "latest", digest), digest)
        }
        try "\(blobs) \(bytes)".write(to: totals, atomically: true, encoding: .utf8)
        try shape.write(to: marker, atomically: true, encoding: .utf8)
        return (blobs, bytes)
    }

    private func link(_ path: StorePath, _ digest: Digest) throws {
        try put(path, Data(digest.description.utf8))
    }

    private func put(_ path: StorePath, _ data: Data) throws {
        let url = root.appendingPathComponent(path.description)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    /// SplitMix64.
    private static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Incompressible bytes, so that no layer of the stack can shortcut the work.
    private static func randomBytes(_ count: Int, _ state: inout UInt64) -> Data {
        var data = Data(count: (count + 7) & ~7)
        data.withUnsafeMutableBytes { raw in
            for offset in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: next(&state), toByteOffset: offset, as: UInt64.self) }
        }
        return data.prefix(count)
    }
}
