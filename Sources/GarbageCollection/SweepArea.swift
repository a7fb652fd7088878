import Foundation
import RegistryStore

/// Where a sweep takes doomed items out of the registry's sight before it decides they are
/// dead: `<state>/sweep/<run>/`, holding each item at its store path. A rename on the store's
/// filesystem, so the registry sees an item vanish at once and can no longer link it.
///
/// A run's area outlives the run only when the run was killed or could not put something
/// back; `recover` then returns every item to the store (the safe answer: a later gc sweeps
/// again what is really unused), and every command that takes the exclusive lock calls it
/// before it plans anything.
public struct SweepArea: Sendable {
    public let directory: String

    public init(stateDirectory: String) {
        directory = stateDirectory + "/sweep"
    }

    /// A fresh area for one run; the name orders runs and never repeats.
    func newRun(at date: Date) -> String {
        directory + "/run-\(Int64(date.timeIntervalSince1970 * 1000))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// What `recover` put back.
    public struct Recovery: Sendable, Hashable, Encodable {
        /// Areas of interrupted runs that were emptied.
        public var runs: [String] = []
        /// Files moved back into the store.
        public var restored = 0
        /// Files the store holds again (the registry re-created them): the detached copy was dropped.
        public var superseded = 0

        public var isEmpty: Bool { runs.isEmpty }
    }

    /// Returns every item that interrupted runs left detached to the store. A file whose path
    /// exists again was re-created by the registry (same digest, same content) and wins.
    public func recover(into storage: any StoreStorage) throws(StorageError) -> Recovery {
        var recovery = Recovery()
        for name in try storage.detachedAreas(under: directory) {
            let run = directory + "/" + name
            let (restored, superseded) = try Self.putBack(try storage.detachedFiles(in: run), from: run, into: storage)
            recovery.restored += restored
            recovery.superseded += superseded
            try storage.discardDetached(in: run)
            recovery.runs.append(run)
        }
        return recovery
    }

    /// Moves `files` back from `run`; returns how many went back and how many the store
    /// already held again.
    static func putBack(_ files: [StorePath], from run: String, into storage: any StoreStorage) throws(StorageError) -> (Int, Int) {
        var restored = 0
        var superseded = 0
        for path in Layout.blobsFirst(files) {
            do {
                try storage.reattach(path, from: run)
                restored += 1
            } catch .alreadyExists {
                superseded += 1
            }
        }
        return (restored, superseded)
    }
}
