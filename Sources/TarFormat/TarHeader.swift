/// Byte layout of the 512-byte ustar header block (POSIX.1-1988, as extended by pax and GNU).
enum TarHeader {
    static let blockSize = 512

    static let name = 0..<100
    static let mode = 100..<108
    static let uid = 108..<116
    static let gid = 116..<124
    static let size = 124..<136
    static let mtime = 136..<148
    static let checksum = 148..<156
    static let typeflag = 156
    static let magic = 257..<263
    static let version = 263..<265
    static let devmajor = 329..<337
    static let devminor = 337..<345
    static let prefix = 345..<500

    /// Largest value an 11-digit octal size or mtime field holds: sizes from 8 GiB need pax.
    static let maxOctal11: UInt64 = (1 << 33) - 1

    enum TypeFlag {
        static let regular = UInt8(ascii: "0")
        static let regularOld: UInt8 = 0
        static let hardlink = UInt8(ascii: "1")
        static let symlink = UInt8(ascii: "2")
        static let characterDevice = UInt8(ascii: "3")
        static let blockDevice = UInt8(ascii: "4")
        static let directory = UInt8(ascii: "5")
        static let fifo = UInt8(ascii: "6")
        static let contiguous = UInt8(ascii: "7")
        static let paxLocal = UInt8(ascii: "x")
        static let paxGlobal = UInt8(ascii: "g")
        static let gnuLongName = UInt8(ascii: "L")
        static let gnuLongLink = UInt8(ascii: "K")
        static let gnuSparse = UInt8(ascii: "S")
    }

    static func paddedSize(_ size: UInt64) -> UInt64 {
        (size + UInt64(blockSize - 1)) & ~UInt64(blockSize - 1)
    }

    /// Sum of the header bytes with the checksum field taken as spaces, unsigned and (as some
    /// historic tars computed it) signed.
    static func checksums(_ block: UnsafeRawBufferPointer) -> (unsigned: Int, signed: Int) {
        var unsigned = 0
        var signed = 0
        for i in 0..<blockSize {
            let byte = checksum.contains(i) ? UInt8(ascii: " ") : block[i]
            unsigned += Int(byte)
            signed += Int(Int8(bitPattern: byte))
        }
        return (unsigned, signed)
    }

    /// Writes `value` as zero-padded octal filling the field but for a terminating NUL.
    static func putOctal(_ value: UInt64, _ field: Range<Int>, in block: UnsafeMutableRawBufferPointer) {
        var v = value
        var i = field.upperBound - 2
        block[field.upperBound - 1] = 0
        while i >= field.lowerBound {
            block[i] = UInt8(ascii: "0") + UInt8(v & 7)
            v >>= 3
            i -= 1
        }
    }

    /// Copies at most `field.count` bytes; a name that fills the field has no NUL, as ustar allows.
    static func putBytes(_ bytes: some Sequence<UInt8>, _ field: Range<Int>, in block: UnsafeMutableRawBufferPointer) {
        var i = field.lowerBound
        for byte in bytes {
            guard i < field.upperBound else { break }
            block[i] = byte
            i += 1
        }
    }

    /// Bytes of a NUL-terminated field.
    static func string(_ field: Range<Int>, in block: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let slice = UnsafeRawBufferPointer(rebasing: block[field])
        let end = slice.firstIndex(of: 0) ?? slice.count
        return UnsafeRawBufferPointer(rebasing: slice[0..<end])
    }

    /// Reads an octal field (leading spaces, ending at space or NUL) or a GNU base-256 field
    /// (high bit set), which GNU tar writes for sizes from 8 GiB. nil if malformed.
    static func number(_ field: Range<Int>, in block: UnsafeRawBufferPointer) -> UInt64? {
        let first = block[field.lowerBound]
        if first & 0x80 != 0 {
            guard first == 0x80 else { return nil }  // negative or too large
            var value: UInt64 = 0
            for i in (field.lowerBound + 1)..<field.upperBound {
                guard value >> 56 == 0 else { return nil }
                value = value << 8 | UInt64(block[i])
            }
            return value
        }
        var i = field.lowerBound
        while i < field.upperBound, block[i] == UInt8(ascii: " ") { i += 1 }
        var value: UInt64 = 0
        while i < field.upperBound {
            let byte = block[i]
            if byte == 0 || byte == UInt8(ascii: " ") { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value >> 60 == 0 else { return nil }
            value = value << 3 | UInt64(byte - UInt8(ascii: "0"))
            i += 1
        }
        return value
    }
}
