internal import CZlib

/// Why a gzip stream could not be read; `message` is zlib's own.
public enum GzipError: Error, Sendable, Hashable, CustomStringConvertible {
    case library(operation: String, message: String)
    /// The stream is damaged at or before `offset` (compressed bytes consumed).
    case corrupt(offset: UInt64, message: String)
    /// The stream ended at `offset` inside a member (a file cut short, or still being written).
    case truncated(offset: UInt64)

    public var description: String {
        switch self {
        case .library(let operation, let message): "gzip: \(operation) failed: \(message)"
        case .corrupt(let offset, let message): "gzip: damaged at compressed offset \(offset): \(message)"
        case .truncated(let offset): "gzip: the stream ends inside a member at compressed offset \(offset) (cut short)"
        }
    }
}

/// Pull-style gunzip over a source of compressed bytes: the one owner of a zlib `z_stream`,
/// freed in `deinit`. Members written one after another (`cat a.gz b.gz`, what some rotations
/// produce) are read as one stream, as `zcat` does. Not thread-safe; unusable after a throw.
final class GzipDecompressor {
    /// Fills the buffer with compressed bytes and returns how many; 0 means end of input.
    typealias Source = (UnsafeMutableRawBufferPointer) throws -> Int

    private var stream = z_stream()
    private let input: UnsafeMutableRawBufferPointer
    private let source: Source
    private var consumed: UInt64 = 0
    private var sourceEnded = false
    /// True between members: the end of input there is the end of the stream, not a truncation.
    private var betweenMembers = false

    init(bufferSize: Int = 1 << 20, source: @escaping Source) throws(GzipError) {
        input = .allocate(byteCount: bufferSize, alignment: 64)
        self.source = source
        let code = czlib_inflate_init_gzip(&stream)
        guard code == Z_OK else {
            input.deallocate()
            throw .library(operation: "inflateInit2", message: Self.message(code, nil))
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Decompresses into `buffer`; returns 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        stream.next_out = base.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(min(buffer.count, Int(UInt32.max)))
        while stream.avail_out == buffer.count {
            if stream.avail_in == 0 {
                guard !sourceEnded else {
                    if betweenMembers { return 0 }
                    throw GzipError.truncated(offset: consumed)
                }
                let count = try source(input)
                if count == 0 {
                    sourceEnded = true
                    continue
                }
                stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(count)
            }
            let before = stream.avail_in
            let code = inflate(&stream, Z_NO_FLUSH)
            consumed += UInt64(before - stream.avail_in)
            switch code {
            case Z_OK, Z_BUF_ERROR:
                betweenMembers = false
            case Z_STREAM_END:
                // Another member may follow; reset keeps the allocated window.
                let reset = inflateReset(&stream)
                guard reset == Z_OK else { throw GzipError.library(operation: "inflateReset", message: Self.message(reset, nil)) }
                betweenMembers = true
            case Z_DATA_ERROR, Z_NEED_DICT:
                throw GzipError.corrupt(offset: consumed, message: Self.message(code, stream.msg))
            default:
                throw GzipError.library(operation: "inflate", message: Self.message(code, stream.msg))
            }
        }
        return buffer.count - Int(stream.avail_out)
    }

    private static func message(_ code: Int32, _ detail: UnsafePointer<CChar>?) -> String {
        if let detail { return String(cString: detail) }
        return String(cString: zError(code))
    }
}
