/// Why an archive was refused or could not be written. Every case names the member (as written
/// in the archive, before normalization) and the offset of its header in the uncompressed tar
/// stream, so an operator can find it with `tar -tvf` or a hex dump.
public enum TarError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stream does not start with a tar header: wrong file, or not decompressed.
    case notATar(offset: UInt64)
    case badChecksum(member: String, offset: UInt64)
    /// The stream ended inside this member's header, extended header or content.
    case truncated(member: String, offset: UInt64)
    /// The stream ended at a member boundary without the end-of-archive zero block; an archive
    /// cut short exactly between members would otherwise look complete.
    case missingEndOfArchive(offset: UInt64)
    case absolutePath(member: String, offset: UInt64)
    case parentDirectoryComponent(member: String, offset: UInt64)
    case emptyPath(offset: UInt64)
    /// Links, devices and fifos have no place in a registry store; extracting them is how
    /// archives escape the target directory.
    case unsupportedMember(member: String, type: MemberType, offset: UInt64)
    case malformedHeader(member: String, offset: UInt64, reason: String)
    /// A writer's content callback ended before the declared size.
    case contentShorterThanDeclared(member: String, declared: UInt64, written: UInt64)
    /// A writer's content, handed over in pieces, went past the declared size.
    case contentLongerThanDeclared(member: String, declared: UInt64)

    /// Member types that are refused, named as `tar -tv` users know them.
    public enum MemberType: Sendable, Hashable, CustomStringConvertible {
        case symlink, hardlink, characterDevice, blockDevice, fifo
        /// GNU sparse files, old (`S`) or pax style: registries have none, and reading one as a
        /// regular file would restore the sparse map instead of the data.
        case sparse
        /// Any other type flag (multi-volume, vendor extensions).
        case other(typeflag: UInt8)

        public var description: String {
            switch self {
            case .symlink: "symbolic link"
            case .hardlink: "hard link"
            case .characterDevice: "character device"
            case .blockDevice: "block device"
            case .fifo: "fifo"
            case .sparse: "sparse file"
            case .other(let flag):
                flag >= 0x20 && flag < 0x7F ? "type '\(Character(Unicode.Scalar(flag)))'" : "type \(flag)"
            }
        }
    }

    public var description: String {
        switch self {
        case .notATar(let offset):
            "not a tar archive: no valid header at offset \(offset)"
        case .badChecksum(let member, let offset):
            "tar header checksum mismatch for '\(member.escapedForTerminal)' at offset \(offset)"
        case .truncated(let member, let offset):
            "tar archive truncated in '\(member.escapedForTerminal)' at offset \(offset)"
        case .missingEndOfArchive(let offset):
            "tar archive ends at offset \(offset) without an end-of-archive marker (truncated)"
        case .absolutePath(let member, let offset):
            "refusing absolute path '\(member.escapedForTerminal)' at offset \(offset)"
        case .parentDirectoryComponent(let member, let offset):
            "refusing path with '..' component '\(member.escapedForTerminal)' at offset \(offset)"
        case .emptyPath(let offset):
            "refusing member with an empty path at offset \(offset)"
        case .unsupportedMember(let member, let type, let offset):
            "refusing \(type) '\(member.escapedForTerminal)' at offset \(offset)"
        case .malformedHeader(let member, let offset, let reason):
            "malformed tar header for '\(member.escapedForTerminal)' at offset \(offset): \(reason)"
        case .contentShorterThanDeclared(let member, let declared, let written):
            "content of '\(member.escapedForTerminal)' ended after \(written) of \(declared) declared bytes"
        case .contentLongerThanDeclared(let member, let declared):
            "content of '\(member.escapedForTerminal)' went past its \(declared) declared bytes"
        }
    }
}
