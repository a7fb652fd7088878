/// A repository name such as `library/nginx` or `team-b/tools/builder`.
///
/// Validated with Distribution's grammar so that a name read from the store can be turned
/// back into a path without escaping it: components of `[a-z0-9]` joined by `.`, `_`, `__`
/// or runs of `-`, separated by `/`.
public struct RepositoryName: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let value: String

    public init?(_ value: some StringProtocol) {
        let value = String(value)
        guard !value.isEmpty, value.utf8.count <= 255,
              value.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(Self.isValidComponent)
        else { return nil }
        self.value = value
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let name = RepositoryName(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid repository name '\(text)'")
        }
        self = name
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    /// The path components, e.g. `["team-b", "tools", "builder"]`.
    public var components: [String] { value.split(separator: "/").map(String.init) }

    public var description: String { value }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    /// Whether one directory name can be a component of a repository name.
    public static func isValidComponent(_ component: some StringProtocol) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if isAlphanumeric(byte) {
                index += 1
                continue
            }
            // A separator run: ".", "_", "__" or any number of "-".
            var end = index
            while end < bytes.count, !isAlphanumeric(bytes[end]) { end += 1 }
            let run = bytes[index..<end]
            let valid = run.elementsEqual([UInt8(ascii: ".")]) || run.elementsEqual([UInt8(ascii: "_")])
                || run.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")])
                || run.allSatisfy { $0 == UInt8(ascii: "-") }
            guard valid else { return false }
            index = end
        }
        return true
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// A tag such as `latest` or `v1.2.3`: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
public struct Tag: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let value: String

    public init?(_ value: some StringProtocol) {
        let bytes = Array(value.utf8)
        guard let first = bytes.first, bytes.count <= 128, Self.isWord(first),
              bytes.dropFirst().allSatisfy({ Self.isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.value = String(value)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let tag = Tag(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid tag '\(text)'")
        }
        self = tag
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public var description: String { value }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    private static func isWord(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
    }
}
