import Foundation
import RegistryStore
import Synchronization

/// verify's progress line on standard error, only on a terminal: bytes and files hashed,
/// throughput and time left. Findings printed meanwhile go above it, so the line never
/// garbles them.
final class VerifyProgressBar: ProgressReporter {
    private struct State {
        var phaseStart = ContinuousClock.now
        var files: (done: Int64, total: Int64?) = (0, nil)
        var shown = false
    }

    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let state = Mutex(State())

    func phaseStarted(_ phase: String) {
        state.withLock { state in
            state.phaseStart = .now
            state.files = (0, nil)
            if isTerminal { draw("\(phase)…", &state) }
        }
    }

    func phaseFinished(_ phase: String, elapsed: Duration) {
        state.withLock { state in
            if isTerminal { draw("\(phase) done in \(elapsed.formattedSeconds)", &state) }
        }
    }

    func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {
        state.withLock { state in
            guard unit == .bytes else {
                state.files = (done, total)
                return
            }
            guard isTerminal else { return }
            let seconds = (ContinuousClock.now - state.phaseStart) / .seconds(1)
            var line = "\(phase): \(done.formattedBytes)"
            if let total, total > 0 {
                line += " of \(total.formattedBytes) (\(Int(Double(done) * 100 / Double(total)))%)"
            }
            line += ", \(state.files.done)" + (state.files.total.map { "/\($0)" } ?? "") + " files"
            if seconds > 0.2, done > 0 {
                let rate = Double(done) / seconds
                line += String(format: ", %.2f GB/s", rate / 1e9)
                if let total { line += ", ETA " + Self.clock(Double(total - done) / rate) }
            }
            draw(line, &state)
        }
    }

    /// Prints a line on standard output, above the progress line.
    func printAbove(_ text: String) {
        state.withLock { state in
            if state.shown {
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                state.shown = false
            }
            printLine(text)
        }
    }

    /// Ends the progress line so the summary starts on a fresh one.
    func finish() {
        state.withLock { state in
            if state.shown { FileHandle.standardError.write(Data("\n".utf8)) }
            state.shown = false
        }
    }

    private func draw(_ line: String, _ state: inout State) {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        state.shown = true
    }

    private static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        return whole >= 3600 ? String(format: "%dh%02dm", whole / 3600, whole % 3600 / 60) : String(format: "%dm%02ds", whole / 60, whole % 60)
    }
}
