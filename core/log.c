/* core/log.c — the logger behind core/log.h: line formatting, the output (stderr, file, syslog)
 * and the per-call-site rate limiter.
 *
 * A line is built whole in a stack buffer of at most PIPE_BUF bytes and handed to one write(2), so
 * lines never interleave, even on a pipe. Control characters in the message are escaped (a JID or
 * stanza text must not be able to forge a second log line).
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"

#define LOG_LINE_MAX PIPE_BUF
#define LOG_SITE_SLOTS 1024          /* power of two */
#define LOG_SITE_PROBES 32
#define LOG_REFILL_MS 1000           /* one more line per site per second after the burst */

/* Where lines go. Written only under out_lock held for writing (log_open, log_reopen); every line
 * is emitted under it held for reading, so a log_open from any thread is safe. Writers are
 * preferred so that a busy logger cannot starve log_reopen. */
static pthread_rwlock_t out_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static log_target out_target = LOG_TO_STDERR;
static int out_fd = STDERR_FILENO;
static char *out_path;               /* LOG_TO_FILE only */
static char out_ident[64] = "jabshard";

static atomic_int min_level = LL_INFO;

/* Rate limiting: one token bucket per call site, keyed by the format string's address. The table
 * is a fixed open-addressing hash under site_lock; when it is full (or a probe run is too long),
 * the extra sites share the last slot, so they stay limited, only together. */
typedef struct log_site {
    const char *fmt;                 /* NULL: free slot */
    uint64_t refill_ms;              /* when the bucket last gained a token */
    unsigned tokens;
    unsigned long suppressed;        /* lines dropped since the site last emitted */
} log_site;

static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static log_site sites[LOG_SITE_SLOTS + 1];

static const char *const level_names[] = { "debug", "info", "notice", "warn", "error" };
static const int level_syslog[] = { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR };

static uint64_t log_clock_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t (*log_clock)(void) = log_clock_monotonic;

/* Test hook, deliberately not in log.h: tests/unit/test_log.c drives the rate limiter with a fake
 * clock instead of sleeping. NULL restores the real clock. Every site's history is forgotten; call
 * it while no other thread logs. */
void log_test_set_clock(uint64_t (*now_ms)(void));
void log_test_set_clock(uint64_t (*now_ms)(void))
{
    log_clock = now_ms ? now_ms : log_clock_monotonic;
    pthread_mutex_lock(&site_lock);
    memset(sites, 0, sizeof(sites));
    pthread_mutex_unlock(&site_lock);
}

static log_site *site_find(const char *fmt)
{
    uintptr_t key = (uintptr_t)fmt;
    size_t i = (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 54) & (LOG_SITE_SLOTS - 1);
    for (int probe = 0; probe < LOG_SITE_PROBES; probe++, i = (i + 1) & (LOG_SITE_SLOTS - 1))
        if (sites[i].fmt == fmt || !sites[i].fmt)
            return &sites[i];
    return &sites[LOG_SITE_SLOTS];
}

/* Whether the site may emit a line now; when it may, *suppressed receives (and the site forgets)
 * how many lines it dropped before this one. */
static bool site_admit(const char *fmt, unsigned long *suppressed)
{
    uint64_t now = log_clock();
    bool admit = false;
    pthread_mutex_lock(&site_lock);
    log_site *s = site_find(fmt);
    if (!s->fmt) {
        s->fmt = fmt;
        s->tokens = LOG_BURST;
        s->refill_ms = now;
    } else if (now - s->refill_ms >= LOG_REFILL_MS) {
        uint64_t gained = (now - s->refill_ms) / LOG_REFILL_MS;
        s->tokens = gained >= LOG_BURST - s->tokens ? LOG_BURST : s->tokens + (unsigned)gained;
        s->refill_ms += gained * LOG_REFILL_MS;
    }
    if (s->tokens) {
        s->tokens--;
        *suppressed = s->suppressed;
        s->suppressed = 0;
        admit = true;
    } else {
        s->suppressed++;
    }
    pthread_mutex_unlock(&site_lock);
    return admit;
}

static size_t escaped_len(unsigned char c)
{
    if (c >= 0x20 && c != 0x7f)
        return 1;
    return c == '\n' || c == '\r' || c == '\t' ? 2 : 4;
}

/* Copies msg into out (capacity cap, at least 4), escaping control characters; a message that
 * does not fit is cut, never inside a UTF-8 sequence, and ends with "...". Returns the length. */
