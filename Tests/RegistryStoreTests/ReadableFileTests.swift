import Foundation
import RegistryStore
import Testing

/// `openForReading` is part of the storage contract: every driver hands out the whole content
/// in caller-sized reads, refuses symlinks and reports a missing file as such.
@Suite struct ReadableFileTests {
    @Test func everyDriverStreamsIntoTheCallersBuffer() async throws {
        let file = StorePath(relative: "docker/registry/v2/blobs/x/data")!
        for (name, storage) in try await StorageConformanceTests.drivers() {
            let content = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
            try storage.writeAtomically(file, content, modified: Date(timeIntervalSince1970: 1_700_000_000))
            let opened = try storage.openForReading(file)
            #expect(opened.status.size == 10_000, "\(name)")
            var read = Data()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try opened.read(into: $0) }
                if count == 0 { break }
                read.append(contentsOf: buffer[0..<count])
            }
            #expect(read == content, "\(name)")
            #expect(throws: StorageError.notFound(file.parent!.appending("missing")!)) { try storage.openForReading(file.parent!.appending("missing")!) }
        }
        let memory = InMemoryStorage()
        let link = StorePath(relative: "docker/registry/v2/link")!
        memory.addSymlink(link)
        #expect(throws: StorageError.symlinkRefused(link)) { try memory.openForReading(link) }
    }
}
