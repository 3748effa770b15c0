/* tests/unit/test_sm_subscription.c — every transition of the RFC 6121 §3 subscription state
 * machine (sm/subscription.c): 4 subscriptions x ask x pending-in x 4 stanza types, both ways,
 * against tables written from the RFC's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sm/subscription.h"

#define N XDB_SUB_NONE
#define T XDB_SUB_TO
#define F XDB_SUB_FROM
#define B XDB_SUB_BOTH

static bool to_of(xdb_subscription s) { return s == T || s == B; }
static bool from_of(xdb_subscription s) { return s == F || s == B; }
static xdb_subscription mk(bool to, bool from) { return to ? (from ? B : T) : (from ? F : N); }

/* The expected outcome, derived independently from the RFC rules. */
static void expect_outbound(sm_sub_state in, sm_sub_type type, sm_sub_state *out, sm_sub_actions *a)
{
    *out = in;
    *a = (sm_sub_actions){0};
    bool to = to_of(in.sub), from = from_of(in.sub);
    switch (type) {
    case SM_SUB_SUBSCRIBE:
        a->forward = true;
        if (!to && !in.ask)
            out->ask = a->changed = true;
        break;
    case SM_SUB_SUBSCRIBED:
        if (in.pending_in) {
            out->pending_in = false;
            a->remove_pending = true;
            if (!from) {
                out->sub = mk(to, true);
                a->changed = a->forward = a->send_presence = true;
            }
        }
        break;
    case SM_SUB_UNSUBSCRIBE:
        a->forward = true;
        if (to || in.ask) {
            out->sub = mk(false, from);
            out->ask = false;
            a->changed = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBED:
        if (from) {
            out->sub = mk(to, false);
            a->changed = a->forward = a->send_unavailable = true;
        }
        if (in.pending_in) {
            out->pending_in = false;
            a->forward = a->remove_pending = true;
        }
        break;
    }
}

static void expect_inbound(sm_sub_state in, sm_sub_type type, sm_sub_state *out, sm_sub_actions *a)
{
    *out = in;
    *a = (sm_sub_actions){0};
    bool to = to_of(in.sub), from = from_of(in.sub);
    switch (type) {
    case SM_SUB_SUBSCRIBE:
        if (from) {
            a->reply_subscribed = true;
        } else {
            out->pending_in = true;
            a->forward = a->store_pending = true;
        }
        break;
    case SM_SUB_SUBSCRIBED:
        if (in.ask && !to) {
            out->sub = mk(true, from);
            out->ask = false;
            a->changed = a->forward = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBE:
        if (from) {
            out->sub = mk(to, false);
            a->changed = a->forward = a->send_unavailable = true;
        }
        if (in.pending_in) {
            out->pending_in = false;
            a->forward = a->remove_pending = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBED:
        if (to || in.ask) {
            out->sub = mk(false, from);
            out->ask = false;
            a->changed = a->forward = true;
        }
        break;
    }
}

static void check(bool inbound)
{
    int n = 0;
    for (int sub = (int)N; sub <= (int)B; sub++)
        for (int ask = 0; ask < 2; ask++)
            for (int pin = 0; pin < 2; pin++)
                for (int type = 0; type < 4; type++) {
                    sm_sub_state st = {(xdb_subscription)sub, ask != 0, pin != 0}, want;
                    sm_sub_actions wa;
                    if (inbound)
                        expect_inbound(st, (sm_sub_type)type, &want, &wa);
                    else
                        expect_outbound(st, (sm_sub_type)type, &want, &wa);
                    sm_sub_actions a = inbound ? sm_sub_inbound(&st, (sm_sub_type)type)
                                               : sm_sub_outbound(&st, (sm_sub_type)type);
                    assert_int_equal(st.sub, want.sub);
                    assert_int_equal(st.ask, want.ask);
                    assert_int_equal(st.pending_in, want.pending_in);
                    assert_int_equal(a.changed, wa.changed);
                    assert_int_equal(a.forward, wa.forward);
                    assert_int_equal(a.store_pending, wa.store_pending);
                    assert_int_equal(a.remove_pending, wa.remove_pending);
                    assert_int_equal(a.reply_subscribed, wa.reply_subscribed);
                    assert_int_equal(a.send_presence, wa.send_presence);
                    assert_int_equal(a.send_unavailable, wa.send_unavailable);
                    /* "changed" means exactly that sub or ask moved. */
                    sm_sub_state before = {(xdb_subscription)sub, ask != 0, pin != 0};
                    assert_int_equal(a.changed, before.sub != st.sub || before.ask != st.ask);
                    n++;
                }
    assert_int_equal(n, 64);
}

static void test_outbound(void **state) { check(false); }
static void test_inbound(void **state) { check(true); }

/* A few transitions spelled out, as the RFC's examples walk them. */
static void test_handshake(void **state)
{
    sm_sub_state user = {XDB_SUB_NONE, false, false}, contact = {XDB_SUB_NONE, false, false};
    /* user subscribes: Pending Out on the user's side, Pending In on the contact's. */
    assert_true(sm_sub_outbound(&user, SM_SUB_SUBSCRIBE).forward);
    assert_true(user.ask);
    assert_true(sm_sub_inbound(&contact, SM_SUB_SUBSCRIBE).store_pending);
    assert_true(contact.pending_in);
    /* contact approves: From on its side, To on the user's. */
    sm_sub_actions a = sm_sub_outbound(&contact, SM_SUB_SUBSCRIBED);
    assert_true(a.forward && a.send_presence && a.remove_pending);
    assert_int_equal(contact.sub, F);
    assert_true(sm_sub_inbound(&user, SM_SUB_SUBSCRIBED).changed);
    assert_int_equal(user.sub, T);
    assert_false(user.ask);
    /* a repeated subscribe is answered by the server, not shown to the contact */
    assert_true(sm_sub_inbound(&contact, SM_SUB_SUBSCRIBE).reply_subscribed);
    /* the contact cancels: both back to none */
    a = sm_sub_outbound(&contact, SM_SUB_UNSUBSCRIBED);
    assert_true(a.send_unavailable);
    assert_int_equal(contact.sub, N);
    sm_sub_inbound(&user, SM_SUB_UNSUBSCRIBED);
    assert_int_equal(user.sub, N);
    assert_int_equal(sm_sub_type_parse("subscribed"), SM_SUB_SUBSCRIBED);
    assert_int_equal(sm_sub_type_parse("probe"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbound),
        cmocka_unit_test(test_inbound),
        cmocka_unit_test(test_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
