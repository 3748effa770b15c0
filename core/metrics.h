/* core/metrics.h — the Prometheus text exposition format (version 0.0.4, which Prometheus,
 * VictoriaMetrics and Grafana Agent scrape), written into a buf: metric families with their HELP
 * and TYPE lines, samples with labels, latency histograms with fixed buckets, and the process's
 * own figures (CPU, memory, open files, start time). Names carry the program's prefix
 * ("jabshard_sm_", "jabshard_c2s_"): docs/operations.md lists them.
 *
 * Thread rules: a histogram belongs to one thread (its writer and its reader: the SM's loop), or
 * is read racily as counters are (a scrape sees a consistent enough picture).
 */
#ifndef JABSHARD_CORE_METRICS_H
#define JABSHARD_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_family(buf *b, const char *name, const char *type, const char *help);
/* One sample: name{labels} value; labels is "" or like "op=\"get\"" (values escaped by the
 * caller with metrics_label when they are not constants). */
void metrics_sample(buf *b, const char *name, const char *labels, uint64_t value);
void metrics_sample_f(buf *b, const char *name, const char *labels, double value);
/* A label value escaped (backslash, quote, newline) into out (size bytes, cut if longer). */
void metrics_label(char *out, size_t size, const char *value);

/* Latency in microseconds, in buckets of 50 µs to 10 s. */
#define METRICS_BUCKETS 14
typedef struct metrics_histogram {
    uint64_t counts[METRICS_BUCKETS + 1];   /* the last: above every bound */
    uint64_t count;
    double sum_us;
} metrics_histogram;
void metrics_observe(metrics_histogram *h, uint64_t us);
/* name_bucket{labels,le=...}, name_sum (seconds), name_count. */
void metrics_histogram_write(buf *b, const char *name, const char *labels,
                             const metrics_histogram *h);

/* process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds: the standard names. */
void metrics_process(buf *b);

#endif
