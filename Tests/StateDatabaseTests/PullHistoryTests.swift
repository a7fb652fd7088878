import Foundation
import StateDatabase
import StoreTestSupport
import Testing

/// The pulls table keeps the latest pull whatever order imports come in, and sources widen
/// what the history covers.
struct PullHistoryTests {
    func date(_ seconds: Double) -> Date { Date(timeIntervalSince1970: 1_800_000_000 + seconds) }

    @Test func laterPullsWinAndEarlierOnesChangeNothing() async throws {
        try await withTemporaryDirectory { directory in
            let state = try StateStore.open(at: directory.appending(path: "state.db"))
            #expect(try await state.pullCoverage() == nil)
            let digest = "sha256:" + String(repeating: "a", count: 64)
            let source = StoredLogSource(fingerprint: "f-1", input: "access.log", offset: 100, lines: 2, firstEntry: date(10), lastEntry: date(20), importedAt: date(30))
            try await state.recordPullImport(pulls: [
                StoredPull(repository: "app", digest: digest, tag: "v1", lastPulled: date(20), exact: true),
                StoredPull(repository: "app", digest: digest, tag: nil, lastPulled: date(15), exact: true),
            ], sources: [source])
            // An older log imported later (out of order), and the same log again.
            var older = source
            older.fingerprint = "f-0"
            older.firstEntry = date(-50)
            older.lastEntry = date(-40)
            try await state.recordPullImport(pulls: [
                StoredPull(repository: "app", digest: digest, tag: "v1", lastPulled: date(-45), exact: false),
            ], sources: [older])
            try await state.recordPullImport(pulls: [
                StoredPull(repository: "app", digest: digest, tag: "v1", lastPulled: date(20), exact: true),
            ], sources: [source])
            let pulls = try await state.pulls()
            #expect(pulls == [
                StoredPull(repository: "app", digest: digest, tag: nil, lastPulled: date(15), exact: true),
                StoredPull(repository: "app", digest: digest, tag: "v1", lastPulled: date(20), exact: true),
            ])
            #expect(try await state.pullCoverage() == PullCoverage(since: date(-50), until: date(20), lastImport: date(30)))
            #expect(try await state.logSource(fingerprint: "f-1")?.offset == 100)
            #expect(try await state.logSources().map(\.fingerprint) == ["f-0", "f-1"])
        }
    }
}
