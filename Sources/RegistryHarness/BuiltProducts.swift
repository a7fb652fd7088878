import Foundation

/// The executables SwiftPM built beside the running test bundle, whatever the configuration
/// (`-c release`) or scratch path: the one way tests find the binaries they run.
public enum BuiltProducts {
    public static let directory: URL = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("regkeeper").path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url
    }()

    public static func executable(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }
}
