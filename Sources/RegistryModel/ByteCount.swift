/// An amount of data written the way operators write it in flags: `50GiB`, `500MB`, `2T`,
/// `1048576`. Units with `i` and bare letters are powers of 1024 (as `dd` and `du` read them);
/// `kB`, `MB`, `GB`, `TB` are powers of 1000, as disk vendors use them.
public struct ByteCount: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    /// Why a text is not an amount, so that a flag's error can say what to write.
    public enum ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        case negative
        case malformed
        case tooLarge

        public var description: String {
            switch self {
            case .negative: "sizes are not negative; write one such as 50GiB or 500MB"
            case .malformed: "not a size; write one such as 50GiB, 500MB, 2T or 1048576"
            case .tooLarge: "too large a size"
            }
        }
    }

    public init?(_ text: some StringProtocol) {
        guard let count = try? Self(parsing: String(text)) else { return nil }
        self = count
    }

    /// Parses the text, or tells why it is not an amount.
    public init(parsing text: String) throws(ParseError) {
        if text.first == "-", text.dropFirst().first?.isNumber == true { throw .negative }
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let multiplier = Self.multipliers[String(text.dropFirst(digits.count))] else { throw .malformed }
        guard let number = Int64(digits) else { throw .tooLarge }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw .tooLarge }
        bytes = product
    }

    private static let multipliers: [String: Int64] = {
        var table: [String: Int64] = ["": 1, "B": 1]
        for (power, letter) in ["K", "M", "G", "T", "P"].enumerated() {
            let binary = Int64(1) << (10 * (power + 1))
            var decimal: Int64 = 1
            for _ in 0...power { decimal *= 1000 }
            table[letter] = binary
            table[letter + "iB"] = binary
            table[(letter == "K" ? "k" : letter) + "B"] = decimal
        }
        table["KB"] = 1000
        return table
    }()

    public var description: String {
        for (unit, size) in [("TiB", Int64(1) << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)B"
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.bytes < rhs.bytes }
}
