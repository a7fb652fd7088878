import Archive
import Foundation

extension MetricsFile {
    /// What a scheduled backup exposes: the last run, the archive's size and what it holds.
    public static func backup(_ result: BackupResult, started: Date, ended: Date) -> MetricsFile {
        MetricsFile(samples: lastRun("backup", started: started, ended: ended, success: result.findings.isEmpty) + [
            .init("regkeeper_backup_archive_bytes", "Size of the last archive written.", Double(result.archiveBytes)),
            .init("regkeeper_backup_blobs_written", "Blobs written by the last backup.", Double(result.blobsWritten)),
            .init("regkeeper_backup_blob_bytes_written", "Blob bytes written by the last backup.", Double(result.blobBytesWritten)),
            .init("regkeeper_backup_findings", "Blobs the last backup found missing or corrupt in the store.", Double(result.findings.count)),
        ])
    }
}
