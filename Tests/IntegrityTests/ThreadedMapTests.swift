@testable import Integrity
import Foundation
import Synchronization
import Testing

/// The scan's thread pool: each thread keeps its own results, so the order they come back in
/// must still be the input's, whatever thread took which item, and a failure must stop the
/// rest rather than be lost among results.
@Suite struct ThreadedMapTests {
    private struct Refused: Error, Equatable { var item: Int }

    @Test(arguments: [1, 3, 32])
    func resultsComeBackInInputOrder(_ threads: Int) async throws {
        let items = Array(0..<2_000)
        let calls = Atomic(0)
        let results = try await threadedMap(items, threads: threads, name: "test") { item in
            calls.add(1, ordering: .relaxed)
            return "item \(item)"
        }
        #expect(results == items.map { "item \($0)" })
        #expect(calls.load(ordering: .relaxed) == items.count)
    }

    @Test func noItemsStartNoThreads() async throws {
        let results = try await threadedMap([Int](), threads: 8, name: "test") { $0 }
        #expect(results.isEmpty)
    }

    @Test(arguments: [1, 4])
    func theFirstFailureIsThrownAndStopsTheRest(_ threads: Int) async throws {
        let items = Array(0..<10_000)
        let calls = Atomic(0)
        let error = await #expect(throws: Refused.self) {
            _ = try await threadedMap(items, threads: threads, name: "test") { item in
                calls.add(1, ordering: .relaxed)
                if item == 10 { throw Refused(item: item) }
                if item > 10 { usleep(1_000) }
                return item
            }
        }
        #expect(error == Refused(item: 10))
        // Each thread finishes the item it holds and takes no more: not the 10 s the rest
        // would take (a bound loose enough for a thread preempted on a busy machine).
        #expect(calls.load(ordering: .relaxed) < 500)
    }
}
