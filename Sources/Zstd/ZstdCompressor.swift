internal import CZstd

/// Streaming zstd compressor writing frames, and skippable frames between them, to a sink.
///
/// Output is gathered in one buffer allocated at init and handed to the sink only when full (or on
/// `finish`), so small writes such as tar headers cost no system calls and the hot path allocates
/// nothing. Not thread-safe: one stream, one owner. After any thrown error the stream is unusable.
public final class ZstdCompressor {
    /// Receives compressed bytes; the buffer is only valid during the call.
    public typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    private let context: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    private var outputUsed = 0
    private var flushedBytes: UInt64 = 0
    private var frameOpen = false
    private let sink: Sink

    /// Compressed bytes produced so far, flushed or not: the offset the next frame will start at,
    /// which is what a table of contents records.
    public var compressedOffset: UInt64 { flushedBytes + UInt64(outputUsed) }

    /// - Parameters:
    ///   - level: zstd level; 1 is the fast choice for data that is mostly compressed layers.
    ///   - workers: libzstd worker threads (ZSTD_c_nbWorkers); 0 compresses on the calling thread,
    ///     which is faster on incompressible input, more workers pay off on compressible input.
    ///   - bufferSize: size of the output buffer, i.e. of the chunks the sink receives.
    ///
    /// Content checksums are always on, so a flipped byte is reported as corruption on reading.
    public init(level: Int = 3, workers: Int = 0, bufferSize: Int = 1 << 20, sink: @escaping Sink) throws(ZstdError) {
        context = try makeCompressionContext(level: level, workers: workers)
        self.output = .allocate(byteCount: max(bufferSize, ZSTD_CStreamOutSize()), alignment: 64)
        self.sink = sink
    }

    deinit {
        ZSTD_freeCCtx(context)
        output.deallocate()
    }

    /// Compresses `bytes` into the current frame, opening one if needed.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        frameOpen = true
        var input = ZSTD_inBuffer(src: base, size: bytes.count, pos: 0)
        // With workers libzstd may take only part of the input per call.
        while input.pos < input.size {
            try compress(&input, ZSTD_e_continue)
        }
    }

    /// Closes the current frame, so what follows starts a new one: a reader can then seek to
    /// `compressedOffset` as recorded before the next write and decompress from there.
    public func endFrame() throws {
        guard frameOpen else { return }
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try compress(&input, ZSTD_e_end) != 0 {}
        frameOpen = false
    }

    /// Ends the current frame and writes a skippable frame (magic `ZstdFormat.skippableMagic`)
    /// carrying `payload`, which `zstd -d` and `tar --zstd` pass over.
    public func writeSkippableFrame(_ payload: UnsafeRawBufferPointer) throws {
        try writeSkippableFrame(size: payload.count) { write in try write(payload) }
    }

    /// The same for a payload of `size` bytes that `writing` hands over in pieces as it renders
    /// them (through the function it is given), so that a payload of hundreds of MiB, an
    /// archive's index, is never held whole. Pieces that do not add up to `size` throw
    /// `skippablePayloadNotAsDeclared`.
    public func writeSkippableFrame(size: Int, writing: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        guard size <= UInt32.max else {
            throw ZstdError.skippableFrameTooLarge(offset: compressedOffset, size: UInt64(size), limit: UInt64(UInt32.max))
        }
        try endFrame()
        let offset = compressedOffset
        var header = (ZstdFormat.skippableMagic.littleEndian, UInt32(size).littleEndian)
        try withUnsafeBytes(of: &header) { try append($0) }
        var written = 0
        try writing { piece in
            guard written + piece.count <= size else {
                throw ZstdError.skippablePayloadNotAsDeclared(offset: offset, declared: UInt64(size), written: UInt64(written + piece.count))
            }
            try append(piece)
            written += piece.count
        }
        guard written == size else {
            throw ZstdError.skippablePayloadNotAsDeclared(offset: offset, declared: UInt64(size), written: UInt64(written))
        }
    }

    /// Ends the current frame and hands every buffered byte to the sink. Writing afterwards
    /// starts a new frame in the same stream.
    public func finish() throws {
        try endFrame()
        try flush()
    }

    @discardableResult
    private func compress(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws -> Int {
        var out = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: outputUsed)
        let result = ZSTD_compressStream2(context, &out, &input, directive)
        outputUsed = out.pos
        try ZstdError.check(result, "ZSTD_compressStream2")
        if outputUsed == output.count { try flush() }
        return result
    }

    /// Copies raw bytes (skippable frames) into the output buffer between frames.
    private func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = min(bytes.count - done, output.count - outputUsed)
            output.baseAddress!.advanced(by: outputUsed).copyMemory(from: bytes.baseAddress!.advanced(by: done), byteCount: n)
            outputUsed += n
            done += n
            if outputUsed == output.count { try flush() }
        }
    }

    private func flush() throws {
        guard outputUsed > 0 else { return }
        let chunk = UnsafeRawBufferPointer(rebasing: output[0..<outputUsed])
        flushedBytes += UInt64(outputUsed)
        outputUsed = 0
        try sink(chunk)
    }
}

/// A compression context with checksums on, so a flipped byte is reported on reading; the
/// caller owns it and frees it with `ZSTD_freeCCtx`.
func makeCompressionContext(level: Int, workers: Int) throws(ZstdError) -> OpaquePointer {
    guard let context = ZSTD_createCCtx() else {
        throw .library(operation: "ZSTD_createCCtx", message: "out of memory")
    }
    do {
        try ZstdError.check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(clamping: level)),
                            "setting compression level \(level)")
        try ZstdError.check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1), "enabling checksums")
        if workers > 0 {
            try ZstdError.check(ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, Int32(clamping: workers)),
                                "setting \(workers) workers")
        }
    } catch {
        ZSTD_freeCCtx(context)
        throw error
    }
    return context
}
