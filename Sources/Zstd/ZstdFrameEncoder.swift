internal import CZstd

/// Compresses whole buffers into one frame each, on the calling thread, with a reusable context.
///
/// For callers that run their own parallelism: each thread owns one encoder and compresses its
/// part of a stream as independent frames, which concatenated in order are one valid zstd stream.
/// One call per frame lets libzstd compress straight from the source into the destination,
/// without the staging copy a streaming compressor makes. Not thread-safe: one owner.
public final class ZstdFrameEncoder {
    private let context: OpaquePointer

    /// Content checksums are on, as with `ZstdCompressor`.
    public init(level: Int) throws(ZstdError) {
        context = try makeCompressionContext(level: level, workers: 0)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The largest frame `count` input bytes can become: a destination this large never fails.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `source` as one frame into the start of `destination`; returns the frame's size.
    public func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws(ZstdError) -> Int {
        let size = ZSTD_compress2(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
        try ZstdError.check(size, "ZSTD_compress2")
        return size
    }
}
