/* tests/unit/test_sm_custody.c — sm/custody.c alone: inbound numbering from where a link resumes,
 * tickets held and released in any order with the acknowledgement only ever cumulative (a model
 * checks a long random run, far past the initial 256-frame window and across its wrap), the
 * outbound FIFO (acknowledgements release what each frame held; one beyond what was sent is
 * refused), link loss (only unacknowledged STANZAs handed back, in order, each with its origin
 * held during the call), and the life of a retired link: freed exactly when its last ticket is
 * released, also when the holder is a frame on another link or on the link itself. Run under
 * ASan (make SAN=address,undefined) this proves there is no leak and no use after free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sm/custody.h"
#include "tests/support/xorshift.h"

static uint64_t done_of(const custody_link *cl)
{
    custody_stats st;
    custody_get_stats(cl, &st);
    return st.done;
}

static custody_link *idle_link(void)
{
    return custody_link_new(0);
}

/* ---- inbound ------------------------------------------------------------------------------- */

static void test_numbering_resumes(void **state)
{
    custody_link *cl = custody_link_new(41);
    uint64_t n = 0;
    assert_int_equal(custody_received(cl), 41);
    assert_false(custody_ack_due(cl, &n));   /* the resumed count was never ours to tell */
    custody_ticket t = custody_in(cl);
    assert_ptr_equal(t.link, cl);
    assert_int_equal(t.seq, 42);
    assert_int_equal(custody_received(cl), 42);
    assert_false(custody_ack_due(cl, &n));   /* held: not finished */
    custody_release(t);
    assert_true(custody_ack_due(cl, &n));
    assert_int_equal(n, 42);
    assert_false(custody_ack_due(cl, &n));   /* told once */
    custody_stats st;
    custody_get_stats(cl, &st);
    assert_int_equal(st.received, 42);
    assert_int_equal(st.done, 42);
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.acked, 0);
    custody_link_down(cl, NULL, NULL);
}

static void test_out_of_order_releases(void **state)
{
    custody_link *cl = idle_link();
    custody_ticket t[6];
    uint64_t n;
    for (int i = 1; i <= 5; i++)
        t[i] = custody_in(cl);
    custody_hold(t[1]);             /* two holders of the first frame */
    custody_release(t[3]);
    custody_release(t[5]);
    custody_release(t[2]);
    assert_int_equal(done_of(cl), 0);
    assert_false(custody_ack_due(cl, &n));
    custody_release(t[1]);
    assert_int_equal(done_of(cl), 0);   /* still held once */
    custody_release(t[1]);
    assert_int_equal(done_of(cl), 3);   /* 1-3 finished; 4 is not */
    assert_true(custody_ack_due(cl, &n));
    assert_int_equal(n, 3);
    custody_release(t[4]);
    assert_true(custody_ack_due(cl, &n));
    assert_int_equal(n, 5);
    /* A null ticket (a component's stanza) holds nothing. */
    custody_ticket none = {NULL, 0};
    custody_hold(none);
    custody_release(none);
    custody_link_down(cl, NULL, NULL);
}

/* A random run against a model: up to 3000 frames in flight (the window starts at 256 and must
 * grow, several times), holds and releases in any order, numbering starting just below a
 * multiple of 256 so that the circular window wraps from the first frames on. */
static xorshift rng_gen = {0x9e3779b9u};
static uint32_t rng(void) { return (uint32_t)(xorshift_next(&rng_gen) >> 32); }

