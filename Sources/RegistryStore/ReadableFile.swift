import Foundation

/// A file opened for streaming reads. Reads go into the caller's buffer, so large blobs pass
/// from the page cache to an archive without an intermediate copy. One owner, not shared
/// across threads; the file is closed when the value is released.
public protocol StoreReadableFile: AnyObject {
    var path: StorePath { get }
    /// Status taken when the file was opened: the size a reader can rely on for a blob.
    var status: FileStatus { get }
    /// Fills the start of `buffer` and returns how many bytes; 0 at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int
}

/// The single owner of a descriptor opened by `LocalStorage`.
final class DescriptorReadableFile: StoreReadableFile {
    let path: StorePath
    let status: FileStatus
    private let descriptor: Int32

    init(path: StorePath, descriptor: Int32, status: FileStatus) {
        self.path = path
        self.descriptor = descriptor
        self.status = status
    }

    deinit { close(descriptor) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        do {
            return try SystemCall.retrying { Foundation.read(descriptor, base, buffer.count) }
        } catch {
            throw .system(operation: "read", path: path, errno: error)
        }
    }
}

/// Content already in memory, for drivers without descriptors.
final class InMemoryReadableFile: StoreReadableFile {
    let path: StorePath
    let status: FileStatus
    private let data: Data
    private var offset = 0

    init(path: StorePath, data: Data, status: FileStatus) {
        self.path = path
        self.data = data
        self.status = status
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        let count = min(buffer.count, data.count - offset)
        guard count > 0 else { return 0 }
        data.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
        }
        offset += count
        return count
    }
}
