/* tests/unit/test_evloop.c — core/evloop: read and write readiness on real sockets, level
 * triggering, interest toggling (no callbacks while interest is off, callbacks again when it is
 * back), hang-ups, events for an io removed (and freed) earlier in the same batch, timers in
 * deadline order, stop, self-wake, and evloop_wake from 4 threads x 100,000 wakes where every wake
 * is followed by an on-wake callback that sees the waker's counter. Also built with TSan. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/evloop.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

/* ---- read and write readiness ---- */

typedef struct {
    evloop_io io;
    int calls;
    unsigned last;
    char got[64];
    ssize_t n;
} rw_state;

static void read_once(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    rw_state *s = arg;
    s->calls++;
    s->last = events;
    s->n = read(io->fd, s->got, sizeof s->got);
    evloop_stop(loop);
}

static void test_read_readiness(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int sv[2];
    pair(sv);
    rw_state s = { 0 };
    evloop_io_init(&s.io, sv[0], read_once, &s);
    assert_int_equal(evloop_io_set(loop, &s.io, EVLOOP_READ), 0);
    assert_int_equal(evloop_io_interest(&s.io), EVLOOP_READ);
    assert_int_equal(write(sv[1], "ping", 4), 4);
    evloop_run(loop);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last, EVLOOP_READ);
    assert_int_equal(s.n, 4);
    assert_memory_equal(s.got, "ping", 4);
    assert_int_equal(evloop_io_set(loop, &s.io, 0), 0);
    close(sv[0]);
    close(sv[1]);
    evloop_destroy(loop);
}

static void write_once(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    rw_state *s = arg;
    s->calls++;
    s->last = events;
    s->n = write(io->fd, "pong", 4);
    evloop_stop(loop);
}

static void test_write_readiness(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int sv[2];
    pair(sv);
    rw_state s = { 0 };
    evloop_io_init(&s.io, sv[0], write_once, &s);
    /* Readable too (data waiting), but only write interest: only EVLOOP_WRITE is reported. */
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(evloop_io_set(loop, &s.io, EVLOOP_WRITE), 0);
    evloop_run(loop);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last, EVLOOP_WRITE);
    char buf[8];
    assert_int_equal(read(sv[1], buf, sizeof buf), 4);
    assert_memory_equal(buf, "pong", 4);
    evloop_io_set(loop, &s.io, 0);
    close(sv[0]);
    close(sv[1]);
    evloop_destroy(loop);
}

static void never(timer *t, void *arg)
{
    /* Guards tests that rely on wake-ups: the loop would otherwise block for good. */
    fail_msg("the loop slept through a wake-up");
}

/* ---- level triggering and interest toggling ----
 * Data sits unread in the socket. The callback never reads it. The before-sleep hook drives the
 * script by iteration and self-wakes so that no iteration blocks. */

typedef struct {
    evloop_io io;
    int iter;            /* iterations begun */
    int calls;           /* callbacks so far */
    int calls_at[32];    /* iteration of each callback */
    unsigned events_at[32];
} toggle_state;

static void toggle_cb(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    toggle_state *s = arg;
    if (s->calls < 32) {
        s->calls_at[s->calls] = s->iter;
        s->events_at[s->calls] = events;
    }
    s->calls++;
}

static void toggle_script(evloop *loop, void *arg)
{
    toggle_state *s = arg;
    s->iter++;
    switch (s->iter) {
    case 4: /* after callbacks in iterations 1..3: pause reading (backpressure) */
        assert_int_equal(evloop_io_set(loop, &s->io, 0), 0);
        break;
    case 8: /* resume */
        assert_int_equal(evloop_io_set(loop, &s->io, EVLOOP_READ), 0);
        break;
    case 10: /* write interest only: a socket with room is writable */
        assert_int_equal(evloop_io_set(loop, &s->io, EVLOOP_WRITE), 0);
        break;
    case 12: /* both */
        assert_int_equal(evloop_io_set(loop, &s->io, EVLOOP_READ | EVLOOP_WRITE), 0);
        break;
    case 13:
        evloop_stop(loop);
        return;
    }
    evloop_wake(loop);
}

