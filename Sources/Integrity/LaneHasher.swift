import CSHA256
import RegistryModel
import RegistryStore

/// SHA-256 of one message through `CSHA256`'s compression: whole blocks as they come, then
/// the tail with its padding. Two or three of them advance together through the static
/// `compress` functions.
struct SHA256Blocks {
    /// Whether this CPU has the SHA extensions the compression needs.
    static let isAvailable = csha256_available() != 0

    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
    /// Bytes compressed so far.
    private(set) var length: UInt64 = 0

    /// Compresses the whole blocks at the start of `data`; returns how many bytes that was.
    mutating func compress(_ data: UnsafeRawBufferPointer) -> Int {
        let blocks = data.count / 64
        guard blocks > 0 else { return 0 }
        withWords { csha256_blocks($0, data.baseAddress!.assumingMemoryBound(to: UInt8.self), blocks) }
        length += UInt64(blocks * 64)
        return blocks * 64
    }

    /// Compresses `blocks` blocks of each of two messages at once: about 1.5 times the speed
    /// of compressing them one after the other on a core with SHA extensions.
    static func compress(_ first: inout SHA256Blocks, _ firstData: UnsafeRawPointer,
                         _ second: inout SHA256Blocks, _ secondData: UnsafeRawPointer, blocks: Int) {
        first.withWords { firstWords in
            second.withWords { secondWords in
                csha256_blocks_x2(firstWords, firstData.assumingMemoryBound(to: UInt8.self),
                                  secondWords, secondData.assumingMemoryBound(to: UInt8.self), blocks)
            }
        }
        first.length += UInt64(blocks * 64)
        second.length += UInt64(blocks * 64)
    }

    /// The same for three messages: about 1.15 times the speed of two.
    static func compress(_ first: inout SHA256Blocks, _ firstData: UnsafeRawPointer,
                         _ second: inout SHA256Blocks, _ secondData: UnsafeRawPointer,
                         _ third: inout SHA256Blocks, _ thirdData: UnsafeRawPointer, blocks: Int) {
        first.withWords { firstWords in
            second.withWords { secondWords in
                third.withWords { thirdWords in
                    csha256_blocks_x3(firstWords, firstData.assumingMemoryBound(to: UInt8.self),
                                      secondWords, secondData.assumingMemoryBound(to: UInt8.self),
                                      thirdWords, thirdData.assumingMemoryBound(to: UInt8.self), blocks)
                }
            }
        }
        first.length += UInt64(blocks * 64)
        second.length += UInt64(blocks * 64)
        third.length += UInt64(blocks * 64)
    }

    /// The digest of everything compressed followed by `tail` (shorter than a block).
    func finish(tail: UnsafeRawBufferPointer) -> Digest {
        precondition(tail.count < 64)
        var last = self
        let bits = (length + UInt64(tail.count)) &* 8
        var padded = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                      UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &padded) { block in
            block.copyMemory(from: tail)
            block[tail.count] = 0x80
            let blocks = tail.count < 56 ? 1 : 2
            block.storeBytes(of: bits.bigEndian, toByteOffset: blocks * 64 - 8, as: UInt64.self)
            last.withWords { csha256_blocks($0, block.baseAddress!.assumingMemoryBound(to: UInt8.self), blocks) }
            return withUnsafeBytes(of: last.state) { words in
                let bytes = words.bindMemory(to: UInt32.self).flatMap { word in withUnsafeBytes(of: word.bigEndian, Array.init) }
                return Digest(algorithm: .sha256, bytes: bytes)!
            }
        }
    }

    private mutating func withWords<T>(_ body: (UnsafeMutablePointer<UInt32>) -> T) -> T {
        withUnsafeMutableBytes(of: &state) { body($0.baseAddress!.assumingMemoryBound(to: UInt32.self)) }
    }
}

/// Hashes SHA-256 blobs three at a time on one thread, their blocks compressed together
/// (`SHA256Blocks.compress`): SHA256RNDS2's latency leaves the unit idle between one
/// message's rounds, and other messages' rounds fill it: 3.5 GB/s a core for three, 3.0 for
/// two, 2.0 for one message (what `openssl speed` gets; `regkeeper-bench verify` prints
/// both).
///
/// Each lane reads its blob into a buffer of its own, reused from blob to blob; when one lane
/// has drained its buffer it reads on while the others keep what they have, so blobs of any
/// sizes go together. While fewer lanes hold a blob (the last blobs of a run), the others
/// are compressed two at a time or alone. A blob of another algorithm is hashed by
/// `BlobHasher` on its own.
final class LaneHasher {
    enum Take {
        case blob(BlobStatus)
        /// Nothing to take now; ask again later.
        case notYet
        /// Nothing more will come.
        case done
    }

