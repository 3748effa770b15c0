/* tests/unit/test_loadgen_account.c — the load generator's accounting (tests/bench/loadgen/
 * lg_account.c, lg_stats.c): exact nearest-rank percentiles against a reference, and the round
 * ledger's outcomes — delivered, duplicate, bounced, conflicting, late, unknown — and its split of
 * lost messages into lost_stable and lost_dropped from who was connected when.
 *
 * The loadgen is not part of the library, so its modules are compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/random.h"
#include "tests/bench/loadgen/lg_account.c"
#include "tests/bench/loadgen/lg_stats.c"

static void test_percentiles_small(void **state)
{
    lg_samples s = {0};
    lg_summary sum = lg_samples_summarize(&s);
    assert_int_equal(sum.n, 0);
    assert_true(sum.p50_ms == 0 && sum.p99_ms == 0 && sum.max_ms == 0);

    lg_samples_add(&s, 7000000);
    sum = lg_samples_summarize(&s);
    assert_true(sum.p50_ms == 7.0 && sum.p99_ms == 7.0 && sum.max_ms == 7.0);
    lg_samples_free(&s);

    /* 100 samples 1..100 ms, shuffled in: p50 is the 50th, p99 the 99th. */
    for (uint64_t i = 0; i < 100; i++)
        lg_samples_add(&s, ((i * 37) % 100 + 1) * 1000000);
    sum = lg_samples_summarize(&s);
    assert_int_equal(sum.n, 100);
    assert_true(sum.p50_ms == 50.0);
    assert_true(sum.p99_ms == 99.0);
    assert_true(sum.max_ms == 100.0);
    lg_samples_free(&s);

    /* 101 samples: p50 is the 51st (ceil(50.5)), p99 the 100th (ceil(99.99)). */
    for (uint64_t i = 1; i <= 101; i++)
        lg_samples_add(&s, i * 1000000);
    sum = lg_samples_summarize(&s);
    assert_true(sum.p50_ms == 51.0);
    assert_true(sum.p99_ms == 100.0);
    lg_samples_free(&s);
}

