import ArgumentParser
import Foundation

/// `regkeeper gc --dry-run` against `docker-registry garbage-collect --dry-run` on one store,
/// both run as child processes so wall time and peak memory are measured the same way.
struct GCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gc", abstract: "gc mark time and memory against docker-registry garbage-collect.")

    @Option(help: "Where to build (or reuse) the benchmark store.")
    var store = "/tmp/regkeeper-bench/gc-store"

    @Option(help: "Repositories in the store (25 manifests each).")
    var repositories = 2000

    @Option(help: "Runs of each tool; the best wall time counts.")
    var runs = 3

    @Flag(help: "Also sweep for real, each tool on its own copy of the store (copies take a while).")
    var sweep = false

    @Flag(help: "On a bucket of a Ceph RGW the bench starts (needs ceph-mon, ceph-osd, radosgw), written through the S3 API.")
    var s3 = false

    @Option(help: "Repositories in the --s3 store (245 objects each, plus 3,000 blobs: 70 make 20,150 objects).")
    var s3Repositories = 70

    func run() async throws {
        if s3 {
            try await S3GCBench(repositories: s3Repositories, runs: runs).run()
            return
        }
        let root = URL(fileURLWithPath: store)
        log("building the store at \(store) (reused when present)…")
        let (blobs, manifests) = try SyntheticStore(root: root, repositories: repositories).ensure(log: log)
        log("store: \(repositories) repositories, \(manifests) manifests, \(blobs) blobs")
        let config = root.appendingPathComponent("config.yml")
        try "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: \(store)\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n"
            .write(to: config, atomically: true, encoding: .utf8)
        warmPageCache(root)

        let peer = try best(of: runs) {
            try measure("/usr/bin/docker-registry", ["garbage-collect", "--dry-run", config.path])
        }
        let ours = try best(of: runs) {
            try measure(siblingExecutable("regkeeper"), ["gc", "--dry-run", "--quiet", "--grace-period", "0", "--root", store])
        }
        report("gc --dry-run", peer: peer, ours: ours)
        let statistics = try best(of: runs) {
            try measure(siblingExecutable("regkeeper"), ["report", "--quiet", "--root", store])
        }
        report("report (against the peer's gc mark)", peer: peer, ours: statistics)
        if sweep { try measureSweeps(root, config: config) }
    }

    /// The real thing on two copies of the store: the peer's garbage-collect against gc taking
    /// everything out of sight, re-reading and deleting. gc's settle interval is a sleep with the
    /// store untouched; it is run at 0 here and its cost reported apart.
    private func measureSweeps(_ root: URL, config: URL) throws {
        let copies = root.deletingLastPathComponent()
        func copy(_ name: String) throws -> URL {
            let target = copies.appendingPathComponent(name)
            _ = try? measure("/bin/rm", ["-rf", target.path])
            _ = try measure("/bin/cp", ["-a", root.path, target.path])
            return target
        }
        let peerCopy = try copy("gc-sweep-peer")
        let peerConfig = peerCopy.appendingPathComponent("config.yml")
        try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: root.path, with: peerCopy.path)
            .write(to: peerConfig, atomically: true, encoding: .utf8)
        let oursCopy = try copy("gc-sweep-ours")
        warmPageCache(peerCopy)
        let peer = try measure("/usr/bin/docker-registry", ["garbage-collect", peerConfig.path])
        warmPageCache(oursCopy)
        let ours = try measure(siblingExecutable("regkeeper"), ["gc", "--quiet", "--grace-period", "0", "--settle", "0", "--root", oursCopy.path])
        report("gc, sweeping for real (settle 0)", peer: peer, ours: ours)
        log("  plus the settle interval: --settle (default 30 s) of waiting with the store untouched, no CPU")
        for target in [peerCopy, oursCopy] { _ = try? measure("/bin/rm", ["-rf", target.path]) }
    }
}

func log(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
