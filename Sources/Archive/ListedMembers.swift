import Foundation
import RegistryModel
import RegistryStore

/// The members an index lists, as a reader checks the stream against them: per member its
/// size (checked before its content is written), whether it is blob data, and 64-bit
/// fingerprints of its path (checked from the header) and digest (checked once its content
/// is hashed): 25 bytes a member instead of its path and digest. Fingerprints are of this
/// process (the hasher is seeded per process) and never stored.
public struct ListedMembers: Sendable {
    private var sizes: [UInt64] = []
    private var paths: [Int] = []
    private var digests: [Int] = []
    private var blobData: [Bool] = []

    public init() {}

    public var count: Int { sizes.count }
    public func size(at position: Int) -> UInt64 { sizes[position] }
    public func isBlobData(at position: Int) -> Bool { blobData[position] }
    func lists(path: String, at position: Int) -> Bool { paths[position] == path.hashValue }
    func lists(digest: Digest, at position: Int) -> Bool { digests[position] == digest.hashValue }

    mutating func append(_ member: IndexedMember) {
        sizes.append(member.size)
        paths.append(member.path.hashValue)
        digests.append(member.digest.hashValue)
        blobData.append(member.path.hasPrefix(Self.blobsPrefix))
    }

    static let blobsPrefix = Layout.registryRoot.description + "/blobs/"
}
