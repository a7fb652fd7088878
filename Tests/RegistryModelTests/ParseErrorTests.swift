import RegistryModel
import Testing

/// A flag's value that is not a span or a size says why, so the message can say what to write.
@Suite struct ParseErrorTests {
    @Test func spansSayWhyTheyAreNotOne() throws {
        #expect(throws: TimeSpan.ParseError.negative) { try TimeSpan(parsing: "-1h") }
        #expect(throws: TimeSpan.ParseError.negative) { try TimeSpan(parsing: "-0") }
        #expect(throws: TimeSpan.ParseError.malformed) { try TimeSpan(parsing: "--dry-run") }
        #expect(throws: TimeSpan.ParseError.malformed) { try TimeSpan(parsing: "soon") }
        #expect(throws: TimeSpan.ParseError.malformed) { try TimeSpan(parsing: "") }
        #expect(throws: TimeSpan.ParseError.tooLong) { try TimeSpan(parsing: "99999999999999999999w") }
        #expect(try TimeSpan(parsing: "1d12h") == TimeSpan(seconds: 129_600))
        #expect(try TimeSpan(parsing: "0") == .zero)
    }

    @Test func sizesSayWhyTheyAreNotOne() throws {
        #expect(throws: ByteCount.ParseError.negative) { try ByteCount(parsing: "-5GiB") }
        #expect(throws: ByteCount.ParseError.malformed) { try ByteCount(parsing: "5 GiB") }
        #expect(throws: ByteCount.ParseError.malformed) { try ByteCount(parsing: "GiB") }
        #expect(throws: ByteCount.ParseError.tooLarge) { try ByteCount(parsing: "99999999999TiB") }
        #expect(throws: ByteCount.ParseError.tooLarge) { try ByteCount(parsing: "99999999999999999999") }
        #expect(try ByteCount(parsing: "500MB") == ByteCount(bytes: 500_000_000))
    }
}
