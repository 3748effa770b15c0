/* tests/unit/test_sm_restart_wait.c — the SM's first seconds (sm/restart_wait.c): after a start,
 * stanzas for users whose front has not re-announced their sessions wait, and are delivered to
 * the sessions when the front has (no offline detour, no <delay/>, probes answered with the real
 * presence); when the configured fronts do not all come back within resync_wait, what waited is
 * routed as usual (offline). Sessions the fronts re-announce on their first link keep their
 * presence without broadcasting it again, and hear once the wait is over of the contacts that did
 * not come back; a front's later link (the SM ended its sessions) has them broadcast again.
 * Re-announced sessions are restored before their accounts load: the wait ends with the fronts'
 * resync, and what comes for (or from) a session whose account has not loaded waits for it. */
#include "tests/support/sm_harness.h"

static const char fronts[] =
    "<service id='front' role='front'><accept><ip>127.0.0.1</ip><port>5111</port>"
    "<secret>s</secret></accept></service>"
    "<service id='other' role='front'><accept><ip>127.0.0.1</ip><port>5112</port>"
    "<secret>t</secret></accept></service>";

static const char to_alice[] =
    "<message xmlns='jabber:client' from='bob@example.org/b' to='alice@example.org/a' "
    "type='chat' id='m1'><body>during the restart</body></message>";

/* bob's front resynced first; alice's (other) comes back after bob wrote to her. */
/* A start with two fronts configured: bob's ("front") re-announces him, and he writes to alice,
 * whose front ("other") has not come back yet. */
static void bob_back_writes_to_alice(void)
{
    smh_stop();
    smh_start(fronts, NULL);
    sm_tick(smh.core, 1000);
    sm_resync(smh.core, smh.front, 2, "bob@example.org/b", NULL, 0, "");
    sm_front_resynced(smh.core, smh.front);
    smh_drain();
    smh_send(2, to_alice);
}

static void test_held_until_fronts_resync(void **state)
{
    bob_back_writes_to_alice();
    NONE('S', 0, "during the restart");
    sm_link *other = sm_link_up(smh.core, (void *)5, "other", false);
    sm_resync(smh.core, other, 1, "alice@example.org/a", NULL, 0, "");
    smh_drain();
    sm_front_resynced(smh.core, other);
    smh_drain();
    /* Delivered to her session, as it was sent: no offline <delay/>. */
    EXPECT('S', 1, "during the restart", NULL);
    NONE('S', 1, "urn:xmpp:delay");
}

/* A configured front that does not come back: after resync_wait, what waited goes its usual way
 * (alice has no session: offline storage, delivered at her next login). */
static void test_resync_wait_bounds(void **state)
{
    bob_back_writes_to_alice();
    sm_tick(smh.core, 1000 + 4999);
    smh_drain();
    smh_clear();
    sm_tick(smh.core, 1000 + 5000);
    smh_drain();
    smh_bind(1, "alice", "a");
    smh_send(1, "<presence xmlns='jabber:client'/>");
    EXPECT('S', 1, "during the restart", "urn:xmpp:delay");
}

/* Without fronts in the configuration (or with resync_wait 0) nothing waits. */
static void test_no_wait_without_fronts(void **state)
{
    smh_bind(2, "bob", "b");
    smh_send(2, to_alice);
    smh_bind(1, "alice", "a");
    smh_send(1, "<presence xmlns='jabber:client'/>");
    EXPECT('S', 1, "during the restart", "urn:xmpp:delay");
    smh_stop();
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s<limits><resync_wait>0</resync_wait></limits>", fronts);
    smh_start(cfg, NULL);
    smh_bind(2, "bob", "b");
    smh_send(2, to_alice);
    smh_bind(1, "alice", "a");
    smh_send(1, "<presence xmlns='jabber:client'/>");
    EXPECT('S', 1, "during the restart", "urn:xmpp:delay");
}

static const char available_xml[] = "<presence xmlns='jabber:client'><status>here</status></presence>";

/* alice is subscribed both ways with bob and with carol (stored); then a start with the two
 * fronts configured, and alice and carol re-announced with their presence, each on its front's
 * first link: bob did not come back (his session ended while the SM was down). */
static sm_link *alice_and_carol_come_back(void)
{
    smh_befriend();
    smh_online(3, "carol", "c");
    smh_send(1, "<presence xmlns='jabber:client' to='carol@example.org' type='subscribe'/>");
    smh_send(3, "<presence xmlns='jabber:client' to='alice@example.org' type='subscribed'/>");
    smh_send(3, "<presence xmlns='jabber:client' to='alice@example.org' type='subscribe'/>");
    smh_send(1, "<presence xmlns='jabber:client' to='carol@example.org' type='subscribed'/>");
    smh_stop();
    smh_start(fronts, NULL);
    sm_tick(smh.core, 1000);
    smh_clear();
    sm_resync(smh.core, smh.front, 1, "alice@example.org/a", NULL, 0, available_xml);
    smh_drain();
    sm_front_resynced(smh.core, smh.front);
    smh_drain();
    sm_link *other = sm_link_up(smh.core, (void *)5, "other", false);
    sm_resync(smh.core, other, 3, "carol@example.org/c", NULL, 0, available_xml);
    smh_drain();
    return other;
}

