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
    public var findings: [StoreFinding] = []
    public var counts = Counts()

    public struct Options: Sendable, Hashable, Encodable {
        public var deleteUntagged: Bool
        public var gracePeriod: String
        public var uploadMaxAge: String
        public var allowBroken: Bool
    }

    /// Broken manifests stop the sweep unless the operator accepted them.
    public var sweepAllowed: Bool { broken.isEmpty || options.allowBroken }

    public var bytesFreed: Int64 {
        blobs.reduce(0) { $0 + $1.bytes } + uploads.reduce(0) { $0 + $1.bytes }
    }

    public var isEmpty: Bool { blobs.isEmpty && manifests.isEmpty && links.isEmpty && uploads.isEmpty }
}

/// Why gc stopped before deleting anything.
public enum GCError: Error, CustomStringConvertible {
    case brokenManifests([GCPlan.BrokenManifest])

    public var description: String {
        switch self {
        case .brokenManifests(let broken):
            let listed = broken.prefix(10).map { "  \($0.repository)@\($0.digest) (\($0.referencedBy)): \($0.reason)" }
            let more = broken.count > 10 ? ["  … and \(broken.count - 10) more"] : []
            return (["refusing to sweep: \(broken.count) manifest(s) cannot be walked, so the blobs they reference are unknown:"]
                + listed + more + ["fix or remove them, or pass --allow-broken to sweep while keeping everything they could reference"])
                .joined(separator: "\n")
        }
    }
}
