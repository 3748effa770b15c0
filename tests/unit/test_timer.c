/* tests/unit/test_timer.c — core/timer: firing order (deadline, then scheduling order), cancel,
 * reschedule earlier and later (the lazy path), re-arming from a callback, 200,000 random timers
 * popping sorted, and a long random mix of operations checked against a simple model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"

/* Records which timers fired, in order. */
typedef struct {
    timer t;
    int id;
} tt;

static int fired[1 << 18];
static size_t nfired;

static void record(timer *t, void *arg)
{
    tt *x = arg;
    assert_false(timer_pending(t));
    fired[nfired++] = x->id;
}

static void setup_timers(tt *ts, int n)
{
    nfired = 0;
    for (int i = 0; i < n; i++) {
        ts[i].id = i;
        timer_init(&ts[i].t, record, &ts[i]);
    }
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void test_order_and_ties(void **state)
{
    tt ts[8];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 8);
    static const uint64_t when[8] = { 50, 30, 50, 10, 30, 50, 10, 70 };
    for (int i = 0; i < 8; i++)
        timer_schedule(&h, &ts[i].t, when[i]);
    assert_int_equal(timer_heap_count(&h), 8);
    uint64_t next = 0;
    assert_true(timer_heap_next(&h, &next));
    assert_int_equal(next, 10);

    assert_int_equal(timer_heap_expire(&h, 9), 0);
    assert_int_equal(timer_heap_expire(&h, 30), 4);
    assert_int_equal(timer_heap_expire(&h, 1000), 4);
    static const int expect[8] = { 3, 6, 1, 4, 0, 2, 5, 7 };
    assert_int_equal(nfired, 8);
    assert_memory_equal(fired, expect, sizeof expect);
    assert_false(timer_heap_next(&h, &next));
    assert_int_equal(timer_heap_count(&h), 0);
    timer_heap_destroy(&h);
}

static void test_cancel(void **state)
{
    tt ts[5];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 5);
    for (int i = 0; i < 5; i++)
        timer_schedule(&h, &ts[i].t, 100 + (uint64_t)i);
    timer_cancel(&h, &ts[0].t);   /* the top */
    timer_cancel(&h, &ts[3].t);   /* a middle one */
    timer_cancel(&h, &ts[3].t);   /* twice: no effect */
    assert_false(timer_pending(&ts[0].t));
    assert_true(timer_pending(&ts[1].t));
    assert_int_equal(timer_heap_count(&h), 3);
    uint64_t next;
    assert_true(timer_heap_next(&h, &next));
    assert_int_equal(next, 101);
    assert_int_equal(timer_heap_expire(&h, 200), 3);
    static const int expect[3] = { 1, 2, 4 };
    assert_int_equal(nfired, 3);
    assert_memory_equal(fired, expect, sizeof expect);
    timer_cancel(&h, &ts[1].t);   /* after firing: no effect */
    assert_int_equal(timer_heap_count(&h), 0);
    timer_heap_destroy(&h);
}

/* A callback that cancels another timer due in the same pass: that one must not fire. */
static tt *victim;
static timer_heap *victim_heap;
static void cancel_victim(timer *t, void *arg)
{
    record(t, arg);
    timer_cancel(victim_heap, &victim->t);
}

static void test_cancel_from_callback(void **state)
{
    tt ts[3];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 3);
    timer_init(&ts[0].t, cancel_victim, &ts[0]);
    victim = &ts[1];
    victim_heap = &h;
    timer_schedule(&h, &ts[0].t, 1);
    timer_schedule(&h, &ts[1].t, 2);
    timer_schedule(&h, &ts[2].t, 3);
    assert_int_equal(timer_heap_expire(&h, 10), 2);
    static const int expect[2] = { 0, 2 };
    assert_memory_equal(fired, expect, sizeof expect);
    timer_heap_destroy(&h);
}

static void test_reschedule_later_is_exact(void **state)
{
    tt ts[3];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 3);
    timer_schedule(&h, &ts[0].t, 10);
    timer_schedule(&h, &ts[1].t, 20);
    timer_schedule(&h, &ts[2].t, 40);
    timer_schedule(&h, &ts[0].t, 30);   /* later: stays in place, lazily */
    assert_int_equal(timer_when(&ts[0].t), 30);
    uint64_t next;
    assert_true(timer_heap_next(&h, &next));
    assert_int_equal(next, 20);         /* the stale 10 is never reported */
    assert_int_equal(timer_heap_expire(&h, 10), 0);
    assert_int_equal(timer_heap_expire(&h, 29), 1);
    assert_int_equal(timer_heap_expire(&h, 30), 1);
    assert_int_equal(timer_heap_expire(&h, 100), 1);
    static const int expect[3] = { 1, 0, 2 };
    assert_memory_equal(fired, expect, sizeof expect);
    timer_heap_destroy(&h);
}

