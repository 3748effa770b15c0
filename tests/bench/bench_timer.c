/* tests/bench/bench_timer.c — core/timer costs with 100k and 1M pending timers: schedule, reschedule
 * later (the idle-timeout pattern, lazy), reschedule earlier, cancel, expire, and an idle-timeout
 * simulation where time advances and random connections "read" (push their timeout back) while
 * due timers fire. Prints one line per measurement: `timer <op> <n>: <ns> ns/op`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/timer.h"
#include "tests/support/xorshift.h"

static xorshift rng_gen = {0x853c49e6748fea9bull};
static uint64_t rng(void) { return xorshift_next(&rng_gen); }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t fired;
static void on_fire(timer *t, void *arg)
{
    fired++;
}

/* Re-arms a fired timer at rearm_at; arg is its heap. */
static uint64_t rearm_at;
static void rearm(timer *t, void *arg)
{
    fired++;
    timer_schedule(arg, t, rearm_at);
}

static void report(const char *op, size_t n, uint64_t ns, size_t ops)
{
    printf("timer %s %zu: %.1f ns/op\n", op, n, (double)ns / (double)ops);
}

/* Fisher-Yates, so cancels and reschedules hit the heap in random positions. */
static void shuffle(timer **order, size_t n)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng() % (i + 1));
        timer *tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

static void bench(size_t n)
{
    timer *ts = malloc(n * sizeof *ts);
    timer **order = malloc(n * sizeof *order);
    if (!ts || !order)
        abort();
    for (size_t i = 0; i < n; i++) {
        timer_init(&ts[i], on_fire, NULL);
        order[i] = &ts[i];
    }
    shuffle(order, n);
    const uint64_t base = 1000000, span = 300000;   /* deadlines over five minutes */
    timer_heap h;
    timer_heap_init(&h);

    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        timer_schedule(&h, &ts[i], base + rng() % span);
    report("schedule", n, now_ns() - t0, n);

    t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        timer_schedule(&h, order[i], timer_when(order[i]) + 1 + rng() % span);
    report("reschedule-later", n, now_ns() - t0, n);

    /* Earlier than anything scheduled so far: every one sifts up. */
    t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        timer_schedule(&h, order[i], base - 1 - rng() % span);
    report("reschedule-earlier", n, now_ns() - t0, n);

    shuffle(order, n);
    t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        timer_cancel(&h, order[i]);
    report("cancel", n, now_ns() - t0, n);

    for (size_t i = 0; i < n; i++)
        timer_schedule(&h, &ts[i], base + rng() % span);
    /* Push half of them back lazily, so expire also pays for re-sorting stale slots. */
    for (size_t i = 0; i < n / 2; i++)
        timer_schedule(&h, order[i], timer_when(order[i]) + rng() % span);
    fired = 0;
    t0 = now_ns();
    timer_heap_expire(&h, UINT64_MAX);
    report("expire", n, now_ns() - t0, n);
    if (fired != n || timer_heap_count(&h) != 0)
        abort();

    /* Idle timeouts: all n connections hold a 5-minute timer. Every simulated 100 ms, n/10 random
     * connections read (their timer moves to now + 5 min) and the due timers fire and re-arm (as a
     * ping-then-close would). Cost per operation: reschedules plus fires. */
    uint64_t now = base;
    for (size_t i = 0; i < n; i++) {
        timer_init(&ts[i], rearm, &h);
        timer_schedule(&h, &ts[i], now + rng() % span);
    }
    size_t ops = 0;
    fired = 0;
    t0 = now_ns();
    for (uint64_t step = 0; step < 2 * span / 100; step++) {
        now += 100;
        for (size_t k = 0; k < n / 10; k++)
            timer_schedule(&h, &ts[rng() % n], now + span);
        ops += n / 10;
        rearm_at = now + span;
        timer_heap_expire(&h, now);
    }
    report("idle-mix", n, now_ns() - t0, ops + fired);
    timer_heap_destroy(&h);
    free(order);
    free(ts);
}

int main(void)
{
    bench(100000);
    bench(1000000);
    return 0;
}
