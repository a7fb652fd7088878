/// Streaming POSIX pax tar writer.
///
/// Headers and content are gathered in one buffer allocated at init, and content callbacks fill
/// that buffer in place, so bytes go from `read(2)` to the sink without an intermediate copy and
/// small members cost no extra sink calls. A pax extended header is added only where ustar falls
/// short: paths over 100 bytes or not ASCII, sizes from 8 GiB, sub-second or out-of-range mtimes.
/// Owner is always 0/0 with empty names: a restore should not depend on the backup host's users.
///
/// Not thread-safe. After any thrown error the archive is incomplete and the writer unusable.
public final class TarWriter {
    /// Receives archive bytes; the buffer is only valid during the call.
    public typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    private var flushed: UInt64 = 0
    private let sink: Sink

    /// Offset in the tar stream at which the next member's headers start.
    public var offset: UInt64 { flushed + UInt64(used) }

    /// Bytes gathered since the last flush; the sink is called only once they fill the buffer.
    public var bufferedBytes: Int { used }

    /// - Parameter bufferSize: rounded up to whole 512-byte blocks; it is the largest chunk the
    ///   sink receives and content callbacks are asked to fill.
    public init(bufferSize: Int = 1 << 20, sink: @escaping Sink) {
        let blocks = max(1, (bufferSize + TarHeader.blockSize - 1) / TarHeader.blockSize)
        buffer = .allocate(byteCount: blocks * TarHeader.blockSize, alignment: 64)
        self.sink = sink
    }

    deinit { buffer.deallocate() }

    public func addDirectory(_ path: String, mode: UInt32 = 0o755, mtime: TarTimestamp) throws {
        try putHeaders(path: path, typeflag: TarHeader.TypeFlag.directory, mode: mode, mtime: mtime, size: 0)
    }

    /// Adds a regular file whose `size` bytes come from `content`, which is called with a region
    /// of the writer's buffer (never more than the bytes still due) and returns how many bytes it
    /// put there, e.g. `{ read(fd, $0.baseAddress, $0.count) }`. Returning 0 early throws
    /// `TarError.contentShorterThanDeclared`; bytes beyond `size` are never asked for.
    public func addFile(_ path: String, mode: UInt32 = 0o644, mtime: TarTimestamp, size: UInt64,
                        content: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        try addFilePart(path, mode: mode, mtime: mtime, size: size, range: 0..<size, content: content)
    }