static void test_level_triggered_interest_toggling(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int sv[2];
    pair(sv);
    assert_int_equal(write(sv[1], "unread", 6), 6);
    toggle_state s = { 0 };
    timer guard;
    timer_init(&guard, never, NULL);
    evloop_timer_after(loop, &guard, 60 * 1000);
    evloop_io_init(&s.io, sv[0], toggle_cb, &s);
    assert_int_equal(evloop_io_set(loop, &s.io, EVLOOP_READ), 0);
    evloop_before_sleep(loop, toggle_script, &s);
    evloop_run(loop);
    /* Iterations 1-3: READ each time (level-triggered: the unread data keeps reporting).
     * 4-7: nothing. 8-9: READ. 10-11: WRITE. 12: both. */
    static const int want_iter[] = { 1, 2, 3, 8, 9, 10, 11, 12 };
    static const unsigned want_ev[] = { EVLOOP_READ, EVLOOP_READ, EVLOOP_READ, EVLOOP_READ,
                                        EVLOOP_READ, EVLOOP_WRITE, EVLOOP_WRITE,
                                        EVLOOP_READ | EVLOOP_WRITE };
    assert_int_equal(s.calls, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(s.calls_at[i], want_iter[i]);
        assert_int_equal(s.events_at[i], want_ev[i]);
    }
    evloop_io_set(loop, &s.io, 0);
    close(sv[0]);
    close(sv[1]);
    evloop_destroy(loop);
}

/* ---- hang-up is reported to the interest the handler has ---- */

static void test_hangup(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int sv[2];
    pair(sv);
    rw_state r = { 0 };
    evloop_io_init(&r.io, sv[0], read_once, &r);
    assert_int_equal(evloop_io_set(loop, &r.io, EVLOOP_READ), 0);
    close(sv[1]);
    evloop_run(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, EVLOOP_READ);
    assert_int_equal(r.n, 0);   /* EOF */
    evloop_io_set(loop, &r.io, 0);
    close(sv[0]);
    evloop_destroy(loop);
}

/* ---- an io removed and freed by a callback earlier in the same batch never fires ---- */

typedef struct closer {
    evloop_io io;
    struct closer **other;   /* where the other one lives; NULL once freed */
    int *fired;
} closer;

static void closer_cb(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    closer *c = arg;
    (*c->fired)++;
    closer *victim = *c->other;
    if (victim) {
        assert_int_equal(evloop_io_set(loop, &victim->io, 0), 0);
        close(victim->io.fd);
        *c->other = NULL;
        free(victim);   /* ASan would catch a later dispatch to it */
    }
    evloop_stop(loop);
}

static void test_removed_in_same_batch(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int a[2], b[2];
    pair(a);
    pair(b);
    assert_int_equal(write(a[1], "1", 1), 1);
    assert_int_equal(write(b[1], "2", 1), 1);
    closer *ca = malloc(sizeof *ca), *cb = malloc(sizeof *cb);
    assert_non_null(ca);
    assert_non_null(cb);
    int fired = 0;
    ca->other = &cb;
    cb->other = &ca;
    ca->fired = cb->fired = &fired;
    evloop_io_init(&ca->io, a[0], closer_cb, ca);
    evloop_io_init(&cb->io, b[0], closer_cb, cb);
    assert_int_equal(evloop_io_set(loop, &ca->io, EVLOOP_READ), 0);
    assert_int_equal(evloop_io_set(loop, &cb->io, EVLOOP_READ), 0);
    evloop_run(loop);
    /* Both were ready in the first batch; the first callback freed the other. */
    assert_int_equal(fired, 1);
    assert_true((ca == NULL) != (cb == NULL));
    closer *left = ca ? ca : cb;
    evloop_io_set(loop, &left->io, 0);
    close(left->io.fd);
    free(left);
    close(a[1]);
    close(b[1]);
    evloop_destroy(loop);
}

