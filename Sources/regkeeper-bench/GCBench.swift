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
    }
}

func log(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