    private final class Lane {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobHasher.chunkSize, alignment: 4096)
        var blob: BlobStatus?
        var file: (any StoreReadableFile)?
        var sha = SHA256Blocks()
        /// Bytes read and not yet compressed: `buffer[start..<end]`.
        var start = 0
        var end = 0
        var atEnd = false
        var available: Int { end - start }
        var unhashed: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[start..<end]) }
        var next: UnsafeRawPointer { UnsafeRawPointer(buffer.baseAddress! + start) }

        deinit { buffer.deallocate() }

        func begin(_ blob: BlobStatus, _ file: any StoreReadableFile) {
            self.blob = blob
            self.file = file
            sha = SHA256Blocks()
            (start, end, atEnd) = (0, 0, false)
        }

        func clear() {
            blob = nil
            file = nil
        }

        /// Reads on once fewer than a block's bytes are left, moving them to the front.
        func refill() throws(StorageError) {
            guard available < 64, !atEnd, let file else { return }
            if start > 0 {
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: available)
                (start, end) = (0, available)
            }
            let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
            if count == 0 { atEnd = true } else { end += count }
        }
    }

    /// Three: a fourth message's state and schedule no longer fit the sixteen registers the
    /// SHA instructions can name (see `csha256_blocks_x3`). Three buffers of a read each stay
    /// within a Zen 4 core's 1 MiB L2, where the read leaves the bytes for the compression.
    static let laneCount = 3

    private let storage: any StoreStorage
    private let single: BlobHasher
    private let lanes = (0..<LaneHasher.laneCount).map { _ in Lane() }

    init(storage: any StoreStorage) {
        self.storage = storage
        single = BlobHasher(storage: storage)
    }

    /// Hashes every blob `take` hands over until it says `.done`, calling `finished` with each
    /// outcome. `take(wait)` may block for blobs only when `wait` is true, which it is when no
    /// lane holds a blob. `progress` gets the bytes of every compression step.
    func run(take: (_ wait: Bool) -> Take, progress: (Int) -> Void, finished: (BlobStatus, HashOutcome) -> Void) {
        var taking = true
        /// Gives an idle lane the next blob it can read, if one comes.
        func fill(_ lane: Lane) {
            while taking, lane.blob == nil {
                switch take(lanes.allSatisfy { $0.blob == nil }) {
                case .done:
                    taking = false
                case .notYet:
                    return
                case .blob(let blob):
                    guard blob.digest.algorithm == .sha256 else {
                        finished(blob, single.hash(blob.digest, size: blob.size, progress: progress))
                        continue
                    }
                    do throws(StorageError) {
                        lane.begin(blob, try storage.openForReading(Layout.blobData(blob.digest)))
                    } catch {
                        finished(blob, .unreadable(error))
                    }
                }
            }
        }
        /// Reads on in a lane that has used up its buffer; reports its blob once it has
        /// ended. True while the lane holds bytes to compress.
        func advance(_ lane: Lane) -> Bool {
            guard lane.blob != nil else { return false }
            do throws(StorageError) {
                try lane.refill()
            } catch {
                finished(lane.blob!, .unreadable(error))
                lane.clear()
                return false
            }
            guard lane.atEnd, lane.available < 64 else { return true }
            finished(lane.blob!, Self.outcome(lane))
            lane.clear()
            return false
        }
        while true {
            for lane in lanes { fill(lane) }
            if !taking, lanes.allSatisfy({ $0.blob == nil }) { return }
            // A lane whose blob has just ended takes the next one before the others go on
            // without it: fewer lanes only while no other blob is to be had.
            var ended = false
            var reading: [Lane] = []
            for lane in lanes {
                let had = lane.blob != nil
                if advance(lane) { reading.append(lane) } else if had { ended = true }
            }
            if ended && taking { continue }
            guard let fewest = reading.map(\.available).min() else { continue }
            let blocks = fewest / 64
            switch reading.count {
            case 3:
                SHA256Blocks.compress(&reading[0].sha, reading[0].next, &reading[1].sha, reading[1].next,
                                      &reading[2].sha, reading[2].next, blocks: blocks)
            case 2:
                SHA256Blocks.compress(&reading[0].sha, reading[0].next, &reading[1].sha, reading[1].next, blocks: blocks)
            default:
                _ = reading[0].sha.compress(UnsafeRawBufferPointer(start: reading[0].next, count: blocks * 64))
            }
            for lane in reading { lane.start += blocks * 64 }
            progress(reading.count * blocks * 64)
        }
    }

    private static func outcome(_ lane: Lane) -> HashOutcome {
        let expected = lane.blob!.digest
        let bytes = Int64(lane.sha.length) + Int64(lane.available)
        let actual = lane.sha.finish(tail: lane.unhashed)
        return actual == expected ? .matches(bytes: bytes) : .mismatch(actual: actual, bytes: bytes)
    }
}
