#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import RegistryStore

/// Why a log could not be read. Every case names the input.
public enum PullLogError: Error, Sendable, Hashable, CustomStringConvertible {
    case cannotOpen(input: String, errno: Errno)
    case notAFile(input: String)
    case cannotRead(input: String, errno: Errno)
    case gzip(input: String, GzipError)

    public var description: String {
        switch self {
        case .cannotOpen(let input, let errno): "cannot open \(input): \(errno)"
        case .notAFile(let input): "\(input) is a directory or a device, not a log file"
        case .cannotRead(let input, let errno): "cannot read \(input): \(errno)"
        case .gzip(let input, let error): "\(input): \(error)"
        }
    }
}

/// What an earlier import remembers of a log: how far it read. A log is known by its first
/// line (a timestamp to the nanosecond or second and a request), which stays the same when
/// the file is renamed by a rotation, compressed, or fed again on standard input, and
/// changes when the file is truncated and written anew.
public struct LogPosition: Sendable, Hashable, Codable {
    /// Bytes read, up to the end of the last complete line (of the decompressed stream for
    /// `.gz`).
    public var offset: Int64
    /// Lines read, so that line numbers in reports stay those of the whole file.
    public var lines: Int64

    public init(offset: Int64, lines: Int64) {
        self.offset = offset
        self.lines = lines
    }
}

/// What one import of one log read.
public struct LogReading: Sendable, Hashable, Codable {
    public var input: String
    public var fingerprint: String
    /// Where this import started, and where it stopped (the next import's start).
    public var from: LogPosition
    public var to: LogPosition
    /// Why reading started at the beginning although the log was known: it is now shorter, or
    /// does not end a line where the last import stopped.
    public var restarted: String?
    public var entries = 0
    public var pulls = 0
    public var malformed = 0
    /// Line numbers of the first malformed lines (`malformedListed` of them at most).
    public var malformedLines: [Int64] = []
    /// Bytes after the last newline: a line still being written, read by the next import.
    public var unfinishedBytes = 0
    /// The earliest and latest entry times met (seconds since 1970).
    public var firstEntry: Double?
    public var lastEntry: Double?

    public static let malformedListed = 20
}

/// Reads one registry log (a file, `.gz` or not, or standard input) from where the last import
/// stopped, line by line in a large buffer, handing pulls to a `PullTable`. Owns the file
/// descriptor and, for gzip, the decompressor; both are released with it.
public final class LogReader {
    /// `-` for standard input, else the path.
    public let input: String
    /// Hash of the first line; nil when the log holds no complete line yet.
    public private(set) var fingerprint: String?

    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let isRegularFile: Bool
    private var gzip: GzipDecompressor?
    private var isGzip = false
    private var buffer: UnsafeMutableRawBufferPointer
    /// Valid bytes in `buffer`, of which the first `start` are consumed.
    private var start = 0
    private var filled = 0
    /// Stream offset of `buffer[0]`.
    private var bufferOffset: Int64 = 0
    private var ended = false
    private let parallelThreshold: Int64

    /// 32 MiB: below that, starting a thread costs about what it saves.
    public static let defaultParallelThreshold: Int64 = 32 << 20

    /// 256 KiB: the kernel's copy lands in the L2 cache, where the parser then reads it (a
    /// buffer of several MiB made the copy and the parse each go to memory), and a system call
    /// per 256 KiB is a small share of the time.
    public static let defaultBufferSize = 256 << 10

    /// Opens the log and reads its first line, so that `fingerprint` can be looked up.
    /// - Parameter parallelThreshold: a plain file with at least this much left to read is read
    ///   in two halves at once.
    public init(
        input: String, bufferSize: Int = LogReader.defaultBufferSize, parallelThreshold: Int64 = LogReader.defaultParallelThreshold
    ) throws(PullLogError) {
        self.input = input
        self.parallelThreshold = parallelThreshold
        if input == "-" {
            descriptor = STDIN_FILENO
            ownsDescriptor = false
        } else {
            let opened: Int
            do {
                opened = try SystemCall.retrying { Int(open(input, O_RDONLY | O_CLOEXEC)) }
            } catch {
                throw .cannotOpen(input: input, errno: error)
            }
            descriptor = Int32(opened)
            ownsDescriptor = true
        }
        var status = stat()
        let known = fstat(descriptor, &status) == 0
        isRegularFile = known && (status.st_mode & S_IFMT) == S_IFREG
        if ownsDescriptor, known, (status.st_mode & S_IFMT) == S_IFDIR {
            close(descriptor)
            throw .notAFile(input: input)
        }
        buffer = .allocate(byteCount: max(bufferSize, 4096), alignment: 64)
        // Fully initialized: if this throws, deinit releases the buffer and the descriptor.
        try begin()
    }

