import Foundation
import RegistryModel
import Synchronization

/// Why a manifest a link names cannot be walked.
public enum ManifestLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    case missing
    case unreadable(String)
    case unparsable(ManifestParseError)

    public var description: String {
        switch self {
        case .missing: "manifest blob is missing"
        case .unreadable(let reason): "manifest blob is unreadable: \(reason)"
        case .unparsable(let error): "manifest is unparsable: \(error)"
        }
    }
}

/// Reads and parses manifest blobs once each, however many repositories link them.
public final class ManifestLoader: Sendable {
    /// Distribution refuses manifests over 4 MiB; a larger "manifest" is not one.
    public static let sizeLimit = 4 << 20

    private struct Loaded {
        var result: Result<Manifest, ManifestLoadError>
        /// Bytes read, when the blob could be read: what a report counts without a stat.
        var byteCount: Int64?
    }

    /// One part of the cache, behind its own lock.
    private final class Shard: Sendable {
        let cache = Mutex<[Digest: Loaded]>([:])
    }

    private let storage: any StoreStorage
    /// The cache split by digest, so that the scan's many threads (more than there are cores)
    /// rarely wait on one another's lock: on one lock, a holder the scheduler preempted kept
    /// the others spinning, 2.4% of verify's CPU time on `regkeeper-bench verify`'s store.
    private let shards: [Shard] = (0..<64).map { _ in Shard() }

    public init(storage: any StoreStorage) { self.storage = storage }

    private func shard(_ digest: Digest) -> Shard {
        shards[Int(UInt(bitPattern: digest.hashValue) % UInt(shards.count))]
    }

    public func load(_ digest: Digest) -> Result<Manifest, ManifestLoadError> {
        let shard = shard(digest)
        if let cached = shard.cache.withLock({ $0[digest] }) { return cached.result }
        let loaded = Self.read(storage, digest)
        shard.cache.withLock { $0[digest] = loaded }
        return loaded.result
    }

    /// The size of a manifest blob this loader has read, parsable or not.
    public func byteCount(of digest: Digest) -> Int64? {
        shard(digest).cache.withLock { $0[digest]?.byteCount }
    }

    private static func read(_ storage: any StoreStorage, _ digest: Digest) -> Loaded {
        let data: Data
        do {
            data = try storage.read(Layout.blobData(digest), limit: sizeLimit)
        } catch .notFound {
            return Loaded(result: .failure(.missing))
        } catch {
            return Loaded(result: .failure(.unreadable(error.description)))
        }
        do {
            return Loaded(result: .success(try Manifest(parsing: data)), byteCount: Int64(data.count))
        } catch {
            return Loaded(result: .failure(.unparsable(error)), byteCount: Int64(data.count))
        }
    }
}
