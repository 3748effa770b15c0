/* xdbsql/breaker.c — the circuit breaker behind xdbsql/breaker.h: a process-wide registry of
 * breakers (one per database server), the prober thread and its retry schedule, the counters and
 * the outage's log lines. */
#include "xdbsql/breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"

#define BREAKER_FIRST_RETRY_MS 250
#define BREAKER_MAX_RETRY_MS 5000
#define BREAKER_REPORT_MS 30000

struct db_breaker {
    /* Guarded by registry_lock. */
    db_breaker *next;
    int holders;
    /* Set at creation, then read-only. */
    char *key;                /* the server's identity: settings that name the same server match */
    char *label;              /* the server as log lines name it */
    const db_driver *driver;
    db_settings settings;     /* what the prober connects with; strings owned */

    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t wake;      /* the prober sleeps on it until its retry time */
    bool open;
    bool prober_running;      /* a prober thread exists; it ends when the breaker closes */
    bool probing;             /* ... and is connecting now */
    bool released;            /* no holder is left: the prober frees the breaker as it ends */
    uint64_t backoff_ms;      /* the current retry interval, before jitter */
    uint64_t retry_at_ms;     /* while open: when the next probe goes */
    uint64_t down_since_ms;
    uint64_t reported_at_ms;  /* the outage's last log line */
    uint64_t failed;          /* requests failed since the outage began */
    uint64_t failed_unreported; /* ... since its last log line */
    uint64_t rng;             /* xorshift64 state for the jitter */
    char last_error[256];     /* the last failed connect's error */
    breaker_stats stats;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static db_breaker *registry;

static uint64_t breaker_clock_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static _Atomic(uint64_t (*)(void)) breaker_clock = breaker_clock_monotonic;

static uint64_t breaker_now(void)
{
    return atomic_load(&breaker_clock)();
}

void breaker_test_set_clock(uint64_t (*now_ms)(void))
{
    atomic_store(&breaker_clock, now_ms ? now_ms : breaker_clock_monotonic);
}

static const char *or_default(const char *s, const char *fallback)
{
    return s && *s ? s : fallback;
}

static const char *dup_or_null(const char *s)
{
    return s ? mem_strdup(s) : NULL;
}

static db_breaker *breaker_new(const db_driver *d, const db_settings *s, const char *key)
{
    db_breaker *b = mem_zalloc(sizeof(*b));
    b->key = mem_strdup(key);
    char label[512];
    if (d == &db_driver_sqlite) {
        snprintf(label, sizeof(label), "sqlite database %s", or_default(s->path, "(default file)"));
    } else {
        char port[16] = "";
        if (s->port > 0)
            snprintf(port, sizeof(port), ":%d", s->port);
        snprintf(label, sizeof(label), "%s database %s at %s%s", d->name,
                 or_default(s->database, "(default)"), or_default(s->host, "(default host)"), port);
    }
    b->label = mem_strdup(label);
    b->driver = d;
    b->settings = (db_settings){d->name, dup_or_null(s->path), dup_or_null(s->host), s->port,
                                dup_or_null(s->user), dup_or_null(s->password),
                                dup_or_null(s->database)};
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &attr);
    pthread_condattr_destroy(&attr);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    b->rng = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)(uintptr_t)b) | 1;
    return b;
}

static void breaker_destroy(db_breaker *b)
{
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    free((char *)b->settings.path);
    free((char *)b->settings.host);
    free((char *)b->settings.user);
    free((char *)b->settings.password);
    free((char *)b->settings.database);
    free(b->key);
    free(b->label);
    free(b);
}

db_breaker *breaker_acquire(const db_settings *s)
{
    const db_driver *d = db_driver_find(s->driver);
    char key[1024];
    if (d == &db_driver_sqlite)
        snprintf(key, sizeof(key), "sqlite\n%s", or_default(s->path, ""));
    else
        snprintf(key, sizeof(key), "%s\n%s\n%d\n%s\n%s", d->name, or_default(s->host, ""),
                 s->port, or_default(s->user, ""), or_default(s->database, ""));
    pthread_mutex_lock(&registry_lock);
    db_breaker *b = registry;
    while (b && strcmp(b->key, key) != 0)
        b = b->next;
    if (!b) {
        b = breaker_new(d, s, key);
        b->next = registry;
        registry = b;
    }
    b->holders++;
    pthread_mutex_unlock(&registry_lock);
    return b;
}

void breaker_release(db_breaker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&registry_lock);
    bool last = --b->holders == 0;
    if (last) {
        db_breaker **p = &registry;
        while (*p != b)
            p = &(*p)->next;
        *p = b->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!last)
        return;
    /* A prober may be in the middle of a connect (up to the driver's timeout): it is not waited
     * for, it frees the breaker when it ends. */
    pthread_mutex_lock(&b->lock);
    bool prober = b->prober_running;
    b->released = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (!prober)
        breaker_destroy(b);
}

/* The wait before the next probe: between half and all of the interval, so that several
 * processes (or SMs) that lost the same server do not all knock at the same moment. */
static void schedule_retry(db_breaker *b, uint64_t now)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    b->retry_at_ms = now + b->backoff_ms / 2 + b->rng % (b->backoff_ms / 2 + 1);
}

/* What one call has to log, gathered under the lock and written after it. */
typedef struct breaker_line {
    enum { LINE_NONE, LINE_DOWN, LINE_STILL_DOWN, LINE_BACK } kind;
    uint64_t down_ms, since_report_ms, failed;
    char error[256];
} breaker_line;