static void random_run(uint64_t first_in, unsigned max_in_flight, unsigned steps)
{
    custody_link *cl = custody_link_new(first_in);
    size_t cap = max_in_flight + 1;
    uint32_t *holds = calloc(cap, sizeof *holds);   /* model: holds of frame first_in + 1 + i */
    uint64_t *live = calloc(cap, sizeof *live);     /* frames with holds, in no order */
    size_t nlive = 0;
    uint64_t received = first_in, done = first_in, told = first_in, base = first_in + 1;
    size_t peak = 0;
    for (unsigned step = 0; step < steps; step++) {
        unsigned op = rng() % 8;
        bool room = received - done < max_in_flight;
        if ((op < 3 && room) || nlive == 0) {
            if (!room)
                break;
            custody_ticket t = custody_in(cl);
            assert_int_equal(t.seq, ++received);
            holds[(t.seq - base) % cap] = 1;
            live[nlive++] = t.seq;
        } else if (op == 3) {
            uint64_t seq = live[rng() % nlive];
            custody_hold((custody_ticket){cl, seq});
            holds[(seq - base) % cap]++;
        } else if (op < 7) {
            size_t k = rng() % nlive;
            uint64_t seq = live[k];
            custody_release((custody_ticket){cl, seq});
            if (--holds[(seq - base) % cap] == 0)
                live[k] = live[--nlive];
            while (done < received && holds[(done + 1 - base) % cap] == 0)
                done++;
        } else {
            uint64_t n = 0;
            bool due = custody_ack_due(cl, &n);
            assert_int_equal(due, done != told);
            if (due) {
                assert_int_equal(n, done);
                told = done;
            }
        }
        if (received - done > peak)
            peak = received - done;
        assert_int_equal(done_of(cl), done);
        assert_int_equal(custody_received(cl), received);
    }
    assert_true(peak > 256);    /* the window grew */
    /* Finish everything, in random order: everything becomes acknowledgeable, exactly once. */
    while (nlive) {
        size_t k = rng() % nlive;
        uint64_t seq = live[k];
        custody_release((custody_ticket){cl, seq});
        if (--holds[(seq - base) % cap] == 0)
            live[k] = live[--nlive];
    }
    uint64_t n = 0;
    assert_int_equal(done_of(cl), received);
    assert_int_equal(custody_ack_due(cl, &n), received != told);
    if (received != told)
        assert_int_equal(n, received);
    assert_false(custody_ack_due(cl, &n));
    custody_link_down(cl, NULL, NULL);
    free(holds);
    free(live);
}

static void test_window_random_run(void **state)
{
    random_run(250, 3000, 200000);
    random_run((UINT64_C(1) << 40) - 3, 700, 50000);
}

/* Growth with the oldest frame held all along: the window must keep every frame's count. */
static void test_window_growth_keeps_counts(void **state)
{
    custody_link *cl = custody_link_new(200);
    enum { N = 5000 };
    custody_ticket *t = calloc(N, sizeof *t);
    for (int i = 0; i < N; i++) {
        t[i] = custody_in(cl);
        if (i % 3 == 0)
            custody_hold(t[i]);     /* held twice */
    }
    for (int i = 1; i < N; i++)
        custody_release(t[i]);
    assert_int_equal(done_of(cl), 200);   /* the first still holds everything back */
    custody_release(t[0]);
    assert_int_equal(done_of(cl), 200);   /* twice held */
    custody_release(t[0]);
    assert_int_equal(done_of(cl), 203);   /* 204 (i = 3) is held twice */
    for (int i = 3; i < N; i += 3)
        custody_release(t[i]);
    assert_int_equal(done_of(cl), 200 + N);
    uint64_t n;
    assert_true(custody_ack_due(cl, &n));
    assert_int_equal(n, 200 + N);
    custody_link_down(cl, NULL, NULL);
    free(t);
}

/* ---- outbound ------------------------------------------------------------------------------ */

