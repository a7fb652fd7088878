import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import S3Store
import Synchronization

public enum CephClusterError: Error, CustomStringConvertible {
    case notInstalled(tool: String)
    case setupFailed(step: String, reason: String)
    case notReady(step: String, seconds: Double, log: String)
    case daemonExited(daemon: String, status: Int32, log: String)

    public var description: String {
        switch self {
        case let .notInstalled(tool):
            "\(tool) is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common, or `make deps`)"
        case let .setupFailed(step, reason): "Ceph bring-up failed at \(step): \(reason)"
        case let .notReady(step, seconds, log): "Ceph bring-up: \(step) not ready within \(Int(seconds)) s; log tail:\n\(log)"
        case let .daemonExited(daemon, status, log): "\(daemon) exited with status \(status) during bring-up; log tail:\n\(log)"
        }
    }
}

/// A real, single-node Ceph cluster serving S3: one monitor, one OSD on `memstore` (RAM),
/// radosgw with the beast frontend, all on free loopback ports, in a temporary directory,
/// with cephx on. The S3 driver and the registry's `s3` driver are proven against it rather
/// than against a mock.
///
/// Bring-up takes a few seconds, so the tests of one process share one cluster (`shared()`)
/// and each takes a fresh bucket. The daemons run in the foreground as this process's
/// children and are killed when it exits.
public final class CephCluster: Sendable {
    /// `http://127.0.0.1:<port>`, path-style S3.
    public let endpointURL: String
    public let region = "us-east-1"
    public let accessKey: String
    public let secretKey: String
    /// Holds the config, keyrings, logs and the monitor's store.
    public let directory: URL
    private let daemons: [RunningProcess]

    /// How long a bring-up may take on a loaded 2-core machine before the tests give up.
    public static let startBudget: Double = 120

    private static let sharedCluster = Mutex<Task<CephCluster, any Error>?>(nil)

    /// The process's cluster, started by the first caller; later callers wait for the same one.
    public static func shared() async throws -> CephCluster {
        let task = sharedCluster.withLock { task in
            if let task { return task }
            let started = Task { try await start() }
            task = started
            return started
        }
        return try await task.value
    }

    /// A fresh empty bucket on this cluster, named after `label`.
    public func makeBucket(_ label: String) throws -> S3Endpoint {
        let clean = String(label.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(30))
        let name = "\(clean)-\(UUID().uuidString.lowercased().prefix(13))"
        let endpoint = S3Endpoint(url: endpointURL, region: region, bucket: name, accessKey: accessKey, secretKey: secretKey)
        try S3Client(endpoint: endpoint).createBucket()
        return endpoint
    }

    private init(endpointURL: String, accessKey: String, secretKey: String, directory: URL, daemons: [RunningProcess]) {
        self.endpointURL = endpointURL
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.directory = directory
        self.daemons = daemons
    }

