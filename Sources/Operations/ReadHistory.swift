import Foundation
import RegistryStore
import StateDatabase

/// `history`: the runs recorded in the state database. Reading must not create a database
/// where no run was ever recorded, so a store without one has no runs.
public struct ReadHistory: Sendable {
    public var location: StoreLocation

    public init(location: StoreLocation) { self.location = location }

    /// Nil when nothing was ever recorded.
    private func history() throws -> StateStore? {
        guard FileManager.default.fileExists(atPath: location.stateDatabasePath) else { return nil }
        return try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
    }

    /// The newest `limit` runs.
    public func runs(limit: Int) async throws -> [RunSummary] {
        try await history()?.runs(limit: limit) ?? []
    }

    /// One run and what it deleted; nil when nothing was ever recorded.
    public func run(_ id: RunID) async throws -> RunDetail? {
        try await history()?.run(id)
    }
}
