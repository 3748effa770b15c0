/* tests/unit/test_loadgen_sm.c — the load generator's XEP-0198 client state (tests/bench/loadgen/
 * lg_sm.c): the 32-bit counters wrapping both ways, acks that drop exactly what they count, which
 * stanzas go out again after <resumed h/> and after a <failed/> resume, the ack-request policy,
 * the nonzas written (enable, resume with an escaped previd, a in answer to r) and the server's
 * elements read (enabled with and without resumption, failed, bad h values).
 *
 * The loadgen is not part of the library, so its modules are compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/loadgen/lg_sm.c"
#include "tests/bench/loadgen/lg_stats.c"

/* Sends stanza "<s n='I'/>" for I in [from, to) as messages, no ack requests. */
static void send_range(lg_sm *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char st[32];
        int len = snprintf(st, sizeof(st), "<s n='%d'/>", i);
        assert_false(lg_sm_sent(s, st, (size_t)len, true, 0));
    }
}

static void assert_queued(const lg_sm *s, const char *want)
{
    assert_int_equal(lg_sm_queued_len(s), strlen(want));
    if (*want)
        assert_memory_equal(lg_sm_queued(s), want, strlen(want));
}

/* out holds exactly want; emptied. */
static void assert_out(buf *out, const char *want)
{
    assert_int_equal(buf_len(out), strlen(want));
    if (*want)
        assert_memory_equal(buf_data(out), want, strlen(want));
    buf_free(out);
}

/* An element of the stream management namespace with up to two attributes. */
static xml_node *sm_el(xml_arena *a, const char *name, const char *k1, const char *v1,
                       const char *k2, const char *v2)
{
    xml_node *el = xml_element_new(a, NULL, LG_SM_NS, name);
    if (k1)
        xml_attr_set(a, el, NULL, k1, v1);
    if (k2)
        xml_attr_set(a, el, NULL, k2, v2);
    return el;
}

/* A session enabled with resumption allowed under id. */
static void start_session(lg_sm *s, lg_sm_stats *st, xml_arena *a, const char *id)
{
    buf out = BUF_INIT;
    lg_sm_init(s);
    lg_sm_enable(s, st, &out);
    buf_free(&out);
    assert_int_equal(lg_sm_input(s, sm_el(a, "enabled", "id", id, "resume", "true"), st, &out),
                     LG_SM_ENABLED);
    assert_int_equal(buf_len(&out), 0);
}

/* The connection drops and a new one sends <resume/>. */
static void drop_and_resume(lg_sm *s)
{
    buf out = BUF_INIT;
    lg_sm_detach(s);
    assert_false(s->active);
    lg_sm_resume(s, &out);
    buf_free(&out);
}

static void test_counters_wrap(void **state)
{
    lg_sm s;
    lg_sm_init(&s);
    assert_int_equal(lg_sm_enable_sent(&s), 0);
    /* A session 2^32 - 2 stanzas old: the next four take h_out across the wrap. */
    s.h_out = s.acked = 0xFFFFFFFEu;
    send_range(&s, 0, 4);
    assert_int_equal(s.h_out, 2);
    assert_int_equal(lg_sm_queued_count(&s), 4);
    assert_int_equal(lg_sm_ack(&s, 0xFFFFFFFFu), 1);
    assert_queued(&s, "<s n='1'/><s n='2'/><s n='3'/>");
    assert_int_equal(lg_sm_ack(&s, 1), 2);   /* across the wrap: 0xFFFFFFFF -> 0 -> 1 */
    assert_queued(&s, "<s n='3'/>");
    assert_int_equal(lg_sm_ack(&s, 3), -1);  /* one more than was sent: refused, nothing changed */
    assert_int_equal(lg_sm_queued_count(&s), 1);
    assert_int_equal(s.acked, 1);
    assert_int_equal(lg_sm_ack(&s, 1), 0);   /* the same h again: nothing new */
    assert_int_equal(lg_sm_ack(&s, 2), 1);
    assert_queued(&s, "");
    assert_null(s.queue.mem);                /* fully acknowledged: no queue memory */

    s.h_in = 0xFFFFFFFFu;
    assert_int_equal(lg_sm_handled(&s), 0);
    assert_int_equal(lg_sm_handled(&s), 1);
    lg_sm_clear(&s);
}