    deinit {
        buffer.deallocate()
        if ownsDescriptor { close(descriptor) }
    }

    /// Reads from the start: detects gzip by its magic, fills the buffer up to the first line.
    private func begin() throws(PullLogError) {
        start = 0
        filled = 0
        bufferOffset = 0
        ended = false
        gzip = nil
        let raw = try rawRead(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<2]))
        var head = raw
        if raw == 1, let more = try? rawRead(into: UnsafeMutableRawBufferPointer(rebasing: buffer[1..<2])) { head += more }
        isGzip = head == 2 && buffer[0] == 0x1F && buffer[1] == 0x8B
        if isGzip {
            let magic = (buffer[0], buffer[1])
            var pending: [UInt8]? = [magic.0, magic.1]
            let descriptor = descriptor
            let input = input
            do {
                gzip = try GzipDecompressor { target in
                    if let bytes = pending {
                        pending = nil
                        target.copyBytes(from: bytes)
                        return bytes.count
                    }
                    do throws(Errno) {
                        return try SystemCall.readFully(descriptor, into: target)
                    } catch {
                        throw PullLogError.cannotRead(input: input, errno: error)
                    }
                }
            } catch {
                throw .gzip(input: input, error)
            }
        } else {
            filled = head
        }
        fingerprint = nil
        while !ended {
            if let newline = LineParser.index(of: 0x0A, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), 0, filled) {
                fingerprint = Self.fingerprint(UnsafeRawBufferPointer(rebasing: buffer[0..<newline]))
                return
            }
            guard filled < buffer.count else {
                // A first line longer than the buffer: known by its first bytes.
                fingerprint = Self.fingerprint(UnsafeRawBufferPointer(buffer))
                return
            }
            try fill()
        }
    }

    private func rawRead(into target: UnsafeMutableRawBufferPointer) throws(PullLogError) -> Int {
        do {
            return try SystemCall.readFully(descriptor, into: target)
        } catch {
            throw .cannotRead(input: input, errno: error)
        }
    }

    /// Appends to the buffer after `filled`; sets `ended` at the end of the stream.
    private func fill() throws(PullLogError) {
        let target = UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])
        guard !target.isEmpty else { return }
        let count = try readMore(into: target)
        if count == 0 { ended = true }
        filled += count
    }

    /// FNV-1a over the first line, with its length: the log's name in the state database.
    static func fingerprint(_ bytes: UnsafeRawBufferPointer) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + "-" + String(bytes.count)
    }

    /// Reads every complete line after `position` (nil: from the start), adding pulls to
    /// `table`. A line not yet ended by a newline is left for the next import.
    public func read(after position: LogPosition?, into table: inout PullTable) throws(PullLogError) -> LogReading {
        guard let fingerprint else {
            var reading = LogReading(input: input, fingerprint: "", from: LogPosition(offset: 0, lines: 0), to: LogPosition(offset: 0, lines: 0))
            reading.unfinishedBytes = filled
            return reading
        }
        var from = LogPosition(offset: 0, lines: 0)
        var restarted: String?
        if let position, position.offset > 0 {
            switch try seek(to: position.offset) {
            case .reached: from = position
            case .shorter: restarted = "it is shorter than when last imported (\(position.offset) bytes)"
            case .notLineStart: restarted = "byte \(position.offset) no longer ends a line"
            }
            if restarted != nil {
                guard input != "-" else {
                    // Standard input cannot be read again; what it held was read before.
                    var reading = LogReading(input: input, fingerprint: fingerprint, from: position, to: position)
                    reading.restarted = restarted.map { $0 + "; standard input cannot be read again from its start, so nothing was imported" }
                    return reading
                }
                guard lseek(descriptor, 0, SEEK_SET) == 0 else { throw .cannotRead(input: input, errno: .current) }
                try begin()
            }
        }
        var reading = LogReading(input: input, fingerprint: fingerprint, from: from, to: from, restarted: restarted)
        if let halves = try halves() {
            try scan(&reading, halves, into: &table)
        } else {
            try scan(&reading, into: &table)
        }
        return reading
    }

    /// Where to cut what is left of a large plain file in two, at a line's end, so that two
    /// threads read a half each; nil for a small file, a gzip stream or standard input.
    private func halves() throws(PullLogError) -> (start: Int64, split: Int64, end: Int64)? {
        guard !isGzip, isRegularFile else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .cannotRead(input: input, errno: .current) }
        let position = bufferOffset + Int64(start)
        let end = Int64(status.st_size)
        guard end - position >= parallelThreshold else { return nil }
        var probe = [UInt8](repeating: 0, count: 64 << 10)
        var at = position + (end - position) / 2
        while at < end {
            let read = probe.withUnsafeMutableBytes { bytes in
                Result { () throws(Errno) in try SystemCall.readFully(descriptor, into: bytes, at: at) }
            }
            let count: Int
            do {
                count = try read.get()
            } catch {
                throw .cannotRead(input: input, errno: error)
            }
            guard count > 0 else { return nil }
            if let newline = probe.withUnsafeBufferPointer({ LineParser.index(of: 0x0A, $0.baseAddress!, 0, count) }) {
                let split = at + Int64(newline) + 1
                return split < end ? (position, split, end) : nil
            }
            at += Int64(count)
        }
        return nil
    }

    /// Both halves at once: the second on a thread of its own with a table of its own, merged
    /// into `table` after. Line numbers of the second half follow the first's.
    private func scan(
        _ reading: inout LogReading, _ halves: (start: Int64, split: Int64, end: Int64), into table: inout PullTable
    ) throws(PullLogError) {
        let worker = HalfWorker()
        let (descriptor, input, bufferSize, resolve) = (descriptor, input, buffer.count, table.resolve)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            var second = PullTable(resolve: resolve)
            worker.result = Result { () throws(PullLogError) in
                try Self.pass(descriptor, input, from: halves.split, to: halves.end, bufferSize: bufferSize, into: &second)
            }.map { ($0, second) }
            done.signal()
        }
        thread.start()
        let first = Result { () throws(PullLogError) in
            try Self.pass(descriptor, input, from: halves.start, to: halves.split, bufferSize: bufferSize, into: &table)
        }
        // The worker reads through this reader's descriptor: wait for it before anything returns.
        done.wait()
        let firstPass = try first.get()
        let (secondPass, secondTable) = try worker.result!.get()
        table.absorb(secondTable)
        reading.absorb(firstPass, firstLine: reading.from.lines)
        reading.absorb(secondPass, firstLine: reading.from.lines + firstPass.lines)
        reading.to = LogPosition(offset: secondPass.consumed, lines: reading.from.lines + firstPass.lines + secondPass.lines)
        reading.unfinishedBytes = secondPass.unfinishedBytes
    }

    /// Lines of `[from, to)` of a plain file, read with `pread` into a buffer of its own.
    private static func pass(
        _ descriptor: Int32, _ input: String, from: Int64, to: Int64, bufferSize: Int, into table: inout PullTable
    ) throws(PullLogError) -> PassResult {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
        defer { buffer.deallocate() }
        var next = from
        var pass = LinePass(buffer: buffer, start: 0, filled: 0, offset: from, ended: false)
        return try pass.run(into: &table) { target throws(PullLogError) in
            let wanted = Int(min(Int64(target.count), to - next))
            guard wanted > 0 else { return 0 }
            do throws(Errno) {
                let count = try SystemCall.readFully(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: target[0..<wanted]), at: next)
                next += Int64(count)
                return count
            } catch {
                throw .cannotRead(input: input, errno: error)
            }
        }
    }

    private enum Seek { case reached, shorter, notLineStart }

    /// Moves `start` to stream offset `offset`, checking that a line ends just before it.
    private func seek(to offset: Int64) throws(PullLogError) -> Seek {
        if !isGzip, isRegularFile, offset > Int64(filled) {
            // Read the byte before the offset, then go on from the offset.
            var byte: UInt8 = 0
            let count = pread(descriptor, &byte, 1, off_t(offset - 1))
            guard count >= 0 else { throw .cannotRead(input: input, errno: .current) }
            guard count == 1 else { return .shorter }
            guard byte == 0x0A else { return .notLineStart }
            guard lseek(descriptor, off_t(offset), SEEK_SET) == off_t(offset) else { throw .cannotRead(input: input, errno: .current) }
            bufferOffset = offset
            start = 0
            filled = 0
            return .reached
        }
        // Otherwise read and drop whole buffers until the offset is in the buffer.
        while bufferOffset + Int64(filled) < offset {
            guard !ended else { return .shorter }
            if filled == buffer.count {
                bufferOffset += Int64(filled)
                filled = 0
            }
            try fill()
        }
        let index = Int(offset - bufferOffset)
        guard index > 0 else { return .notLineStart }
        guard buffer[index - 1] == 0x0A else { return .notLineStart }
        start = index
        return .reached
    }

    /// The sequential pass, in this reader's buffer, from where `begin` or `seek` left it.
    private func scan(_ reading: inout LogReading, into table: inout PullTable) throws(PullLogError) {
        var pass = LinePass(buffer: buffer, start: start, filled: filled, offset: bufferOffset, ended: ended)
        let result = try pass.run(into: &table) { target throws(PullLogError) in try self.readMore(into: target) }
        reading.absorb(result, firstLine: reading.from.lines)
        reading.to = LogPosition(offset: result.consumed, lines: reading.from.lines + result.lines)
        reading.unfinishedBytes = result.unfinishedBytes
    }

    /// The next bytes of the stream (decompressed for gzip); 0 at its end.
    private func readMore(into target: UnsafeMutableRawBufferPointer) throws(PullLogError) -> Int {
        guard let gzip else { return try rawRead(into: target) }
        do {
            return try gzip.read(into: target)
        } catch let error as GzipError {
            throw .gzip(input: input, error)
        } catch let error as PullLogError {
            throw error
        } catch {
            throw .gzip(input: input, .library(operation: "read", message: "\(error)"))
        }
    }
}

