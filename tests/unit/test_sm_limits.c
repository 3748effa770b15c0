/* tests/unit/test_sm_limits.c — what one account may hold in the SM (sm_config.limits) and the
 * SM's answers to a hostile client (security issue 12): sessions per account, roster items and
 * their text, pending subscription requests and what is kept of them, directed presence (a cap
 * and constant-time bookkeeping), private XML namespaces and their length, vCard size, error
 * bounces that do not echo large payloads, forged offline delays, and sessions that end exactly
 * once. On the in-memory core of tests/support/sm_harness.h. */
#include "tests/support/sm_harness.h"

#include "sm/mod_presence.h"
#include "sm/strset.h"

/* Counts SM_EV_SESSION_END per full JID, to prove a session ends once. */
static char ended[64][64];
static int nended;
static bool count_end(sm *s, sm_event *ev)
{
    if (nended < 64)
        snprintf(ended[nended++], sizeof ended[0], "%s", jid_full(&ev->session->jid));
    return false;
}

static int times_ended(const char *full)
{
    int n = 0;
    for (int i = 0; i < nended; i++)
        n += strcmp(ended[i], full) == 0;
    return n;
}

static void test_sessions_per_account(void **state)
{
    smh_start("<limits><sessions>2</sessions></limits>", NULL);
    smh_bind(1, "alice", "a");
    smh_bind(2, "alice", "b");
    smh_clear();
    sm_bind(smh.core, smh.front, 3, "example.org", "alice", "c", 0);
    smh_drain();
    int i = smh_find('B', 3, NULL, NULL);
    assert_true(i >= 0);
    assert_int_equal(smh.recs[i].status, SMPROTO_BOUND_CONSTRAINT);
    /* Another user is not affected; replacing a resource is not a new session. */
    smh_bind(4, "bob", "a");
    smh_bind(5, "alice", "b");
    EXPECT('E', 2, "replaced", NULL);
    /* A session gone frees its place. */
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    smh_bind(6, "alice", "c");
    /* A resync restores what the front had, whatever the count. */
    smh_clear();
    sm_resync(smh.core, smh.front, 7, "alice@example.org/d", NULL, 0, "");
    smh_drain();
    NONE('E', 7, NULL);
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 4);   /* alice b, c, d and bob a */
}

