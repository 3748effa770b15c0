/* tests/bench/loadgen/lg_stats.c — exact latency percentiles over stored samples. */
#include "tests/bench/loadgen/lg_stats.h"

#include <stdlib.h>

#include "core/mem.h"

void lg_samples_add(lg_samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ns = mem_realloc(s->ns, s->cap * sizeof(*s->ns));
    }
    s->ns[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: index ceil(p / 100 * n) - 1, computed in integers so 99% of 100 samples is the
 * 99th, not the 100th after a rounding error. */
static uint64_t rank(const lg_samples *s, unsigned percent)
{
    size_t r = (size_t)(((uint64_t)s->n * percent + 99) / 100);
    return s->ns[r ? r - 1 : 0];
}

lg_summary lg_samples_summarize(lg_samples *s)
{
    lg_summary out = {.n = s->n};
    if (!s->n)
        return out;
    qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
    out.p50_ms = (double)rank(s, 50) / 1e6;
    out.p99_ms = (double)rank(s, 99) / 1e6;
    out.max_ms = (double)s->ns[s->n - 1] / 1e6;
    return out;
}

void lg_samples_free(lg_samples *s)
{
    free(s->ns);
    *s = (lg_samples){0};
}