/* The ring of lengths grows and wraps while acks drop its front. */
static void test_queue_ring(void **state)
{
    lg_sm s;
    lg_sm_init(&s);
    lg_sm_enable_sent(&s);
    send_range(&s, 0, 6);
    assert_int_equal(lg_sm_ack(&s, 5), 5);
    send_range(&s, 6, 30);   /* past the first capacity (8) with the head at 5 */
    assert_int_equal(lg_sm_queued_count(&s), 25);
    assert_int_equal(lg_sm_ack(&s, 28), 23);
    assert_queued(&s, "<s n='28'/><s n='29'/>");
    lg_sm_clear(&s);
}

static void test_ack_policy(void **state)
{
    lg_sm s;
    lg_sm_init(&s);
    assert_false(lg_sm_sent(&s, "<m/>", 4, true, 1));   /* not active: nothing counted */
    assert_int_equal(lg_sm_queued_count(&s), 0);
    lg_sm_enable_sent(&s);
    /* As Conversations: an <r/> after every message; presence and iq never ask. */
    assert_true(lg_sm_sent(&s, "<m/>", 4, true, 1));
    assert_false(lg_sm_sent(&s, "<p/>", 4, false, 1));
    assert_true(lg_sm_sent(&s, "<m/>", 4, true, 1));
    /* Every third message. */
    assert_false(lg_sm_sent(&s, "<m/>", 4, true, 3));
    assert_false(lg_sm_sent(&s, "<m/>", 4, true, 3));
    assert_false(lg_sm_sent(&s, "<p/>", 4, false, 3));
    assert_true(lg_sm_sent(&s, "<m/>", 4, true, 3));
    assert_false(lg_sm_sent(&s, "<m/>", 4, true, 0));   /* 0: never */
    assert_int_equal(s.h_out, 8);
    lg_sm_clear(&s);
}

static void test_parse_h(void **state)
{
    uint32_t h = 7;
    assert_true(lg_sm_parse_h("0", &h) && h == 0);
    assert_true(lg_sm_parse_h("4294967295", &h) && h == 0xFFFFFFFFu);
    assert_false(lg_sm_parse_h(NULL, &h));
    assert_false(lg_sm_parse_h("", &h));
    assert_false(lg_sm_parse_h("-1", &h));
    assert_false(lg_sm_parse_h(" 1", &h));
    assert_false(lg_sm_parse_h("12x", &h));
    assert_false(lg_sm_parse_h("4294967296", &h));
}

/* enable, enabled (with an id only when resumption is allowed), r answered with h_in. */
static void test_enable_and_r(void **state)
{
    lg_sm s;
    lg_sm_stats st = {0};
    buf out = BUF_INIT;
    xml_arena *a = xml_arena_new(1024);
    lg_sm_init(&s);
    lg_sm_enable(&s, &st, &out);
    assert_out(&out, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    assert_int_equal(lg_sm_input(&s, sm_el(a, "enabled", "id", "abc", "resume", "true"), &st, &out),
                     LG_SM_ENABLED);
    assert_string_equal(s.id, "abc");
    assert_int_equal(st.enabled, 1);
    lg_sm_handled(&s);
    lg_sm_handled(&s);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "r", NULL, NULL, NULL, NULL), &st, &out),
                     LG_SM_HANDLED);
    assert_out(&out, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    assert_int_equal(st.requests, 1);
    /* An <a/> with a bad h, and an <enabled/> nobody asked for, are counted as bad. */
    assert_int_equal(lg_sm_input(&s, sm_el(a, "a", "h", "x", NULL, NULL), &st, &out), LG_SM_BAD);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "enabled", NULL, NULL, NULL, NULL), &st, &out),
                     LG_SM_BAD);
    assert_int_equal(st.bad_acks, 2);
    /* Not ours. */
    assert_int_equal(lg_sm_input(&s, xml_element_new(a, NULL, "jabber:client", "message"), &st, &out),
                     LG_SM_NOT_OURS);

    /* resume='false' (or none): no id, nothing to resume. */
    lg_sm_enable(&s, &st, &out);
    buf_free(&out);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "enabled", "id", "abc", NULL, NULL), &st, &out),
                     LG_SM_ENABLED);
    assert_null(s.id);
    /* <failed/> to <enable/>: off, nothing kept. */
    lg_sm_enable(&s, &st, &out);
    buf_free(&out);
    send_range(&s, 0, 2);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "failed", NULL, NULL, NULL, NULL), &st, &out),
                     LG_SM_ENABLE_FAILED);
    assert_int_equal(st.enable_failed, 1);
    assert_false(s.active);
    assert_int_equal(lg_sm_queued_count(&s), 0);
    xml_arena_free(a);
    lg_sm_clear(&s);
    lg_sm_stats_free(&st);
}

