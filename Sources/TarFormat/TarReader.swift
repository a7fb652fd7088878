/// Streaming tar reader for ustar, pax (`x` and `g` headers) and GNU long names (`L`, `K`), the
/// formats GNU tar and this package's `TarWriter` produce.
///
/// It refuses, rather than skips, anything a restore must not act on: absolute paths, `..`,
/// links, devices, fifos, bad checksums, and streams that end early. Content is read from one
/// buffer allocated at init and handed out in place, so the hot path neither copies nor
/// allocates. Not thread-safe; after any thrown error the reader is unusable.
public final class TarReader {
    /// Fills the buffer with archive bytes and returns how many; 0 means end of stream.
    public typealias Source = (UnsafeMutableRawBufferPointer) throws -> Int

    /// Extended headers and long names are held in memory; real ones are a few KiB, a larger
    /// one means a damaged size field.
    static let maxMetadataSize = 1 << 20

    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Stream offset of `buffer[start]`.
    private var position: UInt64 = 0
    private let source: Source

    private var member = ""
    private var memberOffset: UInt64 = 0
    private var contentLeft: UInt64 = 0
    private var paddingLeft: UInt64 = 0
    private var global = Overrides()
    private var sawHeader = false
    private var finished = false

    /// Fields given by pax records or GNU long names, overriding the ustar header.
    private struct Overrides {
        var path: String?
        var size: UInt64?
        var mtime: TarTimestamp?
        /// GNU tar's pax sparse files look like regular files whose content is a sparse map.
        var sparse = false

        var isEmpty: Bool { path == nil && size == nil && mtime == nil && !sparse }
    }

    /// - Parameter bufferSize: the largest chunk `readContent` hands out and asks of `source`.
    public init(bufferSize: Int = 1 << 20, source: @escaping Source) {
        buffer = .allocate(byteCount: max(bufferSize, TarHeader.blockSize), alignment: 64)
        self.source = source
    }

    deinit { buffer.deallocate() }

