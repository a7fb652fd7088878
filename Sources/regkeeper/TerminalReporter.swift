import Foundation
import RegistryStore
import Synchronization

/// Progress on standard error, only when it is a terminal: cron mail stays clean.
struct TerminalReporter: ProgressReporter {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let throttle = RedrawThrottle()

    func phaseStarted(_ phase: String) {
        guard isTerminal else { return }
        write("\r\u{1B}[K\(phase)…")
    }

    func phaseFinished(_ phase: String, elapsed: Duration) {
        guard isTerminal else { return }
        write("\r\u{1B}[K\(phase) done in \(elapsed.formattedSeconds)\n")
    }

    func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {
        guard isTerminal, throttle.due(final: total == done) else { return }
        let amount = unit == .bytes ? done.formattedBytes : "\(done)"
        let of = total.map { unit == .bytes ? " of \($0.formattedBytes)" : " of \($0)" } ?? ""
        let percent = total.flatMap { $0 > 0 ? String(format: " (%.0f%%)", Double(done) * 100 / Double($0)) : nil } ?? ""
        write("\r\u{1B}[K\(phase): \(amount)\(of)\(percent)")
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// Backup and restore report every megabyte; a terminal needs ten frames a second, not
/// thousands (and the last one).
private final class RedrawThrottle: Sendable {
    private let lastDrawn = Mutex<ContinuousClock.Instant?>(nil)

    func due(final: Bool) -> Bool {
        let now = ContinuousClock.now
        return lastDrawn.withLock { last in
            if !final, let last, now - last < .milliseconds(100) { return false }
            last = now
            return true
        }
    }
}
