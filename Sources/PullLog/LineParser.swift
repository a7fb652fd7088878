#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CSystemShims

/// What one line of a registry log says, as far as pulls are concerned.
enum LineKind: Equatable {
    /// Empty (or only a carriage return).
    case blank
    /// Neither an access-log line nor an application-log entry, or one without a readable time.
    case malformed
    /// A log entry that is not a pull: another request, a start-up message.
    case entry(time: Double)
    /// `GET /v2/<name>/manifests/<reference>` answered 200. `precision` is how coarse `time`
    /// is: 1 s in the access log, which has no fractions. The ranges index the line's bytes.
    case pull(time: Double, precision: Double, name: Range<Int>, reference: Range<Int>)
}

/// Reads one line of the formats Distribution 2.8 writes, from bytes: the access log
/// (Combined Log Format, on standard output) and the application log (`log.formatter` `text`
/// or `json`, on standard error; a request ends in a "response completed" entry, written at
/// level info). Lines may carry a prefix before the entry (a syslog or journal header).
///
/// Only what a pull needs is looked at; everything is searched with `memchr`/`memmem` in the
/// caller's buffer, so a line costs no allocation.
struct LineParser {
    /// The last access-log timestamp and its value: consecutive lines mostly share their second.
    private var lastStamp = [UInt8](repeating: 0, count: 26)
    private var lastStampValue: Double?
    private var lastSecond = LogTime.SecondCache()

    mutating func parse(_ p: UnsafePointer<UInt8>, _ start: Int, _ lineEnd: Int) -> LineKind {
        var end = lineEnd
        if end > start, p[end - 1] == 0x0D { end -= 1 }
        guard end > start else { return .blank }
        switch p[start] {
        case 0x7B:  // {
            return json(p, start, end)
        case 0x74 where Self.hasPrefix(p, start, end, Self.textTime):
            return text(p, start, end)
        default:
            if let kind = access(p, start, end) { return kind }
            // A prefix before the entry: `Nov 30 09:25:46 host docker-registry[812]: time="…`.
            if let at = Self.find(Self.spacedTextTime, p, start, end) { return text(p, at + 1, end) }
            if let at = Self.find(Self.prefixedJSON, p, start, end) { return json(p, at + 1, end) }
            return .malformed
        }
    }

    // MARK: Access log

