/* tests/support/xorshift.h — the tests' and benchmarks' deterministic generator (Marsaglia's
 * xorshift64): the same seed gives the same sequence on every run, so a randomized test repeats
 * exactly. Not for anything that must be unpredictable (core/random.h is). */
#ifndef JABSHARD_TESTS_XORSHIFT_H
#define JABSHARD_TESTS_XORSHIFT_H

#include <stdint.h>

typedef struct xorshift {
    uint64_t state;   /* the seed, not 0 */
} xorshift;

static inline uint64_t xorshift_next(xorshift *x)
{
    x->state ^= x->state << 13;
    x->state ^= x->state >> 7;
    x->state ^= x->state << 17;
    return x->state;
}

#endif
