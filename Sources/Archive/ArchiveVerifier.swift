import Foundation
import RegistryModel
import RegistryStore

/// `backup verify FILE…`: reads every member of every archive and checks it against its index,
/// each blob against its digest, and, when several are given, that they form one chain.
public struct ArchiveVerifier {
    public init() {}

    public struct ArchiveReport: Sendable, Encodable {
        public var path: String
        public var id: ArchiveID?
        public var kind: ArchiveKind?
        public var members = 0
        public var bytes: UInt64 = 0
        public var excludedBlobs: [String] = []
        public var error: String?
    }

    public struct Report: Sendable, Encodable {
        public var archives: [ArchiveReport] = []
        public var chainError: String?
        public var isValid: Bool { chainError == nil && archives.allSatisfy { $0.error == nil } }
    }

    public func verify(_ paths: [String]) -> Report {
        var report = Report()
        var readers: [ArchiveReader] = []
        for path in paths {
            var archive = ArchiveReport(path: path)
            do {
                let reader = try ArchiveReader(path: path)
                archive.id = reader.index?.metadata.id
                archive.kind = reader.index?.metadata.kind
                archive.excludedBlobs = reader.index?.excluded.map { "\($0.digest) (hashed to \($0.actual))" } ?? []
                var blobMembers = Set<Digest>()
                try reader.forEachMember { member in
                    archive.members += 1
                    archive.bytes += member.entry.size
                    if let digest = member.blobDigest { blobMembers.insert(digest) }
                    try member.readContent { _ in }
                }
                if let index = reader.index {
                    if let absent = index.carriedBlobs.first(where: { !blobMembers.contains($0.digest) }) {
                        throw ArchiveError.indexMismatch(archive: path, reason: "blob \(absent.digest) is listed as carried but is no member")
                    }
                }
                readers.append(reader)
            } catch {
                archive.error = "\(error)"
            }
            report.archives.append(archive)
        }
        if readers.count == paths.count, !readers.isEmpty, readers.count > 1 || readers[0].index?.metadata.kind == .full {
            do {
                _ = try ArchiveChain(readers).neededBlobs(repositories: nil)
            } catch {
                report.chainError = "\(error)"
            }
        }
        return report
    }
}
