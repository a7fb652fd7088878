import Foundation
import RegistryHarness
import Testing

/// `make install` into a scratch prefix (not a DESTDIR: there the units' paths are real, so
/// systemd can check that the binary they run exists), with the units it wrote.
struct ScratchInstall {
    var directory: URL
    var prefix: URL { directory.appendingPathComponent("usr") }
    var environmentFile: URL { directory.appendingPathComponent("etc/default/regkeeper") }
    var unitDirectory: URL { prefix.appendingPathComponent("lib/systemd/system") }

    static func make() throws -> ScratchInstall {
        try Checkout.requireBuilt()
        let install = ScratchInstall(directory: try Checkout.temporaryDirectory("prefix"))
        try Checkout.make("install-built", ["PREFIX": install.prefix.path, "SYSCONFDIR": install.directory.appendingPathComponent("etc").path])
        return install
    }

    func unit(_ name: String) throws -> SystemdUnit {
        try SystemdUnit(contentsOf: unitDirectory.appendingPathComponent(name))
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

@Suite struct UnitFileTests {
    static var services: [String] { MakeInstallTests.units.filter { $0.hasSuffix(".service") } }

    @Test func everyUnitPassesSystemdAnalyzeVerify() throws {
        let install = try ScratchInstall.make()
        defer { install.remove() }
        let units = MakeInstallTests.units.map { install.unitDirectory.appendingPathComponent($0).path }
        // verify also runs `man` on each Documentation= page: those of this prefix.
        let manpath = "MANPATH=\(install.prefix.path)/share/man:/usr/share/man"
        let verified = try ProcessRunner.runBlocking("/usr/bin/env", [manpath, "systemd-analyze", "verify"] + units, allowFailure: true)
        #expect(verified.status == 0 && verified.stdoutText.isEmpty && verified.stderrText.isEmpty, "\(verified.stdoutText)\(verified.stderrText)")

        // The same check fails on a unit whose binary is not where it says, or with a typo
        // (systemd-analyze looks for a unit's first command only: verify's is regkeeper itself).
        let broken = install.directory.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        let text = try String(contentsOf: install.unitDirectory.appendingPathComponent("regkeeper-verify.service"), encoding: .utf8)
        try text.replacingOccurrences(of: "/usr/bin/regkeeper", with: "/usr/bin/regkeepr")
            .replacingOccurrences(of: "PrivateTmp=", with: "PrivateTemp=")
            .write(to: broken.appendingPathComponent("regkeeper-verify.service"), atomically: true, encoding: .utf8)
        let refused = try ProcessRunner.runBlocking("/usr/bin/env", [manpath, "systemd-analyze", "verify", broken.appendingPathComponent("regkeeper-verify.service").path], allowFailure: true)
        #expect(refused.status != 0 && refused.stderrText.contains("regkeepr") && refused.stderrText.contains("PrivateTemp"), "\(refused.stderrText)")
    }

    /// Settings live in one file: every variable a command reads is defined there, and every
    /// service reads it.
    @Test func everyServiceTakesItsSettingsFromTheEnvironmentFile() throws {
        let install = try ScratchInstall.make()
        defer { install.remove() }
        let defined = try EnvironmentFile.read(install.environmentFile)
        var used: Set<String> = []
        for name in Self.services {
            let unit = try install.unit(name)
            #expect(unit.values("EnvironmentFile") == [install.environmentFile.path], "\(name)")
            let referenced = try unit.variablesReferenced()
            #expect(referenced.isSubset(of: Set(defined.keys)), "\(name) reads \(referenced.subtracting(defined.keys).sorted()), which the environment file does not set")
            used.formUnion(referenced)
            #expect(try unit.commands("ExecStart", environment: defined).allSatisfy { $0.joined(separator: " ").contains(install.prefix.path + "/bin/regkeeper ") }, "\(name)")
        }
        #expect(used == Set(defined.keys), "the environment file sets \(Set(defined.keys).subtracting(used).sorted()), which no unit reads")
    }

    @Test func servicesAreHardenedAndTimersInstallable() throws {
        let install = try ScratchInstall.make()
        defer { install.remove() }
        let defaults = try EnvironmentFile.read(install.environmentFile)
        for name in Self.services {
            let unit = try install.unit(name)
            for (key, value) in [("Type", "oneshot"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"), ("ProtectHome", "yes")] {
                #expect(unit.values(key) == [value], "\(name): \(key)")
            }
            // The default store, backup and metrics paths are the writable ones.
            let writable = unit.values("ReadWritePaths").flatMap { $0.split(separator: " ").map { String($0.drop { $0 == "-" }) } }
            for path in ["/var/lib/docker-registry", defaults["REGKEEPER_BACKUP_DIR"]!, defaults["REGKEEPER_METRICS_DIR"]!] {
                #expect(writable.contains(path), "\(name) cannot write \(path)")
            }
            // systemd's own score of the sandbox: 3.6 of 10 ("OK"); 4.0 and above fails.
            let path = install.unitDirectory.appendingPathComponent(name).path
            let security = try ProcessRunner.runBlocking("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--threshold=40", path], allowFailure: true)
            #expect(security.status == 0, "\(name): \(security.stdoutText.split(separator: "\n").last ?? "")")
            let timer = try install.unit(name.replacingOccurrences(of: ".service", with: ".timer"))
            #expect(timer.values("WantedBy", in: "Install") == ["timers.target"], "\(name)")
            #expect(timer.values("Persistent", in: "Timer") == ["true"], "\(name)")
            #expect(timer.values("OnCalendar", in: "Timer").count == 1, "\(name)")
        }
        let verify = try install.unit("regkeeper-verify.service")
        #expect(verify.values("Nice") == ["10"] && verify.values("IOSchedulingClass") == ["idle"])
    }
}