    /// Kills the daemons and removes the directory; the shared cluster is stopped at exit.
    public func stop() {
        for daemon in daemons { daemon.terminate(grace: 0) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Brings up a new cluster; most callers want `shared()`.
    public static func start() async throws -> CephCluster {
        for tool in ["ceph-mon", "ceph-osd", "radosgw", "ceph", "ceph-authtool", "monmaptool", "radosgw-admin"] {
            guard ProcessRunner.resolve(tool).hasPrefix("/") else { throw CephClusterError.notInstalled(tool: tool) }
        }
        stopClustersOfDeadProcesses()
        let deadline = Date().addingTimeInterval(startBudget)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-ceph-\(UUID().uuidString)")
        var daemons: [RunningProcess] = []
        do {
            let cluster = try await bringUp(in: directory, deadline: deadline, daemons: &daemons)
            stopAtExit(cluster)
            return cluster
        } catch {
            for daemon in daemons { daemon.terminate(grace: 0) }
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    private static func bringUp(in directory: URL, deadline: Date, daemons: inout [RunningProcess]) async throws -> CephCluster {
        let path = directory.path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data(String(getpid()).utf8).write(to: directory.appendingPathComponent(ownerFileName))
        for sub in ["mon/ceph-a", "osd/ceph-0", "rgw", "run", "log", "crash"] {
            try FileManager.default.createDirectory(atPath: "\(path)/\(sub)", withIntermediateDirectories: true)
        }
        let monPort = try freeLoopbackPort()
        let rgwPort = try freeLoopbackPort()
        let messengerPorts = try freeLoopbackPortRange(count: 8)
        let config = "\(path)/ceph.conf"
        let fsid = UUID().uuidString.lowercased()
        try Data(configuration(fsid: fsid, directory: path, monPort: monPort, messengerPorts: messengerPorts, rgwPort: rgwPort).utf8)
            .write(to: URL(fileURLWithPath: config))

        @discardableResult
        func run(_ step: String, _ tool: String, _ arguments: [String]) async throws -> String {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw CephClusterError.notReady(step: step, seconds: startBudget, log: "") }
            do {
                return try await ProcessRunner.run(tool, arguments, timeout: remaining).stdoutText
            } catch {
                throw CephClusterError.setupFailed(step: step, reason: "\(error)")
            }
        }
        func daemon(_ name: String, _ tool: String, _ arguments: [String]) throws -> RunningProcess {
            let running = try RunningProcess(tool, arguments + ["-f"], timeout: nil)
            daemons.append(running)
            let pids = daemons.map { String($0.processIdentifier) }.joined(separator: "\n")
            try Data(pids.utf8).write(to: directory.appendingPathComponent(daemonsFileName))
            return running
        }
        let keyring = "\(path)/keyring"
        try await run("keyring", "ceph-authtool", ["--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"])
        for (name, caps) in [
            ("client.admin", ["mon", "allow *", "osd", "allow *", "mgr", "allow *"]),
            ("osd.0", ["mon", "allow profile osd", "mgr", "allow profile osd", "osd", "allow *"]),
            ("client.rgw.test", ["mon", "allow rw", "osd", "allow rwx", "mgr", "allow rw"]),
        ] {
            var arguments = [keyring, "--gen-key", "-n", name]
            for index in stride(from: 0, to: caps.count, by: 2) { arguments += ["--cap", caps[index], caps[index + 1]] }
            try await run("keyring \(name)", "ceph-authtool", arguments)
        }
        try await run("monmap", "monmaptool", ["--create", "--addv", "a", "[v2:127.0.0.1:\(monPort)]", "--fsid", fsid, "\(path)/monmap"])
        try await run("mon mkfs", "ceph-mon", ["-c", config, "--mkfs", "-i", "a", "--monmap", "\(path)/monmap", "--keyring", keyring])
        _ = try daemon("ceph-mon", "ceph-mon", ["-c", config, "-i", "a"])
        let ceph = ["-c", config, "--connect-timeout", "30"]
        try await run("monitor answering", "ceph", ceph + ["mon", "stat"])

        let osdUUID = UUID().uuidString.lowercased()
        let osdID = try await run("osd new", "ceph", ceph + ["osd", "new", osdUUID]).trimmingCharacters(in: .whitespacesAndNewlines)
        try await run("osd mkfs", "ceph-osd", ["-c", config, "-i", osdID, "--mkfs", "--osd-uuid", osdUUID])
        _ = try daemon("ceph-osd", "ceph-osd", ["-c", config, "-i", osdID])
        try await poll("osd up", deadline: deadline, daemons: daemons, directory: path) {
            let stat = try? await ProcessRunner.run("ceph", ceph + ["osd", "stat", "-f", "json"], timeout: 30, allowFailure: true)
            return stat?.stdoutText.contains("\"num_up_osds\":1") == true
        }

        _ = try daemon("radosgw", "radosgw", ["-c", config, "-n", "client.rgw.test"])
        let endpointURL = "http://127.0.0.1:\(rgwPort)"
        try await poll("radosgw answering", deadline: deadline, daemons: daemons, directory: path) {
            var request = URLRequest(url: URL(string: endpointURL + "/")!)
            request.timeoutInterval = 2
            return (try? await URLSession.shared.data(for: request)) != nil
        }
        let accessKey = "RK" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(18).uppercased()
        let secretKey = UUID().uuidString.replacingOccurrences(of: "-", with: "") + "0000000008"
        try await run("rgw user", "radosgw-admin", [
            "-c", config, "user", "create", "--uid=regkeeper", "--display-name=regkeeper",
            "--access-key=\(accessKey)", "--secret-key=\(secretKey)",
        ])
        return CephCluster(endpointURL: endpointURL, accessKey: accessKey, secretKey: secretKey, directory: directory, daemons: daemons)
    }

    private static func poll(
        _ step: String, deadline: Date, daemons: [RunningProcess], directory: String, _ ready: () async -> Bool
    ) async throws {
        while Date() < deadline {
            if await ready() { return }
            if let dead = daemons.first(where: { !$0.isRunning }) {
                throw CephClusterError.daemonExited(daemon: dead.command.joined(separator: " "), status: dead.status, log: dead.stderrSoFar + logTail(directory))
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw CephClusterError.notReady(step: step, seconds: startBudget, log: logTail(directory))
    }

    private static func logTail(_ directory: String) -> String {
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/log")) ?? []
        return logs.sorted().map { name in
            let text = (try? String(contentsOfFile: "\(directory)/log/\(name)", encoding: .utf8)) ?? ""
            return "== \(name)\n" + text.split(separator: "\n").suffix(8).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    private static let ownerFileName = "owner.pid"
    /// The daemons' pids, one a line (radosgw in the foreground writes no pid file).
    private static let daemonsFileName = "daemons.pid"

    /// A test process killed with SIGKILL runs no exit handler: its daemons live on. The next
    /// bring-up stops them, by the pids recorded for clusters whose owner is gone, checking that
    /// each pid is still a Ceph daemon.
    private static func stopClustersOfDeadProcesses() {
        let temporary = FileManager.default.temporaryDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        for name in names where name.hasPrefix("regkeeper-ceph-") {
            let directory = temporary.appendingPathComponent(name)
            guard let owner = (try? String(contentsOf: directory.appendingPathComponent(ownerFileName), encoding: .utf8)).flatMap({ Int32($0) }),
                  kill(owner, 0) != 0, errno == ESRCH
            else { continue }
            let pids = (try? String(contentsOf: directory.appendingPathComponent(daemonsFileName), encoding: .utf8)) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) {
                guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"),
                    ["ceph-mon", "ceph-osd", "radosgw"].contains(URL(fileURLWithPath: executable).lastPathComponent)
                else { continue }
                kill(pid, SIGKILL)
            }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Daemons must not outlive the test process that started them.
    private static let clustersToStop = Mutex<[CephCluster]>([])

    private static func stopAtExit(_ cluster: CephCluster) {
        let first = clustersToStop.withLock { clusters in
            clusters.append(cluster)
            return clusters.count == 1
        }
        if first {
            atexit {
                for cluster in CephCluster.clustersToStop.withLock({ $0 }) { cluster.stop() }
            }
        }
    }

    /// What mattered, measured on a 2-core box: a short paxos interval (pool creation waits a
    /// round each), cephx on (radosgw retries for 300 s without it), msgr2 only on a port
    /// range, one replica, and `tcp_nodelay=1` on beast (else every response waits ~40 ms).
    private static func configuration(fsid: String, directory: String, monPort: Int, messengerPorts: ClosedRange<Int>, rgwPort: Int) -> String {
        """
        [global]
        fsid = \(fsid)
        mon host = [v2:127.0.0.1:\(monPort)]
        mon initial members = a
        public addr = 127.0.0.1
        cluster addr = 127.0.0.1
        ms bind msgr1 = false
        ms bind msgr2 = true
        ms bind port min = \(messengerPorts.lowerBound)
        ms bind port max = \(messengerPorts.upperBound)
        auth cluster required = cephx
        auth service required = cephx
        auth client required = cephx
        mon warn on insecure global id reclaim allowed = false
        mon data avail warn = 2
        keyring = \(directory)/keyring
        run dir = \(directory)/run
        pid file = \(directory)/run/$name.pid
        admin socket = \(directory)/run/$name.asok
        log file = \(directory)/log/$name.log
        crash dir = \(directory)/crash
        mon data = \(directory)/mon/$cluster-$id
        osd data = \(directory)/osd/$cluster-$id
        osd pool default size = 1
        osd pool default min size = 1
        mon allow pool size one = true
        mon warn on pool no redundancy = false
        osd crush chooseleaf type = 0
        osd pool default pg num = 8
        osd pool default pgp num = 8
        osd pool default pg autoscale mode = off
        mon max pg per osd = 1000
        osd crush initial weight = 1
        mon allow pool delete = true
        osd memory target = 939524096
        mon osd full ratio = 0.97
        mon osd backfillfull ratio = 0.96
        mon osd nearfull ratio = 0.95
        debug ms = 0/0

        [mon]
        paxos propose interval = 0.01
        paxos min wait = 0.001

        [osd]
        osd objectstore = memstore
        memstore device bytes = 4294967296
        osd op num shards = 1
        osd op num threads per shard = 2

        [client.rgw.test]
        rgw frontends = beast endpoint=127.0.0.1:\(rgwPort) tcp_nodelay=1
        rgw data = \(directory)/rgw
        rgw thread pool size = 32
        rgw enable usage log = false
        rgw dynamic resharding = false
        debug rgw = 1

        """
    }
}

/// `count` consecutive loopback ports that are free right now, for Ceph's messenger range.
func freeLoopbackPortRange(count: Int) throws -> ClosedRange<Int> {
    for _ in 0..<50 {
        let base = Int.random(in: 20_000...(60_000 - count))
        let sockets = (base..<(base + count)).map { bindLoopback(port: $0) }
        defer { sockets.forEach { if $0 >= 0 { close($0) } } }
        if sockets.allSatisfy({ $0 >= 0 }) { return base...(base + count - 1) }
    }
    throw RegistryServerError.noFreePort(reason: "no \(count) consecutive free ports found")
}

/// A socket bound to 127.0.0.1:`port`, or -1 when the port is taken.
private func bindLoopback(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else {
        close(fd)
        return -1
    }
    return fd
}
