/* tests/bench/loadgen/lg_account.c — the per-round message ledger (see lg_account.h). */
#include "tests/bench/loadgen/lg_account.h"

#include <inttypes.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"
#include "tests/bench/loadgen/lg_stats.h"

/* Lost messages named in the log, per round. */
#define LG_LOST_LOGGED 10

enum {
    LG_MSG_DELIVERED = 1,
    LG_MSG_ERRORED = 2,
    LG_MSG_RECEIVER_DOWN = 4,   /* the receiver was not logged in when the message was sent */
};

void lg_round_init(lg_round *r, uint32_t number, uint64_t capacity)
{
    *r = (lg_round){.number = number, .capacity = capacity};
    /* Zeroed arrays: pages no message reaches are never touched, so a generous capacity is free. */
    size_t n = capacity ? (size_t)capacity : 1;
    r->flags = mem_array(n, sizeof(*r->flags));
    r->sender = mem_array(n, sizeof(*r->sender));
    r->receiver = mem_array(n, sizeof(*r->receiver));
    r->sent_ns = mem_array(n, sizeof(*r->sent_ns));
}

void lg_round_free(lg_round *r)
{
    free(r->flags);
    free(r->sender);
    free(r->receiver);
    free(r->sent_ns);
    lg_samples_free(&r->latency);
    *r = (lg_round){0};
}

uint64_t lg_round_send(lg_round *r, uint32_t sender, uint32_t receiver, bool receiver_up,
                       uint64_t now_ns)
{
    uint64_t seq = r->sent++;
    r->flags[seq] = receiver_up ? 0 : LG_MSG_RECEIVER_DOWN;
    r->sender[seq] = sender;
    r->receiver[seq] = receiver;
    r->sent_ns[seq] = now_ns;
    return seq;
}

lg_arrival lg_round_deliver(lg_round *r, uint64_t seq, uint32_t sender, uint32_t receiver,
                            uint64_t t_ns, uint64_t now_ns)
{
    if (seq >= r->sent || r->sender[seq] != sender || r->receiver[seq] != receiver ||
        r->sent_ns[seq] != t_ns)
        return LG_ARRIVAL_UNKNOWN;
    uint8_t *f = &r->flags[seq];
    if (*f & LG_MSG_DELIVERED) {
        if (r->closed)
            r->late_dup++;
        else
            r->dup++;
        return LG_ARRIVAL_DUP;
    }
    if (*f & LG_MSG_ERRORED) {
        r->conflicts++;
        return LG_ARRIVAL_CONFLICT;
    }
    *f |= LG_MSG_DELIVERED;
    if (r->closed) {
        r->late++;
        return LG_ARRIVAL_LATE;
    }
    r->received++;
    lg_samples_add(&r->latency, now_ns >= t_ns ? now_ns - t_ns : 0);
    return LG_ARRIVAL_OK;
}

lg_arrival lg_round_bounce(lg_round *r, uint64_t seq, uint32_t sender)
{
    if (seq >= r->sent || r->sender[seq] != sender)
        return LG_ARRIVAL_UNKNOWN;
    uint8_t *f = &r->flags[seq];
    if (*f & (LG_MSG_DELIVERED | LG_MSG_ERRORED)) {
        r->conflicts++;
        return LG_ARRIVAL_CONFLICT;
    }
    *f |= LG_MSG_ERRORED;
    if (r->closed)
        return LG_ARRIVAL_LATE;
    r->errored++;
    return LG_ARRIVAL_OK;
}

void lg_round_close(lg_round *r, const uint64_t *last_down_ns, lg_round_result *out)
{
    *out = (lg_round_result){
        .sent = r->sent,
        .skipped = r->skipped,
        .received = r->received,
        .errored = r->errored,
        .dup = r->dup,
    };
    for (uint64_t seq = 0; seq < r->sent; seq++) {
        uint8_t f = r->flags[seq];
        if (f & (LG_MSG_DELIVERED | LG_MSG_ERRORED))
            continue;
        uint64_t t = r->sent_ns[seq];
        if ((f & LG_MSG_RECEIVER_DOWN) || last_down_ns[r->sender[seq]] >= t ||
            last_down_ns[r->receiver[seq]] >= t) {
            out->lost_dropped++;
        } else if (out->lost_stable++ < LG_LOST_LOGGED) {
            /* Which ones, to find them in the servers' logs. */
            log_notice("round %" PRIu32 ": message %" PRIu64 " from user index %" PRIu32
                       " to %" PRIu32 " never arrived (sent %.3f s before the close)",
                       r->number, seq, r->sender[seq], r->receiver[seq],
                       (double)(lg_now_ns() - t) / 1e9);
        }
    }
    out->lost = out->lost_stable + out->lost_dropped;
    out->latency = lg_samples_summarize(&r->latency);
    lg_samples_free(&r->latency);
    r->closed = true;
}
