import Foundation
import RegistryHarness
import RegistryStore
import S3Store
import Synchronization

/// `gc --s3`: both collectors' dry runs on one bucket of a Ceph RGW the bench starts itself,
/// written straight through the S3 API (through the registry it would take hours).
struct S3GCBench {
    var repositories: Int
    var runs: Int

    func run() async throws {
        log("starting Ceph (one mon, one memstore OSD, radosgw)…")
        let cluster = try await CephCluster.start()
        defer { cluster.stop() }
        let endpoint = try cluster.makeBucket("gc-bench")
        let store = SyntheticStore(root: URL(fileURLWithPath: "/nonexistent"), repositories: repositories, sharedBaseLayers: 2000, orphanBlobs: 1000)
        let storage = S3Storage(client: S3Client(endpoint: endpoint), rootDirectory: "/")
        let started = ContinuousClock.now
        try upload(store, into: storage)
        log("wrote \(store.objectCount) objects into s3://\(endpoint.bucket) in \((ContinuousClock.now - started).formatted(.units(allowed: [.seconds])))")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("config.yml")
        try """
            version: 0.1
            storage:
              s3:
                region: \(endpoint.region)
                regionendpoint: \(endpoint.url)
                bucket: \(endpoint.bucket)
                accesskey: \(endpoint.accessKey)
                secretkey: \(endpoint.secretKey)
                secure: false
                v4auth: true
                rootdirectory: /
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:0

            """.write(to: config, atomically: true, encoding: .utf8)
        let state = directory.appendingPathComponent("state").path
        // The registry's s3 driver panics when AWS_CA_BUNDLE is set, as it is on these machines.
        let peak = directory.appendingPathComponent("peak").path
        let results = try bestInterleaved(runs, [
            ("docker-registry garbage-collect --dry-run", {
                try measureThroughTime(peak, ["/usr/bin/env", "-u", "AWS_CA_BUNDLE", "/usr/bin/docker-registry", "garbage-collect", "--dry-run", config.path])
            }),
            ("regkeeper gc --dry-run", {
                try measureThroughTime(peak, [siblingExecutable("regkeeper"), "gc", "--dry-run", "--quiet", "--grace-period", "0", "--config", config.path, "--state-dir", state])
            }),
        ])
        report("gc --dry-run on S3 (\(store.objectCount) objects)", peer: results[0], ours: results[1])
    }

    /// `measure`, with the peak taken by GNU time: a child spawned straight from this process
    /// (vfork) inherits its high-water RSS, which holds the whole synthetic store.
    private func measureThroughTime(_ peakFile: String, _ command: [String]) throws -> Measurement {
        var measurement = try measure("/usr/bin/time", ["-f", "%M", "-o", peakFile] + command)
        let kilobytes = try String(contentsOfFile: peakFile, encoding: .utf8).split(separator: "\n").last.flatMap { Int64($0) }
        guard let kilobytes else { throw BenchError("/usr/bin/time wrote no peak into \(peakFile)") }
        measurement.peakBytes = kilobytes * 1024
        return measurement
    }

    /// PUTs every object of the synthetic store, 16 at a time: RGW takes ~100 PUT/s per client thread.
    private func upload(_ store: SyntheticStore, into storage: S3Storage) throws {
        var objects: [(StorePath, Data, Date)] = []
        try store.generate(into: RawWriter { objects.append(($0, $1, $2)) }, log: log)
        let next = Atomic<Int>(0)
        let failure = Mutex<(any Error)?>(nil)
        let pending = objects
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            while failure.withLock({ $0 == nil }) {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < pending.count else { return }
                do {
                    try storage.writeAtomically(pending[index].0, pending[index].1, modified: pending[index].2)
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
