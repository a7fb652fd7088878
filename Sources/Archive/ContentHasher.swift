import struct Crypto.SHA256
import struct Crypto.SHA512
import RegistryModel

/// Hashes content with the algorithm a digest names, so sha512 blobs are checked as such.
struct ContentHasher {
    private enum State {
        case sha256(SHA256)
        case sha512(SHA512)
    }

    private var state: State

    init(_ algorithm: Digest.Algorithm = .sha256) {
        switch algorithm {
        case .sha256: state = .sha256(SHA256())
        case .sha512: state = .sha512(SHA512())
        }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var hasher):
            hasher.update(bufferPointer: bytes)
            state = .sha256(hasher)
        case .sha512(var hasher):
            hasher.update(bufferPointer: bytes)
            state = .sha512(hasher)
        }
    }

    func finalize() -> Digest {
        switch state {
        case .sha256(let hasher): Digest(algorithm: .sha256, bytes: Array(hasher.finalize()))!
        case .sha512(let hasher): Digest(algorithm: .sha512, bytes: Array(hasher.finalize()))!
        }
    }

    static func digest(_ bytes: [UInt8]) -> Digest {
        var hasher = ContentHasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }
}
