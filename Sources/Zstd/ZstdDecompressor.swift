internal import CZstd

/// Pull-style streaming zstd decompressor over a source of compressed bytes.
///
/// Pull rather than push because readers (a tar reader, a hasher) ask for bytes as they need
/// them; decompressed bytes go straight into the caller's buffer, compressed input into one buffer
/// allocated at init. Skippable frames between frames are handed to a callback instead of being
/// dropped as libzstd would. Not thread-safe; after any thrown error the stream is unusable.
public final class ZstdDecompressor {
    /// Fills the buffer with compressed bytes and returns how many; 0 means end of stream.
    public typealias Source = (UnsafeMutableRawBufferPointer) throws -> Int

    private let context: OpaquePointer
    private let input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var consumed: UInt64 = 0
    private var atFrameStart = true
    private let maxSkippablePayload: Int
    private let source: Source
    private let onSkippableFrame: (SkippableFrame) throws -> Void

    /// Compressed bytes consumed so far.
    public var compressedOffset: UInt64 { consumed }

    /// - Parameters:
    ///   - bufferSize: size of the compressed-input buffer, i.e. of the reads asked of `source`.
    ///   - maxSkippablePayload: skippable frames are held in memory whole; a larger one is refused
    ///     rather than trusted, since its length field may be damaged.
    ///   - onSkippableFrame: called for each skippable frame, in stream order, before the bytes of
    ///     the frame after it are returned.
    public init(bufferSize: Int = 1 << 20, maxSkippablePayload: Int = 64 << 20,
                source: @escaping Source,
                onSkippableFrame: @escaping (SkippableFrame) throws -> Void = { _ in }) throws(ZstdError) {
        guard let context = ZSTD_createDCtx() else {
            throw .library(operation: "ZSTD_createDCtx", message: "out of memory")
        }
        self.context = context
        self.input = .allocate(byteCount: max(bufferSize, ZstdFormat.skippableHeaderSize), alignment: 64)
        self.maxSkippablePayload = maxSkippablePayload
        self.source = source
        self.onSkippableFrame = onSkippableFrame
    }

    deinit {
        ZSTD_freeDCtx(context)
        input.deallocate()
    }

    /// Decompresses into `buffer` and returns the number of bytes written, 0 only at the end of
    /// the stream (or for an empty buffer). Throws `ZstdError.truncated` if the stream ends
    /// inside a frame and `ZstdError.corrupt` if a frame is damaged or fails its checksum.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        while true {
            if atFrameStart {
                if try fill(atLeast: ZstdFormat.skippableHeaderSize) {
                    if isSkippableMagic(peekUInt32(at: 0)) {
                        try readSkippableFrame()
                        continue
                    }
                } else if inputEnd == inputStart {
                    return 0
                } else if inputEnd - inputStart < 4 {
                    throw ZstdError.truncated(offset: consumed + UInt64(inputEnd - inputStart))
                }
                // 4 to 7 bytes left: too short for any frame, libzstd tells damage from truncation.
            }
            var inBuf = ZSTD_inBuffer(src: input.baseAddress! + inputStart, size: inputEnd - inputStart, pos: 0)
            var outBuf = ZSTD_outBuffer(dst: base, size: buffer.count, pos: 0)
            let result = ZSTD_decompressStream(context, &outBuf, &inBuf)
            advance(inBuf.pos)
            if ZSTD_isError(result) != 0 {
                throw ZstdError.corrupt(offset: consumed, message: ZstdError.errorName(result))
            }
            // libzstd stops at the end of each frame, so a skippable frame after it is seen here.
            atFrameStart = result == 0
            if outBuf.pos > 0 { return outBuf.pos }
            if !atFrameStart, inBuf.pos == 0, try refill() == 0 {
                throw ZstdError.truncated(offset: consumed)
            }
        }
    }

    private func isSkippableMagic(_ magic: UInt32) -> Bool {
        magic & ZstdFormat.skippableMagicMask == ZstdFormat.skippableMagicBase
    }

    private func peekUInt32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: input.loadUnaligned(fromByteOffset: inputStart + offset, as: UInt32.self))
    }

    private func readSkippableFrame() throws {
        let frameOffset = consumed
        let magic = peekUInt32(at: 0)
        let size = Int(peekUInt32(at: 4))
        guard size <= maxSkippablePayload else {
            throw ZstdError.skippableFrameTooLarge(offset: frameOffset, size: UInt64(size), limit: UInt64(maxSkippablePayload))
        }
        advance(ZstdFormat.skippableHeaderSize)
        var payload = [UInt8]()
        payload.reserveCapacity(size)
        while payload.count < size {
            if inputStart == inputEnd, try refill() == 0 {
                throw ZstdError.truncated(offset: consumed)
            }
            let n = min(size - payload.count, inputEnd - inputStart)
            payload.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[inputStart..<(inputStart + n)]))
            advance(n)
        }
        try onSkippableFrame(SkippableFrame(magic: magic, payload: payload, offset: frameOffset))
    }

    private func advance(_ n: Int) {
        inputStart += n
        consumed += UInt64(n)
    }

    /// Makes at least `count` bytes available unless the stream ends first.
    private func fill(atLeast count: Int) throws -> Bool {
        while inputEnd - inputStart < count {
            if try refill() == 0 { return false }
        }
        return true
    }

    /// Moves leftover input to the front and reads more after it.
    private func refill() throws -> Int {
        if inputStart > 0 {
            let left = inputEnd - inputStart
            if left > 0 {
                input.baseAddress!.copyMemory(from: input.baseAddress! + inputStart, byteCount: left)
            }
            inputStart = 0
            inputEnd = left
        }
        guard inputEnd < input.count else { return 0 }
        let n = try source(UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]))
        inputEnd += max(n, 0)
        return max(n, 0)
    }
}
