import Foundation
import RegistryStore

struct Measurement {
    var seconds: Double
    /// Peak resident set of the child, from wait4's rusage.
    var peakBytes: Int64
}

/// Runs a command with output discarded; fails on a non-zero exit.
func measure(_ executable: String, _ arguments: [String]) throws -> Measurement {
    var pid: pid_t = 0
    var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let start = ContinuousClock.now
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    guard spawned == 0 else { throw BenchError("cannot run \(executable): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    var usage = rusage()
    _ = try? SystemCall.retrying { Int(wait4(pid, &status, 0, &usage)) }
    let elapsed = ContinuousClock.now - start
    guard status == 0 else { throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited with status \(status)") }
    let (seconds, attoseconds) = elapsed.components
    return Measurement(seconds: Double(seconds) + Double(attoseconds) / 1e18, peakBytes: Int64(usage.ru_maxrss) * 1024)
}

func best(of runs: Int, _ body: () throws -> Measurement) throws -> Measurement {
    var results: [Measurement] = []
    for _ in 0..<max(1, runs) { results.append(try body()) }
    return Measurement(seconds: results.map(\.seconds).min()!, peakBytes: results.map(\.peakBytes).max()!)
}

/// Runs the contenders in turn, run after run (A B C A B C …), so that a slow spell of the
/// machine (this VM's page allocation and disk swing by 2× from one minute to the next) falls
/// on all of them alike; each one's best run counts, and every run's time is logged.
func bestInterleaved(_ runs: Int, _ contenders: [(name: String, body: () throws -> Measurement)]) throws -> [Measurement] {
    var results = Array(repeating: [Measurement](), count: contenders.count)
    for _ in 0..<max(1, runs) {
        for (index, contender) in contenders.enumerated() { results[index].append(try contender.body()) }
    }
    for (index, contender) in contenders.enumerated() {
        log("  \(contender.name): " + results[index].map { String(format: "%.2f s", $0.seconds) }.joined(separator: ", "))
    }
    return results.map { runs in
        Measurement(seconds: runs.map(\.seconds).min()!, peakBytes: runs.map(\.peakBytes).max()!)
    }
}

func report(_ what: String, peer: Measurement, ours: Measurement) {
    print(String(format: "%@: peer %.2f s, %.0f MiB peak; regkeeper %.2f s, %.0f MiB peak; speed-up %.1fx, memory ratio %.2f",
                 what, peer.seconds, Double(peer.peakBytes) / 1_048_576, ours.seconds, Double(ours.peakBytes) / 1_048_576,
                 peer.seconds / ours.seconds, Double(ours.peakBytes) / Double(peer.peakBytes)))
}

/// The tool under test, built beside this benchmark.
func siblingExecutable(_ name: String) -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
}

/// Reads every file once so that both tools start from a warm page cache.
func warmPageCache(_ root: URL) {
    _ = try? measure("/bin/sh", ["-c", "find '\(root.path)' -type f -print0 | xargs -0 cat > /dev/null"])
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
