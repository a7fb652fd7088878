import Foundation
import RegistryHarness
import Testing

@Suite struct ProcessRunnerTests {
    @Test func capturesStdoutAndStderr() throws {
        let output = try ProcessRunner.runBlocking("sh", ["-c", "echo out; echo err >&2"])
        #expect(output.status == 0)
        #expect(output.stdoutText == "out\n")
        #expect(output.stderrText == "err\n")
    }

    @Test func nonZeroExitCarriesStatusAndStderr() async throws {
        do {
            _ = try await ProcessRunner.run("sh", ["-c", "echo broken >&2; exit 3"])
            Issue.record("expected a failure")
        } catch let ProcessError.nonZeroExit(command, status, stderr) {
            #expect(command == ["sh", "-c", "echo broken >&2; exit 3"])
            #expect(status == 3)
            #expect(stderr == "broken\n")
        }
    }

    @Test func allowFailureReturnsTheOutput() throws {
        let output = try ProcessRunner.runBlocking("sh", ["-c", "exit 4"], allowFailure: true)
        #expect(output.status == 4)
    }

    /// The child must see SIGTERM itself, not only the SIGKILL that follows 2 s later: a child
    /// spawned from a Dispatch thread would otherwise inherit a mask that blocks it.
    @Test func timeoutTerminatesTheChild() async throws {
        do {
            _ = try await ProcessRunner.run("sh", ["-c", "trap 'echo terminated >&2; exit 9' TERM; while :; do sleep 0.05; done"], timeout: 0.3)
            Issue.record("expected a timeout")
        } catch let ProcessError.timedOut(_, seconds, stderr) {
            #expect(seconds == 0.3)
            // Only the TERM handler prints this: SIGKILL would leave stderr empty.
            #expect(stderr == "terminated\n")
        }
    }

    @Test func missingExecutableIsALaunchFailure() {
        #expect(throws: ProcessError.self) {
            _ = try ProcessRunner.runBlocking("/nonexistent/tool", [])
        }
    }
}
