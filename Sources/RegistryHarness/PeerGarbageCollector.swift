import Foundation

public enum PeerGCError: Error, CustomStringConvertible {
    case missingSummary(command: [String], stdout: String, stderr: String)

    public var description: String {
        switch self {
        case let .missingSummary(command, stdout, stderr):
            return "`\(command.joined(separator: " "))` printed no summary line; stdout: \(stdout) stderr: \(stderr)"
        }
    }
}

/// What `docker-registry garbage-collect` reported.
public struct PeerGCResult: Sendable {
    /// Manifests it walked (`<repo>: marking manifest sha256:…`).
    public var markedManifests: Set<String>
    /// Configs, layers and children it marked (`<repo>: marking blob sha256:…`).
    public var markedBlobs: Set<String>
    /// Everything it swept or would sweep (`blob eligible for deletion: sha256:…`); manifests
    /// are blobs too and show up here as well.
    public var blobsEligible: Set<String>
    /// Untagged revisions it removed or would remove; only with `--delete-untagged`
    /// (`manifest eligible for deletion: sha256:…`).
    public var manifestsEligible: Set<String>
    /// The summary line's counts: `N blobs marked, M blobs and K manifests eligible for deletion`.
    public var summary: Summary
    public var wallTime: Duration
    public var stdout: String
    public var stderr: String

    public struct Summary: Sendable, Hashable {
        public var blobsMarked: Int
        public var blobsEligible: Int
        public var manifestsEligible: Int
    }
}

/// Runs Distribution's own garbage collector, the peer whose results ours are compared with.
///
/// Run it only while the registry is stopped or read-only: it takes no lock.
public enum PeerGarbageCollector {
    public static func run(
        configPath: URL, dryRun: Bool, deleteUntagged: Bool, timeout: Double = 120
    ) throws -> PeerGCResult {
        var arguments = ["garbage-collect"]
        if dryRun { arguments.append("--dry-run") }
        if deleteUntagged { arguments.append("--delete-untagged") }
        arguments.append(configPath.path)
        let clock = ContinuousClock()
        let started = clock.now
        let output = try ProcessRunner.runBlocking("docker-registry", arguments, timeout: timeout)
        let wallTime = clock.now - started
        guard let result = parse(stdout: output.stdoutText, stderr: output.stderrText, wallTime: wallTime) else {
            throw PeerGCError.missingSummary(
                command: ["docker-registry"] + arguments, stdout: output.stdoutText, stderr: output.stderrText)
        }
        return result
    }

    /// Reads 2.8.2's stdout; nil when the summary line is missing, since then the run did not
    /// get to its sweep and the sets would be incomplete.
    static func parse(stdout: String, stderr: String, wallTime: Duration) -> PeerGCResult? {
        var markedManifests: Set<String> = []
        var markedBlobs: Set<String> = []
        var blobsEligible: Set<String> = []
        var manifestsEligible: Set<String> = []
        var summary: PeerGCResult.Summary?
        for rawLine in stdout.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let digest = value(after: "blob eligible for deletion: ", in: line, anchored: true) {
                blobsEligible.insert(digest)
            } else if let digest = value(after: "manifest eligible for deletion: ", in: line, anchored: true) {
                manifestsEligible.insert(digest)
            } else if let digest = value(after: ": marking manifest ", in: line, anchored: false) {
                markedManifests.insert(digest)
            } else if let digest = value(after: ": marking blob ", in: line, anchored: false) {
                markedBlobs.insert(digest)
            } else if let counts = summaryCounts(line) {
                summary = counts
            }
        }
        guard let summary else { return nil }
        return PeerGCResult(
            markedManifests: markedManifests, markedBlobs: markedBlobs, blobsEligible: blobsEligible,
            manifestsEligible: manifestsEligible, summary: summary, wallTime: wallTime, stdout: stdout, stderr: stderr)
    }

    private static func value(after marker: String, in line: String, anchored: Bool) -> String? {
        guard let range = line.range(of: marker, options: anchored ? .anchored : []) else { return nil }
        return String(line[range.upperBound...])
    }

    private static func summaryCounts(_ line: String) -> PeerGCResult.Summary? {
        let words = line.split(separator: " ")
        guard words.count == 11,
              words[1...2] == ["blobs", "marked,"],
              words[4...5] == ["blobs", "and"],
              words[7...] == ["manifests", "eligible", "for", "deletion"],
              let marked = Int(words[0]), let blobs = Int(words[3]), let manifests = Int(words[6])
        else { return nil }
        return .init(blobsMarked: marked, blobsEligible: blobs, manifestsEligible: manifests)
    }
}
