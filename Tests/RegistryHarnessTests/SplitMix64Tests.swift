import Foundation
import RegistryHarness
import Testing

@Suite struct SplitMix64Tests {
    /// Reference outputs for seed 0 from the published algorithm, so fixtures keep their digests.
    @Test func matchesReferenceStream() {
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(generator.next() == 0x06C4_5D18_8009_454F)
    }

    @Test func bytesAreReproducibleAndExactlySized() {
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        let bytes = first.bytes(count: 13)
        #expect(bytes.count == 13)
        #expect(bytes == second.bytes(count: 13))
        var other = SplitMix64(seed: 43)
        #expect(bytes != other.bytes(count: 13))
    }
}
