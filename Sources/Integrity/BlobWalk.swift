import RegistryModel
import RegistryStore

/// verify's walk of `blobs/<alg>/<2 hex>/<hex>/data`: one listing per shard that stats each
/// blob's `data` from the shard's descriptor (`list(_:probing:)`), so a blob costs one
/// `fstatat` instead of a listing of its directory and a stat from the root, and each shard's
/// blobs can be hashed while other shards are listed.
struct BlobWalk: Sendable {
    /// One shard's blobs.
    struct Shard: Sendable {
        /// Blob directories, with `data` or without.
        var directories = 0
        /// Blobs whose `data` is a file, with its size and mtime.
        var statuses: [BlobStatus] = []
        /// Blobs whose `data` could not be stat'ed (permissions, I/O): present, and reported
        /// unreadable, never taken for absent.
        var unstatable: [(Digest, StorageError)] = []
        var findings: [StoreFinding] = []
    }

    let storage: any StoreStorage

    /// Walks the shards on `threads` threads, handing each shard to `visit` on the thread
    /// that listed it, as soon as it is listed; returns every shard and the findings of
    /// `blobs/` itself.
    func run(threads: Int, visit: @escaping @Sendable (Shard) -> Void) async throws -> (shards: [Shard], findings: [StoreFinding]) {
        let (shards, findings): ([(Digest.Algorithm, StorePath)], [StoreFinding])
        do {
            (shards, findings) = try StoreScanner(storage: storage).shardDirectories()
        } catch {
            throw VerifyError.storeUnreadable(error)
        }
        let storage = storage
        let listed = try await threadedMap(shards, threads: threads, name: "walk") { algorithm, shard in
            do throws(StorageError) {
                let listed = try Self.scan(storage, algorithm, shard)
                visit(listed)
                return listed
            } catch {
                throw VerifyError.storeUnreadable(error)
            }
        }
        return (listed, findings)
    }

    private static func scan(_ storage: any StoreStorage, _ algorithm: Digest.Algorithm, _ shard: StorePath) throws(StorageError) -> Shard {
        var result = Shard()
        let prefix = shard.lastComponent!
        for probed in try storage.list(shard, probing: "data") {
            let entry = probed.entry
            guard let path = shard.appending(entry.name) else { continue }
            guard entry.kind == .directory, entry.name.hasPrefix(prefix),
                  let digest = Digest(algorithm: algorithm, hex: entry.name) else {
                result.findings.append(.stray(path: path, reason: "blob directory whose name is not a digest"))
                continue
            }
            result.directories += 1
            if let failure = probed.probeFailure {
                result.unstatable.append((digest, failure))
            } else if let status = probed.probe, status.kind == .file {
                result.statuses.append(BlobStatus(digest: digest, size: status.size, modified: status.modified))
            } else {
                result.findings.append(.stray(path: path, reason: "blob directory without data"))
            }
        }
        return result
    }
}
