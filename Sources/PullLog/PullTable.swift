#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RegistryModel

/// When a tag moved to each manifest it pointed to, read from the store: the modification
/// times of `tags/<tag>/index/<alg>/<hex>/link` (the registry rewrites that link each time the
/// tag is pushed to that manifest) and of `current/link`.
public struct TagTimeline: Sendable, Hashable {
    /// Oldest first; a manifest appears once, at the last time the tag moved to it.
    public var moves: [Move]
    /// When the tag last moved, and to what: `current/link`.
    public var current: Move

    public struct Move: Sendable, Hashable {
        public var at: Double
        public var digest: Digest
        public init(at: Double, digest: Digest) {
            self.at = at
            self.digest = digest
        }
    }

    /// `moves` need not be sorted; the current manifest is added when its index link is missing.
    public init(moves: [Move], current: Move) {
        var all = moves.filter { $0.digest != current.digest }
        all.append(Move(at: max(current.at, moves.first { $0.digest == current.digest }?.at ?? current.at), digest: current.digest))
        self.moves = all.sorted { $0.at != $1.at ? $0.at < $1.at : $0.digest < $1.digest }
        self.current = current
        currentIsLast = self.moves.last?.digest == current.digest
    }

    /// The last move is to the current manifest (false only when links disagree).
    private let currentIsLast: Bool

    /// The move in force at `time`: the last one at or before it, or the first when the pull
    /// is older than every move (a link rewritten by a later push of the same manifest).
    func moveIndex(at time: Double) -> Int {
        var low = 0
        var high = moves.count
        while low < high {
            let middle = (low + high) / 2
            if moves[middle].at <= time { low = middle + 1 } else { high = middle }
        }
        return max(low - 1, 0)
    }

    /// Whether a pull at `time` (within `precision` seconds) certainly got the manifest of move
    /// `index`: only the current one after its move can be told for sure, as an older move's
    /// time is lost when the tag moves back to that manifest later.
    func isExact(index: Int, time: Double, precision: Double) -> Bool {
        index == moves.count - 1 && currentIsLast && time - precision >= current.at
    }
}

/// One repository, manifest and tag (nil: pulled by digest), with its last pull.
public struct PullRecord: Sendable, Hashable {
    public var repository: RepositoryName
    public var digest: Digest
    public var tag: Tag?
    public var lastPulled: Double
    /// The manifest is certain: pulled by digest, or by a tag that has not moved since.
    public var exact: Bool

    public init(repository: RepositoryName, digest: Digest, tag: Tag?, lastPulled: Double, exact: Bool) {
        self.repository = repository
        self.digest = digest
        self.tag = tag
        self.lastPulled = lastPulled
        self.exact = exact
    }
}

/// The last pull of every repository and reference met in the logs, kept in a hash table
/// keyed by the bytes of `name` and `reference` as they stand in the line: a pull costs a hash
/// and a compare, and a new allocation only the first time a reference is seen. A tag is
/// resolved against the store (once, through `resolve`), and its pulls are binned by the move
/// in force at their time, so memory grows with references and moves, not with lines.
///
/// A struct, with every per-pull value in flat arrays, so that the hot path pays no
/// reference counting and no dynamic exclusivity check.
public struct PullTable {
    /// Reads a tag's moves from the store; nil when the store has no such tag.
    public typealias Resolver = @Sendable (RepositoryName, Tag) -> TagTimeline?

    private enum Target {
        case digest(RepositoryName, Digest)
        /// `timelines[index]`.
        case tag(RepositoryName, Tag, timeline: Int)
        /// Not a valid name or reference, or a tag the store no longer has.
        case unresolved
    }

    private struct Entry {
        var hash: UInt64
        var keyStart: Int
        var keyCount: Int
        /// -1: unresolved; otherwise the first of this entry's bins in `latest` and `precision`.
        var firstBin: Int
        /// Index into `timelines` for a tag, -1 for a digest.
        var timeline: Int
    }

    let resolve: Resolver
    /// Records of tables merged into this one (a second thread's half of a log).
    private var absorbed: [PullRecord] = []
    private var keys: [UInt8] = []
    private var entries: [Entry] = []
    private var targets: [Target] = []
    private var timelines: [TagTimeline] = []
    /// Per move of a tag (one bin for a digest): the latest pull and its precision.
    private var latest: [Double] = []
    private var precision: [Double] = []
    private var unresolvedEntries = 0
    /// How many references that name nothing in the store are remembered.
    static let unresolvedEntryLimit = 65_536
    /// Open addressing: entry index + 1, 0 for empty.
    private var slots = [Int32](repeating: 0, count: 1024)

    /// Pulls whose name or reference is invalid, or whose tag the store does not have.
    public private(set) var unresolvedPulls = 0
    /// Pulls by a tag resolved to a manifest from the tag's history rather than for certain.
    public private(set) var inexactPulls = 0

    public init(resolve: @escaping Resolver) {
        self.resolve = resolve
    }

    /// Records one pull; `name` and `reference` are byte ranges of `p`.
    @inline(__always)
    mutating func add(_ p: UnsafePointer<UInt8>, name: Range<Int>, reference: Range<Int>, time: Double, precision: Double) {
        let hash = Self.hash(p, name, reference)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        let keyCount = name.count + 1 + reference.count
        while true {
            let stored = Int(slots[slot])
            if stored == 0 {
                insert(p, name: name, reference: reference, hash: hash, slot: slot, time: time, precision: precision)
                return
            }
            let index = stored - 1
            if entries[index].hash == hash, entries[index].keyCount == keyCount, matches(index, p, name, reference) {
                record(index, time: time, precision: precision)
                return
            }
            slot = (slot + 1) & mask
        }
    }

