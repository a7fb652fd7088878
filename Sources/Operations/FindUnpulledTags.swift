import Foundation
import RegistryModel
import RegistryStore
import Reporting
import Retention
import StateDatabase

/// `report`'s pull section: per repository, the tags no imported log shows pulled. Nil when
/// no log was ever imported (or no state database exists: reading must not create one).
public struct FindUnpulledTags: Sendable {
    public var storage: any StoreStorage
    public var location: StoreLocation
    public var jobs: Int

    public init(storage: any StoreStorage, location: StoreLocation, jobs: Int) {
        self.storage = storage
        self.location = location
        self.jobs = jobs
    }

    public func run() async throws -> UnpulledTags? {
        guard FileManager.default.fileExists(atPath: location.stateDatabasePath) else { return nil }
        let state = try StateStore.open(at: URL(fileURLWithPath: location.stateDatabasePath))
        guard let coverage = try await state.pullCoverage() else { return nil }
        let evidence = PullEvidence(pulls: try await state.pulls(), coverage: coverage)
        let scanner = StoreScanner(storage: storage)
        let names = scanner.repositories().names
        let repositories = try await boundedMap(names, jobs: jobs) { name in
            let tags = scanner.scanRepository(name, depth: .marking).state.tags
            let unpulled = tags.filter { tag, state in evidence.lastPull(name, tag, state.current) == nil }.keys.sorted()
            return UnpulledTags.Repository(repository: name, tags: tags.count, unpulled: unpulled)
        }
        return UnpulledTags(since: coverage.since, until: coverage.until, repositories: repositories.filter { !$0.unpulled.isEmpty },
                            gaps: coverage.gaps.filter { $0.duration > PullEvidence.gapTolerance })
    }
}
