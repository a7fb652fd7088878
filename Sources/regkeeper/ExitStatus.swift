import ArgumentParser
import Archive
import Foundation
import GarbageCollection
import Integrity
import Operations
import PullLog
import RegistryStore
import Retention
import StateDatabase

/// The exit statuses every command documents (`regkeeper --help`, regkeeper(1)), and the one
/// place that decides which failure ends with which: `Regkeeper.main` prints a
/// `ReportedFailure` as one `regkeeper:` line and exits with its status.
enum ExitStatus {
    /// Could not run: bad input, no store, an unreadable configuration or state.
    static let failure = ExitCode(1)
    static let lockHeld = ExitCode(2)
    /// Refused, nothing changed: an incomplete store, broken manifests, a breaker, a stale plan.
    static let refused = ExitCode(3)
    /// Finished, but some deletions (or placements) failed.
    static let partialFailure = ExitCode(4)
    static let damageFound = ExitCode(5)
    /// Usage: an unknown option, a malformed or negative span or size (ArgumentParser's own).
    static let usage = ExitCode.validationFailure
}

/// A failure a command reports: its message and its documented exit status.
protocol ReportedFailure: Error, CustomStringConvertible {
    var exitStatus: ExitCode { get }
}

/// A failure worded by a command, for what only the command knows (which option, which target).
struct CommandFailure: ReportedFailure {
    var description: String
    var exitStatus: ExitCode

    init(_ message: String, status: ExitCode) {
        description = message
        exitStatus = status
    }
}

extension GCError: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.refused }
}

extension RetentionError: ReportedFailure {
    var exitStatus: ExitCode {
        switch self {
        case .circuitBreaker, .incompleteStore, .insufficientPullHistory: ExitStatus.refused
        case .planUnreadable, .otherStore: ExitStatus.failure
        }
    }
}

extension StoreLock.Error: ReportedFailure {
    var exitStatus: ExitCode {
        if case .held = self { return ExitStatus.lockHeld }
        return ExitStatus.failure
    }
}

extension StoreLocation.Error: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}

extension StorageError: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}

extension StateStoreError: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}

extension VerifyError: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}

extension UndoGarbageCollection.Failure: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}

extension ArchiveError: ReportedFailure {
    var exitStatus: ExitCode {
        if case .incompleteStore = self { return ExitStatus.refused }
        return ExitStatus.failure
    }
}

extension S3StoreConfig.Error: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}

extension RestoreFailure: ReportedFailure {
    var exitStatus: ExitCode {
        switch self {
        case .refused, .bucketNotEmpty: ExitStatus.refused
        case .failed, .noChain, .mergeInterrupted, .history, .other, .upload: ExitStatus.failure
        }
    }
}

extension PullLogError: ReportedFailure {
    var exitStatus: ExitCode { ExitStatus.failure }
}
