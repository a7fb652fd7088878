import RegistryStore
import Synchronization

/// Remembers how long each phase took, for the summary, and passes events on.
final class TimingReporter: ProgressReporter {
    private let next: any ProgressReporter
    private let recorded = Mutex<[(name: String, elapsed: Duration)]>([])

    init(_ next: any ProgressReporter) { self.next = next }

    var phases: [(name: String, elapsed: Duration)] { recorded.withLock { $0 } }

    func phaseStarted(_ phase: String) { next.phaseStarted(phase) }

    func phaseFinished(_ phase: String, elapsed: Duration) {
        recorded.withLock { $0.append((phase, elapsed)) }
        next.phaseFinished(phase, elapsed: elapsed)
    }

    func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {
        next.progress(phase, done: done, total: total, unit: unit)
    }
}
