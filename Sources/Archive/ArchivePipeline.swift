import Dispatch
import Foundation
import RegistryModel
import RegistryStore
import Synchronization
import TarFormat
import Zstd

/// Writes the files of a plan as consecutive zstd frames of the tar stream, with one thread per
/// job, each reading, hashing and compressing its own chunks.
///
/// Why not one thread plus libzstd's workers: hashing (SHA-256) costs more CPU than compressing
/// level 1, so a single reading-and-hashing thread was the bottleneck while the compressing
/// worker idled. Here the stream is cut into chunks of about `chunkSize` tar bytes, taken in turn
/// by the threads; a large file is split between chunks. Each chunk passes three stages that
/// must run in stream order, handed from thread to thread like a token around a ring:
///  1. render: headers and file content read into the thread's tar buffer (files are read
///     sequentially, so a file split between chunks is read in order);
///  2. hash: each file's hasher is updated with the exact bytes in the buffer, in order, so a
///     file split between threads still hashes as one;
///  3. write: the chunk's frame is appended to the output.
/// Compression (its own single-threaded zstd context per thread) runs between hash and write
/// outside any stage, as do the stages of the other threads, so with two threads one hashes
/// while the other reads or compresses. Memory is bounded: one tar buffer and one frame buffer
/// per thread.
final class ArchivePipeline: Sendable {
    /// A file of the plan as it goes into the archive.
    struct Member: Sendable {
        var path: String
        var size: UInt64
        var mtime: TarTimestamp
        /// The digest the blob is named by; nil for links and upload files.
        var expected: Digest?
        var algorithm: Digest.Algorithm { expected?.algorithm ?? .sha256 }
    }

    enum Item: Sendable {
        case blob(BackupPlan.BlobFile)
        case link(BackupPlan.LinkFile)
        case extra(StorePath)
    }

    /// The files to write, in archive order: blobs, links, then other files. A view over the
    /// plan's own lists, so that a million links are not copied into a list of items.
    struct Items: Sendable {
        let blobs: [BackupPlan.BlobFile]
        let links: [BackupPlan.LinkFile]
        let extras: [StorePath]

        var count: Int { blobs.count + links.count + extras.count }

        subscript(position: Int) -> Item {
            if position < blobs.count { return .blob(blobs[position]) }
            if position < blobs.count + links.count { return .link(links[position - blobs.count]) }
            return .extra(extras[position - blobs.count - links.count])
        }
    }

    /// What the pipeline hands back, members in archive order.
    struct Outcome: Sendable {
        var members: [IndexedMember] = []
        var excluded: [ExcludedBlob] = []
        var carried = Set<Digest>()
        var findings: [BackupFinding] = []
        var blobBytes: Int64 = 0
    }

    /// Render state: which file comes next, and the one a chunk boundary cut.
    private struct Cursor {
        var items: Items
        var next = 0
        var open: OpenFile?
        var findings: [BackupFinding] = []
    }

    private struct OpenFile {
        let file: any StoreReadableFile
        let member: Member
        var done: UInt64 = 0
    }

    /// Hash state: the hasher of a file cut by the last chunk boundary, and the results so far.
    private struct Hashing {
        var pending: ContentHasher?
        var outcome = Outcome()
    }

    /// Header bytes one member may add beyond `chunkSize` (ustar + pax with a path up to the
    /// 4096 bytes of PATH_MAX); the tar buffer has this much room on top of the chunk.
    static let headerRoom = 16 << 10

    let storage: any StoreStorage
    let level: Int
    let jobs: Int
    let chunkSize: Int
    /// Written to by the thread holding the write stage, and by the caller before and after `run`.
    let output: StageState<OutputFile>
    let reporter: any ProgressReporter
    let afterMember: (@Sendable (Int) async throws -> Void)?
    private let cursor: StageState<Cursor>
    private let hashing: StageState<Hashing>
    /// Members written, for `afterMember`, and blob bytes, for progress; of the write stage.
    private let written: StageState<(members: Int, blobBytes: Int64)>
    private let failure = Mutex<(any Error)?>(nil)
    private let totalBytes: Int64
    /// One ring per stage: thread `i` waits on `rings[stage][i]`, then signals the next thread's.
    private let rings: [[DispatchSemaphore]]

