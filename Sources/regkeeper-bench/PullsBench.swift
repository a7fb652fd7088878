import ArgumentParser
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport

/// `pulls import` over a generated registry log of 10 million lines, side by side with
/// `grep -c '"GET /v2/'` over the same file: the import must read a day's log of a busy
/// registry at least as fast as the simplest look at it.
struct PullsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pulls", abstract: "pulls import of 10 million log lines against grep -c '\"GET /v2/' on the same file.")

    @Option(help: "Log lines to generate.")
    var lines = 10_000_000

    @Option(help: "Log format: access (Combined Log Format), text or json (application log).")
    var format = LogFormat.access

    @Option(help: "Runs of each tool, taking turns; the best counts.")
    var runs = 3

    @Option(help: "Where the store, the log and the state directories go (removed afterwards).")
    var directory = "/dev/shm/regkeeper-bench-pulls"

    @Flag(help: "Keep the store and the log afterwards (to profile the import).")
    var keep = false

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case access, text, json
    }

    static let repositories = 50
    static let tags = 20

    func run() throws {
        let base = URL(fileURLWithPath: directory)
        try? FileManager.default.removeItem(at: base)
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(at: base) } }
        let root = base.appendingPathComponent("store")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let builder = StoreBuilder(storage: try LocalStorage(root: root.path))
        let start = Date().addingTimeInterval(-86_400)
        for repository in 0..<Self.repositories {
            let name = RepositoryName("team/service-\(repository)")!
            for tag in 0..<Self.tags {
                try builder.image(name, tag: Tag("v\(tag)")!, layers: [layerBytes("\(repository)-\(tag)")], modified: start.addingTimeInterval(-3600))
            }
        }
        let logFile = base.appendingPathComponent("registry.log")
        let generated = try Self.generate(lines: lines, format: format, to: logFile, start: start)
        log("generated \(lines) \(format.rawValue) lines, \(Int64(generated).formattedMiB), \(Int(Double(lines) * Self.pullShare)) pulls")
        _ = try measure("/bin/sh", ["-c", "cat '\(logFile.path)' > /dev/null"])

        var run = 0
        let regkeeper = siblingExecutable("regkeeper")
        let results = try bestInterleaved(runs, [
            // Into a file: GNU grep stops at the first match when its output is /dev/null. Status 1
            // is "no line matched", as in the application log, whose lines hold no `"GET`.
            (name: "grep -c '\"GET /v2/'", body: {
                try measure("/bin/sh", ["-c", "grep -c '\"GET /v2/' '\(logFile.path)' > '\(base.path)/grep.out'; [ $? -le 1 ]"])
            }),
            (name: "regkeeper pulls import", body: {
                run += 1
                // A fresh state directory each run: a second import of the same log reads nothing new.
                let state = base.appendingPathComponent("state-\(run)")
                defer { try? FileManager.default.removeItem(at: state) }
                return try measure(regkeeper, ["pulls", "import", "--quiet", "--root", root.path, "--state-dir", state.path, logFile.path])
            }),
        ])
        let (grep, ours) = (results[0], results[1])
        let matches = (try? String(contentsOf: base.appendingPathComponent("grep.out"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        log("grep counted \(matches) lines")
        print(String(format: "pulls import, %d %@ lines (%@): grep -c %.2f s, %.0f MiB peak; regkeeper pulls import %.2f s, %.0f MiB peak; speed ratio %.2fx (grep time / ours)",
                     lines, format.rawValue, Int64(generated).formattedMiB, grep.seconds, Double(grep.peakBytes) / 1_048_576,
                     ours.seconds, Double(ours.peakBytes) / 1_048_576, grep.seconds / ours.seconds))
    }

    /// Share of lines that are pulls (GET of a manifest answered 200).
    static let pullShare = 0.25

    /// A registry's day: per 20 lines, 5 manifest GETs answered 200 (by tag, one by digest), 2
    /// manifest HEADs, 1 manifest GET answered 404, 9 blob GETs, a ping, a blob upload and its
    /// PUT. Times advance 8 ms a line.
    static func generate(lines: Int, format: LogFormat, to url: URL, start: Date) throws -> Int {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw BenchError("cannot create \(url.path)") }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8 << 20)
        var written = 0
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
        var cachedSecond = -1
        var accessTime = ""
        var rfcTime = ""
        for line in 0..<lines {
            let time = start.addingTimeInterval(Double(line) * 0.008)
            let second = Int(time.timeIntervalSince1970)
            if second != cachedSecond {
                cachedSecond = second
                accessTime = formatter.string(from: time)
                rfcTime = time.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
            }
            let fraction = String(format: "%06d", Int((time.timeIntervalSince1970 - Double(second)) * 1_000_000))
            let repository = "team/service-\(line % repositories)"
            let tag = "v\((line / repositories) % tags)"
            let (method, uri, status): (String, String, Int) = switch line % 20 {
            case 0, 4, 8, 12: ("GET", "/v2/\(repository)/manifests/\(tag)", 200)
            case 16: ("GET", "/v2/\(repository)/manifests/\(digest)", 200)
            case 1, 5: ("HEAD", "/v2/\(repository)/manifests/\(tag)", 200)
            case 9: ("GET", "/v2/\(repository)/manifests/missing", 404)
            case 13: ("GET", "/v2/", 200)
            case 17: ("POST", "/v2/\(repository)/blobs/uploads/", 202)
            case 18: ("PUT", "/v2/\(repository)/blobs/uploads/6f1c2b9e-0d52-4c1e-9a0b-3a1f2c4d5e6f?digest=\(digest)", 201)
            default: ("GET", "/v2/\(repository)/blobs/\(digest)", 200)
            }
            let text: String
            switch format {
            case .access:
                text = "10.1.\(line % 250).\(line % 200) - - [\(accessTime)] \"\(method) \(uri) HTTP/1.1\" \(status) 1234 \"\" \"containerd/1.7.2\"\n"
            case .text:
                let stamp = rfcTime.dropLast() + ".\(fraction)Z"
                let quotedURI = uri.contains(":") || uri.contains("?") ? "\"\(uri)\"" : uri
                text = "time=\"\(stamp)\" level=info msg=\"response completed\" go.version=go1.19.8 http.request.host=registry.example:5000 http.request.id=4d9a6c1e-2b3f-4a5d-8e7f-\(String(format: "%012d", line)) http.request.method=\(method) http.request.remoteaddr=\"10.1.2.3:45678\" http.request.uri=\(quotedURI) http.request.useragent=\"containerd/1.7.2\" http.response.contenttype=application/vnd.oci.image.manifest.v1+json http.response.duration=1.234ms http.response.status=\(status) http.response.written=1234\n"
            case .json:
                let stamp = rfcTime.dropLast() + ".\(fraction)Z"
                text = "{\"go.version\":\"go1.19.8\",\"http.request.host\":\"registry.example:5000\",\"http.request.id\":\"4d9a6c1e-2b3f-4a5d-8e7f-\(String(format: "%012d", line))\",\"http.request.method\":\"\(method)\",\"http.request.remoteaddr\":\"10.1.2.3:45678\",\"http.request.uri\":\"\(uri)\",\"http.request.useragent\":\"containerd/1.7.2\",\"http.response.contenttype\":\"application/vnd.oci.image.manifest.v1+json\",\"http.response.duration\":\"1.234ms\",\"http.response.status\":\(status),\"http.response.written\":1234,\"level\":\"info\",\"msg\":\"response completed\",\"time\":\"\(stamp)\"}\n"
            }
            buffer.append(contentsOf: text.utf8)
            if buffer.count >= 8 << 20 {
                try handle.write(contentsOf: buffer)
                written += buffer.count
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: buffer)
        return written + buffer.count
    }
}

extension Int64 {
    fileprivate var formattedMiB: String { String(format: "%.0f MiB", Double(self) / 1_048_576) }
}