static size_t escape_into(char *out, size_t cap, const char *msg)
{
    const unsigned char *p = (const unsigned char *)msg;
    size_t total = 0;
    for (const unsigned char *q = p; *q; q++)
        total += escaped_len(*q);
    size_t room = total <= cap ? cap : cap - 3;
    size_t n = 0;
    for (; *p && n + escaped_len(*p) <= room; p++) {
        unsigned char c = *p;
        if (escaped_len(c) == 1)
            out[n++] = (char)c;
        else if (escaped_len(c) == 2) {
            out[n++] = '\\';
            out[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else {
            static const char hex[] = "0123456789abcdef";
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    if (!*p)
        return n;
    if ((*p & 0xC0) == 0x80) {  /* cut inside a multibyte character: drop its first bytes */
        while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
            n--;
        if (n > 0 && (unsigned char)out[n - 1] >= 0xC0)
            n--;
    }
    memcpy(out + n, "...", 3);
    return n + 3;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;  /* nowhere left to report a failing log */
        }
        buf += w;
        len -= (size_t)w;
    }
}

static void emit(log_level level, const char *msg, unsigned long suppressed)
{
    char suffix[64] = "";
    if (suppressed)
        snprintf(suffix, sizeof(suffix), " (%lu similar line%s suppressed)", suppressed,
                 suppressed == 1 ? "" : "s");
    size_t suffix_len = strlen(suffix);

    char line[LOG_LINE_MAX];
    size_t n = 0;
    pthread_rwlock_rdlock(&out_lock);
    if (out_target != LOG_TO_SYSLOG) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        int w = snprintf(line, 256, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%ld] %s: ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, (int)(ts.tv_nsec / 1000000), out_ident, (long)getpid(),
                         level_names[level]);
        n = w < 256 ? (size_t)w : 255;
    }
    /* Room for the message, the suffix, the newline and the NUL snprintf leaves behind. */
    n += escape_into(line + n, sizeof(line) - n - suffix_len - 2, msg);
    memcpy(line + n, suffix, suffix_len);
    n += suffix_len;
    if (out_target == LOG_TO_SYSLOG) {
        line[n] = '\0';
        syslog(level_syslog[level], "%s", line);
    } else {
        line[n++] = '\n';
        write_all(out_fd, line, n);
    }
    pthread_rwlock_unlock(&out_lock);
}

static void __attribute__((format(printf, 3, 0)))
log_vmsg(log_level level, bool throttled, const char *fmt, va_list ap)
{
    int saved_errno = errno;  /* callers log and then look at errno; %m reads it, too */
    if ((unsigned)level > LL_ERROR)
        level = LL_ERROR;
    unsigned long suppressed = 0;
    if (!log_enabled(level) || (throttled && !site_admit(fmt, &suppressed))) {
        errno = saved_errno;
        return;
    }
    char msg[LOG_LINE_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    emit(level, msg, suppressed);
    errno = saved_errno;
}

void log_msg(log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, true, fmt, ap);
    va_end(ap);
}

void log_msg_unthrottled(log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, false, fmt, ap);
    va_end(ap);
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open(const char *ident, log_target target, const char *target_arg, log_level min)
{
    int fd = STDERR_FILENO;
    if (target == LOG_TO_FILE) {
        if (!target_arg) {
            errno = EINVAL;
            return -1;
        }
        fd = open_file(target_arg);
        if (fd < 0)
            return -1;
    } else if (target != LOG_TO_STDERR && target != LOG_TO_SYSLOG) {
        errno = EINVAL;
        return -1;
    }
    pthread_rwlock_wrlock(&out_lock);
    if (out_target == LOG_TO_FILE)
        close(out_fd);
    if (out_target == LOG_TO_SYSLOG)
        closelog();
    free(out_path);
    out_path = target == LOG_TO_FILE ? mem_strdup(target_arg) : NULL;
    out_fd = fd;
    out_target = target;
    snprintf(out_ident, sizeof(out_ident), "%s", ident ? ident : "jabshard");
    if (target == LOG_TO_SYSLOG)
        openlog(out_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    pthread_rwlock_unlock(&out_lock);
    log_set_level(min);
    return 0;
}

int log_reopen(void)
{
    int rc = 0;
    pthread_rwlock_wrlock(&out_lock);
    if (out_target == LOG_TO_FILE) {
        int fd = open_file(out_path);
        /* dup3 keeps out_fd's number, so nothing that copied it is left with a stale descriptor. */
        if (fd < 0 || dup3(fd, out_fd, O_CLOEXEC) < 0)
            rc = -1;
        if (fd >= 0) {
            int saved = errno;
            close(fd);
            errno = saved;
        }
    }
    pthread_rwlock_unlock(&out_lock);
    return rc;
}

void log_set_level(log_level min)
{
    atomic_store_explicit(&min_level, (int)min, memory_order_relaxed);
}

bool log_enabled(log_level level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

int log_level_parse(const char *name)
{
    for (int i = 0; i <= LL_ERROR; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}
