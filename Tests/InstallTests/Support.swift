import Foundation
import RegistryHarness
import Testing

/// The checkout, its Makefile and what `make deb` built: the installed product is the
/// release binary with the Swift runtime linked in, which these tests never build themselves
/// (minutes on this machine); `make test` builds it first.
enum Checkout {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let staticBinary = root.appendingPathComponent(".build-static/release/regkeeper")

    /// Fails the calling test with what to run when `make deb` has not run.
    static func requireBuilt() throws {
        guard FileManager.default.isExecutableFile(atPath: staticBinary.path) else {
            throw Missing(what: staticBinary.path)
        }
    }

    /// The package `make deb` wrote for the version the changelog names.
    static func debianPackage() throws -> URL {
        let version = try ProcessRunner.runBlocking("/usr/bin/dpkg-parsechangelog", ["-l", root.appendingPathComponent("packaging/debian/changelog").path, "-S", "Version"]).stdoutText.trimmed
        let architecture = try ProcessRunner.runBlocking("/usr/bin/dpkg", ["--print-architecture"]).stdoutText.trimmed
        let deb = root.appendingPathComponent(".build-static/regkeeper_\(version)_\(architecture).deb")
        guard FileManager.default.fileExists(atPath: deb.path) else { throw Missing(what: deb.path) }
        return deb
    }

    struct Missing: Error, CustomStringConvertible {
        var what: String
        var description: String { "\(what) is missing: run `make deb` (which `make test` runs first) before these tests" }
    }

    /// `make TARGET VARIABLE=value…` in the checkout; the output of a failing run is the error.
    @discardableResult
    static func make(_ target: String, _ variables: [String: String]) throws -> String {
        let assignments = variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try ProcessRunner.runBlocking("/usr/bin/make", ["--no-print-directory", "-s", "-C", root.path, target] + assignments, timeout: 120).stdoutText
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}

/// Every regular file and symbolic link below `directory`, as paths relative to it.
func filesBelow(_ directory: URL) throws -> Set<String> {
    let output = try ProcessRunner.runBlocking("/usr/bin/find", [directory.path, "(", "-type", "f", "-o", "-type", "l", ")", "-printf", "%P\\n"])
    return Set(output.stdoutText.split(separator: "\n").map(String.init))
}

extension StringProtocol {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