    init(storage: any StoreStorage, items: Items, output: OutputFile, level: Int, jobs: Int, chunkSize: Int,
         membersBefore: Int, totalBytes: Int64, reporter: any ProgressReporter,
         afterMember: (@Sendable (Int) async throws -> Void)?) {
        self.storage = storage
        self.level = level
        self.jobs = max(1, jobs)
        self.chunkSize = chunkSize
        self.output = StageState(output)
        self.reporter = reporter
        self.afterMember = afterMember
        self.cursor = StageState(Cursor(items: items))
        // One member an item, and room for those written before: the list never regrows (a
        // million links' members are some 70 MB to copy), and the writer puts the metadata
        // member first without a copy.
        var hashing = Hashing()
        hashing.outcome.members.reserveCapacity(items.count + membersBefore)
        self.hashing = StageState(hashing)
        self.written = StageState((membersBefore, 0))
        self.totalBytes = totalBytes
        // Created at 0 and signalled once: libdispatch refuses to free a semaphore left below
        // its initial value, and the tokens end wherever the last thread leaves them.
        rings = (0..<3).map { _ in (0..<max(1, jobs)).map { _ in DispatchSemaphore(value: 0) } }
        for ring in rings { ring[0].signal() }
    }

    /// Runs the threads to the end of the plan; throws the first error any of them met.
    func run() async throws -> Outcome {
        // Threads of their own rather than tasks: the stages block waiting for their turn.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for index in 0..<jobs {
                group.enter()
                let thread = Thread { [self] in
                    work(index)
                    group.leave()
                }
                thread.name = "regkeeper-archive-\(index)"
                thread.start()
            }
            group.notify(queue: .global()) { continuation.resume() }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        // Moved out, not copied: the caller adds a member, which would copy a list still shared.
        var outcome = Outcome()
        hashing.access { swap(&$0.outcome, &outcome) }
        outcome.findings = cursor.value.findings + outcome.findings
        return outcome
    }

    private var failed: Bool { failure.withLock { $0 != nil } }

    private func fail(_ error: any Error) {
        failure.withLock { if $0 == nil { $0 = error } }
    }

    /// One thread: chunk after chunk until the plan is written or a thread failed. Every stage
    /// is passed on even after a failure, so no thread waits forever for a token.
    private func work(_ index: Int) {
        let next = (index + 1) % jobs
        var chunk: Chunk?
        do {
            chunk = try Chunk(level: level, chunkSize: chunkSize)
        } catch {
            fail(error)
        }
        while true {
            rings[0][index].wait()
            var more = false
            if let chunk, !failed {
                do { more = try render(into: chunk) } catch { fail(error) }
            }
            rings[0][next].signal()

            rings[1][index].wait()
            if let chunk, more, !failed { hash(chunk) }
            rings[1][next].signal()

            if let chunk, more, !failed {
                do { try chunk.compress() } catch { fail(error) }
            }

            rings[2][index].wait()
            if let chunk, more, !failed {
                do { try write(chunk) } catch { fail(error) }
            }
            rings[2][next].signal()
            if !more || failed { return }
        }
    }

    /// A link's mtime to the nanosecond: retention ages tags by these, and a `Date` (a Double
    /// of seconds since 2001) keeps only about a tenth of a microsecond. Taken from the file
    /// when the store is local and the file is still the one the snapshot read (same mtime to
    /// the microsecond), else the snapshot's.
    private static func linkTimestamp(_ link: BackupPlan.LinkFile, in storage: any StoreStorage) -> TarTimestamp {
        let snapshot = ArchiveWriter.timestamp(link.modified)
        guard let local = storage as? LocalStorage else { return snapshot }
        var info = stat()
        guard lstat(local.absolutePath(.root) + "/" + link.path, &info) == 0 else { return snapshot }
        let precise = TarTimestamp(seconds: Int64(info.st_mtim.tv_sec), nanoseconds: UInt32(info.st_mtim.tv_nsec))
        let drift = abs(Double(precise.seconds - snapshot.seconds) + (Double(precise.nanoseconds) - Double(snapshot.nanoseconds)) / 1e9)
        return drift < 1e-6 ? precise : snapshot
    }

    /// Fills the chunk's tar buffer with the next files or parts of one; false once none is left.
    private func render(into chunk: Chunk) throws -> Bool {
        chunk.reset()
        try cursor.access { cursor in
            while chunk.tar.bufferedBytes < chunkSize {
                if cursor.open == nil {
                    guard cursor.next < cursor.items.count else { break }
                    let item = cursor.items[cursor.next]
                    cursor.next += 1
                    switch item {
                    case .link(let link):
                        let content = Array(link.target.description.utf8)
                        let member = Member(path: link.path, size: UInt64(content.count),
                                            mtime: Self.linkTimestamp(link, in: storage))
                        var next = 0
                        try chunk.add(member, 0..<member.size) { region in
                            content.withUnsafeBytes { region.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[next..<(next + region.count)])) }
                            next += region.count
                            return region.count
                        }
                        continue
                    case .blob(let blob):
                        let path = Layout.blobData(blob.digest)
                        do throws(StorageError) {
                            let file = try storage.openForReading(path)
                            cursor.open = OpenFile(file: file, member: Member(
                                path: path.description, size: UInt64(max(file.status.size, 0)),
                                mtime: ArchiveWriter.timestamp(file.status.modified), expected: blob.digest))
                        } catch {
                            cursor.findings.append(error.isNotFound
                                ? .missingBlob(blob.digest, referencedBy: "the snapshot (gone since it was read)")
                                : .unreadableBlob(blob.digest, reason: error.description))
                            continue
                        }
                    case .extra(let path):
                        // An upload that finished meanwhile is simply gone.
                        guard let file = try? storage.openForReading(path) else { continue }
                        cursor.open = OpenFile(file: file, member: Member(
                            path: path.description, size: UInt64(max(file.status.size, 0)), mtime: ArchiveWriter.timestamp(file.status.modified)))
                    }
                }
                guard var open = cursor.open else { continue }
                let room = UInt64(chunkSize - chunk.tar.bufferedBytes)
                let end = min(open.member.size, open.done + room)
                try chunk.add(open.member, open.done..<end) { region in try open.file.read(into: region) }
                open.done = end
                cursor.open = end == open.member.size ? nil : open
            }
        }
        return !chunk.parts.isEmpty
    }

    /// Feeds the chunk's file parts to their hashers, in stream order, and records finished files.
    private func hash(_ chunk: Chunk) {
        hashing.access { state in
            for part in chunk.parts {
                var hasher = part.range.lowerBound == 0 ? ContentHasher(part.member.algorithm) : state.pending!
                for region in part.regions { hasher.update(region) }
                guard part.range.upperBound == part.member.size else {
                    state.pending = hasher
                    continue
                }
                state.pending = nil
                let actual = hasher.finalize()
                state.outcome.members.append(IndexedMember(path: part.member.path, size: part.member.size, digest: actual))
                guard let expected = part.member.expected else { continue }
                if actual == expected {
                    state.outcome.carried.insert(expected)
                } else {
                    state.outcome.excluded.append(ExcludedBlob(digest: expected, actual: actual))
                    state.outcome.findings.append(.corruptBlob(expected, actual: actual))
                }
                state.outcome.blobBytes += Int64(part.member.size)
            }
        }
    }

    private func write(_ chunk: Chunk) throws {
        try output.value.write(chunk.frame)
        let blobBytes = chunk.parts.reduce(Int64(0)) { $0 + ($1.member.expected == nil ? 0 : Int64($1.range.count)) }
        let finished = chunk.parts.filter { $0.range.upperBound == $0.member.size }.count
        written.value.members += finished
        written.value.blobBytes += blobBytes
        let (members, done) = written.value
        reporter.progress("archive", done: done, total: totalBytes, unit: .bytes)
        if let afterMember, finished > 0 {
            for count in (members - finished + 1)...members {
                try Self.runBlocking { try await afterMember(count) }
            }
        }
    }

    /// Runs an async test hook from a pipeline thread, which waits for it: the hook sees the
    /// archive stopped after the member it is told about.
    private static func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<(any Error)?>(nil)
        Task {
            do { try await body() } catch { result.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = result.withLock({ $0 }) { throw error }
    }
}

