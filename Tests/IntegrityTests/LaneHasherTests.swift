import struct Crypto.SHA256
import struct Crypto.SHA512
import Foundation
@testable import Integrity
import RegistryModel
import RegistryStore
import StoreTestSupport
import Testing

/// The SHA-256 that verify runs on CPUs with SHA extensions: its own compression, up to three
/// blobs at once. It must give swift-crypto's digest for every length and every grouping, and
/// the same outcome `BlobHasher` gives for every blob, damaged, missing or of another algorithm.
@Suite(.enabled(if: SHA256Blocks.isAvailable, "the CPU lacks SHA extensions: verify hashes with swift-crypto"))
struct LaneHasherTests {
    private static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    private static func expected(_ bytes: [UInt8]) -> Digest {
        Digest(algorithm: .sha256, bytes: Array(SHA256.hash(data: bytes)))!
    }

    /// Every length around the padding's edges (55, 56, 63, 64 bytes in the last block), alone.
    @Test func oneMessageOfEveryLengthUpToFiveBlocks() {
        for count in 0...320 {
            let message = Self.bytes(count, seed: UInt64(count))
            var sha = SHA256Blocks()
            let digest = message.withUnsafeBytes { buffer in
                let compressed = sha.compress(buffer)
                return sha.finish(tail: UnsafeRawBufferPointer(rebasing: buffer[compressed...]))
            }
            #expect(digest == Self.expected(message), "length \(count)")
        }
    }

    /// Two messages compressed together, then each finished with a tail of its own: the
    /// interleaved rounds never mix the two states.
    @Test(arguments: [(1, 0, 0), (1, 55, 56), (3, 63, 1), (17, 0, 63), (4096, 7, 40)])
    func twoMessagesCompressedTogether(_ blocks: Int, _ firstTail: Int, _ secondTail: Int) {
        let first = Self.bytes(blocks * 64 + firstTail, seed: 1)
        let second = Self.bytes(blocks * 64 + secondTail, seed: 2)
        var firstSHA = SHA256Blocks(), secondSHA = SHA256Blocks()
        let digests = first.withUnsafeBytes { a in
            second.withUnsafeBytes { b in
                SHA256Blocks.compress(&firstSHA, a.baseAddress!, &secondSHA, b.baseAddress!, blocks: blocks)
                return (firstSHA.finish(tail: UnsafeRawBufferPointer(rebasing: a[(blocks * 64)...])),
                        secondSHA.finish(tail: UnsafeRawBufferPointer(rebasing: b[(blocks * 64)...])))
            }
        }
        #expect(digests.0 == Self.expected(first))
        #expect(digests.1 == Self.expected(second))
        #expect(digests.0 != digests.1)
    }

    /// Three messages compressed together, each finished with a tail of its own.
    @Test(arguments: [(1, 0, 0, 0), (1, 55, 56, 63), (3, 63, 1, 17), (17, 0, 63, 55), (4096, 7, 40, 0)])
    func threeMessagesCompressedTogether(_ blocks: Int, _ firstTail: Int, _ secondTail: Int, _ thirdTail: Int) {
        let messages = [firstTail, secondTail, thirdTail].enumerated().map { Self.bytes(blocks * 64 + $1, seed: UInt64(11 + $0)) }
        var first = SHA256Blocks(), second = SHA256Blocks(), third = SHA256Blocks()
        let digests = messages[0].withUnsafeBytes { a in
            messages[1].withUnsafeBytes { b in
                messages[2].withUnsafeBytes { c in
                    SHA256Blocks.compress(&first, a.baseAddress!, &second, b.baseAddress!, &third, c.baseAddress!, blocks: blocks)
                    return zip([first, second, third], [a, b, c]).map { $0.finish(tail: UnsafeRawBufferPointer(rebasing: $1[(blocks * 64)...])) }
                }
            }
        }
        #expect(digests == messages.map(Self.expected))
        #expect(Set(digests).count == 3)
    }

    /// Blobs of sizes that group unevenly (empty, under a block, around one read, several
    /// reads), some damaged, one missing, one SHA-512, handed over now and then with nothing
    /// to take (so that three, two and one lane compress): each outcome is `BlobHasher`'s, and
    /// each blob is reported once.
    @Test(arguments: [2, 3, 5])
    func everyBlobGetsBlobHashersOutcome(_ notYetEvery: Int) async throws {
        try await withTemporaryDirectory { directory in
            let storage = try LocalStorage(root: directory.path)
            let read = BlobHasher.chunkSize
            let sizes = [0, 1, 63, 64, 65, 4096, 8191, read - 1, read, read + 1, 3 * read + 17, 2 * read, 5 * read - 64]
            var blobs: [BlobStatus] = []
            for (index, size) in sizes.enumerated() {
                var content = Self.bytes(size, seed: UInt64(100 + index))
                let digest = Self.expected(content)
                if index % 4 == 1, !content.isEmpty { content[content.count / 2] ^= 0x40 }
                try storage.writeAtomically(Layout.blobData(digest), Data(content), modified: nil)
                blobs.append(BlobStatus(digest: digest, size: Int64(size), modified: Date()))
            }
            let long = Self.bytes(read + 5, seed: 7)
            let sha512 = Digest(algorithm: .sha512, bytes: Array(SHA512.hash(data: long)))!
            try storage.writeAtomically(Layout.blobData(sha512), Data(long), modified: nil)
            blobs.insert(BlobStatus(digest: sha512, size: Int64(long.count), modified: Date()), at: 3)
            let missing = Self.expected(Self.bytes(10, seed: 9))
            blobs.insert(BlobStatus(digest: missing, size: 10, modified: Date()), at: 6)

            var queue = blobs[...]
            var turn = 0
            var outcomes: [Digest: HashOutcome] = [:]
            var reported = 0
            var hashed = 0
            LaneHasher(storage: storage).run(
                take: { wait in
                    turn += 1
                    if !wait, turn % notYetEvery == 0 { return .notYet }
                    return queue.popFirst().map { .blob($0) } ?? .done
                },
                progress: { hashed += $0 },
                finished: { blob, outcome in
                    outcomes[blob.digest] = outcome
                    reported += 1
                })

            #expect(reported == blobs.count)
            let single = BlobHasher(storage: storage)
            for blob in blobs {
                #expect(outcomes[blob.digest] == single.hash(blob.digest, size: blob.size), "\(blob.size) bytes")
            }
            #expect(outcomes[missing] == .unreadable(.notFound(Layout.blobData(missing))))
            #expect(outcomes.values.filter { if case .mismatch = $0 { true } else { false } }.count == 3)
            // Every whole block went through the progress count once; tails are finished apart.
            let total = blobs.filter { $0.digest != missing }.reduce(0) { $0 + Int($1.size) }
            #expect(hashed <= total && hashed >= total - 64 * blobs.count)
        }
    }
}
