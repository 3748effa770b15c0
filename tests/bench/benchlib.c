/* tests/bench/benchlib.c — the program benchmarks' shared helpers (benchlib.h). */
#include "tests/bench/benchlib.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smproto/frame.h"
#include "smproto/handshake.h"
#include "tests/support/net.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void bench_bin_dir(int argc, char **argv, char out[PATH_MAX])
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

int bench_free_port(void)
{
    int port = net_free_port();
    if (port < 0) {
        perror("bench: free port");
        exit(1);
    }
    return port;
}

void bench_path(char *out, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size) {
        fprintf(stderr, "bench: path too long: %s/%s\n", dir, name);
        exit(1);
    }
}

void bench_dump_file(const char *path)
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

pid_t bench_spawn(const char *path, char *const args[], const char *log_path)
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

int bench_exited(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) != 0;
}

void bench_stop(pid_t pid, unsigned grace_ms)
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

int bench_wait_port(int port, pid_t pid, unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
        int fd = net_connect(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (bench_exited(pid))
            return -1;
        bench_sleep_ms(20);
    }
    return -1;
}

double bench_cpu_s(pid_t pid)
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

double bench_thread_cpu_s(pid_t pid, pid_t tid)
{
    /* schedstat's first field is the time on a CPU in ns: finer than stat's clock ticks. */
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    unsigned long long ns;
    int ok = f && fscanf(f, "%llu", &ns) == 1;
    if (f)
        fclose(f);
    return ok ? (double)ns / 1e9 : -1;
}

long bench_rss_kib(pid_t pid)
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

long bench_read_until(int fd, buf *rx, size_t from, const char *needle, unsigned timeout_ms)
{
    /* In slices, to give up at once when the peer refused with a stream error. */
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        long at = net_read_until(fd, rx, from, needle, 100);
        if (at >= 0)
            return at;
        if (errno != ETIMEDOUT || bench_now_ns() > deadline ||
            (buf_len(rx) && memmem(buf_data(rx), buf_len(rx), "<stream:error", 13)))
            return -1;
    }
}

long long bench_link_open(int fd, buf *rx, const char *service, const char *secret,
                          const char *instance, unsigned long long acked, const char **why)
{
    buf out = BUF_INIT;
    char digest[SMPROTO_DIGEST_LEN + 1], stream_id[64], version[16];
    long long received = -1;
    *why = "the SM did not finish the handshake (refused, closed or timed out)";
    buf_appendf(&out, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", service);
    long head, head_end, done, sp, sp_end;
    if (!net_write_all(fd, buf_data(&out), buf_len(&out)) ||
        (head = bench_read_until(fd, rx, 0, "<stream:stream", 10000)) < 0 ||
        (head_end = bench_read_until(fd, rx, (size_t)head, ">", 10000)) < 0)
        goto out;
    const char *hdr = buf_data(rx) + head;
    const char *id = memmem(hdr, (size_t)(head_end - head), " id=", 4);
    size_t id_len = id ? strcspn(id + 5, "'\"") : 0;
    if (!id || id_len == 0 || id_len >= sizeof(stream_id)) {
        *why = "no stream id in the SM's header";
        goto out;
    }
    memcpy(stream_id, id + 5, id_len);
    stream_id[id_len] = '\0';
    smproto_handshake_digest(stream_id, secret, digest);
    buf_truncate(&out, 0);
    buf_appendf(&out, "<handshake>%s</handshake>", digest);
    if (!net_write_all(fd, buf_data(&out), buf_len(&out)) ||
        (done = bench_read_until(fd, rx, (size_t)head_end, "<handshake/>", 10000)) < 0)
        goto out;
    buf_truncate(&out, 0);
    buf_appendf(&out, "<smproto xmlns='" SMPROTO_NS "' version='%d' instance='%s' acked='%llu'/>",
                SMPROTO_VERSION, instance, acked);
    if (!net_write_all(fd, buf_data(&out), buf_len(&out)) ||
        (sp = bench_read_until(fd, rx, (size_t)done, "<smproto", 10000)) < 0 ||
        (sp_end = bench_read_until(fd, rx, (size_t)sp, "/>", 10000)) < 0)
        goto out;
    const char *el = buf_data(rx) + sp, *v = memmem(el, (size_t)(sp_end - sp), "version='", 9);
    const char *r = memmem(el, (size_t)(sp_end - sp), "received='", 10);
    size_t vlen = v ? strcspn(v + 9, "'") : 0;
    if (!v || vlen >= sizeof(version) || !r) {
        *why = "the SM's <smproto/> has no version or received count";
        goto out;
    }
    memcpy(version, v + 9, vlen);
    version[vlen] = '\0';
    if (!smproto_version_is_ours(version)) {
        *why = "the SM speaks another smproto version";
        goto out;
    }
    received = strtoll(r + 10, NULL, 10);
    buf_consume(rx, (size_t)sp_end + 2);
out:
    buf_free(&out);
    return received;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t bench_percentile(uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}