    /// `host ident user [30/Nov/2026:09:25:46 +0000] "GET /v2/app/manifests/v1 HTTP/1.1" 200 248 "" "ua"`.
    /// Nil when the line is not framed like one.
    private mutating func access(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> LineKind? {
        guard let open = Self.index(of: 0x5B, p, start, end), end - open >= 31,
              p[open + 27] == 0x5D, p[open + 28] == 0x20, p[open + 29] == 0x22 else { return nil }
        let time: Double
        if let cached = lastStampValue, memcmp(p + open + 1, lastStamp, 26) == 0 {
            time = cached
        } else {
            guard let parsed = LogTime.commonLog(p, open + 1) else { return nil }
            lastStamp.withUnsafeMutableBytes { _ = memcpy($0.baseAddress!, p + open + 1, 26) }
            lastStampValue = parsed
            time = parsed
        }
        let request = open + 30
        // Method, URI and protocol; a request line that is not three words (a client speaking
        // TLS to plain HTTP) is still a request, just not a pull.
        guard end - request > 4, p[request] == 0x47, p[request + 1] == 0x45, p[request + 2] == 0x54, p[request + 3] == 0x20,  // GET
              let uriEnd = Self.index(of: 0x20, p, request + 4, end),
              let quote = Self.index(of: 0x22, p, uriEnd + 1, end), end - quote >= 5, p[quote + 1] == 0x20,
              Self.is200(p, quote + 2, end) else { return .entry(time: time) }
        return pull(uri: request + 4, uriEnd, p, time: time, precision: 1)
    }

    // MARK: Application log, text

    static let textTime: StaticString = "time=\""
    static let spacedTextTime: StaticString = " time=\""
    static let textCompleted: StaticString = " msg=\"response completed\" "
    static let textMethodGET: StaticString = " http.request.method=GET "
    static let textURI: StaticString = " http.request.uri="
    static let textStatus: StaticString = " http.response.status="

    /// `time="2026-11-30T09:25:46.28Z" level=info msg="response completed" … http.request.method=GET
    /// … http.request.uri=/v2/app/manifests/v1 … http.response.status=200 …`, keys in that order.
    private mutating func text(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> LineKind {
        let timeStart = start + Self.textTime.utf8CodeUnitCount
        guard let timeEnd = Self.index(of: 0x22, p, timeStart, end), let time = LogTime.rfc3339(p, timeStart, timeEnd, cache: &lastSecond) else { return .malformed }
        guard let completed = Self.find(Self.textCompleted, p, timeEnd, end),
              let method = Self.find(Self.textMethodGET, p, completed, end),
              let uriKey = Self.find(Self.textURI, p, method, end) else { return .entry(time: time) }
        var uriStart = uriKey + Self.textURI.utf8CodeUnitCount
        let uriEnd: Int
        if uriStart < end, p[uriStart] == 0x22 {
            uriStart += 1
            guard let close = Self.index(of: 0x22, p, uriStart, end) else { return .malformed }
            uriEnd = close
        } else {
            uriEnd = Self.index(of: 0x20, p, uriStart, end) ?? end
        }
        guard let status = Self.find(Self.textStatus, p, uriEnd, end),
              Self.is200(p, status + Self.textStatus.utf8CodeUnitCount, end) else { return .entry(time: time) }
        return pull(uri: uriStart, uriEnd, p, time: time, precision: 0)
    }

    // MARK: Application log, JSON

    static let prefixedJSON: StaticString = " {\""
    static let jsonTime: StaticString = "\"time\":\""
    static let jsonMethod: StaticString = "\"http.request.method\":\""
    static let jsonURI: StaticString = "\"http.request.uri\":\""
    static let jsonStatus: StaticString = "\"http.response.status\":"

    /// One object a line, keys sorted (Go encodes logrus fields as a map): `{…,"http.request.method":"GET",
    /// "http.request.uri":"/v2/app/manifests/v1",…,"http.response.status":200,…,"msg":"response
    /// completed","time":"2026-11-30T09:25:51.57Z",…}`. Only the entry that completes a response
    /// carries `http.response.status`; the keys are searched in their order, each from where the
    /// last was found, so a line is read about once.
    private mutating func json(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> LineKind {
        guard p[end - 1] == 0x7D else { return .malformed }
        var cursor = start
        var uri: Range<Int>?
        if let method = Self.find(Self.jsonMethod, p, start, end) {
            let value = method + Self.jsonMethod.utf8CodeUnitCount
            cursor = value
            if end - value > 4, p[value] == 0x47, p[value + 1] == 0x45, p[value + 2] == 0x54, p[value + 3] == 0x22,  // GET"
               let uriKey = Self.find(Self.jsonURI, p, value, end) {
                let uriStart = uriKey + Self.jsonURI.utf8CodeUnitCount
                guard let uriEnd = Self.index(of: 0x22, p, uriStart, end) else { return .malformed }
                cursor = uriEnd
                if let status = Self.find(Self.jsonStatus, p, uriEnd, end) {
                    let code = status + Self.jsonStatus.utf8CodeUnitCount
                    cursor = code
                    if Self.is200(p, code, end) { uri = uriStart..<uriEnd }
                }
            }
        }
        guard let timeKey = Self.find(Self.jsonTime, p, cursor, end) ?? (cursor > start ? Self.find(Self.jsonTime, p, start, cursor) : nil) else {
            return .malformed
        }
        let timeStart = timeKey + Self.jsonTime.utf8CodeUnitCount
        guard let timeEnd = Self.index(of: 0x22, p, timeStart, end), let time = LogTime.rfc3339(p, timeStart, timeEnd, cache: &lastSecond) else { return .malformed }
        guard let uri else { return .entry(time: time) }
        return pull(uri: uri.lowerBound, uri.upperBound, p, time: time, precision: 0)
    }

    // MARK: The request

    /// `/v2/<name>/manifests/<reference>[?query]`: a pull, or another request.
    private func pull(uri start: Int, _ uriEnd: Int, _ p: UnsafePointer<UInt8>, time: Double, precision: Double) -> LineKind {
        let marker = Self.manifestsMarker.utf8CodeUnitCount
        guard uriEnd - start > 4 + marker + 1, p[start] == 0x2F, p[start + 1] == 0x76, p[start + 2] == 0x32, p[start + 3] == 0x2F,
              let slash = Self.lastIndex(of: 0x2F, p, start, uriEnd), slash > start + 4 + marker - 1, slash + 1 < uriEnd,
              memcmp(p + slash + 1 - marker, Self.manifestsMarker.utf8Start, marker) == 0 else { return .entry(time: time) }
        // Drop a query. One before the last slash leaves a name no repository can have, which
        // the table then counts as unresolved.
        var end = slash + 1
        while end < uriEnd, p[end] != 0x3F { end += 1 }
        guard end > slash + 1 else { return .entry(time: time) }
        return .pull(time: time, precision: precision, name: (start + 4)..<(slash + 1 - marker), reference: (slash + 1)..<end)
    }

    static let manifestsMarker: StaticString = "/manifests/"

    /// `200` followed by a space, a quote, a comma, a brace or the end.
    @inline(__always)
    private static func is200(_ p: UnsafePointer<UInt8>, _ at: Int, _ end: Int) -> Bool {
        guard end - at >= 3, p[at] == 0x32, p[at + 1] == 0x30, p[at + 2] == 0x30 else { return false }
        guard at + 3 < end else { return true }
        switch p[at + 3] {
        case 0x20, 0x22, 0x2C, 0x7D: return true
        default: return false
        }
    }

    // MARK: Searching

    @inline(__always)
    static func index(of byte: UInt8, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        guard end > start, let found = memchr(p + start, Int32(byte), end - start) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(p)
    }

    @inline(__always)
    static func lastIndex(of byte: UInt8, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        guard end > start, let found = regkeeper_memrchr(p + start, Int32(byte), end - start) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(p)
    }

    /// The first occurrence of `needle` (at least 4 bytes) in `p[start..<end]`. Sixteen
    /// positions at a time are tested on two bytes of the needle (its second and its
    /// second-to-last: in a log, a key's first letter and the `:` or `=` after it, a pair rare
    /// at exactly that distance), and only those that pass are compared whole. glibc's
    /// `memmem` checks the needle's bytes one position at a time, which made it most of the
    /// time spent on a JSON line.
    @inline(__always)
    static func find(_ needle: StaticString, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        let count = needle.utf8CodeUnitCount
        let bytes = needle.utf8Start
        let last = end - count  // the last position a match can start at
        guard last >= start else { return nil }
        let first = SIMD16<UInt8>(repeating: bytes[1])
        let second = SIMD16<UInt8>(repeating: bytes[count - 2])
        var position = start
        while position + 15 <= last {
            let a = UnsafeRawPointer(p + position + 1).loadUnaligned(as: SIMD16<UInt8>.self)
            let b = UnsafeRawPointer(p + position + count - 2).loadUnaligned(as: SIMD16<UInt8>.self)
            let candidates = (a .== first) .& (b .== second)
            if any(candidates) {
                for lane in 0..<16 where candidates[lane] && memcmp(p + position + lane, bytes, count) == 0 { return position + lane }
            }
            position += 16
        }
        while position <= last {
            if memcmp(p + position, bytes, count) == 0 { return position }
            position += 1
        }
        return nil
    }

    @inline(__always)
    static func hasPrefix(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ prefix: StaticString) -> Bool {
        end - start >= prefix.utf8CodeUnitCount && memcmp(p + start, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
    }
}
