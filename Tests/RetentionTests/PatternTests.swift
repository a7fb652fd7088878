import RegistryModel
@testable import Retention
import Testing

@Suite struct PatternTests {
    func repository(_ pattern: String) throws -> RepositoryPattern { try RepositoryPattern.parse(pattern).get() }
    func tag(_ pattern: String) throws -> TagPattern { try TagPattern.parse(pattern).get() }

    @Test func repositoryStarStaysWithinOneSegmentAndDoubleStarSpansThem() throws {
        let star = try repository("library/*")
        #expect(star.matches("library/nginx"))
        #expect(!star.matches("library/nginx/alpine"))
        #expect(!star.matches("library"))
        let globstar = try repository("team-a/**")
        #expect(globstar.matches("team-a/api"))
        #expect(globstar.matches("team-a/tools/builder"))
        #expect(globstar.matches("team-a"), "** matches zero segments, as in Harbor's patterns")
        #expect(!globstar.matches("team-ab/api"))
        let middle = try repository("**/cache")
        #expect(middle.matches("cache") && middle.matches("ci/x/cache"))
        #expect(!middle.matches("ci/cache-old"))
        let inner = try repository("team-?/*-svc/**")
        #expect(inner.matches("team-b/pay-svc") && inner.matches("team-b/pay-svc/worker"))
        #expect(!inner.matches("team-bb/pay-svc"))
        #expect(try repository("**").matches("a/b/c/d"))
    }

    @Test func badRepositoryPatternsAreRefusedWithAReason() {
        for (pattern, fragment) in [("team-a/**x", "whole path segment"), ("Team/*", "repository names are lowercase"),
                                    ("a//b", "empty path segment"), ("/a", "empty path segment"), ("a/[bc]", "'['")] {
            guard case .failure(let problem) = RepositoryPattern.parse(pattern) else {
                Issue.record("\(pattern) was accepted")
                continue
            }
            #expect(problem.description.contains(fragment), "\(pattern): \(problem)")
        }
    }

    @Test func tagGlobsAndRegexesAreAnchored() throws {
        #expect(try tag("v*").matches("v1.2.3"))
        #expect(try !tag("v*").matches("av1"))
        #expect(try tag("*-rc").matches("1.0-rc"))
        #expect(try !tag("*-rc").matches("1.0-rc2"))
        #expect(try tag("release-?").matches("release-1"))
        #expect(try !tag("release-?").matches("release-10"))
        #expect(try tag("re:v[0-9]+").matches("v12"))
        #expect(try !tag("re:v[0-9]+").matches("v12-beta"), "a regex must match the whole tag")
        #expect(try !tag("re:[0-9]").matches("a1b"))
        #expect(try tag("re:^(main|dev)$").matches("dev"))
        #expect(try tag("re:a|ab").matches("ab"), "anchoring covers every alternative")
    }

    @Test func badTagPatternsAreRefused() {
        for pattern in ["re:([", "v**", "a/b", "re:", "tag with space"] {
            guard case .failure = TagPattern.parse(pattern) else {
                Issue.record("\(pattern) was accepted")
                continue
            }
        }
    }
}

@Suite struct SemanticVersionTests {
    @Test func precedenceFollowsSemverOrg() {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
                       "1.0.0-rc.1", "1.0.0", "v1.0.1", "1.1.0-0", "1.1.0", "1.10.0", "2.0.0", "10.0.0"]
        let versions = ordered.map { SemanticVersion($0)! }
        for (lower, higher) in zip(versions, versions.dropFirst()) {
            #expect(lower < higher, "\(lower) < \(higher)")
            #expect(!(higher < lower))
        }
        #expect(versions.shuffled().sorted() == versions)
        #expect(SemanticVersion("v1.2.3") == SemanticVersion("1.2.3"), "a leading v is only decoration")
    }

    @Test func tagsThatAreNotVersionsDoNotParse() {
        for text in ["latest", "1.2", "1", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-rc..1", "1.2.3-01", "V1.2.3",
                     "vv1.2.3", "1.2.3-rc_1", "99999999999999999999.0.0", ""] {
            #expect(SemanticVersion(text) == nil, "\(text)")
        }
        #expect(SemanticVersion("1.2.3-rc-1.x-y")?.prerelease == [.alphanumeric("rc-1"), .alphanumeric("x-y")])
    }
}