static void write_line(const db_breaker *b, const breaker_line *l)
{
    switch (l->kind) {
    case LINE_NONE:
        break;
    case LINE_DOWN:
        log_warn("storage: %s is unreachable: %s; storage requests fail at once while it is down "
                 "(tried again after %d ms, backing off to every %d s)",
                 b->label, l->error, BREAKER_FIRST_RETRY_MS, BREAKER_MAX_RETRY_MS / 1000);
        break;
    case LINE_STILL_DOWN:
        log_warn("storage: %s still unreachable after %llu s: %llu requests failed in the last "
                 "%llu s (%s)",
                 b->label, (unsigned long long)(l->down_ms / 1000), (unsigned long long)l->failed,
                 (unsigned long long)(l->since_report_ms / 1000), l->error);
        break;
    case LINE_BACK:
        log_info("storage: %s is reachable again after %llu.%llu s down; %llu requests failed "
                 "during the outage",
                 b->label, (unsigned long long)(l->down_ms / 1000),
                 (unsigned long long)(l->down_ms % 1000 / 100), (unsigned long long)l->failed);
        break;
    }
}

/* One more request failed during the outage; every BREAKER_REPORT_MS, that is a log line. */
static void count_failure(db_breaker *b, uint64_t now, breaker_line *line)
{
    b->failed++;
    b->failed_unreported++;
    if (now - b->reported_at_ms < BREAKER_REPORT_MS)
        return;
    *line = (breaker_line){LINE_STILL_DOWN, now - b->down_since_ms, now - b->reported_at_ms,
                           b->failed_unreported, ""};
    snprintf(line->error, sizeof(line->error), "%s", b->last_error);
    b->reported_at_ms = now;
    b->failed_unreported = 0;
}

/* The server answers again (under b->lock). */
static void breaker_close(db_breaker *b, breaker_line *line)
{
    if (!b->open)
        return;
    *line = (breaker_line){LINE_BACK, breaker_now() - b->down_since_ms, 0, b->failed, ""};
    b->open = false;
    pthread_cond_signal(&b->wake);
}

/* Probes the server until it answers (then closes the breaker) or the last holder is gone. */
static void *prober_main(void *arg)
{
    db_breaker *b = arg;
    pthread_mutex_lock(&b->lock);
    while (b->open && !b->released) {
        uint64_t now = breaker_now();
        if (now < b->retry_at_ms) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            uint64_t wait_ms = b->retry_at_ms - now;
            until.tv_sec += (time_t)(wait_ms / 1000);
            until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&b->wake, &b->lock, &until);
            continue;
        }
        b->probing = true;
        b->stats.attempts++;
        pthread_mutex_unlock(&b->lock);
        char err[256] = "";
        drv_conn *c = b->driver->connect(&b->settings, err, sizeof(err));
        if (c)
            b->driver->close(c);
        breaker_line line = {LINE_NONE};
        pthread_mutex_lock(&b->lock);
        b->probing = false;
        if (c) {
            breaker_close(b, &line);
        } else {
            snprintf(b->last_error, sizeof(b->last_error), "%s", err);
            b->backoff_ms = b->backoff_ms * 2 < BREAKER_MAX_RETRY_MS ? b->backoff_ms * 2
                                                                     : BREAKER_MAX_RETRY_MS;
            schedule_retry(b, breaker_now());
        }
        pthread_mutex_unlock(&b->lock);
        write_line(b, &line);
        pthread_mutex_lock(&b->lock);
    }
    b->prober_running = false;
    bool released = b->released;
    pthread_mutex_unlock(&b->lock);
    if (released)
        breaker_destroy(b);
    return NULL;
}

/* Under b->lock, with the breaker open: makes sure a prober runs. When no thread can be started
 * now, the next refused request tries again. */
static void prober_ensure(db_breaker *b)
{
    if (b->prober_running)
        return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    b->prober_running = pthread_create(&thread, &attr, prober_main, b) == 0;
    pthread_attr_destroy(&attr);
}

bool breaker_admit(db_breaker *b, char *err, size_t errlen)
{
    breaker_line line = {LINE_NONE};
    pthread_mutex_lock(&b->lock);
    bool go = !b->open;
    if (go) {
        b->stats.attempts++;
    } else {
        uint64_t now = breaker_now();
        b->stats.refused++;
        snprintf(err, errlen, "%s", b->last_error);
        count_failure(b, now, &line);
        prober_ensure(b);
        /* The prober sleeps by the real clock; under a test's clock it may oversleep. */
        if (now >= b->retry_at_ms && !b->probing)
            pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->lock);
    write_line(b, &line);
    return go;
}

void breaker_connected(db_breaker *b)
{
    breaker_line line = {LINE_NONE};
    pthread_mutex_lock(&b->lock);
    /* A reconnect begun before the outage was noticed, and that worked after all. */
    breaker_close(b, &line);
    pthread_mutex_unlock(&b->lock);
    write_line(b, &line);
}

void breaker_failed(db_breaker *b, const char *error)
{
    breaker_line line = {LINE_NONE};
    pthread_mutex_lock(&b->lock);
    uint64_t now = breaker_now();
    snprintf(b->last_error, sizeof(b->last_error), "%s", error);
    if (!b->open) {
        b->open = true;
        b->stats.outages++;
        b->down_since_ms = b->reported_at_ms = now;
        b->failed = b->failed_unreported = 0;
        b->backoff_ms = BREAKER_FIRST_RETRY_MS;
        schedule_retry(b, now);
        prober_ensure(b);
        line.kind = LINE_DOWN;
        snprintf(line.error, sizeof(line.error), "%s", error);
    }
    /* The outage's first line is never due for a report yet, so one line is enough. */
    count_failure(b, now, &line);
    pthread_mutex_unlock(&b->lock);
    write_line(b, &line);
}

void breaker_stats_get(db_breaker *b, breaker_stats *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->stats;
    out->open = b->open;
    out->probing = b->probing;
    pthread_mutex_unlock(&b->lock);
}
