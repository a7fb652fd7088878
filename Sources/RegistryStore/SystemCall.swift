import Foundation

/// The one place that repeats a system call a signal interrupted (EINTR) and turns a failure
/// into an `Errno`: descriptors are read and written through it everywhere, so no caller
/// writes that loop again.
public enum SystemCall {
    /// `call`'s result once it is not a failure, repeated while it fails with EINTR.
    @discardableResult
    public static func retrying(_ call: () -> Int) throws(Errno) -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let failure = Errno.current
            guard failure.rawValue == EINTR else { throw failure }
        }
    }

    /// Reads into `buffer` until it is full or the file ends, from `offset` when given (pread);
    /// returns how many bytes were read.
    public static func readFully(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64? = nil) throws(Errno) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var filled = 0
        while filled < buffer.count {
            let count = try retrying {
                if let offset {
                    Foundation.pread(descriptor, base + filled, buffer.count - filled, off_t(offset + Int64(filled)))
                } else {
                    Foundation.read(descriptor, base + filled, buffer.count - filled)
                }
            }
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    /// Writes all of `bytes`.
    public static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        guard let base = bytes.baseAddress else { return }
        var written = 0
        while written < bytes.count {
            written += try retrying { Foundation.write(descriptor, base + written, bytes.count - written) }
        }
    }
}