    /// Adds the bytes `range` of a regular file of `size` bytes: its headers only if the range
    /// starts at 0, the padding to a whole block only if it ends at `size`. Writers whose outputs
    /// are concatenated in order can so split one large file between them and be archived in
    /// parallel; `content` behaves as for `addFile`.
    public func addFilePart(_ path: String, mode: UInt32 = 0o644, mtime: TarTimestamp, size: UInt64, range: Range<UInt64>,
                            content: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        precondition(range.upperBound <= size, "part \(range) of a \(size)-byte file")
        let member = range.lowerBound == 0
            ? try putHeaders(path: path, typeflag: TarHeader.TypeFlag.regular, mode: mode, mtime: mtime, size: size)
            : path
        var written = range.lowerBound
        while written < range.upperBound {
            if used == buffer.count { try flush() }
            let want = Int(min(UInt64(buffer.count - used), range.upperBound - written))
            let n = try content(UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + want)]))
            precondition(n >= 0 && n <= want, "content callback returned \(n) for a \(want)-byte region")
            if n == 0 { throw TarError.contentShorterThanDeclared(member: member, declared: size, written: written) }
            used += n
            written += UInt64(n)
        }
        if range.upperBound == size { padToBlock() }
    }

    /// Adds a regular file of `size` bytes that `writing` hands over in pieces of any size as it
    /// renders them (through the function it is given), such as an archive's index, which is
    /// then never held whole. Pieces that do not add up to `size` throw
    /// `contentShorterThanDeclared` or `contentLongerThanDeclared`.
    public func addRenderedFile(_ path: String, mode: UInt32 = 0o644, mtime: TarTimestamp, size: UInt64,
                                writing: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let member = try putHeaders(path: path, typeflag: TarHeader.TypeFlag.regular, mode: mode, mtime: mtime, size: size)
        var written: UInt64 = 0
        try writing { piece in
            guard written + UInt64(piece.count) <= size else { throw TarError.contentLongerThanDeclared(member: member, declared: size) }
            try append(piece)
            written += UInt64(piece.count)
        }
        guard written == size else { throw TarError.contentShorterThanDeclared(member: member, declared: size, written: written) }
        padToBlock()
    }

    /// Adds a regular file held in memory, such as a manifest or a link file.
    public func addFile(_ path: String, mode: UInt32 = 0o644, mtime: TarTimestamp, contents: [UInt8]) throws {
        var next = 0
        try contents.withUnsafeBytes { bytes in
            try addFile(path, mode: mode, mtime: mtime, size: UInt64(bytes.count)) { region in
                region.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[next..<(next + region.count)]))
                next += region.count
                return region.count
            }
        }
    }

    /// Hands buffered bytes to the sink, e.g. before the compressor ends a frame so the next
    /// member starts a new one.
    public func flush() throws {
        guard used > 0 else { return }
        let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<used])
        flushed += UInt64(used)
        used = 0
        try sink(chunk)
    }

    /// Writes the end-of-archive marker (two zero blocks) and flushes.
    public func finish() throws {
        try zeroBlock()
        try zeroBlock()
        try flush()
    }

    /// Writes the pax header if one is needed, then the ustar header. Returns the path as stored.
    @discardableResult
    private func putHeaders(path: String, typeflag: UInt8, mode: UInt32, mtime: TarTimestamp, size: UInt64) throws -> String {
        let start = offset
        let normalized = try TarPath.normalize(path, offset: start)
        let isDirectory = typeflag == TarHeader.TypeFlag.directory
        guard normalized != "." || isDirectory else { throw TarError.emptyPath(offset: start) }
        // GNU tar marks directories with a trailing slash; "./" is the archive root.
        let name = isDirectory ? (normalized == "." ? "./" : normalized + "/") : normalized

        var records = ""
        if name.utf8.count > TarHeader.name.count || name.utf8.contains(where: { $0 >= 0x80 }) {
            records += Self.paxRecord("path", name)
        }
        if size > TarHeader.maxOctal11 {
            records += Self.paxRecord("size", String(size))
        }
        let mtimeFits = mtime.seconds >= 0 && UInt64(mtime.seconds) <= TarHeader.maxOctal11
        if mtime.nanoseconds != 0 || !mtimeFits {
            records += Self.paxRecord("mtime", mtime.description)
        }
        let ustarMtime = mtimeFits ? UInt64(mtime.seconds) : 0
        if !records.isEmpty {
            let data = Array(records.utf8)
            try putHeader(name: "././@PaxHeader", typeflag: TarHeader.TypeFlag.paxLocal, mode: 0o644,
                          mtime: ustarMtime, size: UInt64(data.count))
            try data.withUnsafeBytes { try append($0) }
            padToBlock()
        }
        try putHeader(name: name, typeflag: typeflag, mode: mode & 0o7777, mtime: ustarMtime,
                      size: size > TarHeader.maxOctal11 ? 0 : size)
        return normalized
    }

    /// One ustar block; fields that do not fit were given to pax by the caller.
    private func putHeader(name: String, typeflag: UInt8, mode: UInt32, mtime: UInt64, size: UInt64) throws {
        if used == buffer.count { try flush() }
        let block = UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + TarHeader.blockSize)])
        block.initializeMemory(as: UInt8.self, repeating: 0)
        TarHeader.putBytes(name.utf8, TarHeader.name, in: block)
        TarHeader.putOctal(UInt64(mode), TarHeader.mode, in: block)
        TarHeader.putOctal(0, TarHeader.uid, in: block)
        TarHeader.putOctal(0, TarHeader.gid, in: block)
        TarHeader.putOctal(size, TarHeader.size, in: block)
        TarHeader.putOctal(mtime, TarHeader.mtime, in: block)
        block[TarHeader.typeflag] = typeflag
        TarHeader.putBytes("ustar\0".utf8, TarHeader.magic, in: block)
        TarHeader.putBytes("00".utf8, TarHeader.version, in: block)
        TarHeader.putOctal(0, TarHeader.devmajor, in: block)
        TarHeader.putOctal(0, TarHeader.devminor, in: block)
        let sum = TarHeader.checksums(UnsafeRawBufferPointer(block)).unsigned
        // Six octal digits, NUL, space: the form every tar accepts.
        TarHeader.putOctal(UInt64(sum), TarHeader.checksum.lowerBound..<(TarHeader.checksum.upperBound - 1), in: block)
        block[TarHeader.checksum.upperBound - 1] = UInt8(ascii: " ")
        used += TarHeader.blockSize
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            if used == buffer.count { try flush() }
            let n = min(bytes.count - done, buffer.count - used)
            UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<(done + n)]))
            used += n
            done += n
        }
    }

    /// Zero-fills to the next block boundary. Flushes happen only at block boundaries and the
    /// buffer is whole blocks, so the padding always fits in the buffer.
    private func padToBlock() {
        let partial = used % TarHeader.blockSize
        guard partial != 0 else { return }
        let pad = TarHeader.blockSize - partial
        UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + pad)]).initializeMemory(as: UInt8.self, repeating: 0)
        used += pad
    }

    private func zeroBlock() throws {
        if used == buffer.count { try flush() }
        UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + TarHeader.blockSize)])
            .initializeMemory(as: UInt8.self, repeating: 0)
        used += TarHeader.blockSize
    }

    /// "<length> <key>=<value>\n" where length counts the whole record, its own digits included.
    static func paxRecord(_ key: String, _ value: String) -> String {
        let base = key.utf8.count + value.utf8.count + 3
        var length = base + String(base).count
        if String(length).count > String(base).count { length += 1 }
        return "\(length) \(key)=\(value)\n"
    }
}