/* Nobody is sent presence again, nobody probes; when the wait ends, alice and carol hear that bob
 * (who did not come back) is unavailable, and neither hears it of the other. */
static void test_quiet_resync(void **state)
{
    sm_link *other = alice_and_carol_come_back();
    NONE('S', 0, "<presence");
    sm_front_resynced(smh.core, other);
    smh_drain();
    EXPECT('S', 1, "from='bob@example.org'", "type='unavailable'");
    NONE('S', 1, "from='carol@example.org");
    NONE('S', 3, "from='alice@example.org");
    NONE('S', 0, "type='probe'");
    /* Only bob: carol has no subscription with him. */
    NONE('S', 3, "from='bob@example.org");
    /* Their presence was kept: a probe is answered with it, a login sees it. */
    smh_clear();
    smh_online(2, "bob", "b");
    EXPECT('S', 2, "from='alice@example.org/a'", "<status>here</status>");
    EXPECT('S', 1, "from='bob@example.org/b'", NULL);
    /* And it goes as usual: the contacts hear alice leave. */
    smh_clear();
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    EXPECT('S', 2, "from='alice@example.org/a'", "type='unavailable'");
    EXPECT('S', 3, "from='alice@example.org/a'", "type='unavailable'");
}

/* A front whose first link was cut during the wait: the SM ended its sessions (their contacts
 * heard them go), so its next link's resync broadcasts their presence again and probes. */
static void test_resync_after_cut_broadcasts(void **state)
{
    sm_link *other = alice_and_carol_come_back();
    sm_link_down(smh.core, other);
    smh_drain();
    smh_clear();
    other = sm_link_up(smh.core, (void *)6, "other", false);
    sm_resync(smh.core, other, 3, "carol@example.org/c", NULL, 0, available_xml);
    smh_drain();
    EXPECT('S', 1, "from='carol@example.org/c'", "<status>here</status>");
    sm_front_resynced(smh.core, other);
    smh_drain();
}

/* alice and bob subscribed both ways, then a start: alice re-announced on the first front (with
 * dave, whose account does not exist, when with_dave), bob on the other, both with their
 * presence; storage has answered nothing since. Returns the other front's link. */
static sm_link *alice_and_bob_back_unloaded(bool with_dave)
{
    smh_befriend();
    smh_stop();
    smh_start(fronts, NULL);
    sm_tick(smh.core, 1000);
    smh_drain();   /* what the modules restore from storage (hibernated sessions): none */
    smh_clear();
    sm_resync(smh.core, smh.front, 1, "alice@example.org/a", NULL, 0, available_xml);
    if (with_dave)
        sm_resync(smh.core, smh.front, 4, "dave@example.org/d", NULL, 0, "");
    sm_front_resynced(smh.core, smh.front);
    sm_link *other = sm_link_up(smh.core, (void *)5, "other", false);
    sm_resync(smh.core, other, 2, "bob@example.org/b", NULL, 0, available_xml);
    sm_front_resynced(smh.core, other);
    return other;
}

/* Storage answers nothing until drained: the sessions are back and the start's wait over all the
 * same. A message for alice and a presence from her wait for her account's load, then go as they
 * would have; a session re-announced for an account deleted while the SM was down ends once its
 * load says so. */
static void test_restored_before_load(void **state)
{
    sm_link *other = alice_and_bob_back_unloaded(true);
    assert_false(sm_start_waiting(smh.core));
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 3);
    assert_int_equal(st.loads_pending, 3);
    static const char to_alice_now[] =
        "<message xmlns='jabber:client' to='alice@example.org' type='chat' id='m2'>"
        "<body>before her account loaded</body></message>";
    static const char away[] =
        "<presence xmlns='jabber:client'><show>away</show></presence>";
    sm_session_stanza(smh.core, other, 2, to_alice_now, strlen(to_alice_now));
    sm_session_stanza(smh.core, smh.front, 1, away, strlen(away));
    NONE('S', 1, "before her account loaded");
    NONE('S', 2, "<show>away</show>");
    smh_drain();
    EXPECT('S', 1, "before her account loaded", "from='bob@example.org/b'");
    NONE('S', 1, "urn:xmpp:delay");
    EXPECT('S', 2, "from='alice@example.org/a'", "<show>away</show>");
    /* Both came back: neither hears the other went unavailable. */
    NONE('S', 1, "type='unavailable'");
    NONE('S', 2, "type='unavailable'");
    EXPECT('E', 4, NULL, NULL);
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 2);
    assert_int_equal(st.loads_pending, 0);
}

/* alice's connection ends before her account has loaded: her contacts hear it once it has. */
static void test_ended_before_load(void **state)
{
    alice_and_bob_back_unloaded(false);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 1);
    NONE('S', 2, "type='unavailable'");
    smh_drain();
    EXPECT('S', 2, "from='alice@example.org/a'", "type='unavailable'");
    assert_int_equal(smh_count('S', 2, "from='alice@example.org/a'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_until_fronts_resync, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_resync_wait_bounds, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_no_wait_without_fronts, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_quiet_resync, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_resync_after_cut_broadcasts, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_restored_before_load, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_ended_before_load, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
