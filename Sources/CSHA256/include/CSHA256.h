#ifndef CSHA256_H
#define CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has the x86 SHA extensions (with SSSE3 and SSE4.1) the functions below
/// need; 0 elsewhere, where they must not be called.
int csha256_available(void);

/// Runs SHA-256's compression over `blocks` 64-byte blocks of `data`, updating `state`
/// (the eight working words, in FIPS 180-4 order). No padding: the caller pads the last block.
void csha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// The same over two independent messages at once, `blocks` blocks of each, with their
/// rounds interleaved: SHA256RNDS2 has a latency several times its issue interval, and one
/// message's round chain leaves the unit idle that a second message's fills.
void csha256_blocks_x2(uint32_t first[8], const uint8_t *firstData,
                       uint32_t second[8], const uint8_t *secondData, size_t blocks);
/// The same over three messages: 3.5 GB/s a core against 3.0 for two on this project's
/// AMD EPYC (Zen 4) machine. A fourth no longer fits the sixteen registers the SHA
/// instructions can name, and its spills make it slower than three.
void csha256_blocks_x3(uint32_t first[8], const uint8_t *firstData,
                       uint32_t second[8], const uint8_t *secondData,
                       uint32_t third[8], const uint8_t *thirdData, size_t blocks);

#endif