/// The second half's outcome, handed back across the thread it ran on; read only after the
/// thread signalled that it is done.
private final class HalfWorker: @unchecked Sendable {
    var result: Result<(PassResult, PullTable), PullLogError>?
}

/// What one pass over a stretch of a log found; line numbers count from the stretch's start.
struct PassResult {
    var lines: Int64 = 0
    var entries = 0
    var pulls = 0
    var malformed = 0
    var malformedLines: [Int64] = []
    /// Stream offset just after the last complete line.
    var consumed: Int64 = 0
    var unfinishedBytes = 0
    var firstEntry = Double.infinity
    var lastEntry = -Double.infinity
}

extension LogReading {
    /// Adds a pass's counts, its line numbers shifted by the lines before its stretch.
    mutating func absorb(_ pass: PassResult, firstLine: Int64) {
        entries += pass.entries
        pulls += pass.pulls
        malformed += pass.malformed
        for line in pass.malformedLines where malformedLines.count < Self.malformedListed { malformedLines.append(firstLine + line) }
        if pass.firstEntry.isFinite { firstEntry = min(firstEntry ?? .infinity, pass.firstEntry) }
        if pass.lastEntry.isFinite { lastEntry = max(lastEntry ?? -.infinity, pass.lastEntry) }
    }
}

