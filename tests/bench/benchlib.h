/* tests/bench/benchlib.h — what the program benchmarks (bench_sm, bench_front) share: clocks, the
 * programs' directory, free loopback ports, a scratch directory, starting and stopping a program
 * by PID, its CPU time and resident memory, reading a stream opening, percentiles. Header-only
 * (static inline): only bench_*.c files have main. */
#ifndef JABSHARD_TESTS_BENCH_BENCHLIB_H
#define JABSHARD_TESTS_BENCH_BENCHLIB_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

static inline void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Where jabshard-sm and jabshard-c2s are: argv[1], else $JABSHARD_BIN, else ../bin next to this
 * program (build/<variant>/bench/../bin). */
static inline void bench_bin_dir(int argc, char **argv, char out[PATH_MAX])
{
    const char *env = getenv("JABSHARD_BIN");
    if (argc > 1) {
        snprintf(out, PATH_MAX, "%s", argv[1]);
    } else if (env && *env) {
        snprintf(out, PATH_MAX, "%s", env);
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        snprintf(out, PATH_MAX, "%s/../bin", dirname(self));
    }
}

/* A TCP port on 127.0.0.1 that nobody listens on right now (the kernel's choice). */
static inline int bench_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* out = dir/name; a path too long for out ends the program. */
static inline void bench_path(char *out, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size) {
        fprintf(stderr, "bench: path too long: %s/%s\n", dir, name);
        exit(1);
    }
}

static inline void bench_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* Copies a program's log to stderr (after a failure). */
static inline void bench_dump_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f)
        return;
    fprintf(stderr, "---- %s\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

/* Starts path with args (NULL-terminated, args[0] the program name), its stdout and stderr going
 * to log_path. Returns the PID. */
static inline pid_t bench_spawn(const char *path, char *const args[], const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench: fork");
        exit(1);
    }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(path, args);
        fprintf(stderr, "bench: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Whether pid has exited (it is reaped then), or is no child of ours any more. */
static inline int bench_exited(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) != 0;
}

/* SIGTERM, up to grace_ms for it to exit, then SIGKILL. Only a child not yet reaped is signalled,
 * so a PID the system has given to another process since is never touched. */
static inline void bench_stop(pid_t pid, unsigned grace_ms)
{
    if (pid <= 0 || bench_exited(pid))
        return;
    kill(pid, SIGTERM);
    for (unsigned waited = 0; waited < grace_ms; waited += 10) {
        if (bench_exited(pid))
            return;
        bench_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Waits until 127.0.0.1:port accepts connections; 0, or -1 after timeout_ms or when pid exited. */
static inline int bench_wait_port(int port, pid_t pid, unsigned timeout_ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0)
            return 0;
        if (bench_exited(pid))
            return -1;
        bench_sleep_ms(20);
    }
    return -1;
}

/* CPU time (user + system) pid has used so far, in seconds; -1 when it cannot be read. */
static inline double bench_cpu_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long utime = 0, stime = 0;
    /* Fields 14 and 15, after the command name in parentheses (which may hold spaces). */
    int ok = f && fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &utime, &stime) == 2;
    if (f)
        fclose(f);
    return ok ? (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK) : -1;
}

/* VmRSS of pid in KiB, or -1. */
static inline long bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* A fresh scratch directory (mode 0755) for configuration, database and logs. */
static inline void bench_scratch_dir(char out[PATH_MAX], const char *name)
{
    snprintf(out, PATH_MAX, "/tmp/jabshard-%s.XXXXXX", name);
    if (!mkdtemp(out)) {
        perror("bench: mkdtemp");
        exit(1);
    }
    chmod(out, 0755);
}

/* Removes the scratch directory and the plain files in it. */
static inline void bench_scratch_remove(const char *dir, const char *const files[])
{
    char path[PATH_MAX];
    for (size_t i = 0; files[i]; i++) {
        bench_path(path, sizeof(path), dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Reads fd (blocking, for a stream opening) into rx until needle appears at or after offset from.
 * Returns its offset, or -1 at end of stream, on an error, a <stream:error/> or after timeout_ms. */
static inline long bench_read_until(int fd, buf *rx, size_t from, const char *needle,
                                    unsigned timeout_ms)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        const char *data = buf_data(rx);
        size_t len = buf_len(rx);
        const char *hit = len > from ? memmem(data + from, len - from, needle, strlen(needle)) : NULL;
        if (hit)
            return (long)(hit - data);
        if (len && memmem(data, len, "<stream:error", 13))
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (bench_now_ns() > deadline || poll(&p, 1, 100) < 0)
            return -1;
        if (!p.revents)
            continue;
        char *room = buf_reserve(rx, 4096);
        ssize_t n = read(fd, room, buf_avail(rx));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return -1;
        if (n > 0)
            buf_commit(rx, (size_t)n);
    }
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of v[0..n), sorted in place. */
static inline uint64_t bench_percentile(uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), bench_cmp_u64);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

#endif
