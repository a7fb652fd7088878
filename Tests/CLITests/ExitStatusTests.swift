import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// Every exit status `regkeeper --help` and regkeeper(1) document, one case each, through the
/// binary: the table in `ExitStatus` is what an operator's scripts can rely on.
@Suite struct ExitStatusTests {
    enum Case: String, CaseIterable, CustomStringConvertible {
        case success, couldNotRun, lockHeld, refused, partialFailure, damageFound, usage
        var description: String { rawValue }
    }

    static let old = Date().addingTimeInterval(-86_400)

    @Test(arguments: Case.allCases)
    func eachDocumentedStatus(_ situation: Case) throws {
        var orphan: Digest!
        var layer: Digest!
        let root = try GCCommandTests.store { builder in
            layer = try builder.image("app", tag: "v1", layers: [layerBytes("a")], modified: Self.old).layers[0]
            orphan = try builder.blob(layerBytes("orphan"), modified: Self.old)
        }
        let store = ["--root", root.path]
        let (expected, run): (Int32, GCCommandTests.Run)
        switch situation {
        case .success:
            (expected, run) = (0, try GCCommandTests.regkeeper(["gc", "--dry-run"] + store))
        case .couldNotRun:
            (expected, run) = (1, try GCCommandTests.regkeeper(["gc", "--root", root.appendingPathComponent("missing").path]))
        case .lockHeld:
            let lock = try StoreLock(stateDirectory: root.appendingPathComponent(".regkeeper").path, mode: .exclusive, command: "holder")
            (expected, run) = (2, try GCCommandTests.regkeeper(["gc"] + store))
            withExtendedLifetime(lock) {}
        case .refused:
            let repositories = root.appendingPathComponent("docker/registry/v2/repositories")
            let moved = root.appendingPathComponent("elsewhere")
            try FileManager.default.moveItem(at: repositories, to: moved)
            try FileManager.default.createSymbolicLink(at: repositories, withDestinationURL: moved)
            (expected, run) = (3, try GCCommandTests.regkeeper(["gc", "--settle", "0"] + store))
        case .partialFailure:
            // A trashed blob pushed again since: undo keeps it in the trash and says so.
            #expect(try GCCommandTests.regkeeper(["gc", "--trash", "--grace-period", "0", "--settle", "0"] + store).status == 0)
            try StoreBuilder(storage: LocalStorage(root: root.path)).blob(layerBytes("orphan"))
            (expected, run) = (4, try GCCommandTests.regkeeper(["gc", "undo", "--last"] + store))
        case .damageFound:
            let data = root.appendingPathComponent(Layout.blobData(layer).description)
            try Data("not the layer".utf8).write(to: data)
            (expected, run) = (5, try GCCommandTests.regkeeper(["verify"] + store))
        case .usage:
            (expected, run) = (64, try GCCommandTests.regkeeper(["gc", "--no-such-option"] + store))
        }
        #expect(run.status == expected, "\(situation): \(run.stderr)")
        if expected != 0 {
            #expect(run.stderr.split(separator: "\n").contains { $0.hasPrefix("regkeeper: ") }, "\(situation): \(run.stderr)")
            #expect(!run.stderr.contains("Error: "), "ArgumentParser's own wording never shows")
        }
        _ = orphan
    }
}
