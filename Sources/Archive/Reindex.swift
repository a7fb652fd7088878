import Foundation
import RegistryModel
import RegistryStore

/// `backup reindex DIR`: rebuilds the catalog from the indexes of the archives in a directory.
///
/// Every file of the directory but hidden ones (partial archives) and the catalog's own is
/// taken for an archive: one whose table of contents cannot be read (cut short, empty, not an
/// archive at all) is named in the outcome and recorded in the catalog as unreadable, so that
/// `restore --latest` refuses instead of quietly restoring the chain before it.
public struct Reindex {
    public init() {}

    public struct Outcome: Sendable, Encodable {
        public var archives: [String] = []
        /// Files that should be archives but could not be read, each with why.
        public var unreadable: [UnreadableArchive] = []
    }

    public func run(directory: String, catalogDirectory: String) async throws -> Outcome {
        var outcome = Outcome()
        var found: [(index: ArchiveIndex, path: String, bytes: UInt64)] = []
        guard let listing = opendir(directory) else { throw ArchiveError.io(path: directory, operation: "open directory", errno: .current) }
        closedir(listing)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        for name in names where !name.hasPrefix(".") && !BackupCatalog.ownsFile(named: name) {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            do throws(ArchiveError) {
                let reader = try ArchiveReader(path: path)
                guard let index = reader.index else {
                    throw ArchiveError.truncated(archive: path, reason: "no table of contents at its end (cut short, or a plain tar archive, which a catalog cannot hold)")
                }
                found.append((index, path, UInt64(reader.fileSize)))
                outcome.archives.append(path)
            } catch {
                outcome.unreadable.append(UnreadableArchive(path: path, reason: error.description))
            }
        }
        try await BackupCatalog.open(directory: catalogDirectory).replaceAll(with: found, unreadable: outcome.unreadable)
        return outcome
    }
}
