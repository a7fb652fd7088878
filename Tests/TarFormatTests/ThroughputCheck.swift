import Foundation
import TarFormat
import Testing
import Zstd

/// Run by hand, in release, on an idle machine:
///   REGKEEPER_BENCH_FILE=/tmp/random-512m swift test -c release --filter ThroughputCheck
/// It tars and compresses the file at level 1 with 0 and 2 workers, output to /dev/null, and
/// reads the level-1 archive back; compare with `tar -cf - FILE | zstd -1 -T2 > /dev/null`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["REGKEEPER_BENCH_FILE"] != nil))
struct ThroughputCheck {
    let path = ProcessInfo.processInfo.environment["REGKEEPER_BENCH_FILE"] ?? ""

    @Test func compressAndRead() throws {
        let size = UInt64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int)
        let devNull = open("/dev/null", O_WRONLY)
        defer { close(devNull) }
        for workers in [0, 2] {
            let fd = open(path, O_RDONLY)
            defer { close(fd) }
            var compressed: UInt64 = 0
            let elapsed = try ContinuousClock().measure {
                let compressor = try ZstdCompressor(level: 1, workers: workers) {
                    compressed += UInt64($0.count)
                    _ = write(devNull, $0.baseAddress, $0.count)
                }
                let writer = TarWriter { try compressor.write($0) }
                try writer.addFile("blob", mtime: TarTimestamp(seconds: 1), size: size) { read(fd, $0.baseAddress, $0.count) }
                try writer.finish()
                try compressor.finish()
            }
            print("compress level 1, \(workers) workers: \(rate(size, elapsed)) MB/s, ratio \(Double(size) / Double(compressed))")
        }

        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("throughput-\(UUID().uuidString).tar.zst")
        defer { try? FileManager.default.removeItem(at: archive) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        try writeTarZstLevel1(archive) { writer in
            try writer.addFile("blob", mtime: TarTimestamp(seconds: 1), size: size) { read(fd, $0.baseAddress, $0.count) }
        }
        var seen: UInt64 = 0
        let elapsed = try ContinuousClock().measure {
            let input = open(archive.path, O_RDONLY)
            defer { close(input) }
            let decompressor = try ZstdDecompressor(source: { read(input, $0.baseAddress, $0.count) })
            let reader = TarReader { try decompressor.read(into: $0) }
            while try reader.next() != nil {
                try reader.readContent { seen += UInt64($0.count) }
            }
        }
        #expect(seen == size)
        print("decompress + read: \(rate(size, elapsed)) MB/s")
    }

    private func rate(_ bytes: UInt64, _ duration: Duration) -> Int {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return Int(Double(bytes) / seconds / 1e6)
    }

    private func writeTarZstLevel1(_ url: URL, _ body: (TarWriter) throws -> Void) throws {
        let out = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(out) }
        let compressor = try ZstdCompressor(level: 1) { _ = write(out, $0.baseAddress, $0.count) }
        let writer = TarWriter { try compressor.write($0) }
        try body(writer)
        try writer.finish()
        try compressor.finish()
    }
}
