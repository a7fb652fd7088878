/// A version as semver.org 2.0.0 defines it, read from a tag: `1.4.2`, `v2.0.0-rc.1`.
///
/// Docker tags cannot hold `+`, so build metadata never occurs; a leading `v` is accepted
/// because most release tags carry one. Anything else (`1.4`, `01.2.3`, `latest`) does not
/// parse, and the semver selector leaves such tags unranked.
public struct SemanticVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let major: UInt64
    public let minor: UInt64
    public let patch: UInt64
    public let prerelease: [Identifier]

    public enum Identifier: Hashable, Sendable, Comparable {
        case numeric(UInt64)
        case alphanumeric(String)

        /// semver.org §11.4: numeric identifiers sort below alphanumeric ones.
        public static func < (lhs: Self, rhs: Self) -> Bool {
            switch (lhs, rhs) {
            case (.numeric(let left), .numeric(let right)): left < right
            case (.numeric, .alphanumeric): true
            case (.alphanumeric, .numeric): false
            case (.alphanumeric(let left), .alphanumeric(let right)): Array(left.utf8).lexicographicallyPrecedes(right.utf8)
            }
        }
    }

    public init(major: UInt64, minor: UInt64, patch: UInt64, prerelease: [Identifier] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
    }

    public init?(_ text: some StringProtocol) {
        var core = Substring(text)
        if core.first == "v" { core = core.dropFirst() }
        var prereleaseText: Substring?
        if let dash = core.firstIndex(of: "-") {
            prereleaseText = core[core.index(after: dash)...]
            core = core[..<dash]
        }
        let numbers = core.split(separator: ".", omittingEmptySubsequences: false)
        guard numbers.count == 3, let major = Self.number(numbers[0]), let minor = Self.number(numbers[1]),
              let patch = Self.number(numbers[2]) else { return nil }
        var prerelease: [Identifier] = []
        if let prereleaseText {
            for part in prereleaseText.split(separator: ".", omittingEmptySubsequences: false) {
                guard !part.isEmpty, part.utf8.allSatisfy({ Self.isDigit($0) || Self.isLetter($0) || $0 == UInt8(ascii: "-") }) else {
                    return nil
                }
                if part.utf8.allSatisfy(Self.isDigit) {
                    guard let value = Self.number(part) else { return nil }
                    prerelease.append(.numeric(value))
                } else {
                    prerelease.append(.alphanumeric(String(part)))
                }
            }
        }
        self.init(major: major, minor: minor, patch: patch, prerelease: prerelease)
    }

    public var isPrerelease: Bool { !prerelease.isEmpty }

    /// semver.org §11: major, minor, patch numerically; a pre-release sorts below its release;
    /// pre-releases identifier by identifier, a shorter list below a longer one it prefixes.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.major != rhs.major { return lhs.major < rhs.major }
        if lhs.minor != rhs.minor { return lhs.minor < rhs.minor }
        if lhs.patch != rhs.patch { return lhs.patch < rhs.patch }
        switch (lhs.prerelease.isEmpty, rhs.prerelease.isEmpty) {
        case (true, true): return false
        case (true, false): return false
        case (false, true): return true
        case (false, false): return lhs.prerelease.lexicographicallyPrecedes(rhs.prerelease)
        }
    }

    public var description: String {
        let core = "\(major).\(minor).\(patch)"
        guard !prerelease.isEmpty else { return core }
        return core + "-" + prerelease.map {
            switch $0 {
            case .numeric(let value): String(value)
            case .alphanumeric(let text): text
            }
        }.joined(separator: ".")
    }

    /// A numeric identifier: digits only, no leading zero (semver.org §2, §9), fits in 64 bits.
    private static func number(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy(isDigit), text == "0" || text.first != "0" else { return nil }
        return UInt64(text)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
}
