internal import CSystemShims
import Dispatch
import Foundation
import RegistryStore
import Synchronization
import TarFormat

/// A directory beside the target store (`<root>/.regkeeper-restore-<id>`, same filesystem)
/// where a restore lays out files as `<staging>/docker/registry/v2/…`. Nothing in the target's
/// `docker/` changes until every member has been written and checked; then the tree is
/// renamed into place whole, or, for `--merge`, file by file in placement order.
///
/// The files are written by a thread of the staging area's own, in the order asked, so that
/// creating and filling them (the larger half of a restore's CPU, in the kernel) runs while the
/// caller decompresses and hashes the next members. A write error is thrown by a later call.
final class StagingArea {
    static let prefix = ".regkeeper-restore-"
    let root: String
    private let writer: StagingWriter

    init(target: String) throws(ArchiveError) {
        root = target + "/" + Self.prefix + "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        guard mkdir(root, 0o755) == 0 else { throw .io(path: root, operation: "mkdir", errno: .current) }
        writer = StagingWriter(root: root)
    }

    deinit { _ = try? writer.finish() }

    /// Staging directories of restores that died; callers hold the target's exclusive lock.
    static func removeAbandoned(in target: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: target) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            try? FileManager.default.removeItem(atPath: target + "/" + entry)
        }
    }

    /// Creates the file (never replacing one: member paths are unique in a valid archive),
    /// fills it with what `content` hands its sink, sets its mtime. A second member of the
    /// same path in `archive` fails as `duplicateMember`.
    func write(_ storePath: StorePath, mtime: TarTimestamp, archive: String,
               content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try writer.create(storePath, mtime: mtime, archive: archive)
        defer { writer.close() }
        try content { chunk in writer.append(chunk) }
    }

    /// Waits for every staged file, then makes them durable with one `syncfs` before anything
    /// is moved into place, instead of an fsync per file.
    func sync() throws(ArchiveError) {
        try writer.finish()
        let descriptor = open(root, O_RDONLY | O_CLOEXEC | O_DIRECTORY)
        guard descriptor >= 0 else { throw .io(path: root, operation: "open", errno: .current) }
        defer { close(descriptor) }
        guard regkeeper_syncfs(descriptor) == 0 else { throw .io(path: root, operation: "syncfs", errno: .current) }
    }

    /// Stops the writer first: no file may appear in the tree after it is removed.
    func remove() {
        _ = try? writer.finish()
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// The staging area's writing thread and the bounded ring of commands it works through.
/// Command `k` lives in ring slot `k % slots` with its own buffer; the producer takes a ticket
/// before filling a slot and the writer returns it when done, so at most `slots` commands are
/// in flight and a slot is never refilled before the writer has finished with it. The
/// semaphores order every access to the ring, which is why it needs no lock.
private final class StagingWriter: @unchecked Sendable {
    private enum Command {
        case create(StorePath, TarTimestamp, archive: String)
        case write(count: Int)
        case close
        case stop
    }

    private static let slots = 32
    private static let slotSize = 256 << 10

    private let root: String
    private let commands: UnsafeMutablePointer<Command>
    private let buffers: UnsafeMutableRawBufferPointer
    private let tickets = DispatchSemaphore(value: 0)
    private let ready = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let failure = Mutex<ArchiveError?>(nil)
    /// The producer's count of commands sent, and whether `stop` was among them.
    private var sent = 0
    private var finished = false

    init(root: String) {
        self.root = root
        commands = .allocate(capacity: Self.slots)
        commands.initialize(repeating: .close, count: Self.slots)
        buffers = .allocate(byteCount: Self.slots * Self.slotSize, alignment: 4096)
        // Created at 0 and signalled up: libdispatch refuses to free a semaphore left below
        // its initial value.
        for _ in 0..<Self.slots { tickets.signal() }
        let thread = Thread { [self] in run() }
        thread.name = "regkeeper-restore-writer"
        thread.start()
    }

    deinit {
        commands.deinitialize(count: Self.slots)
        commands.deallocate()
        buffers.deallocate()
    }

    func create(_ path: StorePath, mtime: TarTimestamp, archive: String) throws(ArchiveError) {
        if let error = failure.withLock({ $0 }) { throw error }
        send(.create(path, mtime, archive: archive))
    }

    func append(_ chunk: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < chunk.count {
            let count = min(Self.slotSize, chunk.count - offset)
            send(.write(count: count)) { slot in
                slot.copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[offset..<(offset + count)]))
            }
            offset += count
        }
    }

    func close() { send(.close) }

    /// Waits until every command sent is done; throws the first error met. Safe to call again.
    func finish() throws(ArchiveError) {
        if !finished {
            send(.stop)
            finished = true
            stopped.wait()
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private func send(_ command: Command, fill: (UnsafeMutableRawBufferPointer) -> Void = { _ in }) {
        precondition(!finished, "staging writer used after finish")
        tickets.wait()
        let slot = sent % Self.slots
        fill(UnsafeMutableRawBufferPointer(rebasing: buffers[(slot * Self.slotSize)..<((slot + 1) * Self.slotSize)]))
        commands[slot] = command
        sent += 1
        ready.signal()
    }

    private func run() {
        var parents = ParentDirectories(root: root)
        var descriptor: Int32 = -1
        var path = ""
        var member = ""
        var mtime = TarTimestamp(seconds: 0, nanoseconds: 0)
        var failed = false
        func fail(_ error: ArchiveError) {
            failed = true
            failure.withLock { if $0 == nil { $0 = error } }
        }
        var done = 0
        while true {
            ready.wait()
            let slot = done % Self.slots
            let command = commands[slot]
            done += 1
            switch command {
            case .create(let storePath, let time, let archive):
                guard !failed else { break }
                path = root + "/" + storePath.description
                member = storePath.description
                mtime = time
                if let failure = parents.make(for: storePath) {
                    fail(.stagingWrite(member: member, operation: "mkdir", errno: failure))
                    break
                }
                descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                if descriptor < 0 {
                    fail(errno == EEXIST ? .duplicateMember(archive: archive, member: member)
                        : .stagingWrite(member: member, operation: "create", errno: .current))
                }
            case .write(let count):
                guard !failed, descriptor >= 0 else { break }
                let base = buffers.baseAddress! + slot * Self.slotSize
                do {
                    try SystemCall.writeAll(descriptor, UnsafeRawBufferPointer(start: base, count: count))
                } catch {
                    fail(.stagingWrite(member: member, operation: "write", errno: error))
                }
            case .close:
                guard descriptor >= 0 else { break }
                var times = [timespec(tv_sec: Int(mtime.seconds), tv_nsec: Int(mtime.nanoseconds)),
                             timespec(tv_sec: Int(mtime.seconds), tv_nsec: Int(mtime.nanoseconds))]
                if !failed, futimens(descriptor, &times) != 0 { fail(.stagingWrite(member: member, operation: "set times", errno: .current)) }
                Foundation.close(descriptor)
                descriptor = -1
            case .stop:
                if descriptor >= 0 { Foundation.close(descriptor) }
                tickets.signal()
                stopped.signal()
                return
            }
            tickets.signal()
        }
    }
}

/// The parent directories of the files being staged, made as needed. Members come grouped by
/// directory (tar order), so only the directories of the previous file are remembered, not
/// every one made: a store of a million links has a million directories, and a set of their
/// paths cost more than the rest of a restore. A directory made earlier and met again is
/// found by `mkdir`'s EEXIST.
private struct ParentDirectories {
    let root: String
    private var previous: [String] = []

    init(root: String) { self.root = root }

    /// Nil when every parent directory of `path` exists, else why one could not be made.
    mutating func make(for path: StorePath) -> Errno? {
        let parents = path.components.dropLast()
        var common = 0
        while common < min(parents.count, previous.count), parents[parents.startIndex + common] == previous[common] { common += 1 }
        var current = root + "/" + parents.prefix(common).joined(separator: "/")
        for component in parents.dropFirst(common) {
            current += (current.hasSuffix("/") ? "" : "/") + component
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                previous = []
                return .current
            }
        }
        previous = Array(parents)
        return nil
    }
}

