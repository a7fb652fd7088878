#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Timestamps of the two formats Distribution writes, parsed from bytes without Foundation:
/// the importer reads one per line, millions of lines a run.
enum LogTime {
    /// Seconds since 1970 of a UTC civil date (Howard Hinnant's `days_from_civil`).
    @inline(__always)
    static func epochSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    /// The value of `count` ASCII digits at `at`, or nil.
    @inline(__always)
    static func digits(_ p: UnsafePointer<UInt8>, _ at: Int, _ count: Int) -> Int? {
        var value = 0
        for index in at..<(at + count) {
            let digit = Int(p[index]) &- 48
            guard digit >= 0, digit <= 9 else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    /// The last whole second parsed and its text (`2026-11-30T09:25:46`): consecutive entries
    /// mostly share it, so only the fraction and the zone are read again.
    struct SecondCache {
        var text = [UInt8](repeating: 0, count: 19)
        var seconds: Int?
    }

    /// RFC 3339 as logrus writes it: `2026-11-30T09:25:46.209071812Z` or `…+01:00`, within
    /// `p[start..<end]`.
    static func rfc3339(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, cache: inout SecondCache) -> Double? {
        guard end - start >= 20 else { return nil }
        let whole: Int
        if let cached = cache.seconds, memcmp(p + start, cache.text, 19) == 0 {
            whole = cached
        } else {
            guard let parsed = civilSeconds(p, start) else { return nil }
            cache.text.withUnsafeMutableBytes { _ = memcpy($0.baseAddress!, p + start, 19) }
            cache.seconds = parsed
            whole = parsed
        }
        var index = start + 19
        var fraction = 0.0
        if index < end, p[index] == 0x2E {
            index += 1
            // Whole digits first, one division after: nanoseconds are at most nine of them.
            var value = 0
            var scale = 1
            let first = index
            while index < end, p[index] >= 0x30, p[index] <= 0x39 {
                if scale < 1_000_000_000 {
                    value = value * 10 + Int(p[index] - 0x30)
                    scale *= 10
                }
                index += 1
            }
            guard index > first else { return nil }
            fraction = Double(value) / Double(scale)
        }
        guard index < end else { return nil }
        var offset = 0
        switch p[index] {
        case 0x5A, 0x7A:  // Z
            index += 1
        case 0x2B, 0x2D:  // + or -
            guard end - index >= 6, p[index + 3] == 0x3A, let hours = digits(p, index + 1, 2), let minutes = digits(p, index + 4, 2) else { return nil }
            offset = (hours * 3600 + minutes * 60) * (p[index] == 0x2B ? 1 : -1)
            index += 6
        default:
            return nil
        }
        guard index == end else { return nil }
        return Double(whole - offset) + fraction
    }

    /// `2026-11-30T09:25:46` at `start`, as seconds since 1970 in the zone that follows it.
    private static func civilSeconds(_ p: UnsafePointer<UInt8>, _ start: Int) -> Int? {
        guard p[start + 4] == 0x2D, p[start + 7] == 0x2D, p[start + 10] == 0x54 || p[start + 10] == 0x20,
              p[start + 13] == 0x3A, p[start + 16] == 0x3A,
              let year = digits(p, start, 4), let month = digits(p, start + 5, 2), let day = digits(p, start + 8, 2),
              let hour = digits(p, start + 11, 2), let minute = digits(p, start + 14, 2), let second = digits(p, start + 17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        return epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// Common Log Format, as the access log writes it between brackets:
    /// `30/Nov/2026:09:25:46 +0000` (26 bytes at `start`).
    static func commonLog(_ p: UnsafePointer<UInt8>, _ start: Int) -> Double? {
        guard p[start + 2] == 0x2F, p[start + 6] == 0x2F, p[start + 11] == 0x3A, p[start + 14] == 0x3A, p[start + 17] == 0x3A,
              p[start + 20] == 0x20, p[start + 21] == 0x2B || p[start + 21] == 0x2D,
              let day = digits(p, start, 2), let year = digits(p, start + 7, 4), let hour = digits(p, start + 12, 2),
              let minute = digits(p, start + 15, 2), let second = digits(p, start + 18, 2),
              let zoneHours = digits(p, start + 22, 2), let zoneMinutes = digits(p, start + 24, 2),
              let month = month(p[start + 3], p[start + 4], p[start + 5]),
              (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let offset = (zoneHours * 3600 + zoneMinutes * 60) * (p[start + 21] == 0x2B ? 1 : -1)
        return Double(epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second) - offset)
    }

    private static func month(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> Int? {
        switch (a, b, c) {
        case (0x4A, 0x61, 0x6E): 1  // Jan
        case (0x46, 0x65, 0x62): 2  // Feb
        case (0x4D, 0x61, 0x72): 3  // Mar
        case (0x41, 0x70, 0x72): 4  // Apr
        case (0x4D, 0x61, 0x79): 5  // May
        case (0x4A, 0x75, 0x6E): 6  // Jun
        case (0x4A, 0x75, 0x6C): 7  // Jul
        case (0x41, 0x75, 0x67): 8  // Aug
        case (0x53, 0x65, 0x70): 9  // Sep
        case (0x4F, 0x63, 0x74): 10  // Oct
        case (0x4E, 0x6F, 0x76): 11  // Nov
        case (0x44, 0x65, 0x63): 12  // Dec
        default: nil
        }
    }
}
