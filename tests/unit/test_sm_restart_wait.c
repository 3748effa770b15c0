/* tests/unit/test_sm_restart_wait.c — the SM's first seconds (sm/restart_wait.c): after a start,
 * stanzas for users whose front has not re-announced their sessions wait, and are delivered to
 * the sessions when the front has (no offline detour, no <delay/>, probes answered with the real
 * presence); when the configured fronts do not all come back within resync_wait, what waited is
 * routed as usual (offline). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_until_fronts_resync, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_resync_wait_bounds, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_no_wait_without_fronts, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
