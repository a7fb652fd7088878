import Foundation
import RegistryModel
import StateDatabase

/// What `pulls import` learned from the registry's logs, as the planner reads it for
/// `pulledWithin`: the last pull of each tag by its name, of each manifest by its digest, and
/// how far the imported logs reach.
public struct PullEvidence: Sendable {
    /// Nil: no log was ever imported.
    public var coverage: PullCoverage?
    public var tags: [RepositoryName: [Tag: Date]] = [:]
    public var digests: [RepositoryName: [Digest: Date]] = [:]

    public static let none = PullEvidence(coverage: nil)

    public init(coverage: PullCoverage?) {
        self.coverage = coverage
    }

    /// From the state database's rows; rows this build cannot read as names are skipped (they
    /// only ever keep things).
    public init(pulls: [StoredPull], coverage: PullCoverage?) {
        self.coverage = coverage
        for pull in pulls {
            guard let repository = RepositoryName(pull.repository) else { continue }
            if let tagText = pull.tag {
                guard let tag = Tag(tagText) else { continue }
                tags[repository, default: [:]][tag] = max(tags[repository]?[tag] ?? .distantPast, pull.lastPulled)
            } else if let digest = Digest(pull.digest) {
                digests[repository, default: [:]][digest] = max(digests[repository]?[digest] ?? .distantPast, pull.lastPulled)
            }
        }
    }

    /// The latest pull of a tag: by its name (whatever it pointed to then), or of the manifest
    /// it points to now by digest, with which one it was.
    public func lastPull(_ repository: RepositoryName, _ tag: Tag, _ digest: Digest?) -> (at: Date, byDigest: Bool)? {
        let byName = tags[repository]?[tag]
        let byDigest = digest.flatMap { digests[repository]?[$0] }
        switch (byName, byDigest) {
        case (nil, nil): return nil
        case (let name?, nil): return (name, false)
        case (nil, let digest?): return (digest, true)
        case (let name?, let digest?): return name >= digest ? (name, false) : (digest, true)
        }
    }

    /// Why `pulledWithin: window` cannot be trusted on this evidence at `now`, or nil when the
    /// imported logs reach back over the whole window. Silence outside the logs is not
    /// evidence that nobody pulled.
    public func shortfall(window: TimeSpan, now: Date) -> String? {
        guard let coverage else {
            return "no registry log has been imported (run `regkeeper pulls import` first), so every tag would count as never pulled"
        }
        let start = now.addingTimeInterval(-TimeInterval(window.seconds))
        if coverage.since > start {
            return "the imported logs reach back to \(Self.day(coverage.since)) (\(Self.span(now.timeIntervalSince(coverage.since)))), not over pulledWithin \(window)"
        }
        if coverage.until < start {
            return "the newest imported log entry is from \(Self.day(coverage.until)), before the pulledWithin \(window) window began"
        }
        if now.timeIntervalSince(coverage.lastImport) > Self.importMaxAge {
            return "the last import was \(Self.span(now.timeIntervalSince(coverage.lastImport))) ago, so pulls since are unknown (import right before retain)"
        }
        if let gap = coverage.gaps.first(where: { $0.end > start && $0.duration > Self.gapTolerance }) {
            return "no imported log covers \(Self.moment(gap.start)) to \(Self.moment(gap.end)) (\(Self.span(gap.duration))), inside pulledWithin \(window): "
                + "import the log that does (a rotated file such as access.log.1 or .2.gz), or give --force if the registry served nothing then"
        }
        return nil
    }

    /// The longest stretch between two imported logs taken for a quiet registry rather than a
    /// log never imported: a tag pulled only in a missing log would be deleted as unused. Half
    /// a day: a missing daily log leaves nearly a day; a registry quiet for longer around a
    /// rotation is told to `--force`, the safe way to be wrong. A missing hourly log is not
    /// caught.
    public static let gapTolerance: TimeInterval = 12 * 3600

    /// How old the last import may be: pulls after it are unknown, and a tag pulled only then
    /// would be deleted. A day lets a nightly import serve a nightly retain.
    public static let importMaxAge: TimeInterval = 86_400

    /// `2026-09-01T06:25:00Z`.
    static func moment(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }

    /// `2026-09-01`, in UTC.
    static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month().day())
    }

    private static func span(_ seconds: TimeInterval) -> String {
        let whole = max(0, Int64(seconds))
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where whole >= size { return "\(whole / size)\(unit)" }
        return "\(whole)s"
    }
}

/// What a plan says about the pull history it used: how far it reaches, and why it cannot be
/// trusted for the policy's longest `pulledWithin`, if it cannot.
public struct PullHistoryNote: Sendable, Codable, Hashable {
    public var since: Date?
    public var until: Date?
    /// The policy's longest `pulledWithin`, in seconds.
    public var windowSeconds: Int64
    /// Set when the history does not cover the window: applying then refuses unless --force.
    public var shortfall: String?

    public var summary: String {
        let window = TimeSpan(seconds: windowSeconds)
        guard let since, let until else { return "pull history: none imported; pulledWithin \(window) has no evidence" }
        return "pull history: imported logs from \(PullEvidence.day(since)) to \(PullEvidence.day(until)); longest pulledWithin \(window)"
    }
}
