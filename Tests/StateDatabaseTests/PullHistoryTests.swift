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
            // Between the two logs lies what neither covers.
            #expect(try await state.pullCoverage() == PullCoverage(
                since: date(-50), until: date(20), lastImport: date(30), gaps: [DateInterval(start: date(-40), end: date(10))]))
            #expect(try await state.logSource(fingerprint: "f-1")?.offset == 100)
            #expect(try await state.logSources().map(\.fingerprint) == ["f-0", "f-1"])
        }
    }

    /// Logs that overlap or abut leave no gap; one that starts after every earlier log ended
    /// leaves one, however the logs were imported.
    @Test func gapsAreWhatNoImportedLogSpans() async throws {
        try await withTemporaryDirectory { directory in
            let state = try StateStore.open(at: directory.appending(path: "state.db"))
            func source(_ name: String, _ first: Double, _ last: Double) -> StoredLogSource {
                StoredLogSource(fingerprint: name, input: name, offset: 1, lines: 1, firstEntry: date(first), lastEntry: date(last), importedAt: date(1000))
            }
            // A long log, one inside it, one abutting it, then one after a hole.
            try await state.recordPullImport(pulls: [], sources: [source("late", 500, 600), source("inner", 20, 40)])
            try await state.recordPullImport(pulls: [], sources: [source("long", 0, 100), source("abutting", 100, 200)])
            #expect(try await state.pullCoverage()?.gaps == [DateInterval(start: date(200), end: date(500))])
            // The missing log, imported after all, closes it.
            try await state.recordPullImport(pulls: [], sources: [source("missing", 190, 510)])
            #expect(try await state.pullCoverage()?.gaps == [])
        }
    }
}
