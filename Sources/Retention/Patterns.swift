import Foundation
import RegistryModel

/// A glob over repository names: `*` and `?` stay within one path segment, a `**` segment
/// spans any number of segments (zero included, so `team-a/**` also matches `team-a`, as
/// Harbor's doublestar patterns do).
///
/// Matching runs on bytes without building a regular expression, because a plan tests every
/// repository of a large store against every rule.
public struct RepositoryPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let segments: [Segment]

    private enum Segment: Hashable, Sendable {
        case globstar
        case glob(GlobBytes)
    }

    /// Why a pattern is refused; the parser adds file and line.
    public static func parse(_ text: String) -> Result<RepositoryPattern, PatternProblem> {
        guard !text.isEmpty else { return .failure(PatternProblem("empty repository pattern")) }
        guard !text.hasPrefix("/"), !text.hasSuffix("/"), !text.contains("//") else {
            return .failure(PatternProblem("repository pattern '\(text)' has an empty path segment"))
        }
        var segments: [Segment] = []
        for part in text.split(separator: "/", omittingEmptySubsequences: false) {
            if part == "**" {
                segments.append(.globstar)
                continue
            }
            if part.contains("**") {
                return .failure(PatternProblem("repository pattern '\(text)': ** must be a whole path segment, as in team-a/**"))
            }
            for byte in part.utf8 where !Self.isAllowed(byte) {
                let character = Character(Unicode.Scalar(byte))
                let hint = character.isUppercase ? " (repository names are lowercase)" : ""
                return .failure(PatternProblem("repository pattern '\(text)' holds '\(character)', which no repository name can contain\(hint); use *, ? or ** as wildcards"))
            }
            segments.append(.glob(GlobBytes(part)))
        }
        return .success(RepositoryPattern(text: text, segments: segments))
    }

    private init(text: String, segments: [Segment]) {
        self.text = text
        self.segments = segments
    }

    public func matches(_ name: RepositoryName) -> Bool {
        let parts = name.value.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        return Self.match(segments[...], parts[...])
    }

    private static func match(_ pattern: ArraySlice<Segment>, _ name: ArraySlice<Substring.UTF8View>) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        switch first {
        case .globstar:
            let rest = pattern.dropFirst()
            if rest.isEmpty { return true }
            var remaining = name
            while true {
                if match(rest, remaining) { return true }
                guard !remaining.isEmpty else { return false }
                remaining = remaining.dropFirst()
            }
        case .glob(let glob):
            guard let part = name.first, glob.matches(part) else { return false }
            return match(pattern.dropFirst(), name.dropFirst())
        }
    }

    public var description: String { text }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "*"), UInt8(ascii: "?"):
            true
        default:
            false
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

/// A tag pattern: an anchored glob (`v*`, `release-?`), or, after `re:`, a regular expression
/// that must match the whole tag (`re:^v[0-9]+$`).
public struct TagPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let matcher: Matcher

    private enum Matcher: Sendable {
        case literal(String)
        case glob(GlobBytes)
        case regex(RegexBox)
    }

    public static func parse(_ text: String) -> Result<TagPattern, PatternProblem> {
        if text.hasPrefix("re:") {
            let source = String(text.dropFirst(3))
            guard !source.isEmpty else { return .failure(PatternProblem("empty regular expression in '\(text)'")) }
            do {
                _ = try NSRegularExpression(pattern: source)
                // Anchored on both ends whatever the source says, as tag globs are.
                let anchored = try NSRegularExpression(pattern: "\\A(?:" + source + ")\\z")
                return .success(TagPattern(text: text, matcher: .regex(RegexBox(anchored))))
            } catch {
                return .failure(PatternProblem("'\(source)' is not a valid regular expression (ICU syntax)"))
            }
        }
        guard !text.isEmpty else { return .failure(PatternProblem("empty tag pattern")) }
        if text.contains("**") {
            return .failure(PatternProblem("tag pattern '\(text)': tags have no path segments, so ** means nothing; use *"))
        }
        for byte in text.utf8 where !Self.isAllowed(byte) {
            return .failure(PatternProblem("tag pattern '\(text)' holds '\(Character(Unicode.Scalar(byte)))', which no tag can contain; use * or ?, or re: for a regular expression"))
        }
        let isLiteral = !text.contains("*") && !text.contains("?")
        return .success(TagPattern(text: text, matcher: isLiteral ? .literal(text) : .glob(GlobBytes(Substring(text)))))
    }

    private init(text: String, matcher: Matcher) {
        self.text = text
        self.matcher = matcher
    }

    public func matches(_ tag: Tag) -> Bool {
        switch matcher {
        case .literal(let literal): tag.value == literal
        case .glob(let glob): glob.matches(Substring(tag.value).utf8)
        case .regex(let box): box.matchesWhole(tag.value)
        }
    }

    public var description: String { text }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "*"), UInt8(ascii: "?"):
            true
        default:
            false
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

/// Why a glob or regular expression was refused.
public struct PatternProblem: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One glob segment as bytes: `*` is any run, `?` one byte. Callers hand it text without `/`.
struct GlobBytes: Hashable, Sendable {
    private let bytes: [UInt8]

    init(_ text: Substring) { bytes = Array(text.utf8) }

    /// Iterative wildcard matching with single-star backtracking: linear for the short
    /// patterns and names of a registry, and no recursion depth to worry about.
    func matches(_ text: Substring.UTF8View) -> Bool {
        let star = UInt8(ascii: "*"), question = UInt8(ascii: "?")
        let subject = Array(text)
        var p = 0, s = 0
        var starAt = -1, resumeAt = 0
        while s < subject.count {
            if p < bytes.count, bytes[p] == question || (bytes[p] != star && bytes[p] == subject[s]) {
                p += 1
                s += 1
            } else if p < bytes.count, bytes[p] == star {
                starAt = p
                resumeAt = s
                p += 1
            } else if starAt >= 0 {
                p = starAt + 1
                resumeAt += 1
                s = resumeAt
            } else {
                return false
            }
        }
        while p < bytes.count, bytes[p] == star { p += 1 }
        return p == bytes.count
    }
}

/// NSRegularExpression is immutable and thread-safe once built, but not marked Sendable.
final class RegexBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }

    func matchesWhole(_ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
