import Foundation
import Testing
import Zstd

@Suite struct ZstdRoundTripTests {
    @Test(arguments: [0, 2])
    func compressibleData(workers: Int) throws {
        let data = TestData.compressible(9 << 20)
        let compressed = try compress([data], level: 1, workers: workers)
        #expect(compressed.count < data.count / 4)
        #expect(try decompress(compressed).data == data)
    }

    @Test(arguments: [0, 2])
    func randomData(workers: Int) throws {
        let data = TestData.random(9 << 20)
        let compressed = try compress([data], level: 1, workers: workers)
        #expect(try decompress(compressed).data == data)
    }

    @Test func manyFramesAndSmallReads() throws {
        let parts = (0..<50).map { TestData.compressible(1_000 + $0 * 997) }
        let compressed = try compress(parts, level: 5)
        #expect(try decompress(compressed, piece: 13, readSize: 10).data == parts.flatMap { $0 })
    }

    @Test func emptyStreamReadsAsEmpty() throws {
        #expect(try compress([]).isEmpty)
        #expect(try decompress([]).data.isEmpty)
    }

    @Test func zstdCommandReadsOurOutput() throws {
        let data = TestData.compressible(3 << 20)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("data.zst")
        try Data(try compress([data], workers: 2)).write(to: file)
        #expect(Array(try run(["zstd", "-q", "-d", "-c", file.path])) == data)
    }

    @Test func weReadZstdCommandOutput() throws {
        let data = TestData.compressible(2 << 20)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("data")
        try Data(data).write(to: file)
        let compressed = Array(try run(["zstd", "-q", "-c", "-3", file.path]))
        #expect(try decompress(compressed).data == data)
    }
}

@Suite struct DamageTests {
    /// Dropping 1 byte loses part of the checksum, half loses blocks.
    @Test(arguments: [1, 100, -2])
    func truncatedStream(dropped: Int) throws {
        let compressed = try compress([TestData.compressible(1 << 20)])
        let cut = Array(compressed.dropLast(dropped > 0 ? dropped : compressed.count / -dropped))
        #expect(throws: ZstdError.truncated(offset: UInt64(cut.count))) { try decompress(cut) }
    }

    @Test func truncatedInsideFrameHeader() throws {
        let compressed = try compress([TestData.compressible(1 << 20)])
        #expect(throws: ZstdError.truncated(offset: 3)) { try decompress(Array(compressed.prefix(3))) }
    }

    /// Random data is stored in raw blocks, so only the content checksum can catch the flip.
    @Test func flippedByteInRawBlockFailsChecksum() throws {
        var compressed = try compress([TestData.random(1 << 20)])
        compressed[compressed.count / 2] ^= 0x01
        do {
            _ = try decompress(compressed)
            Issue.record("damage went unnoticed")
        } catch let error as ZstdError {
            guard case .corrupt(_, let message) = error else {
                Issue.record("expected corrupt, got \(error)")
                return
            }
            #expect(message.contains("checksum"))
        }
    }

    @Test(arguments: [0.3, 0.5, 0.9])
    func flippedByteInCompressedBlock(position: Double) throws {
        var compressed = try compress([TestData.compressible(1 << 20)])
        compressed[Int(Double(compressed.count) * position)] ^= 0x40
        do {
            _ = try decompress(compressed)
            Issue.record("damage went unnoticed")
        } catch let error as ZstdError {
            guard case .corrupt = error else {
                Issue.record("expected corrupt, got \(error)")
                return
            }
        }
    }

    @Test func garbageIsCorrupt() throws {
        do {
            _ = try decompress(TestData.random(4096))
            Issue.record("garbage accepted")
        } catch let error as ZstdError {
            guard case .corrupt(_, let message) = error else {
                Issue.record("expected corrupt, got \(error)")
                return
            }
            #expect(!message.isEmpty)
        }
    }
}

@Suite struct SkippableFrameTests {
    private func archive(_ a: [UInt8], _ toc: [UInt8], _ b: [UInt8], trailer: [UInt8]) throws
        -> (bytes: [UInt8], tocOffset: UInt64, trailerOffset: UInt64) {
        var out = [UInt8]()
        let compressor = try ZstdCompressor(level: 1) { out.append(contentsOf: $0) }
        try a.withUnsafeBytes { try compressor.write($0) }
        try compressor.endFrame()
        let tocOffset = compressor.compressedOffset
        try toc.withUnsafeBytes { try compressor.writeSkippableFrame($0) }
        try b.withUnsafeBytes { try compressor.write($0) }
        let trailerOffset = compressor.compressedOffset
        // writeSkippableFrame ends the open frame itself, so the trailer starts after it.
        try trailer.withUnsafeBytes { try compressor.writeSkippableFrame($0) }
        try compressor.finish()
        return (out, tocOffset, trailerOffset)
    }

