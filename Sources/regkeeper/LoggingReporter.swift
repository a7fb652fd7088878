import Logging
import RegistryStore

/// Turns the libraries' progress events into log lines (phases at info, progress at debug)
/// and passes them on to the terminal reporter.
struct LoggingReporter: ProgressReporter {
    let next: any ProgressReporter
    let logger: Logger

    func phaseStarted(_ phase: String) {
        logger.info("\(phase) started")
        next.phaseStarted(phase)
    }

    func phaseFinished(_ phase: String, elapsed: Duration) {
        logger.info("\(phase) finished in \(elapsed.formattedSeconds)")
        next.phaseFinished(phase, elapsed: elapsed)
    }

    func progress(_ phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {
        logger.debug("\(phase): \(done)\(total.map { " of \($0)" } ?? "")\(unit == .bytes ? " bytes" : "")")
        next.progress(phase, done: done, total: total, unit: unit)
    }
}