static void test_reschedule_earlier(void **state)
{
    tt ts[4];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 4);
    timer_schedule(&h, &ts[0].t, 10);
    timer_schedule(&h, &ts[1].t, 20);
    timer_schedule(&h, &ts[2].t, 30);
    timer_schedule(&h, &ts[3].t, 40);
    timer_schedule(&h, &ts[3].t, 5);
    /* Lazily later, then earlier again but still after the slot's old key. */
    timer_schedule(&h, &ts[0].t, 50);
    timer_schedule(&h, &ts[0].t, 25);
    /* Lazily later, then before its old key. */
    timer_schedule(&h, &ts[2].t, 60);
    timer_schedule(&h, &ts[2].t, 1);
    uint64_t next;
    assert_true(timer_heap_next(&h, &next));
    assert_int_equal(next, 1);
    assert_int_equal(timer_heap_expire(&h, 100), 4);
    static const int expect[4] = { 2, 3, 1, 0 };
    assert_memory_equal(fired, expect, sizeof expect);
    timer_heap_destroy(&h);
}

/* Rescheduling to the same deadline counts as a new scheduling: it moves behind its equals. */
static void test_reschedule_same_deadline_requeues(void **state)
{
    tt ts[3];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 3);
    for (int i = 0; i < 3; i++)
        timer_schedule(&h, &ts[i].t, 10);
    timer_schedule(&h, &ts[0].t, 10);
    assert_int_equal(timer_heap_expire(&h, 10), 3);
    static const int expect[3] = { 1, 2, 0 };
    assert_memory_equal(fired, expect, sizeof expect);
    timer_heap_destroy(&h);
}

/* A callback re-arming its own timer for a due time fires once per expire call, not forever. */
static timer_heap *rearm_heap;
static void rearm(timer *t, void *arg)
{
    record(t, arg);
    timer_schedule(rearm_heap, t, 0);
}

static void test_rearm_in_callback(void **state)
{
    tt ts[2];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 2);
    rearm_heap = &h;
    timer_init(&ts[0].t, rearm, &ts[0]);
    timer_schedule(&h, &ts[0].t, 5);
    timer_schedule(&h, &ts[1].t, 7);
    /* ts[0] fires and re-arms for 0, which becomes 10 (the pass's now) and waits for the next
     * call; ts[1], also due, is not held back. */
    assert_int_equal(timer_heap_expire(&h, 10), 2);
    assert_true(timer_pending(&ts[0].t));
    assert_int_equal(timer_when(&ts[0].t), 10);
    assert_int_equal(timer_heap_expire(&h, 10), 1);
    assert_int_equal(timer_heap_expire(&h, 10), 1);
    static const int expect[4] = { 0, 1, 0, 0 };
    assert_int_equal(nfired, 4);
    assert_memory_equal(fired, expect, sizeof expect);
    timer_cancel(&h, &ts[0].t);
    timer_heap_destroy(&h);
}

/* A callback moving other timers to the past: they wait for the next call, in the order they were
 * moved, and a timer that was already due and untouched still fires in this one. */
static tt *others[2];
static void move_others(timer *t, void *arg)
{
    record(t, arg);
    timer_schedule(rearm_heap, &others[0]->t, 0);    /* pending and due: the lazy path */
    timer_schedule(rearm_heap, &others[1]->t, 2);    /* pending, not due: moves earlier */
}

static void test_schedule_others_from_callback(void **state)
{
    tt ts[4];
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, 4);
    rearm_heap = &h;
    others[0] = &ts[1];
    others[1] = &ts[3];
    timer_init(&ts[0].t, move_others, &ts[0]);
    timer_schedule(&h, &ts[0].t, 1);
    timer_schedule(&h, &ts[1].t, 5);
    timer_schedule(&h, &ts[2].t, 6);
    timer_schedule(&h, &ts[3].t, 100);
    assert_int_equal(timer_heap_expire(&h, 10), 2);
    assert_int_equal(timer_when(&ts[1].t), 10);
    assert_int_equal(timer_when(&ts[3].t), 10);
    assert_int_equal(timer_heap_expire(&h, 10), 2);
    static const int expect[4] = { 0, 2, 1, 3 };
    assert_int_equal(nfired, 4);
    assert_memory_equal(fired, expect, sizeof expect);
    timer_heap_destroy(&h);
}

#define MANY 200000

static uint64_t many_when[MANY];