/* After <resumed h/> exactly the stanzas the server did not count go out again, then an <r/>. */
static void test_resume_resends_uncounted(void **state)
{
    lg_sm s;
    lg_sm_stats st = {0};
    buf out = BUF_INIT;
    xml_arena *a = xml_arena_new(1024);
    start_session(&s, &st, a, "a'b<c");
    send_range(&s, 0, 5);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "a", "h", "2", NULL, NULL), &st, &out),
                     LG_SM_HANDLED);
    for (int i = 0; i < 7; i++)
        lg_sm_handled(&s);
    lg_sm_detach(&s);   /* the connection dropped */
    lg_sm_resume(&s, &out);
    assert_out(&out, "<resume xmlns='urn:xmpp:sm:3' h='7' previd='a&apos;b&lt;c'/>");
    /* The server counted 4 of the 5: only the fifth goes again. */
    assert_int_equal(lg_sm_input(&s, sm_el(a, "resumed", "h", "4", "previd", "a'b<c"), &st, &out),
                     LG_SM_RESUMED);
    assert_out(&out, "<s n='4'/>" LG_SM_REQUEST);
    assert_true(s.active);
    assert_int_equal(st.resumed, 1);
    assert_int_equal(st.resent, 1);
    assert_int_equal(s.h_in, 7);   /* the count goes on */
    assert_int_equal(s.h_out, 5);
    /* It counted everything: nothing goes again, not even an <r/>. */
    drop_and_resume(&s);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "resumed", "h", "5", NULL, NULL), &st, &out),
                     LG_SM_RESUMED);
    assert_int_equal(buf_len(&out), 0);
    /* An h past what was sent: counted as bad, everything queued goes again. */
    send_range(&s, 5, 7);
    drop_and_resume(&s);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "resumed", "h", "9", NULL, NULL), &st, &out),
                     LG_SM_RESUMED);
    assert_int_equal(st.bad_acks, 1);
    assert_out(&out, "<s n='5'/><s n='6'/>" LG_SM_REQUEST);
    xml_arena_free(a);
    lg_sm_clear(&s);
    lg_sm_stats_free(&st);
}

/* <failed h/> to <resume/>: its h drops what the server had; the rest opens the next session,
 * right after its <enable/>, counted from 1 there. */
static void test_resume_failed(void **state)
{
    lg_sm s;
    lg_sm_stats st = {0};
    buf out = BUF_INIT;
    xml_arena *a = xml_arena_new(1024);
    start_session(&s, &st, a, "x");
    send_range(&s, 0, 3);
    drop_and_resume(&s);
    assert_int_equal(lg_sm_input(&s, sm_el(a, "failed", "h", "1", NULL, NULL), &st, &out),
                     LG_SM_RESUME_FAILED);
    assert_int_equal(st.resume_failed, 1);
    assert_null(s.id);
    assert_false(s.active);
    assert_queued(&s, "<s n='1'/><s n='2'/>");
    lg_sm_enable(&s, &st, &out);
    assert_out(&out, "<enable xmlns='urn:xmpp:sm:3' resume='true'/><s n='1'/><s n='2'/>");
    assert_int_equal(st.resent, 2);
    assert_int_equal(s.h_out, 2);
    assert_int_equal(s.acked, 0);
    assert_int_equal(s.h_in, 0);
    assert_int_equal(lg_sm_ack(&s, 2), 2);
    xml_arena_free(a);
    lg_sm_clear(&s);
    lg_sm_stats_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_wrap),
        cmocka_unit_test(test_queue_ring),
        cmocka_unit_test(test_ack_policy),
        cmocka_unit_test(test_parse_h),
        cmocka_unit_test(test_enable_and_r),
        cmocka_unit_test(test_resume_resends_uncounted),
        cmocka_unit_test(test_resume_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
