import Foundation
import RegistryHarness
import TarFormat
import Zstd
#if canImport(Glibc)
import Glibc
#endif

/// Deterministic incompressible bytes (SplitMix64), so a failure reproduces.
func randomBytes(_ count: Int, seed: UInt64 = 0x7A2) -> [UInt8] {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    for i in stride(from: 0, to: count, by: 8) {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        for j in 0..<min(8, count - i) { bytes[i + j] = UInt8(truncatingIfNeeded: z >> (8 * UInt64(j))) }
    }
    return bytes
}

struct ReadEntry: Equatable {
    var entry: TarEntry
    var content: [UInt8]
}

/// A source over an in-memory array that hands out odd-sized pieces, so headers straddle reads.
func arraySource(_ bytes: [UInt8], piece: Int = 10_007) -> (UnsafeMutableRawBufferPointer) -> Int {
    var next = 0
    return { buffer in
        let n = min(buffer.count, piece, bytes.count - next)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[next..<(next + n)])) }
        next += n
        return n
    }
}

func readAll(_ reader: TarReader) throws -> [ReadEntry] {
    var entries: [ReadEntry] = []
    while let entry = try reader.next() {
        var content = [UInt8]()
        try reader.readContent { content.append(contentsOf: $0) }
        entries.append(ReadEntry(entry: entry, content: content))
    }
    return entries
}

func readTar(_ bytes: [UInt8], bufferSize: Int = 1 << 20, piece: Int = 10_007) throws -> [ReadEntry] {
    try readAll(TarReader(bufferSize: bufferSize, source: arraySource(bytes, piece: piece)))
}

/// Reads a tar.zst file through our decompressor, returning entries and skippable frames.
func readTarZst(_ url: URL) throws -> (entries: [ReadEntry], skippable: [SkippableFrame]) {
    let fd = open(url.path, O_RDONLY)
    guard fd >= 0 else { throw CommandFailed(description: "open \(url.path)") }
    defer { close(fd) }
    var frames: [SkippableFrame] = []
    let decompressor = try ZstdDecompressor(source: { read(fd, $0.baseAddress, $0.count) },
                                            onSkippableFrame: { frames.append($0) })
    let reader = TarReader { try decompressor.read(into: $0) }
    return (try readAll(reader), frames)
}

/// Writes a tar.zst file through our writer and compressor.
func writeTarZst(_ url: URL, workers: Int = 0, _ body: (TarWriter, ZstdCompressor) throws -> Void) throws {
    guard FileManager.default.createFile(atPath: url.path, contents: nil),
          let handle = try? FileHandle(forWritingTo: url) else { throw CommandFailed(description: "create \(url.path)") }
    defer { try? handle.close() }
    let compressor = try ZstdCompressor(level: 3, workers: workers) { handle.write(Data($0)) }
    let writer = TarWriter { try compressor.write($0) }
    try body(writer, compressor)
    try writer.finish()
    try compressor.finish()
}

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a tool such as `tar` through the harness's process runner; a failure carries stderr.
@discardableResult
func run(_ arguments: [String]) throws -> String {
    try ProcessRunner.runBlocking("/usr/bin/env", arguments).stdoutText
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tar-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// mtime with nanoseconds; Foundation's Date would round them.
func modificationTime(_ url: URL) throws -> TarTimestamp {
    var info = stat()
    guard lstat(url.path, &info) == 0 else { throw CommandFailed(description: "stat \(url.path)") }
    return TarTimestamp(seconds: Int64(info.st_mtim.tv_sec), nanoseconds: UInt32(info.st_mtim.tv_nsec))
}

func setModificationTime(_ url: URL, _ time: TarTimestamp) throws {
    let spec = timespec(tv_sec: Int(time.seconds), tv_nsec: Int(time.nanoseconds))
    let times = [spec, spec]
    guard utimensat(AT_FDCWD, url.path, times, AT_SYMLINK_NOFOLLOW) == 0 else {
        throw CommandFailed(description: "utimensat \(url.path)")
    }
}

/// Hand-made headers, independent of the writer under test, for the refusal cases.
enum Craft {
    static func header(_ name: String, type: Character = "0", size: Int = 0, mode: Int = 0o644,
                       mtime: Int = 1_700_000_000, linkname: String = "", magic: String = "ustar\u{0}",
                       version: String = "00", prefix: String = "") -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ at: Int) {
            for (i, byte) in text.utf8.enumerated() { block[at + i] = byte }
        }
        put(name, 0)
        put(String(format: "%07o", mode), 100)
        put("0000000", 108)
        put("0000000", 116)
        put(String(format: "%011o", size), 124)
        put(String(format: "%011o", mtime), 136)
        block[156] = type.asciiValue!
        put(linkname, 157)
        put(magic, 257)
        put(version, 263)
        put(prefix, 345)
        put("        ", 148)
        let sum = block.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), 148)
        block[154] = 0
        return block
    }

    static func data(_ bytes: [UInt8]) -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
    }

    static func pax(_ records: [(String, String)], type: Character = "x") -> [UInt8] {
        var text = ""
        for (key, value) in records {
            let base = key.utf8.count + value.utf8.count + 3
            var length = base + String(base).count
            if String(length).count > String(base).count { length += 1 }
            text += "\(length) \(key)=\(value)\n"
        }
        let bytes = Array(text.utf8)
        return header("PaxHeaders/x", type: type, size: bytes.count) + data(bytes)
    }

    static func longName(_ name: String) -> [UInt8] {
        let bytes = Array(name.utf8) + [0]
        return header("././@LongLink", type: "L", size: bytes.count, magic: "ustar ", version: " \u{0}") + data(bytes)
    }

    static let end = [UInt8](repeating: 0, count: 1024)
}
