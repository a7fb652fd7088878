import Foundation
import RegistryModel
import StateDatabase

/// A blob as found on disk before hashing.
public struct BlobStatus: Hashable, Sendable {
    public var digest: Digest
    public var size: Int64
    public var modified: Date

    public init(digest: Digest, size: Int64, modified: Date) {
        self.digest = digest
        self.size = size
        self.modified = modified
    }
}

/// Which blobs a run rehashes, in which order (borg 2's `check --max-age --max-duration`):
/// never-verified and least recently verified first, so that runs cut short by a budget still
/// cover the whole store over successive nights. A position marker would be the wrong model:
/// blobs added behind it would never be checked.
public struct ScrubSchedule: Hashable, Sendable {
    /// In the order to hash them.
    public var toHash: [BlobStatus]
    /// Verified within `maxAge` with the same size and mtime, and found good.
    public var recentlyVerified: Int
    /// Left for a later run by the byte budget.
    public var deferred: [BlobStatus]

    /// - Parameters:
    ///   - maxAge: skip blobs verified good more recently than this; nil rehashes all.
    ///   - budget: stop selecting once this many bytes are chosen. The first blob is always
    ///     taken, so a budget smaller than one blob still makes progress.
    public static func plan(
        _ blobs: [BlobStatus], records: [String: VerificationRecord], now: Date, maxAge: TimeSpan?, budget: Int64?
    ) -> ScrubSchedule {
        let cutoff = cutoff(now: now, maxAge: maxAge)
        var due: [(BlobStatus, Date?)] = []
        var recent = 0
        for blob in blobs {
            let record = records[blob.digest.description]
            if isRecentlyVerified(blob, record, cutoff: cutoff) {
                recent += 1
                continue
            }
            // A changed blob counts as never verified: what was checked is not what is there.
            due.append((blob, record.flatMap { isUnchanged(blob, $0) ? $0.verifiedAt : nil }))
        }
        due.sort { lhs, rhs in
            switch (lhs.1, rhs.1) {
            case (nil, nil): lhs.0.digest < rhs.0.digest
            case (nil, _): true
            case (_, nil): false
            case (let left?, let right?): left != right ? left < right : lhs.0.digest < rhs.0.digest
            }
        }
        var selected: [BlobStatus] = []
        var deferred: [BlobStatus] = []
        var bytes: Int64 = 0
        for (blob, _) in due {
            if let budget, !selected.isEmpty, !deferred.isEmpty || bytes + blob.size > budget {
                deferred.append(blob)
                continue
            }
            selected.append(blob)
            bytes += blob.size
        }
        return ScrubSchedule(toHash: selected, recentlyVerified: recent, deferred: deferred)
    }

    /// Blobs verified before this are due again; nil (no `maxAge`): every blob is due.
    public static func cutoff(now: Date, maxAge: TimeSpan?) -> Date? {
        maxAge.map { now.addingTimeInterval(-TimeInterval($0.seconds)) }
    }

    /// Verified good since `cutoff` and unchanged since: `--max-age` skips it. A run that
    /// hashes every due blob decides this blob by blob, as the scan finds them.
    public static func isRecentlyVerified(_ blob: BlobStatus, _ record: VerificationRecord?, cutoff: Date?) -> Bool {
        guard let cutoff, let record else { return false }
        return isUnchanged(blob, record) && record.verifiedAt >= cutoff
    }

    /// Same size and mtime as when last verified, and found good then. Within a microsecond:
    /// the database keeps seconds as a double, which rounds below that.
    private static func isUnchanged(_ blob: BlobStatus, _ record: VerificationRecord) -> Bool {
        record.size == blob.size && abs(record.modified.timeIntervalSince(blob.modified)) < 1e-6 && record.result == .ok
    }
}