static void test_set_errors(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    /* epoll refuses regular files: the error comes back and the interest stays 0. */
    FILE *f = tmpfile();
    assert_non_null(f);
    evloop_io io;
    evloop_io_init(&io, fileno(f), read_once, NULL);
    errno = 0;
    assert_int_equal(evloop_io_set(loop, &io, EVLOOP_READ), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(evloop_io_interest(&io), 0);
    assert_int_equal(evloop_io_set(loop, &io, 0), 0);   /* nothing to remove */
    fclose(f);
    evloop_destroy(loop);
}

/* ---- timers ---- */

typedef struct {
    timer t;
    int id;
    int *order;
    int *n;
    evloop *loop;
    int stop_after;
} loop_timer;

static void loop_timer_cb(timer *t, void *arg)
{
    loop_timer *lt = arg;
    lt->order[(*lt->n)++] = lt->id;
    if (*lt->n == lt->stop_after)
        evloop_stop(lt->loop);
}

static void test_timers_in_loop(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int order[8], n = 0;
    static const uint64_t delay[6] = { 30, 10, 20, 10, 0, 40 };
    loop_timer lt[6];
    for (int i = 0; i < 6; i++) {
        lt[i] = (loop_timer){ .id = i, .order = order, .n = &n, .loop = loop, .stop_after = 4 };
        timer_init(&lt[i].t, loop_timer_cb, &lt[i]);
        evloop_timer_after(loop, &lt[i].t, delay[i]);
    }
    evloop_timer_cancel(loop, &lt[2].t);
    uint64_t start = evloop_now(loop);
    evloop_run(loop);
    static const int want[4] = { 4, 1, 3, 0 };
    assert_int_equal(n, 4);
    assert_memory_equal(order, want, sizeof want);
    /* Deadlines are never early. */
    assert_true(evloop_now(loop) >= start + 30);
    assert_true(timer_pending(&lt[5].t));
    assert_false(timer_pending(&lt[2].t));
    evloop_destroy(loop);   /* lt[5] still pending: forgotten */
}

static void stop_now(evloop *loop, void *arg)
{
    (*(int *)arg)++;
    evloop_stop(loop);
}

/* With nothing to wait for, a loop stopped by its before-sleep hook returns instead of blocking. */
static void test_stop_from_before_sleep(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    int calls = 0;
    evloop_before_sleep(loop, stop_now, &calls);
    evloop_run(loop);
    evloop_run(loop);   /* a stopped loop can run again */
    assert_int_equal(calls, 2);
    evloop_destroy(loop);
}

/* ---- wake-ups ---- */

typedef struct {
    int on_wake;
    int timer_fired;
    timer t, guard;
    evloop *loop;
} self_wake_state;

static void count_wake(evloop *loop, void *arg)
{
    ((self_wake_state *)arg)->on_wake++;
}

static void stop_after_wake(evloop *loop, void *arg)
{
    if (((self_wake_state *)arg)->on_wake > 0)
        evloop_stop(loop);
}

static void wake_thrice(timer *t, void *arg)
{
    self_wake_state *s = arg;
    s->timer_fired++;
    evloop_wake(s->loop);
    evloop_wake(s->loop);
    evloop_wake(s->loop);
}

/* Wakes from the loop's own thread, while it is awake: three of them give one on-wake callback,
 * in the next iteration, without the loop blocking first (the guard timer is a minute away). */
static void test_self_wake_coalesces(void **state)
{
    evloop *loop = evloop_create();
    assert_non_null(loop);
    self_wake_state s = { .loop = loop };
    evloop_on_wake(loop, count_wake, &s);
    evloop_before_sleep(loop, stop_after_wake, &s);
    timer_init(&s.t, wake_thrice, &s);
    timer_init(&s.guard, never, NULL);
    evloop_timer_after(loop, &s.t, 0);
    evloop_timer_after(loop, &s.guard, 60 * 1000);
    evloop_run(loop);
    assert_int_equal(s.timer_fired, 1);
    assert_int_equal(s.on_wake, 1);
    /* A wake made before the loop runs is delivered in its first iteration. */
    s.on_wake = 0;
    evloop_wake(loop);
    evloop_run(loop);
    assert_int_equal(s.on_wake, 1);
    evloop_destroy(loop);
}

#define WAKERS 4
#define WAKES 100000

/* Each waker bumps its counter, then wakes the loop. In bursts of random length it then waits until
 * the loop has seen the value of its last wake, so the loop also goes to sleep in between and the
 * eventfd path is exercised, not only the busy path. */
typedef struct {
    evloop *loop;
    _Atomic uint64_t count[WAKERS];      /* written by waker i */
    _Atomic uint64_t observed[WAKERS];   /* written by the loop: the value on_wake last saw */
    uint64_t seen[WAKERS];               /* loop thread only */
    atomic_int lost;                     /* set by the watchdog */
    int backwards;                       /* loop thread only: a counter seen going backwards */
    long on_wakes;                       /* loop thread only */
    timer watchdog;
} wake_test;

typedef struct {
    wake_test *w;
    int id;
} waker_arg;

static void *waker(void *p)
{
    waker_arg *a = p;
    wake_test *w = a->w;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1);
    uint64_t burst_end = 0;
    for (uint64_t i = 1; i <= WAKES; i++) {
        atomic_store_explicit(&w->count[a->id], i, memory_order_relaxed);
        evloop_wake(w->loop);
        if (i >= burst_end) {
            while (atomic_load_explicit(&w->observed[a->id], memory_order_relaxed) < i) {
                if (atomic_load(&w->lost))
                    return NULL;
                sched_yield();
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            burst_end = i + 1 + seed % 1000;
        }
    }
    return NULL;
}

static void wake_test_on_wake(evloop *loop, void *arg)
{
    wake_test *w = arg;
    w->on_wakes++;
    int done = 0;
    for (int i = 0; i < WAKERS; i++) {
        uint64_t v = atomic_load_explicit(&w->count[i], memory_order_relaxed);
        if (v < w->seen[i])
            w->backwards++;
        w->seen[i] = v;
        atomic_store_explicit(&w->observed[i], v, memory_order_relaxed);
        done += v == WAKES;
    }
    if (done == WAKERS)
        evloop_stop(loop);
}

static void wake_test_watchdog(timer *t, void *arg)
{
    wake_test *w = arg;
    atomic_store(&w->lost, 1);
    evloop_stop(w->loop);
}

static void test_cross_thread_wakes(void **state)
{
    wake_test *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->loop = evloop_create();
    assert_non_null(w->loop);
    evloop_on_wake(w->loop, wake_test_on_wake, w);
    /* Only a lost wake-up can leave the loop asleep this long (each waker's last wake, or a burst
     * end it waits on, would go unseen): fail then rather than hang. */
    timer_init(&w->watchdog, wake_test_watchdog, w);
    evloop_timer_after(w->loop, &w->watchdog, 120 * 1000);
    pthread_t th[WAKERS];
    waker_arg args[WAKERS];
    for (int i = 0; i < WAKERS; i++) {
        args[i] = (waker_arg){ w, i };
        assert_int_equal(pthread_create(&th[i], NULL, waker, &args[i]), 0);
    }
    evloop_run(w->loop);
    for (int i = 0; i < WAKERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(atomic_load(&w->lost), 0);
    assert_int_equal(w->backwards, 0);
    for (int i = 0; i < WAKERS; i++)
        assert_int_equal(w->seen[i], WAKES);
    assert_true(w->on_wakes >= 1 && w->on_wakes <= (long)WAKERS * WAKES);
    print_message("%d x %d wakes: %ld on-wake callbacks\n", WAKERS, WAKES, w->on_wakes);
    evloop_destroy(w->loop);
    free(w);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_readiness),
        cmocka_unit_test(test_write_readiness),
        cmocka_unit_test(test_level_triggered_interest_toggling),
        cmocka_unit_test(test_hangup),
        cmocka_unit_test(test_removed_in_same_batch),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_timers_in_loop),
        cmocka_unit_test(test_stop_from_before_sleep),
        cmocka_unit_test(test_self_wake_coalesces),
        cmocka_unit_test(test_cross_thread_wakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
