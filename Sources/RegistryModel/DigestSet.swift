/// An immutable set of digests stored as a sorted array of 32-byte keys.
///
/// gc marks every blob of the store; a `Set<Digest>` of 200,000 entries takes ~38 MiB with its
/// load factor, this takes 6 MiB. sha512 digests, rare in practice, go to an ordinary set.
public struct DigestSet: Sendable {
    fileprivate struct Key: Comparable {
        var a, b, c, d: UInt64

        init(_ digest: Digest) {
            (a, b, c, d) = digest.leadingWords
        }

        static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.a, lhs.b, lhs.c, lhs.d) < (rhs.a, rhs.b, rhs.c, rhs.d)
        }
    }

    private var sha256: [Key]
    private var others: Set<Digest>

    /// Collects digests (repeats allowed) at 32 bytes each, then sorts once.
    public struct Builder: Sendable {
        fileprivate var keys: [Key] = []
        fileprivate var others: Set<Digest> = []

        public init() {}

        public mutating func insert(contentsOf digests: some Sequence<Digest>) {
            for digest in digests {
                if digest.algorithm == .sha256 {
                    keys.append(Key(digest))
                } else {
                    others.insert(digest)
                }
            }
        }

        public consuming func build() -> DigestSet { DigestSet(keys: keys, others: others) }
    }

    public init(_ digests: some Sequence<Digest>) {
        var builder = Builder()
        builder.insert(contentsOf: digests)
        self = builder.build()
    }

    private init(keys: [Key], others: Set<Digest>) {
        var keys = keys
        keys.sort()
        var unique = 0
        for index in keys.indices where index == 0 || keys[index] != keys[unique - 1] {
            keys[unique] = keys[index]
            unique += 1
        }
        keys.removeLast(keys.count - unique)
        self.sha256 = keys
        self.others = others
    }

    public var count: Int { sha256.count + others.count }

    public func contains(_ digest: Digest) -> Bool {
        guard digest.algorithm == .sha256 else { return others.contains(digest) }
        let key = Key(digest)
        var low = 0
        var high = sha256.count
        while low < high {
            let middle = (low + high) / 2
            if sha256[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low < sha256.count && sha256[low] == key
    }
}