static void test_acks_release_origins(void **state)
{
    custody_link *in = idle_link(), *out = idle_link();
    custody_ticket a = custody_in(in), b = custody_in(in);
    custody_sent(out, a, SMPROTO_STANZA, 7, "<message/>", 10);
    custody_sent(out, a, SMPROTO_BOUND, 7, NULL, 0);
    custody_sent(out, b, SMPROTO_STANZA, 8, "<iq/>", 5);
    custody_release(a);
    custody_release(b);
    assert_int_equal(done_of(in), 0);         /* both wait for out's acknowledgement */
    assert_false(custody_acked(out, 4));      /* beyond what was sent: refused, nothing moves */
    custody_stats st;
    custody_get_stats(out, &st);
    assert_int_equal(st.sent, 3);
    assert_int_equal(st.acked, 0);
    assert_true(custody_acked(out, 1));
    assert_int_equal(done_of(in), 0);         /* a is held by the BOUND too */
    assert_true(custody_acked(out, 2));
    assert_int_equal(done_of(in), 1);
    assert_true(custody_acked(out, 2));       /* the same again: nothing new */
    assert_int_equal(done_of(in), 1);
    assert_true(custody_acked(out, 3));
    assert_int_equal(done_of(in), 2);
    assert_false(custody_acked(out, 4));
    custody_get_stats(out, &st);
    assert_int_equal(st.acked, 3);
    /* Frames sent with no ticket (the SM's own work) hold nothing, and are acknowledged alike. */
    custody_sent(out, (custody_ticket){NULL, 0}, SMPROTO_STANZA, 9, "<presence/>", 11);
    assert_true(custody_acked(out, 4));
    custody_link_down(out, NULL, NULL);
    custody_link_down(in, NULL, NULL);
}

typedef struct back_log {
    int n;
    uint64_t sid[8];
    char xml[8][32];
    custody_ticket origin[8];
    uint64_t origin_done[8];   /* the origin link's done during the call */
} back_log;

static void record_back(void *ctx, custody_ticket origin, uint64_t sid, const char *xml, size_t len)
{
    back_log *b = ctx;
    assert_true(b->n < 8);
    b->sid[b->n] = sid;
    assert_true(len < sizeof b->xml[0]);
    memcpy(b->xml[b->n], xml, len);
    b->xml[b->n][len] = 0;
    b->origin[b->n] = origin;
    b->origin_done[b->n] = origin.link ? done_of(origin.link) : 0;
    b->n++;
}

static void test_link_down_hands_back_unacked_stanzas(void **state)
{
    custody_link *in = idle_link(), *out = idle_link();
    custody_ticket t[4];
    for (int i = 0; i < 4; i++)
        t[i] = custody_in(in);
    custody_sent(out, t[0], SMPROTO_STANZA, 1, "<m1/>", 5);        /* acknowledged below */
    custody_sent(out, t[1], SMPROTO_STANZA, 2, "<m2/>", 5);
    custody_sent(out, t[1], SMPROTO_AUTH_ANSWER, 2, NULL, 0);      /* not a stanza: not back */
    custody_sent(out, t[2], SMPROTO_STANZA, 3, "<m3/>", 5);
    custody_sent(out, t[3], SMPROTO_END, 4, NULL, 0);
    custody_sent(out, (custody_ticket){NULL, 0}, SMPROTO_STATE, 4, NULL, 0);
    custody_sent(out, t[3], SMPROTO_STANZA, 4, "<m4/>", 5);
    for (int i = 0; i < 4; i++)
        custody_release(t[i]);
    assert_true(custody_acked(out, 1));
    assert_int_equal(done_of(in), 1);
    back_log b = {0};
    custody_link_down(out, record_back, &b);   /* out is retired, idle: freed now */
    assert_int_equal(b.n, 3);
    const char *want[] = {"<m2/>", "<m3/>", "<m4/>"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(b.xml[i], want[i]);
        assert_int_equal(b.sid[i], (uint64_t)i + 2);
        assert_ptr_equal(b.origin[i].link, in);
        assert_int_equal(b.origin[i].seq, (uint64_t)i + 2);
        /* The origin was still held during the call: its frame had not finished. */
        assert_true(b.origin_done[i] < b.origin[i].seq);
    }
    /* After: every origin released, so the inbound side finished everything. */
    assert_int_equal(done_of(in), 4);
    uint64_t n;
    assert_true(custody_ack_due(in, &n));
    assert_int_equal(n, 4);
    custody_link_down(in, NULL, NULL);
}