/// The hot loop: complete lines in a buffer, then more bytes after the unfinished tail.
struct LinePass {
    let buffer: UnsafeMutableRawBufferPointer
    /// Valid bytes in `buffer`, of which the first `start` are consumed.
    var start: Int
    var filled: Int
    /// Stream offset of `buffer[0]`.
    var offset: Int64
    var ended: Bool

    mutating func run(
        into table: inout PullTable, more: (UnsafeMutableRawBufferPointer) throws(PullLogError) -> Int
    ) throws(PullLogError) -> PassResult {
        var result = PassResult()
        var parser = LineParser()
        var line: Int64 = 0
        var oversized = false
        while true {
            let p = UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
            var lineStart = start
            while let newline = LineParser.index(of: 0x0A, p, lineStart, filled) {
                line += 1
                if oversized {
                    // The tail of a line longer than the buffer, already counted as malformed.
                    oversized = false
                    lineStart = newline + 1
                    continue
                }
                switch parser.parse(p, lineStart, newline) {
                case .blank: break
                case .malformed:
                    result.malformed += 1
                    if result.malformedLines.count < LogReading.malformedListed { result.malformedLines.append(line) }
                case .entry(let time):
                    result.entries += 1
                    if time < result.firstEntry { result.firstEntry = time }
                    if time > result.lastEntry { result.lastEntry = time }
                case .pull(let time, let precision, let name, let reference):
                    result.entries += 1
                    result.pulls += 1
                    if time < result.firstEntry { result.firstEntry = time }
                    if time > result.lastEntry { result.lastEntry = time }
                    table.add(p, name: name, reference: reference, time: time, precision: precision)
                }
                lineStart = newline + 1
            }
            let consumedOffset = offset + Int64(lineStart)
            if ended {
                result.lines = line
                result.consumed = consumedOffset
                result.unfinishedBytes = filled - lineStart
                return result
            }
            // Keep the unfinished tail: move it to the front and read on after it.
            let tail = filled - lineStart
            if tail == buffer.count {
                // No newline in a whole buffer: one line this long is not a log entry.
                if !oversized {
                    result.malformed += 1
                    if result.malformedLines.count < LogReading.malformedListed { result.malformedLines.append(line + 1) }
                    oversized = true
                }
                offset += Int64(filled)
                start = 0
                filled = 0
            } else {
                if tail > 0, lineStart > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + lineStart, tail) }
                offset = consumedOffset
                start = 0
                filled = tail
            }
            let count = try more(UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if count == 0 { ended = true }
            filled += count
        }
    }
}