static void test_many_random_pop_sorted(void **state)
{
    tt *ts = calloc(MANY, sizeof *ts);
    assert_non_null(ts);
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, MANY);
    rng_state = 0x9e3779b97f4a7c15ull;
    /* A range smaller than the count forces many equal deadlines. */
    for (int i = 0; i < MANY; i++) {
        many_when[i] = rng() % 50000;
        timer_schedule(&h, &ts[i].t, many_when[i]);
    }
    assert_int_equal(timer_heap_count(&h), MANY);
    assert_int_equal(timer_heap_expire(&h, UINT64_MAX), MANY);
    assert_int_equal(nfired, MANY);
    char *seen = calloc(MANY, 1);
    assert_non_null(seen);
    for (size_t k = 0; k < nfired; k++) {
        int id = fired[k];
        assert_false(seen[id]);
        seen[id] = 1;
        if (k > 0) {
            int prev = fired[k - 1];
            assert_true(many_when[prev] <= many_when[id]);
            if (many_when[prev] == many_when[id])
                assert_true(prev < id);   /* scheduled in id order */
        }
    }
    free(seen);
    assert_int_equal(timer_heap_count(&h), 0);
    timer_heap_destroy(&h);
    free(ts);
}

/* The model: per timer, pending, deadline and the stamp of its last scheduling. */
#define MODEL_N 4000
static struct {
    int pending;
    uint64_t when, seq;
} model[MODEL_N];

static void test_random_ops_match_model(void **state)
{
    tt *ts = calloc(MODEL_N, sizeof *ts);
    assert_non_null(ts);
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, MODEL_N);
    memset(model, 0, sizeof model);
    rng_state = 0x1234567887654321ull;
    uint64_t now = 1000, seq = 0;
    size_t pending = 0;
    int expect[MODEL_N];
    for (int op = 0; op < 400000; op++) {
        unsigned r = (unsigned)(rng() % 100);
        int i = (int)(rng() % MODEL_N);
        if (r < 45) {
            /* Mostly "push an idle timeout later", sometimes earlier. */
            uint64_t when = now + rng() % 3000;
            timer_schedule(&h, &ts[i].t, when);
            pending += !model[i].pending;
            model[i].pending = 1;
            model[i].when = when;
            model[i].seq = ++seq;
        } else if (r < 60) {
            timer_cancel(&h, &ts[i].t);
            pending -= model[i].pending;
            model[i].pending = 0;
        } else if (r < 62) {
            now += rng() % 200;
            /* Expected: due timers by (deadline, stamp); a selection sort over the model. */
            int n = 0;
            for (int j = 0; j < MODEL_N; j++)
                if (model[j].pending && model[j].when <= now)
                    expect[n++] = j;
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++) {
                    int x = expect[a], y = expect[b];
                    if (model[y].when < model[x].when ||
                        (model[y].when == model[x].when && model[y].seq < model[x].seq)) {
                        expect[a] = y;
                        expect[b] = x;
                    }
                }
            nfired = 0;
            assert_int_equal(timer_heap_expire(&h, now), n);
            assert_memory_equal(fired, expect, (size_t)n * sizeof *expect);
            for (int k = 0; k < n; k++)
                model[expect[k]].pending = 0;
            pending -= (size_t)n;
        } else {
            assert_int_equal(timer_pending(&ts[i].t), model[i].pending);
            if (model[i].pending)
                assert_int_equal(timer_when(&ts[i].t), model[i].when);
            continue;
        }
        assert_int_equal(timer_heap_count(&h), pending);
        if (op % 97 == 0) {
            uint64_t next, best = UINT64_MAX;
            for (int j = 0; j < MODEL_N; j++)
                if (model[j].pending && model[j].when < best)
                    best = model[j].when;
            if (pending) {
                assert_true(timer_heap_next(&h, &next));
                assert_int_equal(next, best);
            } else {
                assert_false(timer_heap_next(&h, &next));
            }
        }
    }
    timer_heap_destroy(&h);
    free(ts);
}

/* Heap memory shrinks after a burst and everything left still fires in order. */
static void test_burst_then_drain(void **state)
{
    enum { N = 5000 };
    tt *ts = calloc(N, sizeof *ts);
    assert_non_null(ts);
    timer_heap h;
    timer_heap_init(&h);
    setup_timers(ts, N);
    for (int i = 0; i < N; i++)
        timer_schedule(&h, &ts[i].t, (uint64_t)(N - i));
    uint32_t big = h.cap;
    for (int i = 0; i < N - 10; i++)
        timer_cancel(&h, &ts[i].t);
    assert_true(h.cap < big);
    assert_int_equal(timer_heap_expire(&h, UINT64_MAX), 10);
    for (int k = 0; k < 10; k++)
        assert_int_equal(fired[k], N - 1 - k);
    timer_heap_destroy(&h);
    free(ts);
}

static void test_now_is_monotonic(void **state)
{
    uint64_t a = timer_now_ms(), b = timer_now_ms();
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ties),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_from_callback),
        cmocka_unit_test(test_reschedule_later_is_exact),
        cmocka_unit_test(test_reschedule_earlier),
        cmocka_unit_test(test_reschedule_same_deadline_requeues),
        cmocka_unit_test(test_rearm_in_callback),
        cmocka_unit_test(test_schedule_others_from_callback),
        cmocka_unit_test(test_many_random_pop_sorted),
        cmocka_unit_test(test_random_ops_match_model),
        cmocka_unit_test(test_burst_then_drain),
        cmocka_unit_test(test_now_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