static int cmp_u64_ref(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Random samples, more than one growth step: every figure equals the reference's. */
static void test_percentiles_random(void **state)
{
    enum { N = 54321 };
    uint64_t *ref = malloc(N * sizeof(*ref));
    lg_samples s = {0};
    for (size_t i = 0; i < N; i++) {
        ref[i] = random_u64() % 1000000000u;
        lg_samples_add(&s, ref[i]);
    }
    qsort(ref, N, sizeof(*ref), cmp_u64_ref);
    lg_summary sum = lg_samples_summarize(&s);
    assert_int_equal(sum.n, N);
    assert_true(sum.p50_ms == (double)ref[(N * 50 + 99) / 100 - 1] / 1e6);
    assert_true(sum.p99_ms == (double)ref[(N * 99 + 99) / 100 - 1] / 1e6);
    assert_true(sum.max_ms == (double)ref[N - 1] / 1e6);
    lg_samples_free(&s);
    free(ref);
}

/* Four users; user u sends to u + 1. Times are in "ns" from 1000 on. */
static void test_round_outcomes(void **state)
{
    lg_round r;
    lg_round_init(&r, 3, 16);
    assert_int_equal(r.number, 3);
    uint64_t s0 = lg_round_send(&r, 0, 1, true, 1000);
    uint64_t s1 = lg_round_send(&r, 1, 2, true, 1100);
    uint64_t s2 = lg_round_send(&r, 2, 3, true, 1200);
    uint64_t s3 = lg_round_send(&r, 3, 0, true, 1300);
    lg_round_skip(&r);
    assert_int_equal(s0, 0);
    assert_int_equal(s3, 3);
    assert_int_equal(lg_round_outstanding(&r), 4);

    assert_int_equal(lg_round_deliver(&r, s0, 0, 1, 1000, 1500), LG_ARRIVAL_OK);
    assert_int_equal(lg_round_deliver(&r, s0, 0, 1, 1000, 1600), LG_ARRIVAL_DUP);
    /* Wrong receiver, sender, send time, or a number never sent: not this message. */
    assert_int_equal(lg_round_deliver(&r, s1, 1, 3, 1100, 1700), LG_ARRIVAL_UNKNOWN);
    assert_int_equal(lg_round_deliver(&r, s1, 0, 2, 1100, 1700), LG_ARRIVAL_UNKNOWN);
    assert_int_equal(lg_round_deliver(&r, s1, 1, 2, 1101, 1700), LG_ARRIVAL_UNKNOWN);
    assert_int_equal(lg_round_deliver(&r, 4, 0, 1, 1000, 1700), LG_ARRIVAL_UNKNOWN);
    /* A bounce, then a delivery of the same message: the first outcome stands. */
    assert_int_equal(lg_round_bounce(&r, s1, 1), LG_ARRIVAL_OK);
    assert_int_equal(lg_round_deliver(&r, s1, 1, 2, 1100, 1800), LG_ARRIVAL_CONFLICT);
    assert_int_equal(lg_round_bounce(&r, s1, 1), LG_ARRIVAL_CONFLICT);
    assert_int_equal(lg_round_bounce(&r, s0, 0), LG_ARRIVAL_CONFLICT);
    assert_int_equal(lg_round_bounce(&r, s2, 0), LG_ARRIVAL_UNKNOWN);   /* not 0's message */
    assert_int_equal(lg_round_outstanding(&r), 2);

    uint64_t last_down[4] = {0};
    lg_round_result res;
    lg_round_close(&r, last_down, &res);
    assert_int_equal(res.sent, 4);
    assert_int_equal(res.skipped, 1);
    assert_int_equal(res.received, 1);
    assert_int_equal(res.errored, 1);
    assert_int_equal(res.dup, 1);
    assert_int_equal(res.lost, 2);
    assert_int_equal(res.lost_stable, 2);
    assert_int_equal(res.lost_dropped, 0);
    assert_int_equal(res.latency.n, 1);
    assert_true(res.latency.max_ms == 500 / 1e6);
    assert_int_equal(r.conflicts, 3);

    /* After the close: a first delivery is late, a second a late duplicate; the figures stay. */
    assert_int_equal(lg_round_deliver(&r, s2, 2, 3, 1200, 9000), LG_ARRIVAL_LATE);
    assert_int_equal(lg_round_deliver(&r, s2, 2, 3, 1200, 9100), LG_ARRIVAL_DUP);
    assert_int_equal(lg_round_deliver(&r, s0, 0, 1, 1000, 9200), LG_ARRIVAL_DUP);
    assert_int_equal(r.late, 1);
    assert_int_equal(r.late_dup, 2);
    assert_int_equal(r.dup, 1);
    assert_int_equal(r.received, 1);
    lg_round_free(&r);
}

/* Who was connected decides how a lost message counts. */
static void test_round_loss_split(void **state)
{
    lg_round r;
    lg_round_init(&r, 1, 8);
    /* 0: receiver down when sent                                   -> dropped
     * 1: sender went down after the send (at 2500)                 -> dropped
     * 2: receiver went down after the send (at 3000)               -> dropped
     * 3: receiver was down before the send (at 500), up again      -> stable
     * 4: nobody moved                                              -> stable
     * 5: delivered                                                 -> not lost */
    lg_round_send(&r, 4, 5, false, 1000);
    lg_round_send(&r, 1, 2, true, 2000);
    lg_round_send(&r, 6, 3, true, 2000);
    lg_round_send(&r, 7, 0, true, 1000);
    lg_round_send(&r, 5, 6, true, 1000);
    uint64_t s5 = lg_round_send(&r, 6, 7, true, 1000);
    assert_int_equal(lg_round_deliver(&r, s5, 6, 7, 1000, 1500), LG_ARRIVAL_OK);
    uint64_t last_down[8] = {0};
    last_down[1] = 2500;
    last_down[3] = 3000;
    last_down[0] = 500;
    lg_round_result res;
    lg_round_close(&r, last_down, &res);
    assert_int_equal(res.sent, 6);
    assert_int_equal(res.received, 1);
    assert_int_equal(res.lost, 5);
    assert_int_equal(res.lost_dropped, 3);
    assert_int_equal(res.lost_stable, 2);
    lg_round_free(&r);
}

/* A round that sends nothing closes to zeros. */
static void test_round_empty(void **state)
{
    lg_round r;
    lg_round_init(&r, 1, 0);
    lg_round_skip(&r);
    lg_round_result res;
    uint64_t last_down[1] = {0};
    lg_round_close(&r, last_down, &res);
    assert_int_equal(res.sent, 0);
    assert_int_equal(res.skipped, 1);
    assert_int_equal(res.lost, 0);
    assert_int_equal(res.latency.n, 0);
    lg_round_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_small),
        cmocka_unit_test(test_percentiles_random),
        cmocka_unit_test(test_round_outcomes),
        cmocka_unit_test(test_round_loss_split),
        cmocka_unit_test(test_round_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
