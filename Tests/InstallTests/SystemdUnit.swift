import Foundation
import RegistryHarness

/// An installed unit file read the way systemd reads one, so that a test runs a service's
/// `ExecStart=` lines as systemd would, without systemd running (this container has none as
/// PID 1). Follows systemd.syntax(7), systemd.service(5) "COMMAND LINES" and systemd.exec(5)
/// for the parts the units use: lines ending in a backslash continue, words are split
/// honouring single and double quotes and backslash escapes, `%%` is a `%`, and at start
/// `$$` is a `$`, `${NAME}` is the variable's value inside its word, and a word that is only
/// `$NAME` becomes its value split at whitespace (zero or more words).
struct SystemdUnit {
    var path: URL
    /// Every `Key=value` of every section, in order, continuation lines joined.
    var settings: [(section: String, key: String, value: String)]

    init(contentsOf path: URL) throws {
        self.path = path
        var settings: [(String, String, String)] = []
        var section = ""
        var pending = ""
        for rawLine in try String(contentsOf: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(rawLine)
            if pending.isEmpty, line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line + " "
                continue
            }
            line = (pending + line).trimmed
            pending = ""
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                section = String(line.dropFirst().dropLast())
            } else if let equals = line.firstIndex(of: "=") {
                settings.append((section, line[..<equals].trimmed, line[line.index(after: equals)...].trimmed))
            }
        }
        self.settings = settings
    }

    func values(_ key: String, in section: String = "Service") -> [String] {
        settings.filter { $0.section == section && $0.key == key }.map(\.value)
    }

    /// The environment the unit's `EnvironmentFile=` gives its commands.
    func environment() throws -> [String: String] {
        var environment: [String: String] = [:]
        for file in values("EnvironmentFile") {
            environment.merge(try EnvironmentFile.read(URL(fileURLWithPath: file.hasPrefix("-") ? String(file.dropFirst()) : file))) { $1 }
        }
        return environment
    }

    /// The argument vectors of a command setting (`ExecStart`), expanded in `environment`.
    func commands(_ key: String, environment: [String: String]) throws -> [[String]] {
        try values(key).map { line in
            var words = try Self.split(line).flatMap { Self.expand($0, in: environment) }
            // Prefixes such as `-` (ignore failure) and `+` (full privileges) come first.
            while let first = words.first?.first, "-+!@:".contains(first) { words[0].removeFirst() }
            return words
        }
    }

    /// Every variable name a command line of this unit reads, braced or not, `$$` excluded.
    func variablesReferenced() throws -> Set<String> {
        var names: Set<String> = []
        for key in ["ExecStartPre", "ExecStart", "ExecStartPost"] {
            for line in values(key) {
                for word in try Self.split(line) {
                    // `$$NAME` is the shell's to expand: from the same environment file.
                    let text = word.replacingOccurrences(of: "$$", with: "$")
                    let pattern = /\$\{?([A-Za-z_][A-Za-z0-9_]*)/
                    names.formUnion(text.matches(of: pattern).map { String($0.output.1) })
                }
            }
        }
        return names
    }

    struct SyntaxError: Error, CustomStringConvertible {
        var line: String
        var description: String { "unbalanced quotes in: \(line)" }
    }

    /// systemd's word splitting, then `%%` (the only specifier these units use).
    static func split(_ line: String) throws -> [String] {
        var words: [String] = []
        var word: String?
        var quote: Character?
        var characters = line.makeIterator()
        while let character = characters.next() {
            if let open = quote {
                if character == open {
                    quote = nil
                } else if character == "\\", open == "\"", let next = characters.next() {
                    word!.append(next)
                } else {
                    word!.append(character)
                }
            } else if character == "'" || character == "\"" {
                quote = character
                word = word ?? ""
            } else if character == " " || character == "\t" {
                if let finished = word { words.append(finished) }
                word = nil
            } else if character == "\\", let next = characters.next() {
                word = (word ?? "") + String(next)
            } else {
                word = (word ?? "") + String(character)
            }
        }
        guard quote == nil else { throw SyntaxError(line: line) }
        if let word { words.append(word) }
        return words.map { $0.replacingOccurrences(of: "%%", with: "%") }
    }

    /// Variable expansion at start: a word that is just `$NAME` splits, `${NAME}` does not.
    static func expand(_ word: String, in environment: [String: String]) -> [String] {
        if let whole = word.wholeMatch(of: /\$([A-Za-z_][A-Za-z0-9_]*)/) {
            return (environment[String(whole.output.1)] ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        }
        var result = ""
        var rest = Substring(word)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            rest = rest[rest.index(after: dollar)...]
            if rest.first == "$" {
                result += "$"
                rest = rest.dropFirst()
            } else if rest.first == "{", let close = rest.firstIndex(of: "}") {
                result += environment[String(rest[rest.index(after: rest.startIndex)..<close])] ?? ""
                rest = rest[rest.index(after: close)...]
            } else {
                result += "$"
            }
        }
        return [result + rest]
    }
}

/// An `EnvironmentFile=`: `KEY=value` lines, `#` comments, values optionally quoted.
enum EnvironmentFile {
    static func read(_ path: URL) throws -> [String: String] {
        var environment: [String: String] = [:]
        for line in try String(contentsOf: path, encoding: .utf8).split(separator: "\n") {
            let text = line.trimmed
            guard !text.isEmpty, !text.hasPrefix("#"), let equals = text.firstIndex(of: "=") else { continue }
            var value = text[text.index(after: equals)...].trimmed
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            environment[text[..<equals].trimmed] = value
        }
        return environment
    }

    /// The file with `overrides` replacing the values of keys it has (and no others).
    static func rewrite(_ path: URL, overrides: [String: String]) throws {
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "="), let value = overrides[String(line[..<equals])] else { return String(line) }
            return "\(line[..<equals])=\"\(value)\""
        }
        try lines.joined(separator: "\n").write(to: path, atomically: true, encoding: .utf8)
    }
}

/// A service's start as systemd runs it: each `ExecStart=` in order, in the environment file's
/// environment with systemd's default PATH and nothing else, stopping at the first failure.
struct ServiceRun {
    var unit: SystemdUnit
    var environment: [String: String]

    init(unit: SystemdUnit) throws {
        self.unit = unit
        environment = try unit.environment()
        environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    }

    struct Step {
        var command: [String]
        var output: ProcessOutput
    }

    /// The steps that ran; the last one failed if any did.
    func start(timeout: Double = 300) throws -> [Step] {
        var steps: [Step] = []
        for command in try unit.commands("ExecStart", environment: environment) {
            let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let output = try ProcessRunner.runBlocking("/usr/bin/env", ["-i"] + assignments + command, timeout: timeout, allowFailure: true)
            steps.append(Step(command: command, output: output))
            if output.status != 0 { break }
        }
        return steps
    }
}
