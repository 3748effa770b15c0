/* xdbsql/breaker.h — the circuit breaker in front of a database server's connects.
 *
 * When a reconnect fails, the server is "down" and the breaker opens: reconnects are refused at
 * once, without touching the network, so a storage request fails in microseconds instead of
 * waiting for the driver's connect timeout. Meanwhile the breaker's own prober thread tries the
 * server on a schedule that backs off from 250 ms, doubling to 5 s, with jitter; the first connect
 * that works closes the breaker, and every connection reconnects on its next request. No request
 * ever waits for a probe, and the return is noticed whether requests come or not.
 *
 * There is one breaker per server (driver, host, port, user, database; for SQLite, the file),
 * shared by every connection to it in the process, so that an outage is noticed, probed and
 * logged once however many workers there are: one warning when it starts, at most one line per
 * 30 s while requests keep failing (with how many did), and one line when the server is back.
 *
 * Thread rules: every function may be called from any thread; a breaker's state is guarded by
 * its own lock. A connection holds its breaker from db_open to db_close (xdbsql/db.c).
 */
#ifndef JABSHARD_XDBSQL_BREAKER_H
#define JABSHARD_XDBSQL_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xdbsql/db.h"

typedef struct db_breaker db_breaker;

typedef struct breaker_stats {
    bool open;          /* the server is down */
    bool probing;       /* the prober is connecting now */
    uint64_t attempts;  /* connects let through: reconnects while closed, and probes */
    uint64_t refused;   /* requests failed at once, without a connect */
    uint64_t outages;   /* times the breaker opened */
} breaker_stats;

/* The breaker of the server s names (its driver must exist), shared by every holder; each
 * acquire needs a release. */
db_breaker *breaker_acquire(const db_settings *s);
void breaker_release(db_breaker *b);

/* Asked before a reconnect: true to go ahead. False while the server is down: the server's last
 * connect error is copied into err, and the refusal counts as one failed request. */
bool breaker_admit(db_breaker *b, char *err, size_t errlen);
/* The outcome of a reconnect that breaker_admit allowed. A failure opens the breaker (if it was
 * not open yet) and counts as one failed request. */
void breaker_connected(db_breaker *b);
void breaker_failed(db_breaker *b, const char *error);

void breaker_stats_get(db_breaker *b, breaker_stats *out);

/* Tests only: drive the retry schedule with a fake clock (milliseconds, monotonic) instead of
 * sleeping; NULL restores the real one. A prober notices a moved clock when it next wakes, or
 * at once when a request finds the retry time has come. Set it while no breaker is open. */
void breaker_test_set_clock(uint64_t (*now_ms)(void));

#endif