/* ---- retired links ------------------------------------------------------------------------- */

/* Down with frames in progress: alive until the last is released (ASan: a use after free if it
 * went early, a leak if never). */
static void test_retired_freed_after_last_ticket(void **state)
{
    custody_link *cl = idle_link();
    custody_ticket a = custody_in(cl), b = custody_in(cl), c = custody_in(cl);
    custody_release(b);
    custody_link_down(cl, NULL, NULL);
    assert_int_equal(done_of(cl), 0);   /* still there */
    custody_release(a);
    assert_int_equal(done_of(cl), 2);   /* still there: c is held */
    custody_hold(c);
    custody_release(c);
    assert_int_equal(done_of(cl), 2);
    custody_release(c);                 /* the last: freed here */
}

/* A retired link's ticket held by a frame waiting on another link's acknowledgement, and that
 * other link's own ticket held by a frame on the first: each goes when the other lets go. */
static void test_tickets_held_across_links(void **state)
{
    custody_link *a = idle_link(), *b = idle_link();
    custody_ticket ta = custody_in(a), tb = custody_in(b);
    custody_sent(b, ta, SMPROTO_STANZA, 1, "<from-a/>", 9);
    custody_sent(a, tb, SMPROTO_STANZA, 2, "<from-b/>", 9);
    custody_release(ta);
    custody_release(tb);
    back_log got = {0};
    custody_link_down(a, record_back, &got);   /* hands back b's stanza, releasing tb */
    assert_int_equal(got.n, 1);
    assert_string_equal(got.xml[0], "<from-b/>");
    assert_ptr_equal(got.origin[0].link, b);
    assert_int_equal(done_of(b), 1);
    uint64_t n;
    assert_true(custody_ack_due(b, &n));
    assert_int_equal(n, 1);
    /* a lives on: its frame is held by the stanza sent on b. */
    assert_int_equal(done_of(a), 0);
    assert_true(custody_acked(b, 1));          /* releases ta: a is freed */
    custody_link_down(b, NULL, NULL);
}

/* A front's stanza to another of its own sessions, never acknowledged when the link goes: handed
 * back under a ticket of the very link being retired, which must survive the call. */
static void test_ticket_of_the_link_going_down(void **state)
{
    custody_link *cl = idle_link();
    custody_ticket t = custody_in(cl);
    custody_sent(cl, t, SMPROTO_STANZA, 5, "<self/>", 7);
    custody_sent(cl, t, SMPROTO_STANZA, 6, "<self2/>", 8);
    custody_release(t);
    back_log got = {0};
    custody_link_down(cl, record_back, &got);
    assert_int_equal(got.n, 2);
    assert_ptr_equal(got.origin[0].link, cl);
    assert_ptr_equal(got.origin[1].link, cl);
    assert_int_equal(got.origin_done[1], 0);   /* the link was alive, its frame held, in the call */
}

/* Retired with nothing in progress and nothing unacknowledged: freed at once (ASan: no leak). */
static void test_retired_idle_link_freed(void **state)
{
    custody_link *cl = custody_link_new(1000);
    custody_ticket t = custody_in(cl);
    custody_sent(cl, t, SMPROTO_BOUND, 1, NULL, 0);
    custody_release(t);
    assert_true(custody_acked(cl, 1));
    custody_link_down(cl, record_back, &(back_log){0});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbering_resumes),
        cmocka_unit_test(test_out_of_order_releases),
        cmocka_unit_test(test_window_random_run),
        cmocka_unit_test(test_window_growth_keeps_counts),
        cmocka_unit_test(test_acks_release_origins),
        cmocka_unit_test(test_link_down_hands_back_unacked_stanzas),
        cmocka_unit_test(test_retired_freed_after_last_ticket),
        cmocka_unit_test(test_tickets_held_across_links),
        cmocka_unit_test(test_ticket_of_the_link_going_down),
        cmocka_unit_test(test_retired_idle_link_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
