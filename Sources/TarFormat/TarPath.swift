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
