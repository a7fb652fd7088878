internal import CZstd

/// Failures of compression or decompression. Truncation and corruption are separate cases because
/// they call for different actions: a truncated archive was cut short in transfer or by a full
/// disk, a corrupt one was damaged at rest.
public enum ZstdError: Error, Sendable, Hashable, CustomStringConvertible {
    /// libzstd refused a call that does not depend on input data (allocation, a parameter);
    /// `message` is libzstd's own.
    case library(operation: String, message: String)
    /// The compressed stream is damaged at or before `offset` (compressed bytes consumed);
    /// a content checksum mismatch lands here. `message` is libzstd's own.
    case corrupt(offset: UInt64, message: String)
    /// The compressed stream ended at `offset` in the middle of a frame.
    case truncated(offset: UInt64)
    /// A skippable frame at `offset` declares a payload larger than the caller allows to be held
    /// in memory, or a payload to write does not fit the frame's 32-bit length.
    case skippableFrameTooLarge(offset: UInt64, size: UInt64, limit: UInt64)
    /// A skippable frame written in pieces got more or fewer bytes than its header declared
    /// (a writer's bug; the stream is unusable and must be discarded).
    case skippablePayloadNotAsDeclared(offset: UInt64, declared: UInt64, written: UInt64)

    public var description: String {
        switch self {
        case .library(let operation, let message):
            "zstd: \(operation) failed: \(message)"
        case .corrupt(let offset, let message):
            "zstd: corrupt stream at compressed offset \(offset): \(message)"
        case .truncated(let offset):
            "zstd: stream ends mid-frame at compressed offset \(offset) (truncated)"
        case .skippableFrameTooLarge(let offset, let size, let limit):
            "zstd: skippable frame at compressed offset \(offset) has \(size) bytes, limit is \(limit)"
        case .skippablePayloadNotAsDeclared(let offset, let declared, let written):
            "zstd: skippable frame at compressed offset \(offset) declared \(declared) bytes and was given \(written)"
        }
    }

    static func errorName(_ code: Int) -> String {
        String(cString: ZSTD_getErrorName(code))
    }

    /// Turns a libzstd size_t result into a thrown error, keeping libzstd's message.
    static func check(_ code: Int, _ operation: String) throws(ZstdError) {
        if ZSTD_isError(code) != 0 {
            throw .library(operation: operation, message: errorName(code))
        }
    }
}

/// Constants of the zstd frame format that callers need to lay out archives.
public enum ZstdFormat {
    /// The skippable-frame magic this package writes (0x184D2A5E). zstd reserves
    /// 0x184D2A50...0x184D2A5F; any of them is skipped by `zstd -d` and reported by
    /// `ZstdDecompressor`.
    public static let skippableMagic: UInt32 = 0x184D_2A5E
    static let skippableMagicMask: UInt32 = 0xFFFF_FFF0
    static let skippableMagicBase: UInt32 = 0x184D_2A50
    /// Magic plus 32-bit little-endian payload length.
    static let skippableHeaderSize = 8
}

/// A skippable frame met while decompressing, e.g. an archive's table of contents.
public struct SkippableFrame: Sendable, Hashable {
    /// One of 0x184D2A50...0x184D2A5F.
    public var magic: UInt32
    public var payload: [UInt8]
    /// Offset of the frame's magic in the compressed stream, so a table of contents can be
    /// checked against where it was found.
    public var offset: UInt64

    public init(magic: UInt32, payload: [UInt8], offset: UInt64) {
        self.magic = magic
        self.payload = payload
        self.offset = offset
    }
}
