/// A content digest such as `sha256:9f86…`, parsed once and kept as raw bytes.
///
/// Stores of millions of blobs hold millions of digests in sets and dictionaries, so the
/// value is a fixed-size inline struct (no heap allocation, cheap hashing) and hex is only
/// produced at the edge, through a lookup table.
public struct Digest: Hashable, Sendable, Comparable {
    public enum Algorithm: UInt8, Sendable, CaseIterable, Comparable {
        case sha256
        case sha512

        /// The name used in digests and in the store's directory names.
        public var name: String {
            switch self {
            case .sha256: "sha256"
            case .sha512: "sha512"
            }
        }

        public var byteCount: Int {
            switch self {
            case .sha256: 32
            case .sha512: 64
            }
        }

        public init?(name: some StringProtocol) {
            switch name {
            case "sha256": self = .sha256
            case "sha512": self = .sha512
            default: return nil
            }
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let algorithm: Algorithm
    // Eight big-endian words hold up to 64 bytes; sha256 leaves the last four zero.
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    /// Builds a digest from raw hash output (e.g. a finished SHA-256).
    public init?(algorithm: Algorithm, bytes: some Collection<UInt8>) {
        guard bytes.count == algorithm.byteCount else { return nil }
        self.algorithm = algorithm
        words = (0, 0, 0, 0, 0, 0, 0, 0)
        var index = 0
        withUnsafeMutableBytes(of: &words) { raw in
            for byte in bytes {
                raw[index] = byte
                index += 1
            }
        }
    }

    /// Parses `algorithm:hex`; hex must be lowercase as Distribution writes it.
    public init?(_ text: some StringProtocol) {
        var text = String(text)
        let parsed: Digest? = text.withUTF8 { Digest(utf8: $0) }
        guard let parsed else { return nil }
        self = parsed
    }

    /// Parses `algorithm:hex` from raw UTF-8, as read from a link file.
    public init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = String(decoding: UnsafeBufferPointer(rebasing: utf8[..<colon]), as: UTF8.self)
        guard let algorithm = Algorithm(name: name) else { return nil }
        self.init(algorithm: algorithm, hexUTF8: UnsafeBufferPointer(rebasing: utf8[(colon + 1)...]))
    }

    /// Parses the hex part alone, as found in a store directory name.
    public init?(algorithm: Algorithm, hex: some StringProtocol) {
        var hex = String(hex)
        let parsed: Digest? = hex.withUTF8 { Digest(algorithm: algorithm, hexUTF8: $0) }
        guard let parsed else { return nil }
        self = parsed
    }

    init?(algorithm: Algorithm, hexUTF8: UnsafeBufferPointer<UInt8>) {
        guard hexUTF8.count == algorithm.byteCount * 2 else { return nil }
        self.algorithm = algorithm
        words = (0, 0, 0, 0, 0, 0, 0, 0)
        var invalid: UInt8 = 0
        withUnsafeMutableBytes(of: &words) { raw in
            Hex.values.withUnsafeBufferPointer { table in
                for index in 0..<algorithm.byteCount {
                    let high = table[Int(hexUTF8[2 * index])]
                    let low = table[Int(hexUTF8[2 * index + 1])]
                    invalid |= (high | low) & 0x10
                    raw[index] = high << 4 | (low & 0x0F)
                }
            }
        }
        guard invalid == 0 else { return nil }
    }

    /// The raw hash bytes.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: words) { Array($0.prefix(algorithm.byteCount)) }
    }

    /// Lowercase hex of the hash, without the algorithm.
    public var hex: String {
        withUnsafeBytes(of: words) { raw in
            Hex.encode(UnsafeRawBufferPointer(rebasing: raw.prefix(algorithm.byteCount)))
        }
    }

    /// The first two hex characters: the store shards blobs by them.
    public var shard: String { String(hex.prefix(2)) }

    public static func == (lhs: Digest, rhs: Digest) -> Bool {
        lhs.algorithm == rhs.algorithm && lhs.words == rhs.words
    }

    /// The content is already a cryptographic hash: its first word is as good a hash key as all
    /// of it, and much cheaper for sets of millions.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
    }

    /// The first 32 bytes as words, for compact sorted sets (`DigestSet`).
    var leadingWords: (UInt64, UInt64, UInt64, UInt64) { (words.0, words.1, words.2, words.3) }

    public static func < (lhs: Digest, rhs: Digest) -> Bool {
        if lhs.algorithm != rhs.algorithm { return lhs.algorithm < rhs.algorithm }
        return withUnsafeBytes(of: lhs.words) { left in
            withUnsafeBytes(of: rhs.words) { right in
                left.lexicographicallyPrecedes(right)
            }
        }
    }
}

extension Digest: CustomStringConvertible, LosslessStringConvertible {
    public var description: String { algorithm.name + ":" + hex }
}

extension Digest: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let digest = Digest(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid digest '\(text)'")
        }
        self = digest
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

private func == (
    lhs: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64),
    rhs: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
) -> Bool {
    lhs.0 == rhs.0 && lhs.1 == rhs.1 && lhs.2 == rhs.2 && lhs.3 == rhs.3
        && lhs.4 == rhs.4 && lhs.5 == rhs.5 && lhs.6 == rhs.6 && lhs.7 == rhs.7
}

/// Table-driven hex, because `String(format:)` is three orders of magnitude slower.
enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Nibble value of each byte, or 0x10 for bytes that are not lowercase hex.
    static let values: [UInt8] = (0...255).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(byte) - UInt8(ascii: "a") + 10
        default: 0x10
        }
    }

    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { output in
            for (index, byte) in bytes.enumerated() {
                output[2 * index] = digits[Int(byte >> 4)]
                output[2 * index + 1] = digits[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }
}
