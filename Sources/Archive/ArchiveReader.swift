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
    /// Nil for a plain tar archive. Its `members` are empty: they are in `listed`.
    public let index: ArchiveIndex?
    /// The members the index lists, as the stream is checked against them.
    public let listed: ListedMembers
    /// SHA-256 of the table of contents, which the index member must match: the digest, not
    /// the bytes, is kept (those are as large as the index itself).
    private let indexDigest: Digest?
    /// The file, opened once: what was checked at init is what `forEachMember` reads.
    private let file: ArchiveFile
    /// Where the zstd frames of the tar stream end: the table of contents, or the file's end.
    private let streamEnd: Int64

    public init(path: String) throws(ArchiveError) {
        self.path = path
        let file = try ArchiveFile(path: path)
        let size = Int(file.size)
        let magic = try Self.pread(file.descriptor, path, count: 4, at: 0)
        let zstdMagic = Data([0x28, 0xB5, 0x2F, 0xFD])
        guard magic.count == 4, magic == zstdMagic || (magic[0] & 0xF0 == 0x50 && magic[1...] == Data([0x2A, 0x4D, 0x18])) else {
            throw .notAnArchive(archive: path, reason: size == 0 ? "the file is empty" : "it does not start with a zstd frame")
        }
        let contents = try Self.readTableOfContents(file.descriptor, path, size: size)
        if let index = contents?.index {
            guard index.metadata.format == ArchiveFormat.formatName else {
                throw .notAnArchive(archive: path, reason: "index of format '\(index.metadata.format)'")
            }
            guard index.metadata.formatVersion <= ArchiveFormat.version else {
                throw .unsupportedVersion(archive: path, found: index.metadata.formatVersion)
            }
        }
        self.file = file
        fileSize = file.size
        index = contents?.index
        indexDigest = contents?.digest
        listed = contents?.listed ?? ListedMembers()
        streamEnd = contents.map { Int64($0.start) } ?? file.size
    }

    public var metadata: ArchiveMetadata? { index?.metadata }

    private static func pread(_ descriptor: Int32, _ path: String, count: Int, at offset: Int) throws(ArchiveError) -> Data {
        var bytes = Data(count: count)
        let read: Result<Int, Errno> = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) in try SystemCall.readFully(descriptor, into: buffer, at: Int64(offset)) }
        }
        let filled: Int
        switch read {
        case .success(let count): filled = count
        case .failure(let failure): throw .io(path: path, operation: "read", errno: failure)
        }
        if filled < count { bytes.removeSubrange(filled...) }
        return bytes
    }

    /// How far from the end `readTableOfContents` looks for a table of contents followed by
    /// other bytes, to tell appended data from an archive cut short.
    static let trailingDataSearch = 64 << 20
    /// The table of contents is read in pieces of this size, each checked before the next.
    static let indexReadStep = 1 << 20

    /// The index in the last skippable frame: `[magic][length][index][index length][RKTOC001]`,
    /// with `start`, the offset of the frame. Nil when the file does not end that way (a plain
    /// tar, or an archive cut short); `trailingData` when it does a little before its end.
    ///
    /// The declared length is checked against the file, and the index read a piece at a time,
    /// refusing a piece with a NUL byte (JSON has none): a length field pointing into a hole of
    /// a sparse file costs a piece of memory, not the gigabyte it declares.
    private static func readTableOfContents(_ descriptor: Int32, _ path: String, size: Int) throws(ArchiveError) -> (index: ArchiveIndex, listed: ListedMembers, digest: Digest, start: Int)? {
        guard size >= 8 + ArchiveFormat.tocTrailerSize else { return nil }
        let trailer = try pread(descriptor, path, count: ArchiveFormat.tocTrailerSize, at: size - ArchiveFormat.tocTrailerSize)
        guard Array(trailer[8...]) == ArchiveFormat.tocMagic else {
            if let end = try tableOfContentsEnd(descriptor, path, size: size) {
                throw .trailingData(archive: path, end: Int64(end), extra: Int64(size - end))
            }
            return nil
        }
        let length = trailer[0..<8].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(ArchiveFormat.maxIndexSize), Int(length) + 8 + ArchiveFormat.tocTrailerSize <= size else {
            throw .damaged(archive: path, reason: "table of contents declares \(length) bytes in a file of \(size)")
        }
        let start = size - ArchiveFormat.tocTrailerSize - Int(length) - 8
        let header = try pread(descriptor, path, count: 8, at: start)
        let frameMagic = header[0..<4].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        let frameLength = header[4..<8].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        guard frameMagic == ZstdFormat.skippableMagic, UInt64(frameLength) == length + UInt64(ArchiveFormat.tocTrailerSize) else {
            throw .damaged(archive: path, reason: "table of contents frame header is damaged")
        }
        // Mapped, not read into memory: each pass gives its pages back behind itself, so an
        // index of a quarter GiB (a million links) costs a few MiB of resident memory.
        let region = try MappedRegion(descriptor, offset: start + 8, length: Int(length), path: path)
        var hasher = ContentHasher()
        var checked = 0
        while checked < region.bytes.count {
            let piece = UnsafeRawBufferPointer(rebasing: region.bytes[checked..<min(region.bytes.count, checked + indexReadStep)])
            if let nul = piece.firstIndex(of: 0) {
                throw .damaged(archive: path, reason: "table of contents holds a NUL byte at offset \(start + 8 + nul) of the file")
            }
            hasher.update(piece)
            checked += piece.count
            region.release(upTo: checked)
        }
        region.rewind()
        do {
            var listed = ListedMembers()
            let index = try ArchiveIndex.decode(region.bytes.bindMemory(to: UInt8.self), listing: &listed, read: region.release(upTo:))
            return (index, listed, hasher.finalize(), start)
        } catch {
            throw .damaged(archive: path, reason: "table of contents is unreadable: \(error)")
        }
    }

    /// The offset just after a table of contents that is not at the file's end, if one is
    /// within `trailingDataSearch` bytes of it: its magic, its length and its frame header must
    /// agree.
    private static func tableOfContentsEnd(_ descriptor: Int32, _ path: String, size: Int) throws(ArchiveError) -> Int? {
        let magic = Data(ArchiveFormat.tocMagic)
        var windowEnd = size
        let limit = max(0, size - trailingDataSearch)
        while windowEnd > limit {
            let windowStart = max(limit, windowEnd - indexReadStep)
            // Overlap by the magic's length, so one cut by the window's edge is still found.
            let window = try pread(descriptor, path, count: min(size, windowEnd + magic.count - 1) - windowStart, at: windowStart)
            var searchEnd = window.endIndex
            while let found = window.range(of: magic, options: .backwards, in: window.startIndex..<searchEnd) {
                let magicAt = windowStart + found.lowerBound
                searchEnd = found.upperBound - 1
                guard magicAt >= 16 else { continue }
                let lengthBytes = try pread(descriptor, path, count: 8, at: magicAt - 8)
                let length = lengthBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                guard length <= UInt64(ArchiveFormat.maxIndexSize), Int(length) + 16 <= magicAt else { continue }
                let header = try pread(descriptor, path, count: 8, at: magicAt - 8 - Int(length) - 8)
                let frameMagic = header[0..<4].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
                let frameLength = header[4..<8].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
                if frameMagic == ZstdFormat.skippableMagic, UInt64(frameLength) == length + UInt64(ArchiveFormat.tocTrailerSize) {
                    return magicAt + magic.count
                }
            }
            windowEnd = windowStart
        }
        return nil
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
        let archive = path
        let descriptor = file.descriptor
        let streamEnd = streamEnd
        var bytesRead: Int64 = 0
        // Stops at the table of contents, which init has read and checked.
        let decompressor = try ZstdDecompressor(bufferSize: 1 << 20) { buffer in
            let want = Int(min(Int64(buffer.count), streamEnd - bytesRead))
            guard want > 0 else { return 0 }
            let n: Int
            do throws(Errno) {
                n = try SystemCall.retrying { Foundation.pread(descriptor, buffer.baseAddress!, want, off_t(bytesRead)) }
            } catch {
                throw ArchiveError.io(path: archive, operation: "read", errno: error)
            }
            bytesRead += Int64(n)
            consumed(bytesRead)
            return n
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
                if entry.path == ArchiveFormat.indexMember, let indexDigest {
                    var hasher = ContentHasher()
                    try tar.readContent { hasher.update($0) }
                    guard hasher.finalize() == indexDigest else {
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
                    // Before any byte is handed out: a member the index does not list, or lists
                    // with another size, is refused before a restore writes it.
                    try checkListed(entry, at: position)
                    try body(member)
                }
                try check(member, at: position, excluded: excluded)
                position += 1
            }
            if index != nil {
                guard sawIndex, position == listed.count else {
                    throw ArchiveError.indexMismatch(archive: path, reason: "\(position) members where the index lists \(listed.count)")
                }
            }
            // What follows the tar up to the table of contents must be whole frames, not damage.
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

    private func checkListed(_ entry: TarEntry, at position: Int) throws(ArchiveError) {
        guard index != nil else { return }
        guard position < listed.count else {
            throw .indexMismatch(archive: path, reason: "member \(entry.path) is not in the index")
        }
        guard listed.lists(path: entry.path, at: position), listed.size(at: position) == entry.size else {
            throw .memberMismatch(archive: path, member: entry.path, reason: listed.lists(path: entry.path, at: position)
                ? "the index lists \(listed.size(at: position)) bytes, the tar header \(entry.size) bytes"
                : "the index lists another member at this position (\(position))")
        }
    }

    private func check(_ member: Member, at position: Int, excluded: Set<Digest>) throws(ArchiveError) {
        let actual = member.hasher?.finalize()
        if let expected = member.blobDigest, let actual, actual != expected, !excluded.contains(expected) {
            throw .blobDigestMismatch(archive: path, member: member.entry.path, expected: expected, actual: actual)
        }
        guard index != nil else { return }
        try checkListed(member.entry, at: position)
        if let actual, !listed.lists(digest: actual, at: position) {
            throw .memberMismatch(archive: path, member: member.entry.path, reason: "content digest \(actual) is not the one the index lists")
        }
    }
}

/// A read-only mapping of part of an archive, unmapped with its owner. `release` gives
/// pages already read back to the kernel (they are the file's, read again if touched).
/// The archive must not shrink while it is mapped (a read past its end is SIGBUS): regkeeper
/// never changes an archive once it is renamed into place.
private final class MappedRegion {
    let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappedLength: Int
    /// Offset of `bytes` in the mapping, which starts at a page boundary.
    private let lead: Int
    private var released = 0

    init(_ descriptor: Int32, offset: Int, length: Int, path: String) throws(ArchiveError) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        lead = offset % page
        mappedLength = max(lead + length, 1)
        guard let mapping = mmap(nil, mappedLength, PROT_READ, MAP_PRIVATE, descriptor, off_t(offset - lead)),
              mapping != MAP_FAILED else {
            throw .io(path: path, operation: "map its table of contents", errno: .current)
        }
        self.mapping = mapping
        bytes = UnsafeRawBufferPointer(start: mapping + lead, count: length)
    }

    deinit { munmap(mapping, mappedLength) }

    /// Gives back every page, before a pass that reads the region again from its start.
    func rewind() {
        madvise(mapping, mappedLength, MADV_DONTNEED)
        released = 0
    }

    /// Gives back the whole pages before `offset` of `bytes`, in steps of 4 MiB.
    func release(upTo offset: Int) {
        let end = (lead + offset) / (4 << 20) * (4 << 20)
        guard end > released else { return }
        madvise(mapping + released, end - released, MADV_DONTNEED)
        released = end
    }
}

/// An archive's descriptor, closed with its owner. Opened without blocking (a FIFO or a
/// device given as an archive would hang a plain `open`), then anything but a regular file
/// is refused.
private final class ArchiveFile {
    let descriptor: Int32
    let size: Int64

    init(path: String) throws(ArchiveError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else { throw .io(path: path, operation: "open", errno: .current) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let failure = Errno.current
            close(descriptor)
            throw .io(path: path, operation: "stat", errno: failure)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw .notAnArchive(archive: path, reason: "not a regular file")
        }
        self.descriptor = descriptor
        size = Int64(info.st_size)
    }

    deinit { close(descriptor) }
}

extension MemberRole {
    var blobDigest: Digest? {
        if case .blob(let digest) = self { return digest }
        return nil
    }
}
