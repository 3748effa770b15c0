/* tests/bench/loadgen/lg_muc_rounds.h — group chat (--muc): every user joins its room (lg_muc.h),
 * then rounds of groupchat messages at fixed offered rates, each delivery to each occupant counted.
 *
 * Join: room r's first user (index r) joins first, alone; when its self-presence says it created
 * the room (status 201), it submits the owner's configuration (an instant room, lg_muc_config) and
 * the room's other users join once the answer came (a new room is locked until then). The others
 * join --muc-join-concurrency at a time, in user order. A join ends at the user's self-presence
 * (status 110) or at a presence error; the phase ends when every join has ended, or when none ended
 * for --timeout seconds (those still waiting fail). Join time: first join sent to last self-presence.
 *
 * Rounds run on the message rounds' clock (lg_pace.h): turn k picks a random user, which sends one
 * groupchat message to its room; a turn whose sender is down, not joined or backed up is skipped.
 * A delivery is expected at every occupant of the sender's room (the sender included: its
 * reflection) that is joined and has stayed up since its join, at the send; a second one at the
 * same occupant is a duplicate, one at a user of another room misrouted, one at a user whose join
 * failed unexpected. Latency runs from the send time (carried in the body) to each arrival. The
 * drain ends early once every expected delivery arrived.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_MUC_ROUNDS_H
#define JABSHARD_LOADGEN_LG_MUC_ROUNDS_H

#include <stdint.h>

#include "core/evloop.h"
#include "tests/bench/loadgen/lg_options.h"
#include "tests/bench/loadgen/lg_pool.h"
#include "tests/bench/loadgen/lg_stats.h"

typedef struct lg_muc_join_result {
    uint32_t users, rooms, joined, failed;
    uint32_t created;              /* rooms whose first join said 201 (and were configured) */
    uint32_t config_errors;        /* owner configurations refused */
    double seconds;                /* first join sent to the last join's end */
    lg_summary latency;            /* join sent to self-presence, over the joined */
} lg_muc_join_result;

typedef struct lg_muc_result {
    uint64_t sent, skipped;                /* messages sent; turns skipped */
    uint64_t expected, delivered;          /* deliveries expected; first arrivals by the close */
    uint64_t dup, misrouted, unexpected;   /* see above */
    uint64_t errored;                      /* messages bounced to their sender */
    lg_summary latency;                    /* send to arrival, over `delivered` */
} lg_muc_result;

typedef struct lg_muc lg_muc;

/* Takes over the pool's message hook (presences too: lg_conn passes them on with --muc). */
lg_muc *lg_muc_new(const lg_options *o, evloop *loop, lg_pool *pool);
void lg_muc_free(lg_muc *m);
/* The join phase, event loop included. */
void lg_muc_join_all(lg_muc *m, lg_muc_join_result *res);
/* One round at rate messages per second, event loop included; fills res and send_seconds. */
void lg_muc_rounds_run(lg_muc *m, double rate, lg_muc_result *res, double *send_seconds);
/* Logs to stderr what arrived outside the rounds' figures (late, foreign, unknown). */
void lg_muc_log_extras(const lg_muc *m);

#endif
