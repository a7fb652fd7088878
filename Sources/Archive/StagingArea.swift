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
///
/// For `--merge`, a member the target already holds alike is left out of the staging area: a
/// merge into a store that still has most of its files then writes, syncs, compares and removes
/// only what it brings back, instead of staging every member and comparing each afterwards.
final class StagingArea {
    static let prefix = ".regkeeper-restore-"
    let root: String
    private let writer: StagingWriter

    /// What lets a `--merge` leave a member out: the target's file of the same path is a blob of
    /// the same size (blobs are named by their digest, and the archive's is checked against it),
    /// or another file of the same bytes.
    enum Alike {
        case sameSize(UInt64)
        case sameBytes(UInt64)

        /// The comparison for a member of `role` and `size`; nil when it is always staged (a file
        /// larger than a merge compares, which the merge then reports if the target has it).
        init?(role: MemberRole, size: UInt64) {
            if case .blob = role {
                self = .sameSize(size)
            } else if size <= UInt64(RestoreExecutor.comparedBytes) {
                self = .sameBytes(size)
            } else {
                return nil
            }
        }
    }

    /// `merge`: compare members with the target's files (see `Alike`) and leave out the alike.
    init(target: String, merge: Bool) throws(ArchiveError) {
        root = target + "/" + Self.prefix + "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        guard mkdir(root, 0o755) == 0 else { throw .io(path: root, operation: "mkdir", errno: .current) }
        var present: TargetFiles?
        if merge {
            let descriptor = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else { throw .io(path: target, operation: "open directory", errno: .current) }
            present = TargetFiles(root: descriptor, path: target)
        }
        writer = StagingWriter(root: root, target: present)
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
    /// same path in `archive` fails as `duplicateMember`. With `alike` (a merge), the member is
    /// left out if the target's file is alike; a duplicate of such a member is then left out
    /// too, harmlessly: neither copy differs from the target's file, which stays.
    func write(_ storePath: StorePath, mtime: TarTimestamp, archive: String, alike: Alike? = nil,
               content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try writer.create(storePath, mtime: mtime, archive: archive, alike: alike)
        defer { writer.close() }
        try content { chunk in writer.append(chunk) }
    }

    /// After `sync`: the first part of a merge's target that could not be read, if any.
    var unreadableTarget: (path: String, errno: Errno)? { writer.target?.unreadable }

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
        case create(StorePath, TarTimestamp, archive: String, alike: StagingArea.Alike?)
        case write(count: Int)
        case close
        case stop
    }

    private static let slots = 32
    private static let slotSize = 256 << 10

    private let root: String
    /// A merge's target, whose files members are compared with; nil stages every member.
    let target: TargetFiles?
    private let commands: UnsafeMutablePointer<Command>
    private let buffers: UnsafeMutableRawBufferPointer
    private let tickets = DispatchSemaphore(value: 0)
    private let ready = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let failure = Mutex<ArchiveError?>(nil)
    /// The producer's count of commands sent, and whether `stop` was among them.
    private var sent = 0
    private var finished = false

