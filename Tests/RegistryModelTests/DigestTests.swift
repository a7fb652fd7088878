import Foundation
import RegistryModel
import Testing

@Suite struct DigestTests {
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

    @Test func parsesAndPrintsSHA256() throws {
        let digest = try #require(Digest("sha256:" + hex))
        #expect(digest.algorithm == .sha256)
        #expect(digest.hex == hex)
        #expect(digest.description == "sha256:" + hex)
        #expect(digest.shard == "9f")
        #expect(digest.bytes.count == 32)
        #expect(Digest(algorithm: .sha256, bytes: digest.bytes) == digest)
    }

    @Test func parsesSHA512() throws {
        let long = String(repeating: "ab", count: 64)
        let digest = try #require(Digest("sha512:" + long))
        #expect(digest.hex == long)
        #expect(digest != Digest("sha256:" + String(repeating: "ab", count: 32)))
    }

    @Test(arguments: [
        "", "sha256:", "sha256", "md5:" + String(repeating: "a", count: 32),
        "sha256:" + String(repeating: "a", count: 63), "sha256:" + String(repeating: "A", count: 64),
        "sha256:" + String(repeating: "g", count: 64), "sha256:" + String(repeating: "a", count: 64) + "\n",
        "sha512:" + String(repeating: "a", count: 64),
    ])
    func rejectsMalformed(_ text: String) {
        #expect(Digest(text) == nil)
    }

    @Test func equalDigestsHashEqually() throws {
        let a = try #require(Digest("sha256:" + hex))
        let b = try #require(Digest(algorithm: .sha256, hex: hex))
        #expect(Set([a, b]).count == 1)
        #expect(try JSONDecoder().decode(Digest.self, from: JSONEncoder().encode(a)) == a)
    }
}

@Suite struct NameTests {
    @Test(arguments: ["library/nginx", "team-b/tools/builder", "a", "a.b_c__d--e/f0"])
    func acceptsRepositoryNames(_ name: String) {
        #expect(RepositoryName(name)?.value == name)
    }

    @Test(arguments: ["", "UPPER", "a//b", "/a", "a/", "-a", "a_", "a/../b", "a/.", "a___b", "a b"])
    func rejectsRepositoryNames(_ name: String) {
        #expect(RepositoryName(name) == nil)
    }

    @Test func tags() {
        #expect(Tag("v1.2.3-rc.1_x") != nil)
        #expect(Tag("latest") != nil)
        #expect(Tag(".hidden") == nil)
        #expect(Tag("-x") == nil)
        #expect(Tag("a/b") == nil)
        #expect(Tag(String(repeating: "a", count: 129)) == nil)
    }

    @Test func timeSpans() {
        #expect(TimeSpan("30s")?.seconds == 30)
        #expect(TimeSpan("15m")?.seconds == 900)
        #expect(TimeSpan("12h")?.seconds == 43_200)
        #expect(TimeSpan("7d")?.seconds == 604_800)
        #expect(TimeSpan("4w")?.seconds == 2_419_200)
        #expect(TimeSpan("1d12h")?.seconds == 129_600)
        #expect(TimeSpan("0")?.seconds == 0)
        #expect(TimeSpan("168h")?.description == "1w")
        for bad in ["", "h", "10", "1x", "-1h", "1.5h", "99999999999999999999w"] {
            #expect(TimeSpan(bad) == nil, "\(bad)")
        }
    }
}