/// State that only the thread holding one stage's token touches (and the caller of `run` before
/// and after it). The ring's semaphores already order those accesses, as a signal happens before
/// the wait it ends, so a lock would only repeat them; and a lock's `sending` rules would refuse
/// the buffers a stage hands in.
final class StageState<Value>: @unchecked Sendable {
    var value: Value

    init(_ value: Value) { self.value = value }

    func access<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        try body(&value)
    }
}

/// One thread's buffers: the tar bytes of its current chunk, where each file part lies in them,
/// and the compressed frame.
private final class Chunk {
    struct Part {
        var member: ArchivePipeline.Member
        var range: Range<UInt64>
        /// Where the part's bytes are in the tar buffer; valid until the next `reset`.
        var regions: [UnsafeRawBufferPointer]
    }

    let tar: TarWriter
    private let frameBuffer: FrameBuffer
    private(set) var parts: [Part] = []

    init(level: Int, chunkSize: Int) throws(ZstdError) {
        let frameBuffer = try FrameBuffer(level: level, capacity: ZstdFrameEncoder.bound(chunkSize + ArchivePipeline.headerRoom))
        self.frameBuffer = frameBuffer
        tar = TarWriter(bufferSize: chunkSize + ArchivePipeline.headerRoom) { bytes in try frameBuffer.compress(bytes) }
    }

