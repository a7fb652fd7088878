import Foundation
import RegistryHarness
import Testing

/// `make install` puts every file where a Debian operator looks for it, and `make uninstall`
/// takes exactly those away again.
@Suite struct MakeInstallTests {
    static let units = [
        "regkeeper-nightly.service", "regkeeper-nightly.timer", "regkeeper-verify.service", "regkeeper-verify.timer",
        "regkeeper-backup.service", "regkeeper-backup.timer", "regkeeper-backup-full.service", "regkeeper-backup-full.timer",
    ]

    static func contents(of directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Checkout.root.appendingPathComponent(directory).path).sorted()
    }

    /// What the issue asks for, listed from the checkout rather than from the install script.
    static func expectedFiles(prefix: String, sysconfdir: String) throws -> Set<String> {
        var files: Set<String> = [
            "\(prefix)/bin/regkeeper",
            "\(prefix)/share/bash-completion/completions/regkeeper",
            "\(prefix)/share/zsh/site-functions/_regkeeper",
            "\(prefix)/share/fish/vendor_completions.d/regkeeper.fish",
            "\(sysconfdir)/default/regkeeper",
        ]
        let pages = try contents(of: "man")
        #expect(pages.contains("regkeeper.1") && pages.contains("regkeeper-policy.5"))
        for page in pages { files.insert("\(prefix)/share/man/man\(page.split(separator: ".").last!)/\(page).gz") }
        for policy in try contents(of: "policies") { files.insert("\(prefix)/share/regkeeper/policies/\(policy)") }
        for unit in units { files.insert("\(prefix)/lib/systemd/system/\(unit)") }
        return files
    }

    static func mode(_ path: URL) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path.path)[.posixPermissions] as! NSNumber).intValue
    }

    @Test func installWritesExactlyTheListAndUninstallRemovesIt() throws {
        try Checkout.requireBuilt()
        let destdir = try Checkout.temporaryDirectory("destdir")
        defer { try? FileManager.default.removeItem(at: destdir) }
        let variables = ["DESTDIR": destdir.path]

        let manifest = Set(try Checkout.make("install-manifest", variables).split(separator: "\n").map(String.init))
        #expect(manifest == (try Self.expectedFiles(prefix: "/usr/local", sysconfdir: "/etc")))
        try Checkout.make("install-built", variables)
        #expect(try filesBelow(destdir) == Set(manifest.map { String($0.dropFirst()) }), "install wrote what the list says, no more")

        let installed = { (path: String) in destdir.appendingPathComponent(path) }
        let binary = installed("/usr/local/bin/regkeeper")
        #expect(try Self.mode(binary) == 0o755)
        #expect(FileManager.default.contentsEqual(atPath: binary.path, andPath: Checkout.staticBinary.path))
        #expect(try ProcessRunner.runBlocking(binary.path, ["--version"]).stdoutText.trimmed == "0.1.0")
        for path in manifest where !path.hasSuffix("/bin/regkeeper") {
            #expect(try Self.mode(installed(path)) == 0o644, "\(path)")
        }

        // Man pages: gzip -9n (no name, no time stamp, so the package is reproducible), whole.
        for page in try Self.contents(of: "man") {
            let gz = installed("/usr/local/share/man/man\(page.split(separator: ".").last!)/\(page).gz")
            let header = try Data(contentsOf: gz).prefix(10)
            #expect(header.starts(with: [0x1F, 0x8B, 8]) && header[3] & 0x08 == 0 && header[4..<8].allSatisfy { $0 == 0 }, "\(page)")
            let text = try ProcessRunner.runBlocking("/bin/gzip", ["-dc", gz.path]).stdout
            #expect(text == (try Data(contentsOf: Checkout.root.appendingPathComponent("man/\(page)"))), "\(page)")
        }

        // Units and the environment file name the paths of this install.
        for unit in Self.units {
            let text = try String(contentsOf: installed("/usr/local/lib/systemd/system/\(unit)"), encoding: .utf8)
            #expect(!text.contains("@"), "\(unit) has a placeholder left")
            if unit.hasSuffix(".service") {
                #expect(text.contains("EnvironmentFile=/etc/default/regkeeper\n"), "\(unit)")
                #expect(text.contains("/usr/local/bin/regkeeper "), "\(unit)")
            }
        }
        let environment = try EnvironmentFile.read(installed("/etc/default/regkeeper"))
        #expect(environment["REGKEEPER_POLICY"] == "/usr/local/share/regkeeper/policies/default.yaml")
        #expect(manifest.contains(environment["REGKEEPER_POLICY"]!))

        for (shell, path) in [("bash", "bash-completion/completions/regkeeper"), ("zsh", "zsh/site-functions/_regkeeper"), ("fish", "fish/vendor_completions.d/regkeeper.fish")] {
            let script = try String(contentsOf: installed("/usr/local/share/\(path)"), encoding: .utf8)
            let generated = try ProcessRunner.runBlocking(Checkout.staticBinary.path, ["--generate-completion-script", shell]).stdoutText
            #expect(!script.hasPrefix("#!"), "\(shell): sourced, not run")
            #expect(script.trimmed == generated.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.hasPrefix("#!") }.joined(separator: "\n").trimmed, "\(shell)")
            #expect(script.contains("retain") && script.contains("metrics-file"), "\(shell)")
        }

        try Checkout.make("uninstall", variables)
        #expect(try filesBelow(destdir).isEmpty, "uninstall left files")
        #expect(!FileManager.default.fileExists(atPath: installed("/usr/local/share/regkeeper").path), "regkeeper's own directory is gone")
    }

    /// The environment file is the operator's once written: a second install keeps it, and
    /// uninstall removes it only as install wrote it.
    @Test func anEditedEnvironmentFileIsNeverOverwrittenNorRemoved() throws {
        try Checkout.requireBuilt()
        let destdir = try Checkout.temporaryDirectory("destdir")
        defer { try? FileManager.default.removeItem(at: destdir) }
        let variables = ["DESTDIR": destdir.path, "PREFIX": "/opt/rk", "SYSCONFDIR": "/opt/rk/etc"]
        let file = destdir.appendingPathComponent("opt/rk/etc/default/regkeeper")

        try Checkout.make("install-built", variables)
        try EnvironmentFile.rewrite(file, overrides: ["REGKEEPER_BACKUP_DIR": "/srv/backup"])
        let edited = try Data(contentsOf: file)
        let again = try Checkout.make("install-built", variables)
        #expect(again.contains("kept \(file.path)"))
        #expect(try Data(contentsOf: file) == edited)
        let uninstalled = try Checkout.make("uninstall", variables)
        #expect(uninstalled.contains("kept \(file.path): edited"))
        #expect(try filesBelow(destdir) == ["opt/rk/etc/default/regkeeper"])
        #expect(try EnvironmentFile.read(file)["REGKEEPER_BACKUP_DIR"] == "/srv/backup")
    }
}
