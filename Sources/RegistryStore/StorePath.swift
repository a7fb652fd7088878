/// A path inside a store root, as components that can never climb out of it.
///
/// Only `Layout` builds these from names; the walkers extend them with entries they listed.
/// A component is never empty, `.`, `..`, or contains `/` or NUL.
public struct StorePath: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let components: [String]

    public static let root = StorePath(trusted: [])

    init(trusted components: [String]) {
        self.components = components
    }

    /// Whether a name read from a directory or a link can be used as one component.
    public static func isValidComponent(_ name: some StringProtocol) -> Bool {
        name != "." && name != ".." && !name.isEmpty && name.utf8.allSatisfy { $0 != UInt8(ascii: "/") && $0 != 0 }
    }

    /// Appends one component; returns nil for a name that could escape (`..`, `/`, empty).
    public func appending(_ component: some StringProtocol) -> StorePath? {
        guard Self.isValidComponent(component) else { return nil }
        return StorePath(trusted: components + [String(component)])
    }

    /// Appends components that the layout itself produced.
    func appending(trusted more: String...) -> StorePath {
        StorePath(trusted: components + more)
    }

    public var lastComponent: String? { components.last }

    public var parent: StorePath? {
        components.isEmpty ? nil : StorePath(trusted: Array(components.dropLast()))
    }

    public func hasPrefix(_ other: StorePath) -> Bool {
        components.starts(with: other.components)
    }

    /// The relative path text, e.g. `docker/registry/v2/blobs`.
    public var description: String { components.joined(separator: "/") }

    /// Parses a relative path such as an archive member name; nil if any part could escape.
    public init?(relative text: some StringProtocol) {
        let parts: [String] = text.split(separator: "/", omittingEmptySubsequences: true).map { String($0) }.filter { $0 != "." }
        guard !parts.isEmpty, parts.allSatisfy({ Self.isValidComponent($0) }), !text.hasPrefix("/") else { return nil }
        components = parts
    }

    public static func < (lhs: StorePath, rhs: StorePath) -> Bool {
        lhs.components.lexicographicallyPrecedes(rhs.components)
    }
}

enum Hex {
    static func isLowercaseHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
