/* core/siphash.h — SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit hash of bytes, for hash
 * tables and digests whose keys a peer chooses (with a random key it cannot predict them).
 *
 * Thread rules: none.
 */
#ifndef JABSHARD_CORE_SIPHASH_H
#define JABSHARD_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

#endif
