/* tests/bench/loadgen/lg_account.h — the ledger of one message round: every message sent gets a
 * sequence number (its index in the round) and an entry saying who sent it, to whom, when, and
 * what became of it. Exact, never sampled: a second delivery of a message is a duplicate, an error
 * bounced back for it makes it errored, and what has neither when the round closes is lost.
 *
 * Each message has one outcome, the first that arrives: delivered or errored. A later, different
 * outcome (a delivery after an error, an error after a delivery, a second error) is reported as a
 * conflict and changes nothing; a second delivery is a duplicate and counts in dup.
 *
 * Loss is split by whether the message had a fair chance: lost_stable when sender and receiver
 * were both connected from the send to the close, lost_dropped when either was not. The ledger
 * records at send time whether the receiver was connected; for the rest it is given, at close,
 * each user's last disconnection time (a connection that went down after the send has a later
 * one, however often it came back).
 *
 * Thread rules: one thread; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_ACCOUNT_H
#define JABSHARD_LOADGEN_LG_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/bench/loadgen/lg_stats.h"

typedef struct lg_round {
    uint32_t number;          /* 1-based: what ids and bodies carry */
    uint64_t capacity;        /* entries allocated: the most messages the round may send */
    uint64_t sent, skipped;   /* skipped: sending turns not taken (sender down or backed up) */
    uint64_t received, errored, dup, conflicts;
    uint64_t late, late_dup;  /* deliveries after the close (not in the closed figures) */
    bool closed;
    uint8_t *flags;           /* per message: LG_MSG_* */
    uint32_t *sender, *receiver;
    uint64_t *sent_ns;        /* send time, CLOCK_MONOTONIC */
    lg_samples latency;       /* one per delivery before the close */
} lg_round;

typedef enum {
    LG_ARRIVAL_OK,        /* a first outcome, counted */
    LG_ARRIVAL_DUP,       /* a second delivery: counted in dup (late_dup after the close) */
    LG_ARRIVAL_LATE,      /* a first delivery after the close: counted in late only */
    LG_ARRIVAL_CONFLICT,  /* an outcome that contradicts the first one: counted in conflicts */
    LG_ARRIVAL_UNKNOWN,   /* no such message, or its sender, receiver or time do not match */
} lg_arrival;

typedef struct lg_round_result {
    uint64_t sent, skipped, received, errored, dup;
    uint64_t lost, lost_stable, lost_dropped;
    lg_summary latency;
} lg_round_result;

void lg_round_init(lg_round *r, uint32_t number, uint64_t capacity);
void lg_round_free(lg_round *r);

/* Records a message about to be sent and returns its sequence number; the round must have
 * room (sent < capacity). receiver_up: the receiver's connection was logged in at send time. */
uint64_t lg_round_send(lg_round *r, uint32_t sender, uint32_t receiver, bool receiver_up,
                       uint64_t now_ns);
static inline void lg_round_skip(lg_round *r) { r->skipped++; }

/* A delivery to receiver of message seq, whose body said sender and send time t_ns; the latency
 * is now_ns - t_ns. */
lg_arrival lg_round_deliver(lg_round *r, uint64_t seq, uint32_t sender, uint32_t receiver,
                            uint64_t t_ns, uint64_t now_ns);
/* An error bounced back to sender for message seq. */
lg_arrival lg_round_bounce(lg_round *r, uint64_t seq, uint32_t sender);

/* Messages with no outcome yet. */
static inline uint64_t lg_round_outstanding(const lg_round *r)
{
    return r->sent - r->received - r->errored;
}

/* Closes the round and fills out. last_down_ns[u]: when user u's connection last went down (0:
 * never). Later deliveries count as late. */
void lg_round_close(lg_round *r, const uint64_t *last_down_ns, lg_round_result *out);

#endif
