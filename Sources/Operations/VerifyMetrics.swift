import Foundation
import Integrity

extension MetricsFile {
    /// What a scheduled verify exposes: the last run, and its findings by kind (zero for kinds
    /// not found, so an alert on `> 0` clears itself).
    public static func verify(_ report: VerifyReport, ended: Date) -> MetricsFile {
        var samples = lastRun("verify", started: report.startedAt, ended: ended, success: true)
        samples += [
            .init("regkeeper_verify_blobs_hashed", "Blobs rehashed by the last verify run.", Double(report.counts.blobsHashed)),
            .init("regkeeper_verify_bytes_hashed", "Bytes rehashed by the last verify run.", Double(report.counts.bytesHashed)),
            .init("regkeeper_verify_blobs_deferred", "Blobs left for a later run by --budget or --time-limit.", Double(report.counts.deferred)),
            .init("regkeeper_verify_quarantined", "Blobs moved into quarantine by the last verify run.", Double(report.counts.quarantined)),
        ]
        for kind in IntegrityFinding.Kind.allCases {
            let count = report.findings.count { $0.kind == kind }
            samples.append(.init("regkeeper_verify_findings", "Findings of the last verify run, by kind.", labels: ["kind": kind.rawValue], Double(count)))
        }
        return MetricsFile(samples: samples)
    }
}