    /// The next member, or nil after the end-of-archive marker. Content of the previous member
    /// that was not read is skipped (and still checked for truncation).
    public func next() throws -> TarEntry? {
        guard !finished else { return nil }
        try skip(contentLeft + paddingLeft)
        contentLeft = 0
        paddingLeft = 0
        var local = Overrides()
        while true {
            memberOffset = position
            member = local.path ?? global.path ?? "(header)"
            guard try fill(TarHeader.blockSize) else {
                if !sawHeader { throw TarError.notATar(offset: memberOffset) }
                if end == start && local.isEmpty { throw TarError.missingEndOfArchive(offset: memberOffset) }
                throw TarError.truncated(member: member, offset: memberOffset)
            }
            let block = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + TarHeader.blockSize)])
            // Also at the start: an empty archive is two zero blocks, as GNU tar and TarWriter write it.
            if block.allSatisfy({ $0 == 0 }) {
                finished = true
                return nil
            }
            try verifyChecksum(block)
            sawHeader = true
            let typeflag = block[TarHeader.typeflag]
            let name = local.path ?? global.path ?? Self.ustarName(block)
            member = name
            guard let headerSize = TarHeader.number(TarHeader.size, in: block) else {
                throw TarError.malformedHeader(member: name, offset: memberOffset, reason: "bad size field")
            }
            consume(TarHeader.blockSize)

            switch typeflag {
            case TarHeader.TypeFlag.paxLocal:
                try parsePax(readMetadata(size: headerSize), into: &local)
            case TarHeader.TypeFlag.paxGlobal:
                try parsePax(readMetadata(size: headerSize), into: &global)
            case TarHeader.TypeFlag.gnuLongName:
                let bytes = try readMetadata(size: headerSize)
                local.path = try decodeName(bytes.prefix { $0 != 0 })
            case TarHeader.TypeFlag.gnuLongLink:
                // Only link members use it, and those are refused when their header comes.
                _ = try readMetadata(size: headerSize)
            case TarHeader.TypeFlag.regular, TarHeader.TypeFlag.regularOld, TarHeader.TypeFlag.contiguous,
                 TarHeader.TypeFlag.directory:
                return try entry(block, name: name, typeflag: typeflag, headerSize: headerSize, local: local)
            default:
                throw TarError.unsupportedMember(member: name, type: Self.memberType(typeflag), offset: memberOffset)
            }
        }
    }

    /// Streams the rest of the current member's content to `body` in chunks of up to the buffer
    /// size. The chunks point into the reader's buffer and are valid only during the call.
    /// Throws `TarError.truncated` if the stream ends before the member's declared size.
    public func readContent(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while contentLeft > 0 {
            if start == end, try refill() == 0 {
                throw TarError.truncated(member: member, offset: memberOffset)
            }
            let n = Int(min(UInt64(end - start), contentLeft))
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)])
            consume(n)
            contentLeft -= UInt64(n)
            try body(chunk)
        }
    }

    private func entry(_ block: UnsafeRawBufferPointer, name: String, typeflag: UInt8, headerSize: UInt64,
                       local: Overrides) throws -> TarEntry {
        if local.sparse || global.sparse {
            throw TarError.unsupportedMember(member: name, type: .sparse, offset: memberOffset)
        }
        let path = try TarPath.normalize(name, offset: memberOffset)
        let isDirectory = typeflag == TarHeader.TypeFlag.directory
        // A regular file cannot be the archive root.
        if path == "." && !isDirectory { throw TarError.emptyPath(offset: memberOffset) }
        guard let mode = TarHeader.number(TarHeader.mode, in: block) else {
            throw TarError.malformedHeader(member: name, offset: memberOffset, reason: "bad mode field")
        }
        guard let seconds = TarHeader.number(TarHeader.mtime, in: block) else {
            throw TarError.malformedHeader(member: name, offset: memberOffset, reason: "bad mtime field")
        }
        let size = local.size ?? global.size ?? headerSize
        contentLeft = size
        paddingLeft = TarHeader.paddedSize(size) - size
        return TarEntry(path: path, kind: isDirectory ? .directory : .regularFile, size: size,
                        mode: UInt32(mode & 0o7777),
                        mtime: local.mtime ?? global.mtime ?? TarTimestamp(seconds: Int64(clamping: seconds)))
    }

    private func verifyChecksum(_ block: UnsafeRawBufferPointer) throws {
        let stored = TarHeader.number(TarHeader.checksum, in: block)
        let computed = TarHeader.checksums(block)
        if let stored, stored == computed.unsigned || stored == computed.signed { return }
        let looksLikeTar = TarHeader.string(TarHeader.magic, in: block).starts(with: "ustar".utf8)
        if !sawHeader && !looksLikeTar { throw TarError.notATar(offset: memberOffset) }
        throw TarError.badChecksum(member: Self.ustarName(block), offset: memberOffset)
    }

    /// Reads an extended header's data plus padding, refusing sizes no real one has.
    private func readMetadata(size: UInt64) throws -> [UInt8] {
        guard size <= UInt64(Self.maxMetadataSize) else {
            throw TarError.malformedHeader(member: member, offset: memberOffset,
                                           reason: "extended header of \(size) bytes")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(size))
        contentLeft = size
        try readContent { bytes.append(contentsOf: $0) }
        try skip(TarHeader.paddedSize(size) - size)
        return bytes
    }

    /// Applies the pax records this reader understands (path, size, mtime); others, such as
    /// atime or uname, do not matter to a registry store.
    private func parsePax(_ data: [UInt8], into overrides: inout Overrides) throws {
        var rest = data[...]
        while !rest.isEmpty {
            guard let space = rest.firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
                  length > space - rest.startIndex + 1, length <= rest.count,
                  rest[rest.startIndex + length - 1] == UInt8(ascii: "\n"),
                  let equals = rest[(space + 1)...].firstIndex(of: UInt8(ascii: "=")),
                  equals < rest.startIndex + length - 1
            else {
                throw TarError.malformedHeader(member: member, offset: memberOffset, reason: "bad pax record")
            }
            let key = String(decoding: rest[(space + 1)..<equals], as: UTF8.self)
            let value = rest[(equals + 1)..<(rest.startIndex + length - 1)]
            switch key {
            case "path":
                overrides.path = try decodeName(value)
            case "size":
                guard let size = UInt64(String(decoding: value, as: UTF8.self)) else {
                    throw TarError.malformedHeader(member: member, offset: memberOffset, reason: "bad pax size")
                }
                overrides.size = size
            case "mtime":
                guard let mtime = TarTimestamp(paxValue: Substring(String(decoding: value, as: UTF8.self))) else {
                    throw TarError.malformedHeader(member: member, offset: memberOffset, reason: "bad pax mtime")
                }
                overrides.mtime = mtime
            default:
                if key.hasPrefix("GNU.sparse.") { overrides.sparse = true }
            }
            rest = rest[(rest.startIndex + length)...]
        }
    }

    private func decodeName(_ bytes: some Collection<UInt8>) throws -> String {
        guard let name = String(validating: bytes, as: UTF8.self) else {
            throw TarError.malformedHeader(member: String(decoding: bytes, as: UTF8.self), offset: memberOffset,
                                           reason: "path is not UTF-8")
        }
        return name
    }

    /// The name as ustar stores it: `prefix/name` in POSIX ustar; GNU tar uses the prefix
    /// bytes for other fields and marks that with the magic "ustar  ".
    private static func ustarName(_ block: UnsafeRawBufferPointer) -> String {
        let name = String(decoding: TarHeader.string(TarHeader.name, in: block), as: UTF8.self)
        let isPosix = TarHeader.string(TarHeader.magic, in: block).elementsEqual("ustar".utf8)
            && block[TarHeader.magic.upperBound - 1] == 0
        guard isPosix else { return name }
        let prefix = TarHeader.string(TarHeader.prefix, in: block)
        return prefix.isEmpty ? name : String(decoding: prefix, as: UTF8.self) + "/" + name
    }

    private static func memberType(_ typeflag: UInt8) -> TarError.MemberType {
        switch typeflag {
        case TarHeader.TypeFlag.symlink: .symlink
        case TarHeader.TypeFlag.hardlink: .hardlink
        case TarHeader.TypeFlag.characterDevice: .characterDevice
        case TarHeader.TypeFlag.blockDevice: .blockDevice
        case TarHeader.TypeFlag.fifo: .fifo
        case TarHeader.TypeFlag.gnuSparse: .sparse
        default: .other(typeflag: typeflag)
        }
    }

    private func consume(_ n: Int) {
        start += n
        position += UInt64(n)
    }

    private func skip(_ count: UInt64) throws {
        var left = count
        while left > 0 {
            if start == end, try refill() == 0 {
                throw TarError.truncated(member: member, offset: memberOffset)
            }
            let n = Int(min(UInt64(end - start), left))
            consume(n)
            left -= UInt64(n)
        }
    }

    /// Makes `count` contiguous bytes available unless the stream ends first.
    private func fill(_ count: Int) throws -> Bool {
        while end - start < count {
            if try refill() == 0 { return false }
        }
        return true
    }

    /// Moves leftover bytes to the front and reads more after them.
    private func refill() throws -> Int {
        if start > 0 {
            let left = end - start
            if left > 0 {
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: left)
            }
            start = 0
            end = left
        }
        guard end < buffer.count else { return 0 }
        let n = max(try source(UnsafeMutableRawBufferPointer(rebasing: buffer[end...])), 0)
        end += n
        return n
    }
}
