import Foundation
import Synchronization

/// Copies a whole registry tree from one driver to another, keeping each file's time: how a
/// restore reaches a bucket (staged and verified on disk first, then uploaded), and how a
/// store moves from disk to S3.
///
/// Order is the registry's own safety order: blobs first, then revision and layer links, then
/// tags. A copy cut short leaves at worst blobs no link names (gc's to collect), never a tag
/// naming a manifest or blob that is not there.
public enum StoreCopy {
    public struct Totals: Sendable, Hashable {
        public var files = 0
        public var bytes: Int64 = 0

        public init() {}
    }

    /// Copies every file below `docker/registry/v2` of `source` into `destination`, `jobs` at a time.
    public static func copy(from source: any StoreStorage, to destination: any StoreStorage, jobs: Int) throws(StorageError) -> Totals {
        let files: [StoreFile]
        do {
            files = try source.listRecursively(Layout.registryRoot)
        } catch .notFound {
            return Totals()
        }
        var totals = Totals()
        for stage in stages(files) {
            try copyConcurrently(stage, from: source, to: destination, jobs: jobs)
            totals.files += stage.count
            totals.bytes += stage.reduce(0) { $0 + $1.status.size }
        }
        return totals
    }

    /// Blobs, then everything but tags, then tags.
    static func stages(_ files: [StoreFile]) -> [[StoreFile]] {
        let blobs = Layout.registryRoot.appending(trusted: "blobs")
        func isTag(_ path: StorePath) -> Bool {
            guard let index = path.components.firstIndex(of: Layout.manifestsDirectoryName) else { return false }
            return path.components.dropFirst(index + 1).first == "tags"
        }
        return [
            files.filter { $0.path.hasPrefix(blobs) },
            files.filter { !$0.path.hasPrefix(blobs) && !isTag($0.path) },
            files.filter { isTag($0.path) },
        ]
    }

    private static func copyConcurrently(_ files: [StoreFile], from source: any StoreStorage, to destination: any StoreStorage, jobs: Int) throws(StorageError) {
        let next = Atomic<Int>(0)
        let failure = Mutex<StorageError?>(nil)
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, files.count))) { _ in
            while failure.withLock({ $0 == nil }) {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < files.count else { return }
                let file = files[index]
                do throws(StorageError) {
                    guard file.status.kind == .file else { throw .symlinkRefused(file.path) }
                    let (data, status) = try source.readWithStatus(file.path, limit: .max)
                    try destination.writeAtomically(file.path, data, modified: status.modified)
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
