import Foundation
import RegistryModel
import RegistryStore
import StateDatabase
import Synchronization

public struct VerifyOptions: Sendable {
    /// Blobs hashed at once. Hashing, not reading, is the limit: one per core.
    public var jobs = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Skip blobs verified good within this span whose size and mtime have not changed.
    public var maxAge: TimeSpan?
    /// Rehash at most about this many bytes, least recently verified first.
    public var budget: ByteCount?
    /// Start no new blob after this long.
    public var timeLimit: Duration?
    /// Absolute directory that corrupt blobs are moved into; nil leaves the store untouched.
    public var quarantineDirectory: String?

    public init() {}
}

/// What a run checked and found.
public struct VerifyReport: Sendable, Codable {
    public struct Counts: Sendable, Codable, Hashable {
        public var repositories = 0
        public var tags = 0
        public var manifests = 0
        public var blobs = 0
        public var bytes: Int64 = 0
        public var blobsHashed = 0
        public var bytesHashed: Int64 = 0
        /// Skipped by `--max-age`: verified good recently and unchanged since.
        public var recentlyVerified = 0
        /// Left for a later run by `--budget` or `--time-limit`.
        public var deferred = 0
        public var deferredBytes: Int64 = 0
        public var quarantined = 0
    }

    public enum Stop: String, Sendable, Codable {
        case budget
        case timeLimit = "time-limit"
    }

    /// Sorted by kind, then path.
    public var findings: [IntegrityFinding]
    public var counts: Counts
    /// Why some blobs were left for a later run, if any were.
    public var stoppedBy: Stop?
    public var startedAt: Date
    /// Time spent rehashing, for throughput.
    public var hashSeconds: Double

    public var isClean: Bool { findings.isEmpty }
}

public enum VerifyError: Error, Hashable, Sendable, CustomStringConvertible {
    case storeUnreadable(StorageError)
    case stateDatabase(operation: String, reason: String)

    public var description: String {
        switch self {
        case .storeUnreadable(let error): "cannot read the store: \(error)"
        case .stateDatabase(let operation, let reason): "state database: cannot \(operation): \(reason)"
        }
    }
}
