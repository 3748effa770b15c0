/* tests/unit/test_sm_partitions.c — sm/peer_route.c, the core's side of <partitions>, without
 * sockets: this SM is index 1 of 2 (it owns alice and bob; carol and dave are SM 0's under the
 * built-in key, jabtest/partition.py says so too). Logins for the other partition are refused; a
 * stanza to its users goes to the peer's link, or bounces while there is none; from the peer only
 * stanzas from its users (or the domain) to ours are taken. */
#include "tests/support/sm_harness.h"

#define PARTITIONS "<partitions index='1' id='sm1'><peer index='0' id='sm0' host='127.0.0.1' " \
                   "port='5999' secret='s'/></partitions>"

static sm_link *peer;

static int setup(void **state)
{
    if (smh_setup(state) != 0)
        return -1;
    smh_start(PARTITIONS, NULL);
    smh_adduser("example.org", "dave");
    peer = NULL;
    return 0;
}

static void peer_up(void)
{
    peer = sm_link_up(smh.core, (void *)4, "sm0", true);
    sm_link_set_peer(smh.core, peer, 0);
}

static void test_logins_of_the_other_partition(void **state)
{
    sm_auth_query(smh.core, smh.front, 7, "example.org", "alice");
    sm_auth_query(smh.core, smh.front, 8, "example.org", "carol");
    sm_bind(smh.core, smh.front, 9, "example.org", "carol", "x", 0);
    smh_drain();
    assert_int_equal(smh.recs[smh_find('A', 7, NULL, NULL)].status, SMPROTO_AUTH_OK);
    assert_int_equal(smh.recs[smh_find('A', 8, NULL, NULL)].status, SMPROTO_AUTH_NO_USER);
    assert_int_equal(smh.recs[smh_find('B', 9, NULL, NULL)].status, SMPROTO_BOUND_NOT_ALLOWED);
    smh_bind(1, "alice", "a");
    assert_string_equal(smh.recs[smh_find('B', 1, NULL, NULL)].text, "alice@example.org/a");
}

static void test_to_the_other_partition(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    /* No peer link: the sender hears at once, nothing waits. */
    smh_clear();
    smh_send(1, "<message to='carol@example.org' id='m0'><body>x</body></message>");
    EXPECT('S', 1, "id='m0'", "remote-server-timeout");
    NONE('C', 0, NULL);
    peer_up();
    smh_clear();
    smh_send(1, "<message to='carol@example.org' id='m1'><body>over</body></message>");
    EXPECT('C', 0, "to='carol@example.org'", "from='alice@example.org/a'");
    NONE('S', 1, "error");
    /* A user of this partition stays here. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org' id='m2'><body>here</body></message>");
    EXPECT('S', 2, "id='m2'", NULL);
    NONE('C', 0, NULL);
    /* A subscription is a stanza to another server: the request crosses, the roster is ours. */
    smh_send(1, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
    smh_clear();
    smh_send(1, "<presence to='carol@example.org' type='subscribe'/>");
    EXPECT('C', 0, "type='subscribe'", "to='carol@example.org'");
    EXPECT('S', 1, "jabber:iq:roster", "carol@example.org");
    sm_link_down(smh.core, peer);
    smh_clear();
    smh_send(1, "<message to='dave@example.org' id='m3'><body>x</body></message>");
    EXPECT('S', 1, "id='m3'", "remote-server-timeout");
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.peer_out, 2);
    assert_int_equal(st.peer_bounced, 2);
}

static void test_from_the_peer(void **state)
{
    smh_online(1, "alice", "a");
    peer_up();
    smh_clear();
    smh_xml_link(peer, "<message from='carol@example.org/c' to='alice@example.org' type='chat' "
                       "id='i1'><body>in</body></message>");
    EXPECT('S', 1, "id='i1'", "<body>in</body>");
    smh_xml_link(peer, "<message from='example.org' to='alice@example.org/a' id='i2'>"
                       "<body>the domain</body></message>");
    EXPECT('S', 1, "id='i2'", NULL);
    /* From our own user, from a remote domain, to a user who is not ours, without from: all
     * refused, nothing sent anywhere. */
    smh_clear();
    smh_xml_link(peer, "<message from='bob@example.org' to='alice@example.org/a' id='r1'>"
                       "<body>spoof</body></message>");
    smh_xml_link(peer, "<message from='x@remote.net' to='alice@example.org/a' id='r2'>"
                       "<body>relay</body></message>");
    smh_xml_link(peer, "<message from='carol@example.org' to='dave@example.org' id='r3'>"
                       "<body>loop</body></message>");
    smh_xml_link(peer, "<message to='alice@example.org/a' id='r4'><body>no from</body></message>");
    smh_xml_link(peer, "<message from='carol@example.org' to='example.org' id='r5'/>");
    assert_int_equal(smh.nrecs, 0);
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.peer_in, 2);
    assert_int_equal(st.peer_refused, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_logins_of_the_other_partition, setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_to_the_other_partition, setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_from_the_peer, setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
