import ArgumentParser
import Foundation
import Logging
import Operations
import Synchronization
import RegistryModel
import RegistryStore
import S3Store

struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The registry's storage root (storage.filesystem.rootdirectory), or s3://BUCKET/PREFIX.", valueName: "dir"))
    var root: String?

    @Option(name: .customLong("s3-endpoint"), help: ArgumentHelp("S3 endpoint for an s3:// root or an s3 config (default: regionendpoint, AWS_ENDPOINT_URL, else AWS).", valueName: "url"))
    var s3Endpoint: String?

    @Option(name: .long, help: ArgumentHelp("The registry's config.yml, read for its rootdirectory.", valueName: "file"))
    var config: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where the lock and databases live (default: <root>/.regkeeper).", valueName: "dir"))
    var stateDirectory: String?

    @Option(name: .long, parsing: .unconditional, help: .span("Wait this long for another run's lock instead of failing at once (e.g. 10m).", default: .zero), transform: TimeSpan.init(parsing:))
    var wait = TimeSpan.zero

    func validate() throws {
        if root != nil, config != nil { throw ValidationError("give --root or --config, not both") }
    }

    var lockWait: Duration { .seconds(wait.seconds) }

    /// The store a command reads or changes, refused unless its root holds docker/registry/v2.
    func location() throws -> StoreLocation {
        let location = try stateLocation()
        if location.s3 != nil {
            // One listing both proves the tree is there and that the bucket answers (credentials, endpoint).
            let storage = try openStorage(location)
            do throws(StorageError) {
                _ = try storage.list(Layout.registryRoot)
            } catch .notFound {
                throw CommandFailure(StoreLocation.Error.notARegistryStore(root: location.root).description, status: ExitStatus.failure)
            } catch {
                throw CommandFailure(error.description, status: ExitStatus.failure)
            }
            return location
        }
        do {
            try location.checkRegistryTree()
        } catch {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        }
        return location
    }

    /// Where the store's state lives, for commands that read only that (history, the backup
    /// catalog): they work on whatever state a root has, registry tree or not.
    func stateLocation() throws -> StoreLocation {
        do {
            if let s3 = try s3Store() {
                return StoreLocation(s3: s3, stateDirectory: stateDirectory.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
            }
            return try StoreLocation.resolve(root: root, config: config, stateDirectory: stateDirectory)
        } catch let error as S3StoreConfig.Error {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        } catch let error as StoreLocation.Error {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        }
    }

    /// The bucket named by `--root s3://…`, or by the `storage.s3` of the registry's config.
    private func s3Store() throws -> S3StoreConfig? {
        let environment = ProcessInfo.processInfo.environment
        if let root {
            return root.hasPrefix("s3://") ? try S3StoreConfig.parse(url: root, endpoint: s3Endpoint, environment: environment) : nil
        }
        let configPath = config ?? StoreLocation.defaultConfigPath
        guard config != nil || FileManager.default.fileExists(atPath: configPath) else { return nil }
        return try S3StoreConfig.fromRegistryConfig(configPath, endpoint: s3Endpoint, environment: environment)
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the full report as JSON on standard output.")
    var json = false

    @Flag(name: .long, help: "Print nothing but errors (for cron).")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("Parallel workers (default: the number of cores).", valueName: "n"))
    var jobs: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if json, quiet { throw ValidationError("--json and --quiet do not go together") }
    }

    @Option(name: .customLong("log-level"), help: ArgumentHelp("Log to standard error from this level up: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: Logger.Level = .warning

    /// Progress for a terminal (none for --quiet or --json) plus log lines for cron and
    /// journald, at `--log-level`.
    var reporter: any ProgressReporter {
        commandReporter(quiet: quiet || json, logLevel: logLevel)
    }

    /// `progress`, with its events also logged at `--log-level`.
    func logged(_ progress: any ProgressReporter) -> any ProgressReporter {
        loggedReporter(progress, logLevel: logLevel)
    }
}

/// A progress bar on a terminal unless `quiet`, and every event logged from `logLevel` up.
func commandReporter(quiet: Bool, logLevel: Logger.Level) -> any ProgressReporter {
    loggedReporter(quiet ? SilentReporter() : TerminalReporter(), logLevel: logLevel)
}

func loggedReporter(_ progress: any ProgressReporter, logLevel: Logger.Level) -> any ProgressReporter {
    LoggingSystem.bootstrapOnce(level: logLevel)
    return LoggingReporter(next: progress, logger: Logger(label: "regkeeper"))
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension LoggingSystem {
    private static let bootstrapped = Mutex(false)

    /// Log lines on standard error; the level comes from the command line.
    static func bootstrapOnce(level: Logger.Level) {
        bootstrapped.withLock { done in
            guard !done else { return }
            done = true
            bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

extension AsyncParsableCommand {
    /// Takes the store's lock; with the exclusive one, first puts back what a killed gc left
    /// out of the store, so that nothing is planned against a store missing live items.
    func takeLock(_ location: StoreLocation, _ mode: StoreLock.Mode, wait: Duration) throws -> StoreLock {
        let lock: StoreLock
        do {
            lock = try StoreLock(
                stateDirectory: location.stateDirectory, mode: mode, command: CommandLine.arguments.joined(separator: " "), wait: wait)
        } catch .held(let path, let holder) {
            throw CommandFailure(StoreLock.Error.held(path: path, holder: holder).description, status: ExitStatus.lockHeld)
        } catch {
            throw CommandFailure(error.description + stateDirectoryAdvice(error), status: ExitStatus.failure)
        }
        guard mode == .exclusive else { return lock }
        do {
            if let recovery = try RecoverInterruptedSweep(location: location).run(opening: { try openStorage(location) }) {
                FileHandle.standardError.write(Data((
                    "regkeeper: put back \(recovery.restored) item(s) that \(recovery.runs.count) interrupted gc run(s) had taken "
                    + "out of the store (\(recovery.superseded) the registry had written again)\n").utf8))
            }
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("cannot put back what an interrupted gc run left in \(location.stateDirectory)/sweep: \(error)", status: ExitStatus.failure)
        }
        return lock
    }
}

func openStorage(_ location: StoreLocation) throws -> any StoreStorage {
    if let s3 = location.s3 {
        let endpoint = S3Endpoint(url: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKey: s3.accessKey, secretKey: s3.secretKey)
        return S3Storage(client: S3Client(endpoint: endpoint), rootDirectory: s3.rootDirectory)
    }
    do {
        return try LocalStorage(root: location.root)
    } catch {
        throw CommandFailure(error.description, status: ExitStatus.failure)
    }
}

func writeJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    FileHandle.standardOutput.write(try encoder.encode(value))
    FileHandle.standardOutput.write(Data("\n".utf8))
}

func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

extension Int64 {
    /// Bytes the way people read them: 1.5 GiB.
    var formattedBytes: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(self)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(self) B" : String(format: "%.1f %@", value, units[unit])
    }
}

extension Duration {
    var formattedSeconds: String {
        let (seconds, attoseconds) = components
        return String(format: "%.2fs", Double(seconds) + Double(attoseconds) / 1e18)
    }
}

/// What to do when the state directory cannot be written, as on a store mounted read-only for
/// a backup: the lock (and so every run on that store) can live elsewhere.
private func stateDirectoryAdvice(_ error: StoreLock.Error) -> String {
    let cause: Errno
    switch error {
    case .stateDirectoryUnavailable(_, let errno), .unavailable(_, let errno): cause = errno
    case .held: return ""
    }
    let elsewhere = "give --state-dir DIR on a writable filesystem, the same for every run on this store (the lock is there)"
    switch cause.rawValue {
    case EROFS: return "; " + elsewhere
    case EACCES, EPERM: return "; run as a user who may write there, or " + elsewhere
    default: return ""
    }
}
