import Foundation
import RegistryHarness
import Testing

/// The .deb `make deb` builds installs on this machine with `dpkg -i`, runs with nothing of
/// the Swift toolchain, and purges without a trace. The machine is the scratch root: CI is a
/// fresh Debian box where the tests run as root, as here.
@Suite(.serialized) struct DebianPackageTests {
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 120) throws -> ProcessOutput {
        try ProcessRunner.runBlocking(executable, arguments, timeout: timeout, allowFailure: true)
    }

    /// Package names of a Depends field, alternatives included, without versions.
    static func packageNames(_ field: String) -> Set<String> {
        Set(field.split(whereSeparator: { $0 == "," || $0 == "|" }).compactMap { $0.split(separator: " ").first.map(String.init) })
    }

    /// The directory the running toolchain's `swift` lives under (`/opt/swift/usr/bin/swift`
    /// gives `/opt/swift`), which the installed binary must not load anything from.
    static func toolchainDirectory() throws -> String {
        let swift = try ProcessRunner.runBlocking("/bin/sh", ["-c", "readlink -f \"$(command -v swift)\""]).stdoutText.trimmed
        let bin = try #require(swift.range(of: "/usr/bin/", options: .backwards), "the tests run with a toolchain: \(swift)")
        return String(swift[..<bin.lowerBound])
    }

    @Test func packageInstallsRunsWithoutTheToolchainAndPurgesClean() throws {
        let deb = try Checkout.debianPackage()
        let before = try Self.run("/usr/bin/dpkg-query", ["-W", "-f", "${Status}", "regkeeper"]).stdoutText
        try #require(!before.contains("installed"), "regkeeper is installed on this machine; this test installs and purges its own package: `dpkg -P regkeeper` first")

        let info = try Self.run("/usr/bin/dpkg-deb", ["--info", deb.path])
        try #require(info.status == 0, "\(info.stderrText)")
        func field(_ name: String) throws -> String {
            try ProcessRunner.runBlocking("/usr/bin/dpkg-deb", ["--field", deb.path, name]).stdoutText.trimmed
        }
        #expect(try field("Package") == "regkeeper")
        #expect(try field("Version") == "0.1.0")
        #expect(try field("Architecture") == (try ProcessRunner.runBlocking("/usr/bin/dpkg", ["--print-architecture"]).stdoutText.trimmed))
        #expect(try field("Section") == "admin")
        let depends = try field("Depends")
        let dependedOn = Self.packageNames(depends)

        let contents = try ProcessRunner.runBlocking("/usr/bin/dpkg-deb", ["--contents", deb.path]).stdoutText
        let paths = Set(contents.split(separator: "\n").map { String($0.split(separator: " ", omittingEmptySubsequences: true).last!) })
        #expect(contents.split(separator: "\n").allSatisfy { $0.contains(" root/root ") }, "owned by root")
        var expected = ["./usr/bin/regkeeper", "./etc/default/regkeeper", "./usr/share/doc/regkeeper/copyright", "./usr/share/doc/regkeeper/changelog.gz",
                        "./usr/share/bash-completion/completions/regkeeper", "./usr/share/zsh/vendor-completions/_regkeeper",
                        "./usr/share/fish/vendor_completions.d/regkeeper.fish"]
        expected += MakeInstallTests.units.map { "./lib/systemd/system/\($0)" }
        let pages = try MakeInstallTests.contents(of: "man")
        expected += pages.map { "./usr/share/man/man\($0.split(separator: ".").last!)/\($0).gz" }
        let policies = try MakeInstallTests.contents(of: "policies")
        expected += policies.map { "./etc/regkeeper/\($0)" }
        for path in expected { #expect(paths.contains(path), "\(path) is not in the package") }

        let conffiles = try ProcessRunner.runBlocking("/usr/bin/dpkg-deb", ["--info", deb.path, "conffiles"]).stdoutText
        #expect(Set(conffiles.split(separator: "\n").map(String.init)) == Set(["/etc/default/regkeeper"] + policies.map { "/etc/regkeeper/\($0)" }))

        let install = try Self.run("/usr/bin/dpkg", ["-i", deb.path], timeout: 300)
        defer { _ = try? Self.run("/usr/bin/dpkg", ["--purge", "regkeeper"], timeout: 300) }
        try #require(install.status == 0, "dpkg -i: \(install.stderrText)")

        // Runs with the default PATH and no library path, and loads nothing from the toolchain.
        let version = try Self.run("/usr/bin/env", ["-i", "PATH=/usr/bin:/bin", "regkeeper", "--version"])
        #expect(version.status == 0 && version.stdoutText.trimmed == "0.1.0", "\(version.stderrText)")
        let ldd = try ProcessRunner.runBlocking("/usr/bin/env", ["-i", "PATH=/usr/bin:/bin", "ldd", "/usr/bin/regkeeper"]).stdoutText
        let toolchain = try Self.toolchainDirectory()
        #expect(!ldd.contains(toolchain), "loads from the toolchain:\n\(ldd)")
        #expect(!ldd.contains("not found") && !ldd.contains("libswift") && !ldd.contains("libFoundation"), "\(ldd)")
        // An s3:// root loads libcurl and gets as far as the (refused) connection.
        let s3State = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-deb-s3-\(UUID())")
        defer { try? FileManager.default.removeItem(at: s3State) }
        let s3 = try Self.run("/usr/bin/env", ["-i", "PATH=/usr/bin:/bin", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b", "regkeeper", "report",
                                                "--root", "s3://registry", "--s3-endpoint", "http://127.0.0.1:1", "--state-dir", s3State.path])
        #expect(s3.status == 1 && s3.stderrText.contains("(curl error 7)"), "\(s3.stderrText)")

        // Depends names exactly the packages of the libraries the binary links, and of libcurl,
        // which it loads on the first S3 request.
        let linked = try ProcessRunner.runBlocking("/usr/bin/objdump", ["-p", "/usr/bin/regkeeper"]).stdoutText
            .split(separator: "\n").filter { $0.contains("NEEDED") }.map { String($0.split(separator: " ").last!) }
        #expect(!linked.isEmpty)
        #expect(!linked.contains("libcurl.so.4"), "loaded when needed, not linked")
        let needed = linked + ["libcurl.so.4"]
        var owners: Set<String> = []
        for library in needed {
            let search = try ProcessRunner.runBlocking("/usr/bin/dpkg", ["-S", "*/\(library)"]).stdoutText
            // "libzstd1:amd64: /lib/x86_64-linux-gnu/libzstd.so.1", several owners comma-separated.
            let packages = Set(search.split(separator: "\n").flatMap { line in
                line.components(separatedBy: ": /")[0].split(separator: ",").map { String($0.trimmed.split(separator: ":")[0]) }
            })
            #expect(!packages.isDisjoint(with: dependedOn), "\(library) (from \(packages.sorted())) is not in Depends: \(depends)")
            owners.formUnion(packages)
        }
        #expect(dependedOn.isSubset(of: owners), "Depends names a package the binary does not link: \(depends)")

        // man finds the pages, bash-completion's loader the completion, systemd the units.
        #expect(try Self.run("/usr/bin/man", ["-w", "regkeeper"]).stdoutText.trimmed == "/usr/share/man/man1/regkeeper.1.gz")
        #expect(try Self.run("/usr/bin/man", ["-w", "5", "regkeeper-policy"]).stdoutText.trimmed == "/usr/share/man/man5/regkeeper-policy.5.gz")
        #expect(try Self.run("/usr/bin/man", ["-w", "5", "regkeeper-schedule"]).stdoutText.trimmed == "/usr/share/man/man5/regkeeper-schedule.5.gz")
        let loaded = try Self.run("/bin/bash", ["-c", ". /usr/share/bash-completion/bash_completion && __load_completion regkeeper && complete -p regkeeper"])
        #expect(loaded.stdoutText.contains("-F _regkeeper regkeeper"), "\(loaded.stdoutText)\(loaded.stderrText)")
        let unitPaths = MakeInstallTests.units.map { "/lib/systemd/system/\($0)" }
        let verified = try Self.run("/usr/bin/systemd-analyze", ["verify"] + unitPaths)
        #expect(verified.status == 0 && verified.stdoutText.isEmpty && verified.stderrText.isEmpty, "\(verified.stdoutText)\(verified.stderrText)")
        let wanted = (try? FileManager.default.contentsOfDirectory(atPath: "/etc/systemd/system/timers.target.wants")) ?? []
        #expect(!wanted.contains { $0.hasPrefix("regkeeper") }, "installed, not enabled")
        let environment = try EnvironmentFile.read(URL(fileURLWithPath: "/etc/default/regkeeper"))
        #expect(environment["REGKEEPER_POLICY"] == "/etc/regkeeper/default.yaml")
        for directory in [environment["REGKEEPER_BACKUP_DIR"]!, environment["REGKEEPER_METRICS_DIR"]!] {
            #expect(FileManager.default.fileExists(atPath: directory), "the units' default \(directory) must exist for ReadWritePaths=")
        }
        #expect(try MakeInstallTests.mode(URL(fileURLWithPath: environment["REGKEEPER_BACKUP_DIR"]!)) == 0o700, "backups are root's alone")

        let purge = try Self.run("/usr/bin/dpkg", ["--purge", "regkeeper"], timeout: 300)
        #expect(purge.status == 0, "\(purge.stderrText)")
        for path in ["/usr/bin/regkeeper", "/etc/regkeeper", "/etc/default/regkeeper", "/usr/share/doc/regkeeper", "/var/backups/regkeeper"] + unitPaths {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) is left after purge")
        }
    }
}