    init(root: String, target: TargetFiles?) {
        self.root = root
        self.target = target
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

    func create(_ path: StorePath, mtime: TarTimestamp, archive: String, alike: StagingArea.Alike?) throws(ArchiveError) {
        if let error = failure.withLock({ $0 }) { throw error }
        send(.create(path, mtime, archive: archive, alike: target == nil ? nil : alike))
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

    /// What the writer does with the current member's content.
    private enum Destination {
        /// Nothing to do: no member, a failure, or a blob the target holds at the same size.
        case none
        /// Written to this staging file.
        case staged(Int32)
        /// Held back, to compare with this target file of the same size when the member ends;
        /// staged only if they differ.
        case held(Int32)
    }

    private func run() {
        var parents = ParentDirectories(root: root)
        var destination = Destination.none
        var held: [UInt8] = []
        var path = StorePath.root
        var member = ""
        var archive = ""
        var mtime = TarTimestamp(seconds: 0, nanoseconds: 0)
        var failed = false
        func fail(_ error: ArchiveError) {
            failed = true
            failure.withLock { if $0 == nil { $0 = error } }
        }
        /// Creates the staging file of the current member, or records why it could not.
        func createStaged() -> Int32? {
            if let failure = parents.make(for: path) {
                fail(.stagingWrite(member: member, operation: "mkdir", errno: failure))
                return nil
            }
            let descriptor = open(root + "/" + member, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                fail(errno == EEXIST ? .duplicateMember(archive: archive, member: member)
                    : .stagingWrite(member: member, operation: "create", errno: .current))
                return nil
            }
            return descriptor
        }
        func write(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) {
            do {
                try SystemCall.writeAll(descriptor, bytes)
            } catch {
                fail(.stagingWrite(member: member, operation: "write", errno: error))
            }
        }
        func finishStaged(_ descriptor: Int32) {
            var times = [timespec(tv_sec: Int(mtime.seconds), tv_nsec: Int(mtime.nanoseconds)),
                         timespec(tv_sec: Int(mtime.seconds), tv_nsec: Int(mtime.nanoseconds))]
            if !failed, futimens(descriptor, &times) != 0 { fail(.stagingWrite(member: member, operation: "set times", errno: .current)) }
            Foundation.close(descriptor)
        }
        var done = 0
        while true {
            ready.wait()
            let slot = done % Self.slots
            let command = commands[slot]
            done += 1
            switch command {
            case .create(let storePath, let time, let name, let alike):
                guard !failed else { break }
                path = storePath
                member = storePath.description
                archive = name
                mtime = time
                destination = .none
                if let alike, let present = target?.openFile(storePath, size: alike.size) {
                    if case .sameBytes = alike {
                        held.removeAll(keepingCapacity: true)
                        destination = .held(present)
                        break
                    }
                    Foundation.close(present)
                } else if let descriptor = createStaged() {
                    destination = .staged(descriptor)
                }
            case .write(let count):
                guard !failed else { break }
                let bytes = UnsafeRawBufferPointer(start: buffers.baseAddress! + slot * Self.slotSize, count: count)
                switch destination {
                case .staged(let descriptor): write(bytes, to: descriptor)
                case .held: held.append(contentsOf: bytes)
                case .none: break
                }
            case .close:
                switch destination {
                case .staged(let descriptor):
                    finishStaged(descriptor)
                case .held(let present):
                    let alike = !failed && TargetFiles.holds(present, exactly: held)
                    Foundation.close(present)
                    if !failed, !alike, let descriptor = createStaged() {
                        held.withUnsafeBytes { write($0, to: descriptor) }
                        finishStaged(descriptor)
                    }
                case .none:
                    break
                }
                destination = .none
            case .stop:
                switch destination {
                case .staged(let descriptor), .held(let descriptor): Foundation.close(descriptor)
                case .none: break
                }
                target?.closeAll()
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


/// A merge's target, read to tell which members it already holds. Directories are opened one
/// component at a time without following symbolic links, and those of the previous file are
/// kept open (members come grouped by directory), so each probe costs an open or two; a
/// directory the target lacks is remembered as absent until the members leave it. A symbolic
/// link or a file where a directory belongs makes the member staged, and the merge that places
/// it reports and keeps the target's; anything it cannot read is remembered (`unreadable`), so
/// that the restore refuses before placing anything.
final class TargetFiles {
    private let rootPath: String
    private var root: Int32
    /// The first directory or file of the target that could not be opened for another reason
    /// than being absent, a symbolic link or not a directory; read once the writer stopped.
    private(set) var unreadable: (path: String, errno: Errno)?
    /// The directories of the previous probe, outermost first; -1 where one could not be opened.
    private var opened: [(name: String, descriptor: Int32)] = []

    init(root: Int32, path: String) {
        self.root = root
        rootPath = path
    }

    deinit { closeAll() }

    /// The target's regular file at `path`, opened for reading, if it has exactly `size` bytes.
    func openFile(_ path: StorePath, size: UInt64) -> Int32? {
        let components = path.components
        guard let name = components.last else { return nil }
        let parents = components.dropLast()
        var common = 0
        while common < min(parents.count, opened.count), opened[common].name == parents[parents.startIndex + common] { common += 1 }
        while opened.count > common { Foundation.close(opened.removeLast().descriptor) }
        if opened.contains(where: { $0.descriptor < 0 }) { return nil }
        for component in parents.dropFirst(common) {
            let descriptor = openat(opened.last?.descriptor ?? root, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            opened.append((component, descriptor))
            if descriptor < 0 {
                noteFailure(opened.map(\.name))
                return nil
            }
        }
        let descriptor = openat(opened.last?.descriptor ?? root, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            noteFailure(opened.map(\.name) + [name])
            return nil
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, UInt64(info.st_size) == size else {
            Foundation.close(descriptor)
            return nil
        }
        return descriptor
    }

    /// Remembers the first path that failed to open for a reason other than absence, a symbolic
    /// link (ELOOP) or a file where a directory belongs (ENOTDIR), which the merge reports.
    private func noteFailure(_ components: [String]) {
        let failure = Errno.current
        guard unreadable == nil, ![ENOENT, ELOOP, ENOTDIR].contains(failure.rawValue) else { return }
        unreadable = (rootPath + "/" + components.joined(separator: "/"), failure)
    }

    /// Whether the file open at `descriptor` holds exactly `bytes`, read one byte past them.
    static func holds(_ descriptor: Int32, exactly bytes: [UInt8]) -> Bool {
        var theirs = [UInt8](repeating: 0, count: bytes.count + 1)
        let count = theirs.withUnsafeMutableBytes { try? SystemCall.readFully(descriptor, into: $0) }
        return count == bytes.count && theirs.prefix(bytes.count).elementsEqual(bytes)
    }

    /// Closes every descriptor; the writer calls it when it stops, `deinit` if it never did.
    func closeAll() {
        for directory in opened where directory.descriptor >= 0 { Foundation.close(directory.descriptor) }
        opened = []
        if root >= 0 { Foundation.close(root) }
        root = -1
    }
}

extension StagingArea.Alike {
    var size: UInt64 {
        switch self {
        case .sameSize(let size), .sameBytes(let size): size
        }
    }
}
