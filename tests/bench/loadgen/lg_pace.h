/* tests/bench/loadgen/lg_pace.h — the clock of one round, shared by the message rounds
 * (lg_rounds.h) and the publish rounds (lg_pep_rounds.h): a 1 ms timer takes, on each tick, as
 * many sending turns as rate times the time since the round began calls for (late ticks catch
 * up), so a round offers exactly rate x seconds turns; then the drain, which ends after
 * drain_s seconds or as soon as the owner says everything sent is accounted for.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_PACE_H
#define JABSHARD_LOADGEN_LG_PACE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/evloop.h"

typedef struct lg_pace_hooks {
    void (*turn)(void *ctx, uint64_t k);   /* take sending turn k (0-based) */
    bool (*settled)(void *ctx);            /* everything sent has its outcome */
    void (*finish)(void *ctx);             /* the round is over; the pace's timers are stopped */
} lg_pace_hooks;

typedef struct lg_pace {
    evloop *loop;
    unsigned drain_s;
    lg_pace_hooks hooks;
    void *ctx;
    double rate;
    uint64_t start_ns, send_end_ns, round_ns, turns, total_turns;
    bool sending, running;
    timer tick, drain;
} lg_pace;

void lg_pace_init(lg_pace *p, evloop *loop, unsigned drain_s, lg_pace_hooks hooks, void *ctx);
/* Starts a round of rate x seconds turns (rounded); the first tick runs before this returns (and
 * may finish the round). */
void lg_pace_start(lg_pace *p, double rate, unsigned seconds);
/* The owner's outcomes changed: ends the round when sending is over and everything is settled. */
void lg_pace_check(lg_pace *p);
/* Seconds the sending took (valid once the round is over). */
static inline double lg_pace_send_seconds(const lg_pace *p)
{
    return (double)(p->send_end_ns - p->start_ns) / 1e9;
}

#endif
