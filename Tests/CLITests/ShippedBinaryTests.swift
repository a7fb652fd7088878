import Foundation
import RegistryHarness
import Testing

/// What ships is what runs: the `regkeeper` binary carries no test support (the registry
/// harness, the store builder), which only `regkeeper-demo`, the benchmarks and the tests link.
@Suite struct ShippedBinaryTests {
    /// Swift symbols carry their module's name, length-prefixed: `15RegistryHarness…`.
    static let testSupportModules = ["15RegistryHarness", "16StoreTestSupport"]

    static func symbols(of executable: String) throws -> String {
        let path = GCCommandTests.productsDirectory.appendingPathComponent(executable).path
        return try ProcessRunner.runBlocking("/usr/bin/nm", [path]).stdoutText
    }

    @Test func regkeeperLinksNoTestSupport() throws {
        let symbols = try Self.symbols(of: "regkeeper")
        #expect(symbols.contains("10Operations"), "the use cases are in")
        for module in Self.testSupportModules {
            #expect(!symbols.contains(module), "\(module) is linked into regkeeper")
        }
    }

    /// The check above can fail: the demo, built from the same tree, does link the harness.
    @Test func theDemoLinksTheHarness() throws {
        #expect(try Self.symbols(of: "regkeeper-demo").contains(Self.testSupportModules[0]))
    }
}
