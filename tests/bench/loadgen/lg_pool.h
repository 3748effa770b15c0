/* tests/bench/loadgen/lg_pool.h — all the users' connections: logging them in with a bounded
 * number in flight, the warm-up pass, reconnection after the server closes one, and the counts the
 * reports need (who is up, how many dropped, when each last went down).
 *
 * Logins wait in one FIFO queue and at most --login-concurrency are in flight (connect start to
 * bind result or failure); reconnections go through the same queue, so a server that drops
 * everyone is not hit by every user at once more than it would be at start.
 *
 * A user whose first login fails stays down (it counts as failed, and as a sender that is skipped);
 * with --reconnect, one that had logged in and was dropped is queued again --reconnect seconds
 * later, and again after each failed attempt, for as long as the program runs.
 *
 * The cut test hook (lg_pool_cut) closes connections abruptly; each comes back --cut-return ms
 * later (with --sm: resuming its session), or never. Cut users come back on their own, outside
 * the queue and its bound, as phones do after a network switch: a reconnect storm.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_POOL_H
#define JABSHARD_LOADGEN_LG_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/bench/loadgen/lg_conn.h"
#include "tests/bench/loadgen/lg_stats.h"

typedef struct lg_pool lg_pool;

/* A <message/>, an iq result or error, or with --muc a <presence/>; receiver: the index of the user whose connection it
 * arrived on. */
typedef void (*lg_pool_message_fn)(void *ctx, uint32_t receiver, const xml_node *stanza,
                                   xml_arena *arena);

/* The pool takes env's hooks for itself. */
lg_pool *lg_pool_new(lg_env *env);
/* Ends every connection (no hooks) and frees the pool. */
void lg_pool_free(lg_pool *p);
void lg_pool_on_message(lg_pool *p, lg_pool_message_fn fn, void *ctx);

/* Phases: each starts the work and calls evloop_stop when it is all done. If that happened
 * before the call returned (every connect failed at once), it returns false: do not run the
 * loop for it. */
bool lg_pool_warmup(lg_pool *p);   /* every user logs in and out once */
bool lg_pool_login(lg_pool *p);    /* every user logs in */

typedef struct lg_login_result {
    uint32_t users, ok, failed;
    double seconds;                /* first connect start to the last login's end */
    lg_summary latency;            /* over the successful logins */
} lg_login_result;

void lg_pool_login_result(lg_pool *p, lg_login_result *out);
/* Warm-up outcome. */
void lg_pool_warmup_result(const lg_pool *p, uint32_t *ok, uint32_t *failed);

lg_conn *lg_pool_conn(lg_pool *p, uint32_t index);
uint32_t lg_pool_users(const lg_pool *p);
uint32_t lg_pool_connected(const lg_pool *p);
uint64_t lg_pool_drops(const lg_pool *p);        /* logged-in connections that went down, ever */
uint64_t lg_pool_reconnects(const lg_pool *p);   /* logins after a drop that succeeded, ever */
/* Per user: CLOCK_MONOTONIC ns of the last time its connection went down (0: never). */
const uint64_t *lg_pool_last_down(const lg_pool *p);

/* Test hook: cuts the connections of users 0..k-1 that are up (lg_conn_cut); each starts a new
 * login return_ms later (-1: never; 0: as soon as all are cut). Returns how many were cut. */
uint32_t lg_pool_cut(lg_pool *p, uint32_t k, int return_ms);

/* Frees the idle connections' parser memory (core/xmlstream.h). */
void lg_pool_shrink(lg_pool *p);

#endif
