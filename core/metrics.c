/* core/metrics.c — the Prometheus text format (metrics.h). */
#include "core/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds of the histogram's buckets, in microseconds. */
static const uint64_t bounds[METRICS_BUCKETS] = {50,     100,     250,     500,     1000,
                                                 2500,   5000,    10000,   25000,   50000,
                                                 100000, 250000,  1000000, 10000000};

void metrics_family(buf *b, const char *name, const char *type, const char *help)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(buf *b, const char *name, const char *labels, uint64_t value)
{
    if (labels && *labels)
        buf_appendf(b, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
    else
        buf_appendf(b, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_sample_f(buf *b, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        buf_appendf(b, "%s{%s} %.6f\n", name, labels, value);
    else
        buf_appendf(b, "%s %.6f\n", name, value);
}

void metrics_label(char *out, size_t size, const char *value)
{
    size_t n = 0;
    for (const char *p = value; *p && n + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

void metrics_observe(metrics_histogram *h, uint64_t us)
{
    size_t i = 0;
    while (i < METRICS_BUCKETS && us > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_us += (double)us;
}

void metrics_histogram_write(buf *b, const char *name, const char *labels,
                             const metrics_histogram *h)
{
    const char *sep = labels && *labels ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
        cumulative += h->counts[i];
        if (i < METRICS_BUCKETS)
            buf_appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels ? labels : "", sep,
                        (double)bounds[i] / 1e6, (unsigned long long)cumulative);
        else
            buf_appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels ? labels : "", sep,
                        (unsigned long long)cumulative);
    }
    char full[256];
    snprintf(full, sizeof full, "%s_sum", name);
    metrics_sample_f(b, full, labels, h->sum_us / 1e6);
    snprintf(full, sizeof full, "%s_count", name);
    metrics_sample(b, full, labels, h->count);
}

static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    if (!d)
        return 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0;   /* the directory's own */
}

/* The process's start, seconds since the epoch (/proc/self/stat's starttime after boot). */
static double start_time(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    unsigned long long ticks = 0;
    if (f) {
        char line[1024];
        if (fgets(line, sizeof line, f)) {
            const char *p = strrchr(line, ')');
            /* Fields after the command: state is the 3rd, starttime the 22nd. */
            for (int field = 2; p && field < 22; field++)
                p = strchr(p + 1, ' ');
            if (p)
                sscanf(p + 1, "%llu", &ticks);
        }
        fclose(f);
    }
    struct timespec now, up;
    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_BOOTTIME, &up);
    double boot = (double)now.tv_sec - (double)up.tv_sec;
    return boot + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

void metrics_process(buf *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    unsigned long long vsize = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsize, &rss) != 2)
            vsize = rss = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    metrics_family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    metrics_sample_f(b, "process_cpu_seconds_total", "", cpu);
    metrics_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    metrics_sample(b, "process_resident_memory_bytes", "", rss * (unsigned long long)page);
    metrics_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    metrics_sample(b, "process_virtual_memory_bytes", "", vsize * (unsigned long long)page);
    metrics_family(b, "process_open_fds", "gauge", "Open file descriptors.");
    metrics_sample(b, "process_open_fds", "", open_fds());
    metrics_family(b, "process_max_fds", "gauge", "The open-file limit.");
    metrics_sample(b, "process_max_fds", "", (uint64_t)rl.rlim_cur);
    metrics_family(b, "process_start_time_seconds", "gauge", "Start time, Unix seconds.");
    metrics_sample_f(b, "process_start_time_seconds", "", start_time());
}
