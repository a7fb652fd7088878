import Foundation
import RegistryHarness
import Zstd

/// Deterministic bytes, so a failure reproduces: SplitMix64 for incompressible data,
/// repeated words for compressible data.
enum TestData {
    static func random(_ count: Int, seed: UInt64 = 0x5EED) -> [UInt8] {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var i = 0
            while i < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                withUnsafeBytes(of: z.littleEndian) { word in
                    let n = min(8, count - i)
                    raw.baseAddress!.advanced(by: i).copyMemory(from: word.baseAddress!, byteCount: n)
                }
                i += 8
            }
        }
        return bytes
    }

    static func compressible(_ count: Int) -> [UInt8] {
        let words = ["sha256:", "application/vnd.oci.image.manifest.v1+json", "\"digest\": ", "layers", "\n", "{}"]
        var bytes = [UInt8]()
        bytes.reserveCapacity(count + 64)
        var i = 0
        while bytes.count < count {
            bytes.append(contentsOf: words[i % words.count].utf8)
            bytes.append(contentsOf: String(i % 977).utf8)
            i += 1
        }
        return Array(bytes.prefix(count))
    }
}

func compress(_ parts: [[UInt8]], level: Int = 3, workers: Int = 0) throws -> [UInt8] {
    var out = [UInt8]()
    let compressor = try ZstdCompressor(level: level, workers: workers) { out.append(contentsOf: $0) }
    for part in parts {
        try part.withUnsafeBytes { try compressor.write($0) }
        try compressor.endFrame()
    }
    try compressor.finish()
    return out
}

/// Feeds `compressed` in odd-sized pieces so frame and skippable-frame headers straddle reads.
func decompress(_ compressed: [UInt8], piece: Int = 7_777, readSize: Int = 100_003,
                maxSkippablePayload: Int = 64 << 20) throws -> (data: [UInt8], skippable: [SkippableFrame]) {
    var next = 0
    var frames: [SkippableFrame] = []
    let decompressor = try ZstdDecompressor(bufferSize: 64 << 10, maxSkippablePayload: maxSkippablePayload, source: { buffer in
        let n = min(buffer.count, piece, compressed.count - next)
        compressed.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[next..<(next + n)])) }
        next += n
        return n
    }, onSkippableFrame: { frames.append($0) })
    var data = [UInt8]()
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: readSize, alignment: 1)
    defer { chunk.deallocate() }
    while true {
        let n = try decompressor.read(into: chunk)
        if n == 0 { break }
        data.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
    }
    return (data, frames)
}

/// Runs a tool such as `zstd` through the harness's process runner; a failure carries stderr.
@discardableResult
func run(_ arguments: [String]) throws -> Data {
    try ProcessRunner.runBlocking("/usr/bin/env", arguments).stdout
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("zstd-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