    var frame: UnsafeRawBufferPointer { frameBuffer.frame }

    func reset() {
        parts.removeAll(keepingCapacity: true)
        frameBuffer.reset()
    }

    func add(_ member: ArchivePipeline.Member, _ range: Range<UInt64>,
             content: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        var regions: [UnsafeRawBufferPointer] = []
        try tar.addFilePart(member.path, mtime: member.mtime, size: member.size, range: range) { region in
            let count = try content(region)
            regions.append(UnsafeRawBufferPointer(rebasing: region[0..<count]))
            return count
        }
        parts.append(Part(member: member, range: range, regions: regions))
    }

    /// Compresses the buffered tar bytes into the frame; the hash stage must be done with them.
    func compress() throws {
        frameBuffer.accepting = true
        defer { frameBuffer.accepting = false }
        try tar.flush()
    }
}

/// The compressed frame of a chunk, filled by the tar writer's sink.
private final class FrameBuffer {
    private let encoder: ZstdFrameEncoder
    private let buffer: UnsafeMutableRawBufferPointer
    private var size = 0
    var accepting = false

    init(level: Int, capacity: Int) throws(ZstdError) {
        encoder = try ZstdFrameEncoder(level: level)
        buffer = .allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    var frame: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<size]) }

    func reset() { size = 0 }

    /// Only the chunk's own flush may get here: a flush of a full tar buffer while rendering
    /// would hand over bytes before they were hashed. That takes headers beyond
    /// `ArchivePipeline.headerRoom`, i.e. a path longer than any the file system allows.
    func compress(_ bytes: UnsafeRawBufferPointer) throws(ZstdError) {
        precondition(accepting && size == 0, "a member's headers overflowed the chunk buffer")
        size = try encoder.compress(bytes, into: buffer)
    }
}
