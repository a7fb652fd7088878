import ArgumentParser
import Foundation

/// `make demo`: the suite on a small real store. An executable of its own, because it drives
/// the test harness (a registry, an HTTP client, skopeo) that the shipped `regkeeper` must not
/// carry.
@main
struct RegkeeperDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regkeeper-demo",
        abstract: "Tour regkeeper on a small real store (needs docker-registry and skopeo).",
        discussion: "Starts docker-registry on loopback over a temporary store, pushes images through its API, runs the tools on it and pulls every kept tag back with skopeo. The temporary directory is removed afterwards unless --keep is given."
    )

    @Flag(help: "Keep the temporary store and print where it is.")
    var keep = false

    @Option(help: ArgumentHelp("The retention policy the demo applies to its CI repository.", valueName: "file"))
    var ciPolicy = "policies/ci-cache.yaml"

    func validate() throws {
        guard FileManager.default.fileExists(atPath: ciPolicy) else {
            throw ValidationError("\(ciPolicy) not found: run the demo from the project directory, or pass --ci-policy")
        }
    }

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-demo-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(at: directory) } }
        let clock = ContinuousClock()
        let start = clock.now
        var steps = 0
        do {
            try await DemoTour(workDirectory: directory, ciPolicy: ciPolicy).run { step in
                steps += 1
                let name = step.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                let time = Self.seconds(step.elapsed)
                print("\(steps < 10 ? " " : "")\(steps). \(name) \(String(repeating: " ", count: max(0, 7 - time.count)))\(time)  \(step.summary)")
            }
        } catch {
            FileHandle.standardError.write(Data("regkeeper-demo: demo failed: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print("all \(steps) steps passed in \(Self.seconds(clock.now - start))" + (keep ? "; store kept at \(directory.path)" : ""))
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return String(format: "%.2fs", Double(seconds) + Double(attoseconds) / 1e18)
    }
}
