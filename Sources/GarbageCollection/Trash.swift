import Foundation
import RegistryStore

/// Where `gc --trash` moves what it sweeps instead of deleting it: `<state>/trash/<run>/`,
/// holding each item at its store path. A rename on the same filesystem, so trashing costs
/// what deleting does and an undo puts back the very same bytes.
public struct Trash: Sendable {
    public let directory: String

    public init(stateDirectory: String) {
        directory = stateDirectory + "/trash"
    }

    public struct Run: Sendable, Hashable, Encodable {
        /// The gc run's number in the history.
        public var run: Int64
        public var trashedAt: Date
        public var path: String
    }

    /// The area for one run; the name carries the run number and the time, so purging needs
    /// nothing but a directory listing.
    public func area(run: Int64, at date: Date) -> String {
        directory + "/run-\(run)-\(Int64(date.timeIntervalSince1970))"
    }

    public func runs() -> [Run] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            let parts = name.split(separator: "-")
            guard parts.count == 3, parts[0] == "run", let run = Int64(parts[1]), let seconds = Int64(parts[2]) else { return nil }
            return Run(run: run, trashedAt: Date(timeIntervalSince1970: TimeInterval(seconds)), path: directory + "/" + name)
        }.sorted { $0.run < $1.run }
    }

    /// Deletes the areas of runs trashed before `cutoff`; returns their run numbers.
    @discardableResult
    public func purge(before cutoff: Date) throws -> [Int64] {
        let expired = runs().filter { $0.trashedAt < cutoff }
        for run in expired { try FileManager.default.removeItem(atPath: run.path) }
        return expired.map(\.run)
    }

    public struct Restoration: Sendable, Encodable {
        public var restored: [String] = []
        /// Items left in the trash, with the reason (something re-created them since).
        public var refused: [Refusal] = []

        public struct Refusal: Sendable, Encodable {
            public var path: String
            public var reason: String
        }
    }

    /// Puts a run's items back, blobs before the links that point at them. An item whose
    /// path exists again (a later push or run re-created it) stays in the trash and is reported.
    public func restore(_ run: Run, into storage: any StoreStorage) throws(StorageError) -> Restoration {
        var restoration = Restoration()
        for path in Layout.blobsFirst(try storage.detachedFiles(in: run.path)) {
            do {
                try storage.reattach(path, from: run.path)
                restoration.restored.append(path.description)
            } catch .alreadyExists {
                restoration.refused.append(.init(path: path.description, reason: "re-created after run \(run.run)"))
            }
        }
        if restoration.refused.isEmpty { try? FileManager.default.removeItem(atPath: run.path) }
        return restoration
    }
}
