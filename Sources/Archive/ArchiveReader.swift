import Foundation
import RegistryModel
import RegistryStore
import TarFormat
import Zstd

/// Reads one archive file: its index from the trailing skippable frame (when regkeeper wrote
/// it), then its members as a stream, checking each against the index and each blob against
/// its own name. A plain `tar --zstd -cf` archive of a store has no index; its blobs are
/// still checked by name.
public final class ArchiveReader {
    public let path: String
    /// Bytes of the archive file, for progress.
    public let fileSize: Int64
    /// Nil for a plain tar archive.
    public let index: ArchiveIndex?
    private var indexBytes: Data?

    public init(path: String) throws(ArchiveError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(path: path, operation: "open", errno: .current) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .io(path: path, operation: "stat", errno: .current) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notAnArchive(archive: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        fileSize = Int64(size)
        let magic = try Self.pread(descriptor, path, count: 4, at: 0)
        let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        guard magic.count == 4, magic == zstdMagic || (magic[0] & 0xF0 == 0x50 && magic[1...] == [0x2A, 0x4D, 0x18]) else {
            throw .notAnArchive(archive: path, reason: "it does not start with a zstd frame")
        }
        (index, indexBytes) = try Self.readTableOfContents(descriptor, path, size: size)
        if let index {
            guard index.metadata.format == ArchiveFormat.formatName else {
                throw .notAnArchive(archive: path, reason: "index of format '\(index.metadata.format)'")
            }
            guard index.metadata.formatVersion <= ArchiveFormat.version else {
                throw .unsupportedVersion(archive: path, found: index.metadata.formatVersion)
            }
        }
    }

    public var metadata: ArchiveMetadata? { index?.metadata }

    private static func pread(_ descriptor: Int32, _ path: String, count: Int, at offset: Int) throws(ArchiveError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { Foundation.pread(descriptor, $0.baseAddress! + filled, count - filled, off_t(offset + filled)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: .current)
            }
            if n == 0 { break }
            filled += n
        }
        return Array(bytes[0..<filled])
    }

    /// The index in the last skippable frame: `[magic][length][index][index length][RKTOC001]`.
    /// Nil when the file does not end that way (a plain tar, or an archive cut short).
    private static func readTableOfContents(_ descriptor: Int32, _ path: String, size: Int) throws(ArchiveError) -> (ArchiveIndex?, Data?) {
        guard size >= 8 + ArchiveFormat.tocTrailerSize else { return (nil, nil) }
        let trailer = try pread(descriptor, path, count: ArchiveFormat.tocTrailerSize, at: size - ArchiveFormat.tocTrailerSize)
        guard Array(trailer[8...]) == ArchiveFormat.tocMagic else { return (nil, nil) }
        let length = trailer[0..<8].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(ArchiveFormat.maxIndexSize), Int(length) + 8 + ArchiveFormat.tocTrailerSize <= size else {
            throw .damaged(archive: path, reason: "table of contents declares \(length) bytes")
        }
        let start = size - ArchiveFormat.tocTrailerSize - Int(length) - 8
        let header = try pread(descriptor, path, count: 8, at: start)
        let frameMagic = header[0..<4].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        let frameLength = header[4..<8].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        guard frameMagic == ZstdFormat.skippableMagic, UInt64(frameLength) == length + UInt64(ArchiveFormat.tocTrailerSize) else {
            throw .damaged(archive: path, reason: "table of contents frame header is damaged")
        }
        let bytes = Data(try pread(descriptor, path, count: Int(length), at: start + 8))
        do {
            return (try ArchiveIndex.decode(bytes), bytes)
        } catch {
            throw .damaged(archive: path, reason: "table of contents is unreadable: \(error)")
        }
    }

    /// One member handed to `forEachMember`'s body, valid only during the call.
    public final class Member {
        public let entry: TarEntry
        public let storePath: StorePath?
        let role: MemberRole
        fileprivate let reader: TarReader
        fileprivate var hasher: ContentHasher?

        fileprivate init(entry: TarEntry, reader: TarReader) {
            self.entry = entry
            self.reader = reader
            storePath = StorePath(relative: entry.path)
            role = storePath.map(MemberRole.init) ?? .other
        }

        /// Streams the content, hashing it on the way with the algorithm the index uses for it.
        public func readContent(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
            var hasher = ContentHasher(role.blobDigest?.algorithm ?? .sha256)
            try reader.readContent { chunk in
                hasher.update(chunk)
                try body(chunk)
            }
            self.hasher = hasher
        }

        public var blobDigest: Digest? { role.blobDigest }
    }

