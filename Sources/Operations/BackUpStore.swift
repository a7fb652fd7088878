import Archive
import Foundation

/// `backup` as an operator runs it: the archive written (see `Backup`), then the metrics file
/// a timer's alerting reads.
public struct BackUpStore: Sendable {
    public var backup: Backup
    public var metricsFile: String?

    public init(backup: Backup, metricsFile: String? = nil) {
        self.backup = backup
        self.metricsFile = metricsFile
    }

    public func run(output: String) async throws -> BackupResult {
        let started = Date()
        let result = try await backup.run(output: output)
        if let metricsFile { try MetricsFile.backup(result, started: started, ended: Date()).write(to: metricsFile) }
        return result
    }
}

/// `backup list`: what a catalog records, readable archives and unreadable files alike.
public struct ListBackups: Sendable {
    public var catalogDirectory: String

    public init(catalogDirectory: String) { self.catalogDirectory = catalogDirectory }

    public struct Listing: Sendable, Encodable {
        public var archives: [CatalogEntry]
        public var unreadable: [UnreadableArchive]
    }

    public func run() async throws -> Listing {
        let catalog = try BackupCatalog.openExisting(directory: catalogDirectory)
        return Listing(archives: try await catalog.archives(), unreadable: try await catalog.unreadableArchives())
    }
}
