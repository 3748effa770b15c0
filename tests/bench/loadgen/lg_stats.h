/* tests/bench/loadgen/lg_stats.h — latencies kept exactly: every sample is stored, and the
 * percentiles are read from the sorted samples (nearest rank), never estimated. A round of
 * 100,000 messages costs 800 KB of samples and one sort when it ends.
 *
 * Thread rules: the generator has one thread; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_STATS_H
#define JABSHARD_LOADGEN_LG_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp the generator sends or measures. */
static inline uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct lg_samples {
    uint64_t *ns;      /* latencies in nanoseconds, in arrival order until summarized */
    size_t n, cap;
} lg_samples;

typedef struct lg_summary {
    size_t n;
    double p50_ms, p99_ms, max_ms;   /* 0 when n == 0 */
} lg_summary;

void lg_samples_add(lg_samples *s, uint64_t ns);
/* Sorts the samples and reads the percentiles off them: the p-th percentile is the smallest
 * sample with at least p% of the samples at or below it. */
lg_summary lg_samples_summarize(lg_samples *s);
void lg_samples_free(lg_samples *s);

#endif
