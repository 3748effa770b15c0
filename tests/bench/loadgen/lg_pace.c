/* tests/bench/loadgen/lg_pace.c — a round's sending clock and drain (see lg_pace.h). */
#include "tests/bench/loadgen/lg_pace.h"

#include "tests/bench/loadgen/lg_stats.h"

#define LG_TICK_MS 1

static void pace_finish(lg_pace *p)
{
    evloop_timer_cancel(p->loop, &p->tick);
    evloop_timer_cancel(p->loop, &p->drain);
    p->running = false;
    p->hooks.finish(p->ctx);
}

static void pace_on_tick(timer *t, void *arg)
{
    lg_pace *p = arg;
    uint64_t elapsed = lg_now_ns() - p->start_ns;
    uint64_t due = elapsed >= p->round_ns ? p->total_turns
                                          : (uint64_t)(p->rate * (double)elapsed / 1e9);
    if (due > p->total_turns)
        due = p->total_turns;
    while (p->turns < due)
        p->hooks.turn(p->ctx, p->turns++);
    if (p->turns < p->total_turns) {
        evloop_timer_after(p->loop, &p->tick, LG_TICK_MS);
        return;
    }
    p->sending = false;
    p->send_end_ns = lg_now_ns();
    if (!p->drain_s || p->hooks.settled(p->ctx))
        pace_finish(p);
    else
        evloop_timer_after(p->loop, &p->drain, (uint64_t)p->drain_s * 1000);
}

static void pace_on_drain(timer *t, void *arg)
{
    pace_finish(arg);
}

void lg_pace_init(lg_pace *p, evloop *loop, unsigned drain_s, lg_pace_hooks hooks, void *ctx)
{
    *p = (lg_pace){.loop = loop, .drain_s = drain_s, .hooks = hooks, .ctx = ctx};
    timer_init(&p->tick, pace_on_tick, p);
    timer_init(&p->drain, pace_on_drain, p);
}

void lg_pace_start(lg_pace *p, double rate, unsigned seconds)
{
    p->rate = rate;
    p->turns = 0;
    p->total_turns = (uint64_t)(rate * seconds + 0.5);
    p->round_ns = (uint64_t)seconds * 1000000000u;
    p->sending = p->running = true;
    p->start_ns = lg_now_ns();
    pace_on_tick(&p->tick, p);
}

void lg_pace_check(lg_pace *p)
{
    if (p->running && !p->sending && p->hooks.settled(p->ctx))
        pace_finish(p);
}
