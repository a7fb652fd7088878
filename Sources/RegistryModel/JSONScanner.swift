/// A strict, allocation-light JSON reader for manifests and archive indexes.
///
/// gc parses every manifest of the store; `JSONDecoder` spent a quarter of a mark building
/// containers for fields nobody reads. This reads values in place, skipping (and still
/// validating) everything the caller does not ask for.
package struct JSONScanner {
    package enum Failure: Error, CustomStringConvertible {
        case syntax(String, offset: Int)
        case type(expected: String, field: String)
        case missing(field: String)

        package var description: String {
            switch self {
            case .syntax(let message, let offset): "\(message) at byte \(offset)"
            case .missing(let field): "\(field) is missing"
            case .type(let expected, let field): "\(field) is not a\(expected.first.map { "aeiou".contains($0) } == true ? "n" : "") \(expected)"
            }
        }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0
    /// Deeper nesting than any manifest has is garbage, and recursion must stay bounded.
    private static let maximumDepth = 64

    package init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Bytes read so far: what a caller reading a large document may give back behind it.
    package var offset: Int { position }

    // MARK: Structure

    /// Calls `body` with each key of an object, positioned at its value; `body` must consume it.
    package mutating func object(field: String, _ body: (inout JSONScanner, String) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "{"), field: field, what: "object")
        try enter()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            let key = try string()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw syntax("expected ':' after key \"\(key)\"") }
            position += 1
            skipWhitespace()
            try body(&self, key)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                depth -= 1
                return
            default: throw syntax("expected ',' or '}' in object")
            }
        }
    }

    /// Calls `body` for each element of an array, positioned at it; `body` must consume it.
    package mutating func array(field: String, _ body: (inout JSONScanner, Int) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "["), field: field, what: "array")
        try enter()
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return
        }
        var index = 0
        while true {
            skipWhitespace()
            try body(&self, index)
            index += 1
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                depth -= 1
                return
            default: throw syntax("expected ',' or ']' in array")
            }
        }
    }

    /// True (and consumed) when the value here is `null`.
    package mutating func null() throws(Failure) -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    /// Fails unless only whitespace remains: `{}{}` is not a manifest.
    package mutating func end() throws(Failure) {
        skipWhitespace()
        guard position == bytes.count else { throw syntax("unexpected data after the JSON value") }
    }

    // MARK: Values

    package mutating func string(field: String) throws(Failure) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw .type(expected: "string", field: field) }
        return try string()
    }

    package mutating func integer<Value: FixedWidthInteger>(field: String, as: Value.Type = Int64.self) throws(Failure) -> Value {
        let start = position
        guard peek() == UInt8(ascii: "-") || peek().map(isDigit) == true else { throw .type(expected: "integer", field: field) }
        try number()
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Value(text) else { throw .type(expected: "integer", field: field) }
        return value
    }

    /// The bytes of the value at the current position, validated and consumed, for a decoder
    /// of its own.
    package mutating func rawValue() throws(Failure) -> UnsafeBufferPointer<UInt8> {
        let start = position
        try skip()
        return UnsafeBufferPointer(rebasing: bytes[start..<position])
    }

    /// Consumes and validates any value.
    package mutating func skip() throws(Failure) {
        switch peek() {
        case UInt8(ascii: "{")?: try object(field: "") { scanner, _ throws(Failure) in try scanner.skip() }
        case UInt8(ascii: "[")?: try array(field: "") { scanner, _ throws(Failure) in try scanner.skip() }
        case UInt8(ascii: "\"")?: _ = try string()
        case UInt8(ascii: "t")?: try literal("true")
        case UInt8(ascii: "f")?: try literal("false")
        case UInt8(ascii: "n")?: try literal("null")
        case let byte? where byte == UInt8(ascii: "-") || isDigit(byte): try number()
        default: throw syntax(position < bytes.count ? "unexpected character" : "unexpected end of data")
        }
    }

    // MARK: Lexing

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private func syntax(_ message: String) -> Failure { .syntax(message, offset: position) }

    private mutating func enter() throws(Failure) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw syntax("nested deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func expect(_ byte: UInt8, field: String, what: String) throws(Failure) {
        guard peek() == byte else {
            if peek() == nil { throw syntax("unexpected end of data") }
            throw .type(expected: what, field: field)
        }
        position += 1
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let length = word.utf8CodeUnitCount
        guard position + length <= bytes.count,
              UnsafeBufferPointer(rebasing: bytes[position..<(position + length)]).elementsEqual(
                  UnsafeBufferPointer(start: word.utf8Start, count: length))
        else { throw syntax("invalid literal") }
        position += length
    }

    private mutating func number() throws(Failure) {
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), isDigit(first) else { throw syntax("invalid number") }
        position += 1
        if first != UInt8(ascii: "0") { while let byte = peek(), isDigit(byte) { position += 1 } }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let byte = peek(), isDigit(byte) else { throw syntax("invalid number") }
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard let byte = peek(), isDigit(byte) else { throw syntax("invalid number") }
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
    }

    /// A string at the current position (which must hold `"`), escapes decoded.
    private mutating func string() throws(Failure) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw syntax("expected a string") }
        position += 1
        let start = position
        // Fast path: no escapes, the common case for digests and media types.
        while let byte = peek(), byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw syntax("control character in string") }
            position += 1
        }
        guard let stop = peek() else { throw syntax("unterminated string") }
        var decoded = Array(UnsafeBufferPointer(rebasing: bytes[start..<position]))
        if stop == UInt8(ascii: "\"") {
            position += 1
            return try validUTF8(decoded)
        }
        while true {
            guard let byte = peek() else { throw syntax("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try validUTF8(decoded)
            case UInt8(ascii: "\\"):
                guard let escaped = peek() else { throw syntax("unterminated string") }
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escaped)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"): decoded += try unicodeEscape()
                default: throw syntax("invalid escape")
                }
            case 0..<0x20:
                throw syntax("control character in string")
            default:
                decoded.append(byte)
            }
        }
    }

    private func validUTF8(_ bytes: [UInt8]) throws(Failure) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw syntax("invalid UTF-8 in string") }
        return text
    }

    private mutating func hexQuad() throws(Failure) -> UInt32 {
        guard position + 4 <= bytes.count else { throw syntax("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: throw syntax("invalid \\u escape")
            }
            value = value << 4 | UInt32(nibble)
            position += 1
        }
        return value
    }

    private mutating func unicodeEscape() throws(Failure) -> [UInt8] {
        var scalar = try hexQuad()
        if (0xD800..<0xDC00).contains(scalar) {
            guard peek() == UInt8(ascii: "\\") else { throw syntax("unpaired surrogate") }
            position += 1
            guard peek() == UInt8(ascii: "u") else { throw syntax("unpaired surrogate") }
            position += 1
            let low = try hexQuad()
            guard (0xDC00..<0xE000).contains(low) else { throw syntax("unpaired surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let unicode = Unicode.Scalar(scalar) else { throw syntax("invalid \\u escape") }
        return Array(String(Character(unicode)).utf8)
    }
}
