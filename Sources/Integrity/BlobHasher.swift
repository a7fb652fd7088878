import protocol Crypto.HashFunction
import struct Crypto.SHA256
import struct Crypto.SHA512
import Foundation
import RegistryModel
import RegistryStore

/// What rehashing one blob found.
public enum HashOutcome: Hashable, Sendable {
    case matches(bytes: Int64)
    case mismatch(actual: Digest, bytes: Int64)
    case unreadable(StorageError)
}

/// Streams a blob through swift-crypto's SHA-256 or SHA-512 (BoringSSL, which uses the CPU's
/// SHA extensions) and compares with the digest in its path. Never loads a whole file. verify
/// hashes SHA-256 blobs three at a time (`LaneHasher`) where the CPU has SHA extensions, and
/// comes here for SHA-512 blobs and on CPUs without them.
public struct BlobHasher: Sendable {
    public let storage: any StoreStorage

    /// A quarter of this machine kind's 1 MiB L2: the chunk `read` copies out of the page cache
    /// is still in L2 when SHA-256 reads it. Measured with `regkeeper-bench verify`: 88–90% of
    /// the hardware limit against 87–89% with 1 MiB chunks; the copy is ~7% of the hashing
    /// run's cycles either way. Hashing through `mmap` was not faster and turns an I/O error
    /// into SIGBUS, so reads stay. The storage's per-file buffer costs what a reused one does
    /// (malloc hands the same block back).
    public static let chunkSize = 256 << 10

    public init(storage: any StoreStorage) { self.storage = storage }

    /// - Parameters:
    ///   - size: the size the scan saw. A blob of at most one chunk (configs, manifests and
    ///     small layers, thousands of them) is read into a buffer of its own size: the 256 KiB
    ///     buffer `readChunks` allocates per file is, from glibc, an mmap, page faults and an
    ///     munmap each, which cost more than reading a few KiB. Its content is still read to
    ///     the end, whatever its size has become.
    ///   - progress: called with the size of every chunk hashed, from this thread.
    public func hash(_ digest: Digest, size: Int64, progress: (Int) -> Void = { _ in }) -> HashOutcome {
        switch digest.algorithm {
        case .sha256: hash(digest, size: size, SHA256.self, progress)
        case .sha512: hash(digest, size: size, SHA512.self, progress)
        }
    }

    private func hash<H: HashFunction>(_ expected: Digest, size: Int64, _: H.Type, _ progress: (Int) -> Void) -> HashOutcome {
        var hasher = H()
        var count: Int64 = 0
        let path = Layout.blobData(expected)
        func update(_ chunk: UnsafeRawBufferPointer) {
            hasher.update(bufferPointer: chunk)
            count += Int64(chunk.count)
            progress(chunk.count)
        }
        do {
            if size < Self.chunkSize {
                // One byte more than expected, so that the second read sees the end.
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(max(size, 0)) + 1, alignment: 16)
                defer { buffer.deallocate() }
                let file = try storage.openForReading(path)
                while case let filled = try file.read(into: buffer), filled > 0 {
                    update(UnsafeRawBufferPointer(rebasing: buffer[..<filled]))
                }
            } else {
                try storage.readChunks(path, chunkSize: Self.chunkSize) { update($0) }
            }
        } catch let error as StorageError {
            return .unreadable(error)
        } catch {
            // readChunks only rethrows what the body throws, and this body throws nothing.
            return .unreadable(.system(operation: "read (\(error))", path: path, errno: Errno(EIO)))
        }
        let actual = hasher.finalize().withUnsafeBytes { Digest(algorithm: expected.algorithm, bytes: $0)! }
        return actual == expected ? .matches(bytes: count) : .mismatch(actual: actual, bytes: count)
    }
}
