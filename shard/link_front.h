/* shard/link_front.h — the front's SM-link thread: the one TCP connection from a jabshard-c2s to
 * the SM (docs/smproto.md), and the rings between it and the IO threads.
 *
 * The thread connects (retrying with backoff, never blocking anyone else), does the XEP-0114
 * opening and handshake, asks for frames, and from then on only moves frames: from each IO
 * thread's outbound ring to the socket, batched into writev calls, and from the socket to the IO
 * thread that owns each frame's session (smproto_sid_shard). It never parses XML after the switch.
 * Custody (docs/smproto.md §3): every counted frame it sends stays in memory until the SM
 * acknowledges it (ACK); it acknowledges what it takes from the SM after each read. While the link
 * is down it holds what the IO threads send, after what the SM had not acknowledged, up to
 * <sm><hold> bytes; past that link_front_congested() turns true and the IO threads answer senders
 * with a stanza error. After every (re)connection it asks each IO thread to re-announce its bound
 * sessions (RESYNC), then sends what it held but what the SM says it received, less the logins and
 * binds the IO threads asked again in their resync.
 *
 * Standbys (<sm><standby>): a connection attempt that fails moves the next one to the next SM of
 * the configuration, in order, wrapping around; a link that was up is tried again on its own SM
 * first. Once linked, a front stays on that SM until it fails. To the SM a front that moved to it
 * is a front after an SM restart: it resyncs and sends again what the old SM had not acknowledged.
 *
 * Ring entries are link_msg pointers; whoever pops one owns it (link_msg_free). Each ring holds
 * cfg->ring_size - 1 of them.
 *
 * Thread rules: link_front_new/attach/start/stop run on the main thread; the IO-thread side of a
 * shard's rings (push to to_link, pop from from_link, link_front_io_*) on that IO thread only; the
 * rest of the state belongs to the link thread.
 */
#ifndef JABSHARD_SMPROTO_LINK_FRONT_H
#define JABSHARD_SMPROTO_LINK_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/evloop.h"
#include "core/outq.h"
#include "core/ring.h"
#include "shard/front_config.h"

typedef enum {
    LINK_MSG_FRAMES,       /* both ways: whole frames, blk bytes [off, off + len); link → IO: one frame */
    LINK_MSG_RESYNC_ASK,   /* link → IO: answer with LINK_MSG_RESYNC */
    LINK_MSG_RESYNC,       /* IO → link: RESYNC frames for every bound session (blk may be NULL);
                            * what the IO thread sent before it is held until after the resync */
} link_msg_kind;

typedef struct link_msg {
    struct link_msg *next;  /* for the owner's private lists */
    link_msg_kind kind;
    outq_block *blk;        /* one reference, the message's */
    size_t off, len;
    uint64_t epoch;         /* RESYNC_ASK / RESYNC: which connection the resync is for; IO → link
                             * FRAMES: the last resync the IO thread had answered */
    uint64_t last_seq;      /* link thread: the number of its last counted frame once sent, or 0 */
} link_msg;

link_msg *link_msg_new(link_msg_kind kind, outq_block *blk, size_t off, size_t len);
void link_msg_free(link_msg *m);

typedef struct link_front link_front;

/* Counters, read with relaxed atomics from any thread (for logs and tests). */
typedef struct link_front_stats {
    uint64_t connects, disconnects, frames_in, frames_out, bad_shard, held_bytes;
    uint64_t resent;       /* counted frames sent again after a reconnect */
    uint64_t ring_full;    /* frames for an IO thread that waited because its ring was full */
    uint64_t switches;     /* links that came up on another SM than the link before */
    size_t sm;             /* the SM (link_front_sms) the link is on, or tries next */
} link_front_stats;

link_front *link_front_new(const front_config *cfg, unsigned nshards);
/* Before link_front_start: the IO thread loop that consumes shard's from_link ring (woken when
 * frames arrive for it). */
void link_front_attach(link_front *lf, unsigned shard, evloop *io_loop);
/* Starts the thread. Returns 0 or -1 with errno. */
int link_front_start(link_front *lf);
/* Flushes what it can to the SM (briefly), closes the link and joins the thread. */
void link_front_stop(link_front *lf);
void link_front_free(link_front *lf);

/* IO-thread side, for shard's own IO thread only. Push returns false when the ring is full: keep
 * the message and retry after the IO loop is woken (the link thread wakes it when it makes room). */
bool link_front_io_push(link_front *lf, unsigned shard, link_msg *m);
link_msg *link_front_io_pop(link_front *lf, unsigned shard);
/* After pushing a batch: wake the link thread. After popping: let the link thread know there is
 * room (wakes it only if it was waiting for room). */
void link_front_io_pushed(link_front *lf, unsigned shard);
void link_front_io_popped(link_front *lf, unsigned shard);

/* Whether a client stanza should be refused now (link down and the hold full). Any thread. */
bool link_front_congested(const link_front *lf);
bool link_front_up(const link_front *lf);
void link_front_get_stats(const link_front *lf, link_front_stats *out);
/* The configured SMs, in order (front_config's sms). Any thread. */
const front_sm_addr *link_front_sms(const link_front *lf, size_t *n);

/* The SM's entity capabilities per host (shard/server_caps.h), for the IO threads. */
typedef struct server_caps server_caps;
const server_caps *link_front_caps(const link_front *lf);

#endif
