import Foundation
import StateDatabase
import StoreTestSupport
import Testing

@Suite struct RunHistoryTests {
    private let started = Date(timeIntervalSince1970: 1_700_000_000.25)
    private let ended = Date(timeIntervalSince1970: 1_700_000_090.5)

    @Test func recordsACompleteRun() async throws {
        try await withTemporaryDirectory { directory in
            let store = try StateStore.open(at: directory.appending(path: "state.db"))
            let records = [
                DeletionRecord(repository: "library/app", tag: "v1", kind: .tag, reason: "older than 30 days", bytes: 0,
                               path: "docker/registry/v2/repositories/library/app/_manifests/tags/v1"),
                DeletionRecord(digest: "sha256:" + String(repeating: "a", count: 64), kind: .blob, reason: "unreferenced",
                               bytes: 5_000_000, path: "docker/registry/v2/blobs/sha256/aa/aaaa/data"),
            ]

            let id = try await store.beginRun(command: "gc", arguments: "regkeeper gc --delete-untagged /srv/registry", startedAt: started)
            try await store.recordDeletions(records, run: id)
            try await store.finishRun(id, outcome: .success, counts: ["blobs": 1, "tags": 1], bytes: 5_000_000, endedAt: ended)

            let detail = try await store.run(id)
            #expect(detail.summary.id == id)
            #expect(detail.summary.command == "gc")
            #expect(detail.summary.arguments == "regkeeper gc --delete-untagged /srv/registry")
            #expect(detail.summary.startedAt == started)
            #expect(detail.summary.endedAt == ended)
            #expect(detail.summary.outcome == .success)
            #expect(detail.summary.status == "success")
            #expect(detail.summary.counts == ["blobs": 1, "tags": 1])
            #expect(detail.summary.bytes == 5_000_000)
            #expect(detail.deletions == records)
            #expect(try await store.runs(limit: 10) == [detail.summary])
        }
    }

    @Test func runWhoseProcessDiedShowsAsUnfinished() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let id = try await StateStore.open(at: url).beginRun(command: "retention", arguments: "regkeeper retention", startedAt: started)

            let summary = try #require(try await StateStore.open(at: url).runs(limit: 1).first)
            #expect(summary.id == id)
            #expect(summary.outcome == nil)
            #expect(summary.status == "unfinished")
            #expect(summary.endedAt == nil)
            #expect(summary.bytes == nil)
            #expect(summary.counts.isEmpty)
        }
    }

    @Test func recordsOneHundredThousandDeletionsInOneBatch() async throws {
        try await withTemporaryDirectory { directory in
            let store = try StateStore.open(at: directory.appending(path: "state.db"))
            let id = try await store.beginRun(command: "gc", arguments: "regkeeper gc")
            let records = (0..<100_000).map(sampleDeletion)

            try await store.recordDeletions(records, run: id)

            let deletions = try await store.run(id).deletions
            #expect(deletions.count == 100_000)
            #expect(deletions.first == records.first)
            #expect(deletions.last == records.last)
        }
    }

    @Test func concurrentCallersAreSerialisedByTheActor() async throws {
        try await withTemporaryDirectory { directory in
            let store = try StateStore.open(at: directory.appending(path: "state.db"))
            let ids = try await withThrowingTaskGroup(of: RunID.self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        let id = try await store.beginRun(command: "worker-\(worker)", arguments: "regkeeper gc")
                        for batch in 0..<5 {
                            try await store.recordDeletions((0..<20).map { sampleDeletion(worker * 1000 + batch * 20 + $0) }, run: id)
                        }
                        try await store.finishRun(id, outcome: .success, counts: ["deleted": 100], bytes: Int64(worker))
                        return id
                    }
                }
                return try await group.reduce(into: Set<RunID>()) { $0.insert($1) }
            }

            #expect(ids.count == 16)
            let summaries = try await store.runs(limit: 100)
            #expect(Set(summaries.map(\.id)) == ids)
            for summary in summaries {
                let deletions = try await store.run(summary.id).deletions
                let worker = Int(summary.bytes ?? -1)
                #expect(summary.command == "worker-\(worker)")
                #expect(deletions == (0..<100).map { sampleDeletion(worker * 1000 + $0) })
            }
        }
    }

    @Test func runsAreNewestFirstAndLimited() async throws {
        try await withTemporaryDirectory { directory in
            let store = try StateStore.open(at: directory.appending(path: "state.db"))
            var ids: [RunID] = []
            for index in 0..<5 {
                ids.append(try await store.beginRun(command: "gc", arguments: "run \(index)"))
            }

            #expect(try await store.runs(limit: 3).map(\.id) == ids.reversed().prefix(3).map { $0 })
            #expect(try await store.runs(limit: 0).isEmpty)
            #expect(try await store.runs(limit: -1).isEmpty)
        }
    }

    @Test func unknownRunIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try StateStore.open(at: directory.appending(path: "state.db"))
            let missing = RunID(rawValue: 404)

            await #expect(throws: StateStoreError.noSuchRun(missing)) {
                try await store.recordDeletions([sampleDeletion(0)], run: missing)
            }
            await #expect(throws: StateStoreError.noSuchRun(missing)) {
                try await store.finishRun(missing, outcome: .failure, counts: [:], bytes: 0)
            }
            await #expect(throws: StateStoreError.noSuchRun(missing)) { try await store.run(missing) }
        }
    }

    @Test func unknownStoredOutcomeIsReportedNotGuessed() async throws {
        try await withTemporaryDirectory { directory in
            let url = directory.appending(path: "state.db")
            let path = url.path(percentEncoded: false)
            let store = try StateStore.open(at: url)
            _ = try await store.beginRun(command: "gc", arguments: "regkeeper gc")
            try SQLiteConnection(path: path).execute("UPDATE runs SET outcome = 'exploded'")

            await #expect(throws: StateStoreError.invalidStoredValue(path: path, column: "runs.outcome", value: "exploded")) {
                try await store.runs(limit: 1)
            }
        }
    }

    @Test func detailRoundTripsThroughJSON() async throws {
        try await withTemporaryDirectory { directory in
            let store = try StateStore.open(at: directory.appending(path: "state.db"))
            let id = try await store.beginRun(command: "gc", arguments: "regkeeper gc --dry-run", startedAt: started)
            try await store.recordDeletions([sampleDeletion(3)], run: id)
            try await store.finishRun(id, outcome: .dryRun, counts: ["blobs": 1], bytes: 3072, endedAt: ended)
            let detail = try await store.run(id)

            let json = try JSONEncoder().encode(detail)
            let text = String(decoding: json, as: UTF8.self)
            #expect(text.contains(#""outcome":"dry-run""#))
            #expect(text.contains(#""kind":"layer-link""#))
            #expect(try JSONDecoder().decode(RunDetail.self, from: json) == detail)
        }
    }
}
