import Foundation
import Yams

/// Where a store and its state live, found the way an operator would expect: `--root`, else
/// the registry's own `config.yml`, else the Debian package's config.
public struct StoreLocation: Sendable, Hashable {
    /// The registry's `storage.filesystem.rootdirectory`.
    public var root: String
    /// Lock, databases, trash and quarantine: beside `docker/`, never inside it.
    public var stateDirectory: String
    /// Set when the store is in a bucket; `root` then reads `s3://bucket/prefix`.
    public var s3: S3StoreConfig?

    /// Run history and scrub state.
    public var stateDatabasePath: String { stateDirectory + "/state.db" }

    /// Per-store settings (see `StoreSettings`).
    public var settingsPath: String { stateDirectory + "/regkeeper.yaml" }

    public static let defaultConfigPath = "/etc/docker/registry/config.yml"

    public init(root: String, stateDirectory: String? = nil) {
        self.root = root
        self.stateDirectory = stateDirectory ?? (root.hasSuffix("/") ? root : root + "/") + ".regkeeper"
    }

    /// A store in a bucket; the state directory stays on this host.
    public init(s3: S3StoreConfig, stateDirectory: String? = nil) {
        root = s3.url
        self.stateDirectory = stateDirectory ?? s3.defaultStateDirectory
        self.s3 = s3
    }

    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        case noStoreGiven(triedConfig: String)
        case configUnreadable(path: String, reason: String)
        case configWithoutFilesystemRoot(path: String)
        case rootMissing(path: String)
        case stateInsideRegistryTree(String)
        /// The root has no `docker/registry/v2`: the wrong directory, or a registry never pushed to.
        case notARegistryStore(root: String)
        /// A component of `docker/registry/v2` is a symbolic link, which regkeeper never follows.
        case registryTreeSymlink(path: String)
        case registryTreeNotADirectory(path: String)
        case registryTreeUnreadable(path: String, errno: Errno)

        public var description: String {
            switch self {
            case .noStoreGiven(let tried):
                "no store given: pass --root DIR (the registry's rootdirectory) or --config FILE (its config.yml); \(tried) does not exist"
            case .configUnreadable(let path, let reason): "cannot read registry config \(path): \(reason)"
            case .configWithoutFilesystemRoot(let path):
                "\(path) has no storage.filesystem.rootdirectory (only the filesystem driver is supported)"
            case .rootMissing(let path): "store root \(path) is not a directory"
            case .stateInsideRegistryTree(let path): "state directory \(path) must not be inside docker/registry/v2"
            case .notARegistryStore(let root): "not a registry store: \(root) has no docker/registry/v2"
            case .registryTreeSymlink(let path):
                "refusing \(path): it is a symbolic link, and regkeeper follows none in a store; give --root the directory that really holds docker/registry/v2"
            case .registryTreeNotADirectory(let path): "not a registry store: \(path) is not a directory"
            case .registryTreeUnreadable(let path, let errno): "cannot examine \(path): \(errno)"
            }
        }
    }

    /// Resolves the flags; `defaultConfig` is a parameter so tests need no /etc.
    public static func resolve(
        root: String?, config: String?, stateDirectory: String?, defaultConfig: String = defaultConfigPath
    ) throws(Error) -> StoreLocation {
        let resolvedRoot: String
        if let root {
            resolvedRoot = root
        } else if let config {
            resolvedRoot = try rootDirectory(fromConfig: config)
        } else if FileManager.default.fileExists(atPath: defaultConfig) {
            resolvedRoot = try rootDirectory(fromConfig: defaultConfig)
        } else {
            throw .noStoreGiven(triedConfig: defaultConfig)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolvedRoot, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .rootMissing(path: resolvedRoot)
        }
        let root = URL(fileURLWithPath: resolvedRoot).standardizedFileURL.path
        let location = StoreLocation(root: root, stateDirectory: stateDirectory.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        if location.stateDirectory.hasPrefix(root + "/docker/registry/v2") { throw .stateInsideRegistryTree(location.stateDirectory) }
        return location
    }

    /// Refuses a root without a registry tree before anything is locked or read: otherwise a
    /// mistyped --root gets a `.regkeeper` directory, and gc or verify reports an empty, healthy
    /// store. `lstat`, not `stat`: a linked tree is refused here by name rather than later by
    /// every access beneath it.
    public func checkRegistryTree() throws(Error) {
        var path = root.hasSuffix("/") ? String(root.dropLast()) : root
        for component in Layout.registryRoot.components {
            path += "/" + component
            var status = stat()
            guard lstat(path, &status) == 0 else {
                let failure = Errno.current
                if failure == .noSuchFile { throw .notARegistryStore(root: root) }
                throw .registryTreeUnreadable(path: path, errno: failure)
            }
            switch status.st_mode & S_IFMT {
            case S_IFDIR: continue
            case S_IFLNK: throw .registryTreeSymlink(path: path)
            default: throw .registryTreeNotADirectory(path: path)
            }
        }
    }

    static func rootDirectory(fromConfig path: String) throws(Error) -> String {
        let text: String
        let document: Any?
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
            document = try Yams.load(yaml: text)
        } catch {
            throw .configUnreadable(path: path, reason: "\(error)")
        }
        guard let top = document as? [String: Any], let storage = top["storage"] as? [String: Any],
              let filesystem = storage["filesystem"] as? [String: Any],
              let root = filesystem["rootdirectory"] as? String, !root.isEmpty
        else { throw .configWithoutFilesystemRoot(path: path) }
        return root
    }
}
