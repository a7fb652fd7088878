/// Seconds and nanoseconds since the epoch. Not `Date`: a Double cannot carry the nanoseconds
/// `stat` reports, and tag ages compare mtimes exactly after a restore.
public struct TarTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Int64
    /// 0..<1_000_000_000, also for times before the epoch (-1.5 s is seconds -2, nanoseconds 5e8).
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds + Int64(nanoseconds / 1_000_000_000)
        self.nanoseconds = nanoseconds % 1_000_000_000
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    /// The pax `mtime` notation: decimal seconds, fraction without trailing zeros.
    public var description: String {
        guard nanoseconds > 0 else { return String(seconds) }
        let (whole, fraction) = seconds < 0
            ? ("-" + String(-(seconds + 1)), 1_000_000_000 - nanoseconds)
            : (String(seconds), nanoseconds)
        var digits = String(fraction)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.last == "0" { digits.removeLast() }
        return whole + "." + digits
    }

    /// Parses the pax `mtime` notation; digits beyond nanoseconds are dropped.
    init?(paxValue: Substring) {
        var text = paxValue
        let negative = text.first == "-"
        if negative { text = text.dropFirst() }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty, wholeText.allSatisfy(\.isASCIIDigit),
              let whole = Int64(wholeText) else { return nil }
        var nanos: UInt32 = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard fraction.allSatisfy(\.isASCIIDigit) else { return nil }
            let nine = String(fraction.prefix(9))
            nanos = UInt32(nine + String(repeating: "0", count: 9 - nine.count)) ?? 0
        }
        if negative && nanos > 0 {
            self.init(seconds: -whole - 1, nanoseconds: 1_000_000_000 - nanos)
        } else {
            self.init(seconds: negative ? -whole : whole, nanoseconds: nanos)
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// One member of an archive as the reader yields it.
public struct TarEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case regularFile
        case directory
    }

    /// Relative, normalized ("a/./b//c/" is "a/b/c"); the archive root directory is ".".
    public var path: String
    public var kind: Kind
    public var size: UInt64
    /// Permission bits only (0o7777).
    public var mode: UInt32
    public var mtime: TarTimestamp

    public init(path: String, kind: Kind, size: UInt64, mode: UInt32, mtime: TarTimestamp) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
    }
}
