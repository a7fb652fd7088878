import Foundation
import RegistryModel
import RegistryStore

public struct GCOptions: Sendable, Hashable {
    /// Roots are tagged manifests only (plus their children and referrers), not every revision.
    public var deleteUntagged = false
    /// Blobs whose data is younger than this are kept: a push may be about to reference them.
    public var gracePeriod = TimeSpan(seconds: 3600)
    /// Uploads started longer ago than this are abandoned and purged.
    public var uploadMaxAge = TimeSpan(seconds: 168 * 3600)
    /// Sweep even when some manifests cannot be read, keeping all they might reference.
    public var allowBroken = false
    /// How long doomed items stay out of the registry's sight before links written during the
    /// run are re-read (`SweepExecutor`): longer than any push request takes between checking
    /// that a blob exists and writing its link.
    public var settle = TimeSpan(seconds: 30)
    public var jobs = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public init() {}
}

/// What gc will delete, and why: computed by the mark phase, printed by `--dry-run`, applied
/// by `SweepExecutor`.
public struct GCPlan: Sendable, Encodable {
    public struct BlobDeletion: Sendable, Hashable, Encodable {
        public var digest: Digest
        public var bytes: Int64
        public var reason: String
    }

    public struct ManifestRemoval: Sendable, Hashable, Encodable {
        public var repository: RepositoryName
        public var digest: Digest
        /// Tags whose history (`index/`) lists the manifest; those entries go too.
        public var tagHistory: [Tag]
        public var reason: String
    }

    public struct LinkRemoval: Sendable, Hashable, Encodable {
        public enum Kind: String, Sendable, Encodable { case layer, revision }
        public var repository: RepositoryName
        public var digest: Digest
        public var kind: Kind
        public var reason: String
    }

    public struct UploadPurge: Sendable, Hashable, Encodable {
        public var repository: RepositoryName
        public var uuid: String
        public var startedAt: Date
        public var bytes: Int64
    }

    /// A manifest that could not be walked: its blobs are unknown, so sweeping could lose them.
    public struct BrokenManifest: Sendable, Hashable, Encodable {
        public var repository: RepositoryName
        public var digest: Digest
        public var reason: String
        /// How gc reached it: "revision", "tag latest", "child of sha256:…".
        public var referencedBy: String
    }

    public struct Counts: Sendable, Hashable, Encodable {
        public var repositories = 0
        public var manifests = 0
        public var manifestsTraversed = 0
        public var blobs = 0
        public var blobsMarked = 0
        public var blobsInGracePeriod = 0
    }

    public var options: Options
    /// When the mark began: links written after it belong to pushes gc must not race.
    public var markStartedAt: Date
    public var blobs: [BlobDeletion] = []
    public var manifests: [ManifestRemoval] = []
    public var links: [LinkRemoval] = []
    public var uploads: [UploadPurge] = []
    public var broken: [BrokenManifest] = []
    /// Paths that decide what is live but could not be read (unreadable, a symbolic link,
    /// `repositories/` absent): the mark is incomplete and nothing may be swept.
    public var incomplete: [StoreFinding] = []
    public var findings: [StoreFinding] = []
    public var counts = Counts()

    public struct Options: Sendable, Hashable, Encodable {
        public var deleteUntagged: Bool
        public var gracePeriod: String
        public var uploadMaxAge: String
        public var allowBroken: Bool
    }

    /// Why this plan may not be swept, or nil. An incomplete mark always refuses; broken
    /// manifests refuse unless the operator accepted them (`--allow-broken`).
    public var refusal: GCError? {
        if !incomplete.isEmpty { return .incompleteMark(incomplete) }
        if !broken.isEmpty, !options.allowBroken { return .brokenManifests(broken) }
        return nil
    }

    public var bytesFreed: Int64 {
        blobs.reduce(0) { $0 + $1.bytes } + uploads.reduce(0) { $0 + $1.bytes }
    }

    public var isEmpty: Bool { blobs.isEmpty && manifests.isEmpty && links.isEmpty && uploads.isEmpty }
}

/// Why gc stopped before deleting anything.
public enum GCError: Error, CustomStringConvertible {
    case brokenManifests([GCPlan.BrokenManifest])
    /// Parts of the tree that decide what is live could not be read: what they hide is unknown.
    case incompleteMark([StoreFinding])

    public var description: String {
        switch self {
        case .incompleteMark(let findings):
            return (["refusing to sweep: \(findings.count) path(s) that decide what is live cannot be read, so nothing can be judged unused:"]
                + findings.map { "  \($0)" }
                + ["make them readable by the user running gc (or run it as the registry's user), replace symbolic links with "
                    + "what they point to, and mount or restore repositories/; --allow-broken does not override this"])
                .joined(separator: "\n")
        case .brokenManifests(let broken):
            let listed = broken.prefix(10).map { "  \($0.repository)@\($0.digest) (\($0.referencedBy)): \($0.reason)" }
            let more = broken.count > 10 ? ["  … and \(broken.count - 10) more"] : []
            return (["refusing to sweep: \(broken.count) manifest(s) cannot be walked, so the blobs they reference are unknown:"]
                + listed + more + ["fix or remove them, or pass --allow-broken to sweep while keeping everything they could reference"])
                .joined(separator: "\n")
        }
    }
}