    private func matches(_ index: Int, _ p: UnsafePointer<UInt8>, _ name: Range<Int>, _ reference: Range<Int>) -> Bool {
        keys.withUnsafeBufferPointer { stored in
            let base = stored.baseAddress! + entries[index].keyStart
            return memcmp(base, p + name.lowerBound, name.count) == 0
                && memcmp(base + name.count + 1, p + reference.lowerBound, reference.count) == 0
        }
    }

    @inline(__always)
    private mutating func record(_ index: Int, time: Double, precision: Double) {
        let entry = entries[index]
        guard entry.firstBin >= 0 else {
            unresolvedPulls += 1
            return
        }
        var bin = entry.firstBin
        if entry.timeline >= 0 {
            let move = timelines[entry.timeline].moveIndex(at: time)
            if !timelines[entry.timeline].isExact(index: move, time: time, precision: precision) { inexactPulls += 1 }
            bin += move
        }
        if time > latest[bin] {
            latest[bin] = time
            self.precision[bin] = precision
        }
    }

    private mutating func insert(
        _ p: UnsafePointer<UInt8>, name: Range<Int>, reference: Range<Int>, hash: UInt64, slot: Int, time: Double, precision: Double
    ) {
        let nameText = String(decoding: UnsafeBufferPointer(start: p + name.lowerBound, count: name.count), as: UTF8.self)
        let referenceText = String(decoding: UnsafeBufferPointer(start: p + reference.lowerBound, count: reference.count), as: UTF8.self)
        var target = Target.unresolved
        var bins = 0
        var timeline = -1
        if let repository = RepositoryName(nameText) {
            if referenceText.contains(":") {
                if let digest = Digest(referenceText) {
                    target = .digest(repository, digest)
                    bins = 1
                }
            } else if let tag = Tag(referenceText), let moves = resolve(repository, tag) {
                timeline = timelines.count
                timelines.append(moves)
                target = .tag(repository, tag, timeline: timeline)
                bins = moves.moves.count
            }
        }
        if case .unresolved = target {
            guard unresolvedEntries < Self.unresolvedEntryLimit else {
                // A log full of made-up references (a scanner probing tags) must not grow the
                // table without bound: past the limit they are resolved again each time.
                unresolvedPulls += 1
                return
            }
            unresolvedEntries += 1
        }
        let keyStart = keys.count
        keys.append(contentsOf: UnsafeBufferPointer(start: p + name.lowerBound, count: name.count))
        keys.append(0)
        keys.append(contentsOf: UnsafeBufferPointer(start: p + reference.lowerBound, count: reference.count))
        entries.append(Entry(hash: hash, keyStart: keyStart, keyCount: keys.count - keyStart, firstBin: bins > 0 ? latest.count : -1, timeline: timeline))
        targets.append(target)
        latest.append(contentsOf: repeatElement(-.infinity, count: bins))
        self.precision.append(contentsOf: repeatElement(0, count: bins))
        slots[slot] = Int32(entries.count)
        record(entries.count - 1, time: time, precision: precision)
        if entries.count * 2 > slots.count { grow() }
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (index, entry) in entries.enumerated() {
            var slot = Int(truncatingIfNeeded: entry.hash) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(index + 1)
        }
    }

    /// Eight bytes at a time, multiply and rotate: names and references are short.
    @inline(__always)
    private static func hash(_ p: UnsafePointer<UInt8>, _ name: Range<Int>, _ reference: Range<Int>) -> UInt64 {
        let h = mix(p, name, 0x9E37_79B9_7F4A_7C15 ^ UInt64(name.count &* 31 &+ reference.count))
        return mix(p, reference, h)
    }

    @inline(__always)
    private static func mix(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ seed: UInt64) -> UInt64 {
        var h = seed
        var index = range.lowerBound
        while index + 8 <= range.upperBound {
            let word = UnsafeRawPointer(p + index).loadUnaligned(as: UInt64.self)
            h = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < range.upperBound {
            tail |= UInt64(p[index]) << shift
            shift += 8
            index += 1
        }
        h = (h ^ tail ^ 0xA5) &* 0xC4CE_B9FE_1A85_EC53
        return h ^ (h >> 32)
    }

    /// Takes in what another table over the same store found.
    mutating func absorb(_ other: PullTable) {
        absorbed += other.records
        unresolvedPulls += other.unresolvedPulls
        inexactPulls += other.inexactPulls
    }

    /// Every reference seen, with the latest pull of each manifest it resolved to.
    public var records: [PullRecord] {
        guard !absorbed.isEmpty else { return ownRecords }
        struct Key: Hashable {
            var repository: RepositoryName
            var digest: Digest
            var tag: Tag?
        }
        var latest: [Key: PullRecord] = [:]
        for record in ownRecords + absorbed {
            let key = Key(repository: record.repository, digest: record.digest, tag: record.tag)
            if let known = latest[key], known.lastPulled >= record.lastPulled { continue }
            latest[key] = record
        }
        return Array(latest.values)
    }

    private var ownRecords: [PullRecord] {
        var records: [PullRecord] = []
        for (entry, target) in zip(entries, targets) {
            switch target {
            case .unresolved: continue
            case .digest(let repository, let digest):
                records.append(PullRecord(repository: repository, digest: digest, tag: nil, lastPulled: latest[entry.firstBin], exact: true))
            case .tag(let repository, let tag, let index):
                let timeline = timelines[index]
                for move in timeline.moves.indices where latest[entry.firstBin + move] > -.infinity {
                    let time = latest[entry.firstBin + move]
                    records.append(PullRecord(
                        repository: repository, digest: timeline.moves[move].digest, tag: tag, lastPulled: time,
                        exact: timeline.isExact(index: move, time: time, precision: precision[entry.firstBin + move])))
                }
            }
        }
        return records
    }
}