static void test_roster_limits(void **state)
{
    smh_start("<limits><roster_items>2</roster_items></limits>", NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='x@example.org'/></query></iq>");
    smh_send(1, "<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='y@example.org'/></query></iq>");
    EXPECT('S', 1, "id='r2'", "type='result'");
    smh_send(1, "<iq type='set' id='r3'><query xmlns='jabber:iq:roster'><item jid='z@example.org'/></query></iq>");
    EXPECT('S', 1, "id='r3'", "<resource-constraint");
    EXPECT('S', 1, "id='r3'", "at most 2 roster items per account");
    /* Changing an existing item is fine; so is adding once one went. */
    smh_send(1, "<iq type='set' id='r4'><query xmlns='jabber:iq:roster'><item jid='x@example.org' name='X'/></query></iq>");
    EXPECT('S', 1, "id='r4'", "type='result'");
    /* A subscription request to a new contact would add an item: refused too. */
    smh_clear();
    smh_send(1, "<presence to='carol@example.org' type='subscribe' id='sub1'/>");
    EXPECT('S', 1, "id='sub1'", "<resource-constraint");
    smh_send(1, "<iq type='set' id='r5'><query xmlns='jabber:iq:roster'><item jid='x@example.org' subscription='remove'/></query></iq>");
    smh_send(1, "<iq type='set' id='r6'><query xmlns='jabber:iq:roster'><item jid='z@example.org'/></query></iq>");
    EXPECT('S', 1, "id='r6'", "type='result'");

    /* Names and groups are bounded (RFC 6121 §2.3.3: <not-acceptable/>). */
    smh_clear();
    char *xml = malloc(400000);
    char *p = xml + sprintf(xml, "<iq type='set' id='g1'><query xmlns='jabber:iq:roster'><item jid='x@example.org'>");
    for (int i = 0; i < 65; i++)
        p += sprintf(p, "<group>g%d</group>", i);
    strcpy(p, "</item></query></iq>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='g1'", "<not-acceptable");
    p = xml + sprintf(xml, "<iq type='set' id='g2'><query xmlns='jabber:iq:roster'><item jid='x@example.org' name='");
    memset(p, 'n', 1024);
    strcpy(p + 1024, "'/></query></iq>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='g2'", "<not-acceptable");
    p = xml + sprintf(xml, "<iq type='set' id='g3'><query xmlns='jabber:iq:roster'><item jid='x@example.org'><group>");
    memset(p, 'g', 1024);
    strcpy(p + 1024, "</group></item></query></iq>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='g3'", "<not-acceptable");
    /* 20,000 groups (a stall for the routing thread when duplicates were compared pairwise)
     * are refused at once too. */
    p = xml + sprintf(xml, "<iq type='set' id='g4'><query xmlns='jabber:iq:roster'><item jid='x@example.org'>");
    for (int i = 0; i < 20000; i++)
        p += sprintf(p, "<group>%d</group>", i % 10);
    strcpy(p, "</item></query></iq>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='g4'", "<not-acceptable");
    free(xml);
}

static void test_pending_requests(void **state)
{
    smh_start("<limits><pending>2</pending></limits>", NULL);
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_online(3, "carol", "c");
    smh_clear();
    /* What is kept of a request: addresses, status and nick, cut; nothing else. */
    char *xml = malloc(300000);
    char *p = xml + sprintf(xml, "<presence to='alice@example.org' type='subscribe'><status>");
    memset(p, 's', 2000);
    p += 2000;
    p += sprintf(p, "</status><nick xmlns='http://jabber.org/protocol/nick'>Bob</nick><junk xmlns='j'>");
    memset(p, 'j', 200000);
    strcpy(p + 200000, "</junk></presence>");
    smh_send(2, xml);
    free(xml);
    EXPECT('S', 1, "type='subscribe'", "<nick xmlns='http://jabber.org/protocol/nick'>Bob</nick>");
    smh_send(3, "<presence to='alice@example.org' type='subscribe'/>");
    /* A third requester is refused, with a reason. */
    smh_online(4, "dave", "d");
    smh_clear();
    smh_send(4, "<presence to='alice@example.org' type='subscribe' id='d1'/>");
    EXPECT('S', 4, "id='d1'", "<resource-constraint");
    NONE('S', 1, "from='dave@example.org'");
    /* At alice's next login she gets the two kept requests, short. */
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    smh_online(5, "alice", "a2");
    int i = smh_find('S', 5, "from='bob@example.org'", "type='subscribe'");
    assert_true(i >= 0);
    assert_null(strstr(smh.recs[i].text, "junk"));
    assert_true(strlen(smh.recs[i].text) < 1400);
    EXPECT('S', 5, "from='carol@example.org'", "type='subscribe'");
    NONE('S', 5, "dave");
}

static void test_directed_presence(void **state)
{
    smh_start("<limits><directed>3</directed></limits>", NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    for (int i = 0; i < 3; i++) {
        char xml[128];
        snprintf(xml, sizeof xml, "<presence to='room%d@muc.example.org/al'/>", i);
        smh_send(1, xml);
    }
    /* Again to one of them: no new entry. */
    smh_send(1, "<presence to='room1@muc.example.org/al'/>");
    assert_int_equal(sm_strset_count(presence_directed(smh.core, sm_session_lookup(smh.core, sm_link_serial(smh.front), 1))), 3);
    smh_send(1, "<presence to='room9@muc.example.org/al' id='p9'/>");
    EXPECT('S', 1, "id='p9'", "<resource-constraint");
    NONE('C', 0, "room9");
    /* Leaving one frees a place. */
    smh_send(1, "<presence to='room0@muc.example.org/al' type='unavailable'/>");
    smh_send(1, "<presence to='room9@muc.example.org/al' id='p10'/>");
    EXPECT('C', 0, "room9@muc.example.org/al", NULL);
    /* Going offline tells every room still joined, and only those. */
    smh_clear();
    smh_send(1, "<presence type='unavailable'/>");
    EXPECT('C', 0, "to='room1@muc.example.org/al'", "type='unavailable'");
    EXPECT('C', 0, "to='room2@muc.example.org/al'", "type='unavailable'");
    EXPECT('C', 0, "to='room9@muc.example.org/al'", "type='unavailable'");
    NONE('C', 0, "room0");
}

static void test_private_and_vcard_limits(void **state)
{
    smh_start("<limits><private_namespaces>2</private_namespaces><vcard_bytes>2048</vcard_bytes>"
              "</limits>", NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='set' id='p1'><query xmlns='jabber:iq:private'><a xmlns='x:a'/><b xmlns='x:b'/></query></iq>");
    EXPECT('S', 1, "id='p1'", "type='result'");
    smh_send(1, "<iq type='set' id='p2'><query xmlns='jabber:iq:private'><c xmlns='x:c'/></query></iq>");
    EXPECT('S', 1, "id='p2'", "<resource-constraint");
    smh_send(1, "<iq type='set' id='p3'><query xmlns='jabber:iq:private'><a xmlns='x:a'>2</a></query></iq>");
    EXPECT('S', 1, "id='p3'", "type='result'");
    char xml[4096];
    int n = sprintf(xml, "<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>");
    memset(xml + n, 'f', 2100);
    strcpy(xml + n + 2100, "</FN></vCard></iq>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='v1'", "<not-acceptable");
    EXPECT('S', 1, "id='v1'", "a vCard is limited to 2048 bytes");
}

/* A namespace is a document key (xdbsql.h): one longer than XDB_DOC_NAME_MAX bytes is refused
 * like the protocol's own namespaces, the longest allowed is kept. */
static void test_private_namespace_length(void **state)
{
    smh_online(1, "alice", "a");
    char ns[XDB_DOC_NAME_MAX + 2], xml[2 * XDB_DOC_NAME_MAX + 200];
    memset(ns, 'n', sizeof(ns) - 1);
    ns[sizeof(ns) - 1] = '\0';   /* one byte too long */
    smh_clear();
    snprintf(xml, sizeof xml, "<iq type='set' id='p1'><query xmlns='jabber:iq:private'><a xmlns='%s'/></query></iq>", ns);
    smh_send(1, xml);
    EXPECT('S', 1, "id='p1'", "<not-acceptable");
    snprintf(xml, sizeof xml, "<iq type='get' id='p2'><query xmlns='jabber:iq:private'><a xmlns='%s'/></query></iq>", ns);
    smh_send(1, xml);
    EXPECT('S', 1, "id='p2'", "<not-acceptable");
    ns[XDB_DOC_NAME_MAX] = '\0';
    smh_clear();
    snprintf(xml, sizeof xml, "<iq type='set' id='p3'><query xmlns='jabber:iq:private'><a xmlns='%s'>kept</a></query></iq>", ns);
    smh_send(1, xml);
    EXPECT('S', 1, "id='p3'", "type='result'");
    snprintf(xml, sizeof xml, "<iq type='get' id='p4'><query xmlns='jabber:iq:private'><a xmlns='%s'/></query></iq>", ns);
    smh_send(1, xml);
    EXPECT('S', 1, "id='p4'", ">kept</a>");
}

/* An error answering a large stanza does not carry it back; a small one's does. */
static void test_bounce_without_large_payload(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<message to='nobody@example.org' id='m1'><body>short</body></message>");
    EXPECT('S', 1, "id='m1'", "<body>short</body>");
    char *xml = malloc(70000);
    int n = sprintf(xml, "<message to='nobody@example.org' id='m2'><body>");
    memset(xml + n, 'b', 60000);
    strcpy(xml + n + 60000, "</body></message>");
    smh_send(1, xml);
    free(xml);
    int i = smh_find('S', 1, "id='m2'", "<service-unavailable");
    assert_true(i >= 0);
    assert_true(strlen(smh.recs[i].text) < 600);
}

/* Finding 9: a client's <delay from='our host'/> is removed, and the server stamps its own. */
static void test_forged_delay(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<message to='bob@example.org' id='f1'><body>hi</body>"
                "<delay xmlns='urn:xmpp:delay' from='example.org' stamp='2001-01-01T00:00:00Z'/>"
                "<delay xmlns='urn:xmpp:delay' from='alice@example.org/a' stamp='2002-02-02T00:00:00Z'/>"
                "</message>");
    smh_online(2, "bob", "b");
    int i = smh_find('S', 2, "id='f1'", NULL);
    assert_true(i >= 0);
    assert_null(strstr(smh.recs[i].text, "2001-01-01"));
    assert_non_null(strstr(smh.recs[i].text, "2002-02-02"));   /* the client's own stays */
    assert_non_null(strstr(smh.recs[i].text, "from='example.org' stamp='20"));
}

/* Every way a session ends runs its end (presence, last activity) exactly once: END, its link
 * going down, a kick, a replacement, shutdown, even while one end's unavailable presence bounces
 * back from a domain nobody serves. */
static void test_session_ends_once(void **state)
{
    nended = 0;
    static const sm_handler handlers[] = {{"session-end", .hook = count_end}, {NULL}};
    static const sm_module counter = {.name = "count_ends", .handlers = handlers};
    smh_start("", (const sm_module *const[]){&counter, NULL});
    smh_online(1, "alice", "a");
    smh_online(2, "alice", "b");
    smh_online(3, "bob", "b");
    smh_send(1, "<presence to='room@conference.example.org/al'/>");
    smh_send(2, "<presence to='room@conference.example.org/al2'/>");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    assert_int_equal(times_ended("alice@example.org/a"), 1);
    smh_online(4, "carol", "c");
    smh_bind(5, "carol", "c");   /* replaces 4 */
    assert_int_equal(times_ended("carol@example.org/c"), 1);
    sm_link_down(smh.core, smh.front);
    smh_drain();
    smh.front = sm_link_up(smh.core, (void *)1, "front", false);
    assert_int_equal(times_ended("alice@example.org/b"), 1);
    assert_int_equal(times_ended("bob@example.org/b"), 1);
    assert_int_equal(times_ended("carol@example.org/c"), 2);
    smh_online(6, "dave", "d");
    sm_shutdown(smh.core);
    smh_drain();
    assert_int_equal(times_ended("dave@example.org/d"), 1);
}

static int setup_dave(void **state)
{
    smh_setup(state);
    smh_adduser("example.org", "dave");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sessions_per_account, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_roster_limits, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_pending_requests, setup_dave, smh_teardown),
        cmocka_unit_test_setup_teardown(test_directed_presence, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_private_and_vcard_limits, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_private_namespace_length, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_without_large_payload, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_forged_delay, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_session_ends_once, setup_dave, smh_teardown),
    };
    return cmocka_run_group_tests_name("sm_limits", tests, NULL, NULL);
}