    /// Streams every member to `body` (directories excepted) and checks, after each, what was
    /// read against the index; the body skips a member by not reading its content. The
    /// metadata and index members are checked here and not handed out.
    /// - Parameter consumed: told, after each read of the file, how many of its bytes were read so far.
    public func forEachMember(consumed: @escaping (Int64) -> Void = { _ in }, _ body: (Member) throws -> Void) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ArchiveError.io(path: path, operation: "open", errno: .current) }
        defer { close(descriptor) }
        let archive = path
        var bytesRead: Int64 = 0
        let decompressor = try ZstdDecompressor(bufferSize: 1 << 20) { buffer in
            while true {
                let n = read(descriptor, buffer.baseAddress!, buffer.count)
                if n >= 0 {
                    bytesRead += Int64(n)
                    consumed(bytesRead)
                    return n
                }
                if errno != EINTR { throw ArchiveError.io(path: archive, operation: "read", errno: .current) }
            }
        }
        let tar = TarReader(bufferSize: 1 << 20) { buffer in try decompressor.read(into: buffer) }
        let excluded = Set(index?.excluded.map(\.digest) ?? [])
        var position = 0
        var sawIndex = false
        do {
            while let entry = try tar.next() {
                if entry.kind == .directory { continue }
                if position == 0, index == nil, entry.path == ArchiveFormat.metadataMember {
                    throw ArchiveError.truncated(archive: path, reason: "its index and table of contents are missing")
                }
                if sawIndex { throw ArchiveError.indexMismatch(archive: path, reason: "member \(entry.path) after the index") }
                if entry.path == ArchiveFormat.indexMember, let indexBytes {
                    var bytes = Data()
                    try tar.readContent { bytes.append(contentsOf: $0) }
                    guard bytes == indexBytes else {
                        throw ArchiveError.indexMismatch(archive: path, reason: "the index member differs from the table of contents")
                    }
                    sawIndex = true
                    continue
                }
                let member = Member(entry: entry, reader: tar)
                if entry.path == ArchiveFormat.metadataMember, let index {
                    var bytes = Data()
                    try member.readContent { bytes.append(contentsOf: $0) }
                    guard (try? ArchiveIndex.decoder().decode(ArchiveMetadata.self, from: bytes)) == index.metadata else {
                        throw ArchiveError.indexMismatch(archive: path, reason: "the metadata member differs from the index")
                    }
                } else {
                    try body(member)
                }
                try check(member, at: position, excluded: excluded)
                position += 1
            }
            if let index {
                guard sawIndex, position == index.members.count else {
                    throw ArchiveError.indexMismatch(archive: path, reason: "\(position) members where the index lists \(index.members.count)")
                }
            }
            // What follows the tar must be whole frames (the table of contents), not damage.
            var scratch = [UInt8](repeating: 0, count: 64 << 10)
            while try scratch.withUnsafeMutableBytes({ try decompressor.read(into: $0) }) > 0 {}
        } catch let error as ZstdError {
            if case .truncated = error { throw ArchiveError.truncated(archive: path, reason: error.description) }
            throw ArchiveError.damaged(archive: path, reason: error.description)
        } catch let error as TarError {
            switch error {
            case .notATar: throw ArchiveError.notAnArchive(archive: path, reason: error.description)
            case .truncated, .missingEndOfArchive: throw ArchiveError.truncated(archive: path, reason: error.description)
            default: throw ArchiveError.damaged(archive: path, reason: error.description)
            }
        }
    }

    private func check(_ member: Member, at position: Int, excluded: Set<Digest>) throws(ArchiveError) {
        let actual = member.hasher?.finalize()
        if let expected = member.blobDigest, let actual, actual != expected, !excluded.contains(expected) {
            throw .blobDigestMismatch(archive: path, member: member.entry.path, expected: expected, actual: actual)
        }
        guard let index else { return }
        guard position < index.members.count else {
            throw .indexMismatch(archive: path, reason: "member \(member.entry.path) is not in the index")
        }
        let listed = index.members[position]
        guard listed.path == member.entry.path, listed.size == member.entry.size else {
            throw .memberMismatch(archive: path, member: member.entry.path,
                                  reason: "the index lists \(listed.path) of \(listed.size) bytes at this position")
        }
        if let actual, actual != listed.digest {
            throw .memberMismatch(archive: path, member: member.entry.path, reason: "content digest \(actual), index says \(listed.digest)")
        }
    }
}

extension MemberRole {
    var blobDigest: Digest? {
        if case .blob(let digest) = self { return digest }
        return nil
    }
}
