import Foundation

/// Prometheus text-format metrics for node_exporter's textfile collector, written atomically
/// (temporary file + rename) so the collector never reads half a file.
public struct MetricsFile: Sendable {
    public struct Sample: Sendable {
        public var name: String
        public var help: String
        public var labels: [String: String]
        public var value: Double

        public init(_ name: String, _ help: String, labels: [String: String] = [:], _ value: Double) {
            self.name = name
            self.help = help
            self.labels = labels
            self.value = value
        }
    }

    public var samples: [Sample] = []

    public init(samples: [Sample] = []) { self.samples = samples }

    public var text: String {
        var lines: [String] = []
        var described: Set<String> = []
        for sample in samples {
            if described.insert(sample.name).inserted {
                lines.append("# HELP \(sample.name) \(sample.help)")
                lines.append("# TYPE \(sample.name) gauge")
            }
            let labels = sample.labels.sorted { $0.key < $1.key }
                .map { "\($0.key)=\"\($0.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }
            let value = sample.value.rounded() == sample.value && abs(sample.value) < 1e15 ? String(Int64(sample.value)) : String(sample.value)
            lines.append(sample.name + (labels.isEmpty ? "" : "{\(labels.joined(separator: ","))}") + " " + value)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        try Data(text.utf8).write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw MetricsFileError(path: path, reason: reason)
        }
    }
}

public struct MetricsFileError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot write metrics file \(path): \(reason)" }
}

extension MetricsFile {
    /// The samples every command writes about its last run: start, end, duration, success.
    public static func lastRun(_ command: String, started: Date, ended: Date, success: Bool) -> [Sample] {
        [
            .init("regkeeper_\(command)_last_run_start_seconds", "Start of the last \(command) run (unix time).", started.timeIntervalSince1970),
            .init("regkeeper_\(command)_last_run_end_seconds", "End of the last \(command) run (unix time).", ended.timeIntervalSince1970),
            .init("regkeeper_\(command)_last_run_success", "1 when the last \(command) run succeeded.", success ? 1 : 0),
            .init("regkeeper_\(command)_last_run_duration_seconds", "Duration of the last \(command) run.", ended.timeIntervalSince(started)),
        ]
    }
}
