/// The one path policy shared by reader and writer, so the writer cannot produce an archive the
/// reader refuses.
enum TarPath {
    /// Drops empty and "." components; refuses absolute paths and any "..".
    /// Returns "." for a path that names the archive root.
    static func normalize(_ raw: String, offset: UInt64) throws(TarError) -> String {
        if raw.isEmpty { throw .emptyPath(offset: offset) }
        if raw.utf8.first == UInt8(ascii: "/") { throw .absolutePath(member: raw, offset: offset) }
        if raw.utf8.contains(0) { throw .malformedHeader(member: raw, offset: offset, reason: "NUL in path") }
        var kept: [Substring] = []
        for component in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if component == ".." { throw .parentDirectoryComponent(member: raw, offset: offset) }
            if component != "." { kept.append(component) }
        }
        return kept.isEmpty ? "." : kept.joined(separator: "/")
    }
}

extension String {
    /// The text with control characters (C0, DEL, C1) written as `\xNN` and backslashes
    /// doubled: member names come from archives, and printed raw an escape sequence in one
    /// could rewrite the operator's terminal or hide what the message says.
    public var escapedForTerminal: String {
        guard unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\\" }) else { return self }
        var escaped = ""
        for scalar in unicodeScalars {
            switch scalar.value {
            case 0x5C: escaped += "\\\\"
            case 0..<0x20, 0x7F...0x9F:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\x" + (hex.count < 2 ? "0" : "") + hex
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
