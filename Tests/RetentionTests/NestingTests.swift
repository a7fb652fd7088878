@testable import Retention
import Testing

/// The nesting measure that keeps hostile policies away from Yams: exact at the limit for every
/// way YAML nests, and far from it for real policies.
@Suite struct NestingTests {
    static let limit = RetentionPolicy.maximumNesting

    /// Each shape nested `levels` deep, and the line on which its deepest level opens.
    static func shapes(_ levels: Int) -> [(name: String, text: String, deepestLine: Int)] {
        [
            ("flow sequences", String(repeating: "[", count: levels) + String(repeating: "]", count: levels), 1),
            ("flow mappings", String(repeating: "{a: ", count: levels) + "1" + String(repeating: "}", count: levels), 1),
            ("flow sequences over lines", (0..<levels).map { _ in "[" }.joined(separator: "\n"), levels),
            ("block mappings", (0..<levels).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n"), levels),
            ("block sequences", (0..<levels).map { String(repeating: " ", count: 2 * $0) + "-" }.joined(separator: "\n"), levels),
            ("compact sequences", String(repeating: "- ", count: levels), 1),
            ("sequences of mappings", (0..<levels / 2).map { String(repeating: " ", count: 2 * $0) + "- k:" }.joined(separator: "\n"), levels / 2),
            ("sequences at their key's column", (0..<levels / 2).map { String(repeating: " ", count: 2 * $0) + "k:\n" + String(repeating: " ", count: 2 * $0) + "-" }.joined(separator: "\n"), levels),
        ]
    }

    @Test func theLimitItselfIsAllowedAndOneMoreIsNot() {
        for (name, text, _) in Self.shapes(Self.limit) {
            #expect(YAMLNesting.firstLine(deeperThan: Self.limit, in: text) == nil, "\(name)")
        }
        for (name, text, line) in Self.shapes(Self.limit + 2) {
            let refused = YAMLNesting.firstLine(deeperThan: Self.limit, in: text)
            #expect(refused != nil, "\(name)")
            #expect(refused ?? 0 <= line, "\(name): refused on line \(refused ?? 0)")
        }
    }

    /// Quotes and comments cannot hide brackets: the measure counts them, erring deep.
    @Test func quotingHidesNothing() {
        let hidden = "tags: ['x #', " + String(repeating: "[", count: Self.limit) + String(repeating: "]", count: Self.limit) + "]"
        #expect(YAMLNesting.firstLine(deeperThan: Self.limit, in: hidden) == 1)
    }

    @Test func aRealPolicyIsFarFromTheLimit() {
        let policy = """
            # CI images: keep what is recent or running.
            version: 1
            rules:
              - name: "ci [cache]"
                repositories: ['ci/**', "team-a/**"]   # every team
                keep:
                  - tags: ["re:^v[0-9]+\\\\.[0-9]+$"]
                    newest: 5
                  - semver: {per: minor}
                untagged:
                  delete: true
                  olderThan: 2d
            protect:
              tags:
              - latest
              - stable
              inUse: in-use.txt
            safety: {maxDeletePercent: 30}
            """
        #expect(YAMLNesting.firstLine(deeperThan: 7, in: policy) == nil)
        // The policy, rules, the rule, keep, the selector, tags, and the regex's quoted [.
        #expect(YAMLNesting.firstLine(deeperThan: 6, in: policy) == 7)
    }
}
