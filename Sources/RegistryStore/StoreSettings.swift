import Foundation
import RegistryModel
import Yams

/// Settings an operator writes once per store instead of repeating flags in every timer unit:
/// `<state-dir>/regkeeper.yaml`. A missing file means defaults; flags always win.
///
/// ```yaml
/// trash:
///   keepFor: 72h   # every gc moves what it sweeps into the trash and purges older trash
/// ```
public struct StoreSettings: Sendable, Hashable {
    public struct Trash: Sendable, Hashable {
        public var keepFor: TimeSpan
    }

    /// Trash kept by runs without `--trash-keep` or a `trash` setting.
    public static let defaultTrashKeepFor = TimeSpan(seconds: 72 * 3600)

    /// Present when the file has a `trash` section: gc then trashes by default.
    public var trash: Trash?

    public init(trash: Trash? = nil) { self.trash = trash }

    /// What a gc run does with what it sweeps: the command line's choice, else the file's.
    public func trashChoice(flag: Bool?, keepFor: TimeSpan?) -> (enabled: Bool, keepFor: TimeSpan) {
        (flag ?? (trash != nil), keepFor ?? trash?.keepFor ?? Self.defaultTrashKeepFor)
    }

    public static func load(_ location: StoreLocation) throws(SettingsError) -> StoreSettings {
        try load(file: location.settingsPath)
    }

    public static func load(file: String) throws(SettingsError) -> StoreSettings {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch CocoaError.fileReadNoSuchFile {
            return StoreSettings()
        } catch {
            throw .unreadable(file: file, reason: "\(error.localizedDescription)")
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String) throws(SettingsError) -> StoreSettings {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            if case .scanner(_, let problem, let mark, _) = error { throw .invalid(file: file, line: mark.line, reason: "not valid YAML: \(problem)") }
            if case .parser(_, let problem, let mark, _) = error { throw .invalid(file: file, line: mark.line, reason: "not valid YAML: \(problem)") }
            throw .invalid(file: file, line: 0, reason: "not valid YAML: \(error)")
        } catch {
            throw .invalid(file: file, line: 0, reason: "not valid YAML: \(error)")
        }
        guard let root else { return StoreSettings() }
        let top = try mapping(root, "the file", file)
        var settings = StoreSettings()
        for (key, value) in top {
            switch key {
            case "trash":
                var keepFor = defaultTrashKeepFor
                for (field, node) in try mapping(value, "trash", file) {
                    guard field == "keepFor" else { throw .invalid(file: file, line: line(node), reason: "unknown key trash.\(field) (known: keepFor)") }
                    guard let text = node.scalar?.string, let span = TimeSpan(text), span.seconds > 0 else {
                        throw .invalid(file: file, line: line(node), reason: "trash.keepFor must be a duration like 72h or 7d")
                    }
                    keepFor = span
                }
                settings.trash = Trash(keepFor: keepFor)
            default:
                throw .invalid(file: file, line: line(value), reason: "unknown key '\(key)' (known: trash)")
            }
        }
        return settings
    }

    /// A mapping's entries with string keys, refusing duplicates (YAML allows them; an operator
    /// who wrote a key twice meant one of them).
    private static func mapping(_ node: Node, _ what: String, _ file: String) throws(SettingsError) -> [(String, Node)] {
        guard let mapping = node.mapping else { throw .invalid(file: file, line: line(node), reason: "\(what) must be a mapping") }
        var seen: Set<String> = []
        var entries: [(String, Node)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw .invalid(file: file, line: line(key), reason: "keys must be plain names") }
            guard seen.insert(name).inserted else { throw .invalid(file: file, line: line(key), reason: "'\(name)' is given twice") }
            entries.append((name, value))
        }
        return entries
    }

    private static func line(_ node: Node) -> Int { node.mark?.line ?? 0 }
}

public enum SettingsError: Error, Hashable, Sendable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case invalid(file: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "cannot read settings \(file): \(reason)"
        case .invalid(let file, let line, let reason): "\(file):\(line): \(reason)"
        }
    }
}