    @Test func payloadsComeBackInOrderBetweenData() throws {
        let a = TestData.compressible(300_000)
        let b = TestData.random(200_000)
        let toc = Array("{\"repositories\":[\"library/alpine\"]}".utf8)
        let trailer = TestData.random(100_000, seed: 9)
        let (bytes, tocOffset, _) = try archive(a, toc, b, trailer: trailer)
        let result = try decompress(bytes)
        #expect(result.data == a + b)
        #expect(result.skippable.map(\.payload) == [toc, trailer])
        #expect(result.skippable.map(\.magic) == [ZstdFormat.skippableMagic, ZstdFormat.skippableMagic])
        #expect(result.skippable.first?.offset == tocOffset)
        let recorded = bytes[Int(tocOffset)..<Int(tocOffset) + 4]
        #expect(Array(recorded) == [0x5E, 0x2A, 0x4D, 0x18])
    }

    /// An archive's index goes in as it is rendered, in pieces: one frame, one payload,
    /// whatever the pieces' sizes (empty ones included).
    @Test(arguments: [[0, 16], [1, 0, 0], [70_000, 16], [300_000, 5, 65_536]])
    func piecesAreOnePayload(_ sizes: [Int]) throws {
        let pieces = sizes.enumerated().map { TestData.random($1, seed: UInt64($0) + 3) }
        var out = [UInt8]()
        let compressor = try ZstdCompressor(level: 1) { out.append(contentsOf: $0) }
        try [UInt8](repeating: 1, count: 1000).withUnsafeBytes { try compressor.write($0) }
        try compressor.writeSkippableFrame(size: sizes.reduce(0, +)) { write in
            for piece in pieces { try piece.withUnsafeBytes { try write($0) } }
        }
        try [UInt8](repeating: 2, count: 10).withUnsafeBytes { try compressor.write($0) }
        try compressor.finish()
        let result = try decompress(out)
        #expect(result.skippable.map(\.payload) == [pieces.flatMap { $0 }])
        #expect(result.data == [UInt8](repeating: 1, count: 1000) + [UInt8](repeating: 2, count: 10))
    }

    /// Pieces that do not add up to the declared size are the writer's bug, refused either way.
    @Test func piecesNotAsDeclaredAreRefused() throws {
        let compressor = try ZstdCompressor(level: 1) { _ in }
        #expect(throws: ZstdError.skippablePayloadNotAsDeclared(offset: 0, declared: 10, written: 12)) {
            try compressor.writeSkippableFrame(size: 10) { write in
                try [UInt8](repeating: 0, count: 6).withUnsafeBytes { try write($0) }
                try [UInt8](repeating: 0, count: 6).withUnsafeBytes { try write($0) }
            }
        }
        let other = try ZstdCompressor(level: 1) { _ in }
        #expect(throws: ZstdError.skippablePayloadNotAsDeclared(offset: 0, declared: 10, written: 6)) {
            try other.writeSkippableFrame(size: 10) { write in try [UInt8](repeating: 0, count: 6).withUnsafeBytes { try write($0) } }
        }
    }

    @Test func emptyPayload() throws {
        let (bytes, _, _) = try archive([1, 2, 3], [], [4], trailer: [])
        let result = try decompress(bytes, piece: 1)
        #expect(result.data == [1, 2, 3, 4])
        #expect(result.skippable.map(\.payload) == [[], []])
    }

    @Test func zstdCommandSkipsFrameInTheMiddle() throws {
        let a = TestData.compressible(500_000)
        let b = TestData.compressible(700_000).reversed() as [UInt8]
        let (bytes, _, _) = try archive(a, Array("table of contents".utf8), b, trailer: [0xFF])
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("with-skippable.zst")
        try Data(bytes).write(to: file)
        #expect(Array(try run(["zstd", "-q", "-d", "-c", file.path])) == a + b)
    }

    @Test func truncatedSkippableFrame() throws {
        let (bytes, _, trailerOffset) = try archive([1], [2], [3], trailer: Array(repeating: 7, count: 100))
        let cut = Array(bytes.prefix(Int(trailerOffset) + 50))
        #expect(throws: ZstdError.truncated(offset: UInt64(cut.count))) { try decompress(cut) }
    }

    @Test func oversizedSkippableFrameIsRefused() throws {
        let (bytes, tocOffset, _) = try archive([1], Array(repeating: 0, count: 5000), [3], trailer: [])
        #expect(throws: ZstdError.skippableFrameTooLarge(offset: tocOffset, size: 5000, limit: 4096)) {
            try decompress(bytes, maxSkippablePayload: 4096)
        }
    }
}
