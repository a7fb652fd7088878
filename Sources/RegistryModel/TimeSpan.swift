/// A span of time written the way operators write it in flags and policies:
/// `30s`, `15m`, `12h`, `7d`, `4w`, or a sum such as `1d12h`.
public struct TimeSpan: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public static let zero = TimeSpan(seconds: 0)

    /// Why a text is not a span, so that a flag's or a file's error can say what to write.
    public enum ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// `-1h`: a span counts forward; "keep nothing" is `0`.
        case negative
        case malformed
        case tooLong

        public var description: String {
            switch self {
            case .negative: "durations are not negative; write one such as 30m, 1h or 0"
            case .malformed: "not a duration; write one such as 30s, 15m, 12h, 7d, 4w, 1d12h or 0"
            case .tooLong: "too long a duration"
            }
        }
    }

    /// Parses the text; `0` alone is allowed and means no time.
    public init?(_ text: some StringProtocol) {
        guard let span = try? Self(parsing: String(text)) else { return nil }
        self = span
    }

    /// Parses the text, or tells why it is not a span.
    public init(parsing text: String) throws(ParseError) {
        if text == "0" {
            seconds = 0
            return
        }
        if text.first == "-", text.dropFirst().first?.isNumber == true { throw .negative }
        var total: Int64 = 0
        var number: Int64?
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (shifted, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(Int64(digit))
                guard !overflow1, !overflow2 else { throw .tooLong }
                number = sum
                continue
            }
            guard let value = number, let unit = Self.unitSeconds[character] else { throw .malformed }
            let (product, overflow1) = value.multipliedReportingOverflow(by: unit)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow1, !overflow2 else { throw .tooLong }
            total = sum
            number = nil
        }
        guard number == nil, !text.isEmpty else { throw .malformed }
        seconds = total
    }

    private static let unitSeconds: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    public var description: String {
        if seconds == 0 { return "0" }
        var rest = seconds
        var text = ""
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            text += "\(rest / size)\(unit)"
            rest %= size
        }
        return text
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.seconds < rhs.seconds }
}
