import Foundation

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same stream on every platform and
/// Swift version, which `SystemRandomNumberGenerator` and the standard library's hashing are not.
/// Fixtures built from a seed therefore have the same digests in every run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(count: Int) -> Data {
        var data = Data(capacity: count + 8)
        while data.count < count {
            withUnsafeBytes(of: next().littleEndian) { data.append(contentsOf: $0) }
        }
        return data.prefix(count)
    }
}
