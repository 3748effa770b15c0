/* shard/iothread.h — the front's IO threads: each owns an event loop, its own SO_REUSEPORT
 * listeners on the plain and direct-TLS ports (and the web listener's, <http>), and a shard of
 * client connections (a table with a prime number of slots). A connection lives its whole life
 * on one thread: socket, TLS, parser (shard/c2s_stream.h; on the web listener shard/web_conn.h
 * and, after an upgrade, shard/websocket.h), timers and output queue are touched by no other
 * thread.
 *
 * Frames for the SM are batched per loop iteration into one ring message to the link thread
 * (shard/link_front.h); frames from the SM are matched to connections by session id, and a
 * frame for a slot whose generation moved on is dropped and counted. A full ring to the link
 * stops every connection of the thread from reading until the link thread makes room.
 *
 * Thread rules: iothread_new/start/join/free on the main thread; iothread_shutdown from any
 * thread; iothread_verify_done on verify workers; everything else runs on the IO thread.
 */
#ifndef JABSHARD_SHARD_IOTHREAD_H
#define JABSHARD_SHARD_IOTHREAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/evloop.h"
#include "core/tls.h"
#include "shard/front_config.h"
#include "shard/ip_limit.h"
#include "shard/verify_pool.h"
#include "shard/link_front.h"

typedef struct iothread iothread;

typedef struct iothread_shared {
    const front_config *cfg;
    /* The limits in force, when they may change (SIGHUP): each IO thread takes the newest at its
     * next loop iteration; NULL: cfg's, for good. What it points to lives until the threads are
     * joined. */
    _Atomic(const front_limits *) *limits;
    tls_server *tls;       /* NULL: no TLS (STARTTLS not offered, no direct-TLS listener) */
    link_front *link;
    verify_pool *verify;
    /* Per-address token buckets (shard/ip_limit.h), one table per kind of event because the
     * events differ: a client behind a NAT shared by many users opens many connections without
     * ever failing a password, and its logins must not be delayed as a guesser's. NULL: no
     * limit of that kind. Clients in <limits><trusted> take from none of them except log_ips. */
    ip_limit *conn_ips;    /* new connections (conn_rate, conn_burst) */
    ip_limit *auth_ips;    /* wrong passwords (ip_auth_failures) */
    ip_limit *reg_ips;     /* account creations (register_burst, register_interval) */
    ip_limit *log_ips;     /* security log lines (shard/front_log.h) */
    /* Every IO thread, set before any starts (a BOSH session lives on one thread and requests
     * for it arrive on any: shard/io_bosh.c posts them to its owner). */
    iothread **threads;
    unsigned nthreads;
} iothread_shared;

/* Failed logins are counted by mechanism and reason (the last entry of each: any other). */
#define IOTHREAD_MECHS 6
#define IOTHREAD_AUTH_REASONS 3
extern const char *const iothread_mech_names[IOTHREAD_MECHS];
extern const char *const iothread_auth_reasons[IOTHREAD_AUTH_REASONS];

typedef struct iothread_stats {
    uint64_t accepted, refused_full, refused_rate, auth_delayed, stale_frames, output_overflows;
    uint64_t pauses;       /* times the ring to the link was full and reading stopped */
    uint64_t duplicates;   /* stanzas a restarted SM sent again, not delivered twice */
    /* XEP-0352 (shard/csi.h): stanzas held for inactive clients, held presences superseded by a
     * newer one (and their bytes, never written), flushes, bytes held then written, and writes
     * to clients saved (superseded, or carried by one write with others). */
    uint64_t csi_held, csi_superseded, csi_superseded_bytes, csi_flushes, csi_flushed_bytes,
        csi_wakeups_saved;
    uint64_t closed;       /* connections ended (open now: accepted - closed) */
    uint64_t authed_now;   /* streams authenticated, open now */
    uint64_t logins;       /* SASL successes */
    uint64_t auth_failed[IOTHREAD_MECHS][IOTHREAD_AUTH_REASONS];
    uint64_t stanzas_in, stanzas_out, bytes_in, bytes_out;  /* clients', both ways */
    /* Web clients (shard/io_web.c, shard/io_bosh.c): WebSocket and BOSH sessions begun and
     * ended (open now: the difference). */
    uint64_t ws_opened, ws_closed, bosh_opened, bosh_closed;
} iothread_stats;

/* Creates the loop and binds the listeners (SO_REUSEPORT, so every thread binds the same ports).
 * Returns NULL with a message in err on failure (port in use, no permission). */
iothread *iothread_new(const iothread_shared *shared, unsigned index, uint32_t slots, char *err,
                       size_t errlen);
evloop *iothread_loop(iothread *t);
int iothread_start(iothread *t);
/* Any thread: every client gets <system-shutdown/>, then the thread's loop ends. */
void iothread_shutdown(iothread *t);
void iothread_join(iothread *t);
void iothread_free(iothread *t);
void iothread_get_stats(const iothread *t, iothread_stats *out);

/* The verify pool's done callback (job->owner is the iothread). */
void iothread_verify_done(verify_job *job);

#endif
