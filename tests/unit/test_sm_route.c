/* tests/unit/test_sm_route.c — the session manager's core without sockets: sessions, routing
 * decisions (RFC 6121 §8), offline storage, rosters and presence, registration. The transport
 * records what the core sends; storage runs synchronously on a scratch SQLite database and the
 * callbacks run when the test drains them, as xdbsql_dispatch would (so a test can see what waits
 * for storage). */
#include "tests/support/sm_harness.h"

static void test_auth(void **state)
{
    sm_auth_query(smh.core, smh.front, 7, "example.org", "alice");
    sm_auth_query(smh.core, smh.front, 8, "example.org", "nobody");
    sm_auth_query(smh.core, smh.front, 9, "other.org", "alice");
    smh_drain();
    assert_int_equal(smh.recs[smh_find('A', 7, NULL, NULL)].status, SMPROTO_AUTH_OK);
    assert_int_equal(smh.recs[smh_find('A', 8, NULL, NULL)].status, SMPROTO_AUTH_NO_USER);
    assert_int_equal(smh.recs[smh_find('A', 9, NULL, NULL)].status, SMPROTO_AUTH_NO_USER);
}

static void test_bind(void **state)
{
    smh_bind(1, "alice", "home");
    assert_string_equal(smh.recs[smh_find('B', 1, NULL, NULL)].text, "alice@example.org/home");
    /* The same full JID again: the new session wins, the old one is told it was replaced. */
    smh_bind(2, "Alice", "home");
    int e = smh_find('E', 1, NULL, NULL);
    assert_true(e >= 0);
    assert_int_equal(smh.recs[e].status, SMPROTO_END_REPLACED);
    assert_true(smh_find('E', 1, NULL, NULL) < smh_find('B', 2, NULL, NULL));
    /* A generated resource. */
    smh_bind(3, "alice", "");
    const char *full = smh.recs[smh_find('B', 3, NULL, NULL)].text;
    assert_int_equal(strlen(full), strlen("alice@example.org/") + 16);
    /* No such account; a host we do not serve. */
    smh_clear();
    sm_bind(smh.core, smh.front, 4, "example.org", "nobody", "x", 0);
    sm_bind(smh.core, smh.front, 5, "other.org", "alice", "x", 0);
    smh_drain();
    assert_int_equal(smh.recs[smh_find('B', 4, NULL, NULL)].status, SMPROTO_BOUND_NOT_ALLOWED);
    assert_int_equal(smh.recs[smh_find('B', 5, NULL, NULL)].status, SMPROTO_BOUND_NOT_ALLOWED);
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 2);
    /* A frame for a session that does not exist is dropped and counted. */
    smh_send(99, "<message to='bob@example.org'/>");
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.dropped_stale, 1);
    /* The link goes: its sessions end. */
    sm_link_down(smh.core, smh.front);
    smh.front = sm_link_up(smh.core, (void *)1, "front", false);
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 0);
    assert_int_equal(st.users, 0);
}

static void test_message_online(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b1");
    smh_bind(3, "bob", "b2");   /* bound, never available */
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat' id='m1'><body>hi</body></message>");
    EXPECT('S', 2, "from='alice@example.org/a'", "<body>hi</body>");
    assert_int_equal(smh_count('S', 3, NULL), 0);
    /* A full JID reaches that resource even when it is not available. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org/b2'><body>two</body></message>");
    EXPECT('S', 3, "two", NULL);
    assert_int_equal(smh_count('S', 2, NULL), 0);
    /* An unknown resource: as to the bare JID. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org/nope' type='chat'><body>three</body></message>");
    EXPECT('S', 2, "three", NULL);
    /* from is the session's, whatever the stanza said. */
    smh_clear();
    smh_send(1, "<message from='mallory@example.org' to='bob@example.org'><body>x</body></message>");
    EXPECT('S', 2, "from='alice@example.org/a'", NULL);
    /* Priorities: a higher one takes normal messages; chat goes to every resource of top priority. */
    smh_send(3, "<presence><priority>5</priority></presence>");
    smh_clear();
    smh_send(1, "<message to='bob@example.org'><body>n</body></message>");
    EXPECT('S', 3, "<body>n</body>", NULL);
    assert_int_equal(smh_count('S', 2, "<body>n</body>"), 0);
    smh_send(2, "<presence><priority>5</priority></presence>");
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat'><body>c</body></message>");
    EXPECT('S', 2, "<body>c</body>", NULL);
    EXPECT('S', 3, "<body>c</body>", NULL);
    /* groupchat to a user: an error; error messages are never answered. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='groupchat' id='g'><body>g</body></message>");
    EXPECT('S', 1, "type='error'", "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
    assert_int_equal(smh_count('S', 2, NULL), 0);
    smh_clear();
    smh_send(1, "<message to='nobody@example.org/x' type='error'/>");
    assert_int_equal(smh.nrecs, 0);
}

static void test_offline(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<message to='bob@example.org' id='o1'><body>first</body></message>");
    smh_send(1, "<message to='bob@example.org/gone' type='chat' id='o2'><body>second</body></message>");
    assert_int_equal(smh.nrecs, 0);
    /* Over the quota (2): the sender is told. */
    smh_send(1, "<message to='bob@example.org' id='o3'><body>third</body></message>");
    EXPECT('S', 1, "id='o3'", "type='error'");
    EXPECT('S', 1, "from='bob@example.org'", "<error type='cancel'><service-unavailable");
    EXPECT('S', 1, "<body>third</body>", NULL);
    /* headline is dropped; no such account is an error. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='headline'><body>h</body></message>");
    assert_int_equal(smh.nrecs, 0);
    smh_send(1, "<message to='nobody@example.org' id='n1'><body>x</body></message>");
    EXPECT('S', 1, "id='n1'", "service-unavailable");
    /* bob comes online: the stored messages arrive, oldest first, with a delay. */
    smh_online(2, "bob", "b");
    int a = smh_find('S', 2, "first", "<delay xmlns='urn:xmpp:delay' from='example.org' stamp='");
    int b = smh_find('S', 2, "second", "urn:xmpp:delay");
    assert_true(a >= 0 && b > a);
    /* Handed out once. */
    smh_send(2, "<presence type='unavailable'/>");
    smh_clear();
    smh_send(2, "<presence/>");
    assert_int_equal(smh_count('S', 2, "first"), 0);
}

static void undelivered(uint64_t sid, const char *xml)
{
    sm_undelivered(smh.core, smh.front, sid, xml, strlen(xml));
    smh_drain();
}

/* What the front hands back (UNDELIVERED) for a session it is closing: a chat or normal message
 * goes to offline storage (within the quota) and reaches the next login with a <delay/>; iq get/set
 * and groupchat are bounced to the sender; presence, headline, error and iq results are dropped;
 * after the session's END the stanza's address says whose it was. */
static void test_undelivered(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
    smh_send(1, "<message to='bob@example.org/b' type='chat' id='u1'><body>lost one</body></message>");
    int i = smh_find('S', 2, "lost one", NULL);
    assert_true(i >= 0);
    char *chat = strdup(smh.recs[i].text);   /* byte for byte what the front was given */
    smh_send(1, "<iq type='get' id='q1' to='bob@example.org/b'><query xmlns='jabber:iq:version'/></iq>");
    i = smh_find('S', 2, "id='q1'", NULL);
    assert_true(i >= 0);
    char *iq = strdup(smh.recs[i].text);

    smh_clear();
    undelivered(2, chat);
    assert_int_equal(smh.nrecs, 0);          /* stored: nobody is told */
    undelivered(2, iq);
    EXPECT('S', 1, "id='q1'", "<error type='cancel'><service-unavailable");
    EXPECT('S', 1, "from='bob@example.org/b'", "to='alice@example.org/a'");
    assert_int_equal(smh.nrecs, 1);
    smh_clear();
    undelivered(2, "<iq type='result' id='r' from='alice@example.org/a' to='bob@example.org/b'/>");
    undelivered(2, "<iq type='error' id='e' from='alice@example.org/a' to='bob@example.org/b'/>");
    undelivered(2, "<presence from='alice@example.org/a' to='bob@example.org/b'/>");
    undelivered(2, "<message from='alice@example.org/a' to='bob@example.org/b' type='headline'>"
                   "<body>h</body></message>");
    undelivered(2, "<message from='alice@example.org/a' to='bob@example.org/b' type='error'/>");
    undelivered(2, "<message from='alice@example.org/a' to='bob@example.org/b' type='chat'");  /* cut */
    assert_int_equal(smh.nrecs, 0);
    undelivered(2, "<message from='alice@example.org/a' to='bob@example.org/b' type='groupchat' "
                   "id='g1'><body>g</body></message>");
    EXPECT('S', 1, "id='g1'", "service-unavailable");
    assert_int_equal(smh.nrecs, 1);

    /* The front's END for the session came first: the stanza's own address is used. */
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_clear();
    undelivered(2, "<message from='alice@example.org/a' to='bob@example.org/b' id='u2'>"
                   "<body>lost two</body></message>");
    assert_int_equal(smh.nrecs, 0);
    undelivered(2, "<message from='alice@example.org/a' to='bob@elsewhere.net' type='chat'>"
                   "<body>not ours</body></message>");
    assert_int_equal(smh.nrecs, 0);
    /* Past the offline quota (2), as for any offline message: the sender is told. */
    undelivered(2, "<message from='alice@example.org/a' to='bob@example.org/b' type='chat' id='u3'>"
                   "<body>lost three</body></message>");
    EXPECT('S', 1, "id='u3'", "<error type='cancel'><service-unavailable");

    /* bob's next login gets both, in order, marked as delayed; nothing else was stored. */
    smh_online(3, "bob", "b");
    int a = smh_find('S', 3, "lost one",
                     "<delay xmlns='urn:xmpp:delay' from='example.org' stamp='");
    int b = smh_find('S', 3, "lost two", "urn:xmpp:delay");
    assert_true(a >= 0 && b > a);
    assert_int_equal(smh_count('S', 3, "urn:xmpp:delay"), 2);
    assert_int_equal(smh_count('S', 3, "not ours"), 0);
    assert_int_equal(smh_count('S', 3, "lost three"), 0);

    /* Handed back again after that delivery: stored once more, still stamped once, with the time
     * it first arrived. */
    char *again = strdup(smh.recs[a].text);
    const char *stamp = strstr(again, "stamp='");
    assert_non_null(stamp);
    undelivered(3, again);
    sm_end(smh.core, smh.front, 3, SMPROTO_END_GONE);
    smh_online(4, "bob", "b");
    i = smh_find('S', 4, "lost one", NULL);
    assert_true(i >= 0);
    const char *d1 = strstr(smh.recs[i].text, "urn:xmpp:delay");
    assert_non_null(d1);
    assert_null(strstr(d1 + 1, "urn:xmpp:delay"));
    /* stamp='...' up to the end: the same one */
    assert_non_null(strstr(smh.recs[i].text, stamp));
    free(again);
    free(chat);
    free(iq);
}

static void test_iq(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='u1' to='example.org'><query xmlns='urn:unknown'/></iq>");
    EXPECT('S', 1, "id='u1'", "service-unavailable");
    EXPECT('S', 1, "from='example.org'", "type='error'");
    smh_clear();
    smh_send(1, "<iq type='result' id='r1' to='example.org'/>");
    smh_send(1, "<iq type='error' id='r2' to='bob@example.org'/>");
    smh_send(1, "<iq type='result' id='r3' to='bob@example.org/x'/>");
    assert_int_equal(smh.nrecs, 0);
    smh_send(1, "<iq type='get' id='p1' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 1, "id='p1'", "type='result'");
    smh_clear();
    smh_send(1, "<iq type='get' id='x1' to='elsewhere.net'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 1, "id='x1'", "remote-server-not-found");
    smh_clear();
    smh_send(1, "<iq type='get' id='f1' to='bob@example.org/nope'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 1, "id='f1'", "service-unavailable");
    smh_clear();
    smh_send(1, "<iq type='get' id='j1' to='bad@@example.org'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 1, "id='j1'", "jid-malformed");
    smh_clear();
    smh_send(1, "<iq type='get' id='d1' to='example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "id='d1'", "<feature var='urn:xmpp:ping'/>");
    EXPECT('S', 1, "id='d1'", "<identity category='server' type='im'");
    /* An iq to a full JID that is online goes there, and the answer comes back. */
    smh_bind(2, "bob", "b");
    smh_clear();
    smh_send(1, "<iq type='get' id='v1' to='bob@example.org/b'><query xmlns='jabber:iq:version'/></iq>");
    EXPECT('S', 2, "id='v1'", "from='alice@example.org/a'");
    /* A component gets stanzas for its domain, and routes back. */
    smh_clear();
    smh_send(1, "<message to='room@muc.example.org' type='groupchat'><body>m</body></message>");
    EXPECT('C', 0, "to='room@muc.example.org'", "from='alice@example.org/a'");
    assert_null(strstr(smh.recs[smh_find('C', 0, NULL, NULL)].text, "xmlns="));
    smh_clear();
    smh_component("<message from='room@muc.example.org/x' to='alice@example.org/a'>"
                  "<body>back</body></message>");
    EXPECT('S', 1, "<body>back</body>", NULL);
    assert_null(strstr(smh.recs[smh_find('S', 1, NULL, NULL)].text, "jabber:component:accept"));
    assert_true(strncmp(smh.recs[smh_find('S', 1, NULL, NULL)].text, "<message to=", 12) == 0 ||
                strncmp(smh.recs[smh_find('S', 1, NULL, NULL)].text, "<message from=", 14) == 0);
}

/* A federation link (role s2s): stanzas for remote domains go to it, not to a component; it may
 * only send from remote domains to ours. */
static void test_s2s(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<message to='bob@remote.net' id='m0'><body>x</body></message>");
    EXPECT('S', 1, "id='m0'", "remote-server-not-found");
    sm_link *fed = sm_link_up(smh.core, (void *)3, "s2s", true);
    sm_link_set_s2s(smh.core, fed);
    smh_clear();
    smh_send(1, "<message to='bob@remote.net' id='m1'><body>out</body></message>");
    EXPECT('C', 0, "to='bob@remote.net'", "from='alice@example.org/a'");
    assert_int_equal(smh_find('S', 1, NULL, NULL), -1);
    /* The component keeps its own domain; the SM's hosts stay local. */
    smh_clear();
    smh_send(1, "<message to='room@muc.example.org' id='m2'><body>c</body></message>");
    EXPECT('C', 0, "to='room@muc.example.org'", NULL);
    /* From a remote domain to ours: routed as any stanza. */
    smh_clear();
    smh_xml_link(fed, "<message from='bob@remote.net/x' to='alice@example.org/a' id='i1'>"
                      "<body>in</body></message>");
    EXPECT('S', 1, "id='i1'", "<body>in</body>");
    /* From one of our domains, or to a domain that is not ours: refused, nothing goes out. */
    smh_clear();
    smh_xml_link(fed, "<message from='carol@example.org' to='alice@example.org/a' id='i2'>"
                      "<body>spoof</body></message>");
    smh_xml_link(fed, "<message from='bob@remote.net' to='x@third.net' id='i3'>"
                      "<body>relay</body></message>");
    smh_xml_link(fed, "<message to='alice@example.org/a' id='i4'><body>no from</body></message>");
    assert_int_equal(smh.nrecs, 0);
    sm_link_down(smh.core, fed);
    smh_clear();
    smh_send(1, "<message to='bob@remote.net' id='m3'><body>x</body></message>");
    EXPECT('S', 1, "id='m3'", "remote-server-not-found");
}

/* One parser serves every stanza: each must be exactly one element, and a refused one leaves the
 * next unharmed. */
static void test_parse(void **state)
{
    static const char *refused[] = {
        "", "   ", "<message/><message/>", "<message><body>half", "<message", "text",
        "<message/>text", "</stream:stream>", "<message xmlns='jabber:client'><a:b/></message>",
        "<!-- c --><message/>",
    };
    static const char *accepted[] = {
        "<message to='a@example.org'><body>1</body></message>",
        "<presence/>\n",
        "<iq type='get' id='x'><query xmlns='jabber:iq:roster'/></iq>",
    };
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
            assert_null(sm_parse(smh.core, refused[i], strlen(refused[i])));
            for (size_t j = 0; j < sizeof accepted / sizeof *accepted; j++) {
                sm_stanza *st = sm_parse(smh.core, accepted[j], strlen(accepted[j]));
                assert_non_null(st);
                assert_string_equal(st->node->ns, SM_NS_CLIENT);
                assert_string_equal(st->node->name, j == 0 ? "message" : j == 1 ? "presence" : "iq");
                sm_stanza_free(st);
            }
        }
    }
}

static void test_roster(void **state)
{
    smh_online(1, "alice", "a");
    smh_bind(2, "alice", "b");
    smh_clear();
    smh_send(1, "<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>");
    EXPECT('S', 1, "id='g1'", "<query xmlns='jabber:iq:roster' ver='0'/>");
    smh_clear();
    smh_send(1, "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='Bob@Example.org' "
                "name='Bob'><group>Friends</group></item></query></iq>");
    EXPECT('S', 1, "id='s1'", "type='result'");
    /* Pushed to the interested resource only. */
    EXPECT('S', 1, "type='set'", "<item jid='bob@example.org' name='Bob' subscription='none'><group>Friends</group></item>");
    assert_int_equal(smh_count('S', 2, NULL), 0);
    smh_clear();
    smh_send(1, "<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>");
    EXPECT('S', 1, "ver='1'", "jid='bob@example.org'");
    smh_clear();
    smh_send(1, "<iq type='get' id='g3'><query xmlns='jabber:iq:roster' ver='1'/></iq>");
    EXPECT('S', 1, "id='g3'", NULL);
    assert_null(strstr(smh.recs[smh_find('S', 1, "id='g3'", NULL)].text, "query"));
    /* Errors (RFC 6121 §2.3.3): two items, duplicate groups, an empty group, another user's roster, removing what is not there. */
    smh_clear();
    smh_send(1, "<iq type='set' id='e1'><query xmlns='jabber:iq:roster'><item jid='x@y'/><item jid='z@y'/></query></iq>");
    EXPECT('S', 1, "id='e1'", "bad-request");
    smh_send(1, "<iq type='set' id='e2'><query xmlns='jabber:iq:roster'><item jid='x@y'><group>a</group><group>a</group></item></query></iq>");
    EXPECT('S', 1, "id='e2'", "bad-request");
    smh_send(1, "<iq type='set' id='e5'><query xmlns='jabber:iq:roster'><item jid='x@y'><group></group></item></query></iq>");
    EXPECT('S', 1, "id='e5'", "not-acceptable");
    smh_send(1, "<iq type='get' id='e3' to='bob@example.org'><query xmlns='jabber:iq:roster'/></iq>");
    EXPECT('S', 1, "id='e3'", "forbidden");
    smh_send(1, "<iq type='set' id='e4'><query xmlns='jabber:iq:roster'><item jid='x@y' subscription='remove'/></query></iq>");
    EXPECT('S', 1, "id='e4'", "item-not-found");
    smh_clear();
    smh_send(1, "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@example.org' subscription='remove'/></query></iq>");
    EXPECT('S', 1, "id='r1'", "type='result'");
    EXPECT('S', 1, "subscription='remove'", "ver='2'");
}

/* The whole subscription handshake between two online users, then presence both ways. */
static void test_subscription(void **state)
{
    smh_online(1, "alice", "a");
    smh_send(1, "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
    smh_online(2, "bob", "b");
    smh_send(2, "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
    smh_clear();
    smh_send(1, "<presence to='bob@example.org/b' type='subscribe'/>");
    EXPECT('S', 1, "ask='subscribe'", "subscription='none'");
    EXPECT('S', 2, "type='subscribe'", "from='alice@example.org'");
    assert_null(strstr(smh.recs[smh_find('S', 2, "type='subscribe'", NULL)].text,
                       "alice@example.org/a"));
    smh_clear();
    smh_send(2, "<presence to='alice@example.org' type='subscribed'/>");
    EXPECT('S', 2, "jid='alice@example.org'", "subscription='from'");
    EXPECT('S', 1, "jid='bob@example.org'", "subscription='to'");
    EXPECT('S', 1, "type='subscribed'", "from='bob@example.org'");
    /* ...and alice sees bob's presence at once. */
    EXPECT('S', 1, "<presence from='bob@example.org/b' to='alice@example.org'", NULL);
    /* A second subscribed changes nothing and is not forwarded. */
    smh_clear();
    smh_send(2, "<presence to='alice@example.org' type='subscribed'/>");
    assert_int_equal(smh.nrecs, 0);
    /* bob changes presence: alice gets it; alice's changes do not reach bob (he has "from"). */
    smh_clear();
    smh_send(2, "<presence><show>away</show></presence>");
    EXPECT('S', 1, "from='bob@example.org/b'", "<show>away</show>");
    smh_clear();
    smh_send(1, "<presence><show>dnd</show></presence>");
    assert_int_equal(smh_count('S', 2, "dnd"), 0);
    /* bob logs in again elsewhere: alice's probe answer... alice logs out and in: she probes bob. */
    smh_send(1, "<presence type='unavailable'/>");
    smh_clear();
    smh_send(1, "<presence/>");
    EXPECT('S', 1, "from='bob@example.org/b'", "<show>away</show>");
    /* bob ends: alice gets unavailable. */
    smh_clear();
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_drain();
    EXPECT('S', 1, "from='bob@example.org/b'", "type='unavailable'");
    /* alice unsubscribes: bob is offline; his roster is loaded for it and changed. */
    smh_clear();
    smh_send(1, "<presence to='bob@example.org' type='unsubscribe'/>");
    EXPECT('S', 1, "jid='bob@example.org'", "subscription='none'");
    smh_online(2, "bob", "b");
    smh_clear();
    smh_send(2, "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
    EXPECT('S', 2, "jid='alice@example.org'", "subscription='none'");
}

/* A request to an offline user waits in storage and is delivered at login until answered. */
static void test_pending(void **state)
{
    smh_online(1, "alice", "a");
    smh_send(1, "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
    smh_send(1, "<presence to='carol@example.org' type='subscribe'><status>hi carol</status></presence>");
    smh_online(3, "carol", "c");
    EXPECT('S', 3, "type='subscribe'", "hi carol");
    smh_send(3, "<presence type='unavailable'/>");
    smh_clear();
    smh_send(3, "<presence/>");
    EXPECT('S', 3, "type='subscribe'", "hi carol");
    /* Denied: no longer pending. */
    smh_clear();
    smh_send(3, "<presence to='alice@example.org' type='unsubscribed'/>");
    EXPECT('S', 1, "type='unsubscribed'", "from='carol@example.org'");
    EXPECT('S', 1, "jid='carol@example.org'", "subscription='none'");
    smh_send(3, "<presence type='unavailable'/>");
    smh_clear();
    smh_send(3, "<presence/>");
    assert_int_equal(smh_count('S', 3, "type='subscribe'"), 0);
}

/* What a subscription stanza changes is stored before anyone sees it (sm/barrier.h): the forward
 * waits for the sender's roster store, the delivery for the contact's pending store. */
static void test_subscription_stored_before_seen(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
    const char *sub = "<presence to='bob@example.org' type='subscribe'/>";
    sm_session_stanza(smh.core, smh.front, 1, sub, strlen(sub));
    NONE('S', 2, "type='subscribe'");
    smh_drain();
    EXPECT('S', 2, "type='subscribe'", "from='alice@example.org'");
    smh_clear();
    const char *ok = "<presence to='alice@example.org' type='subscribed'/>";
    sm_session_stanza(smh.core, smh.front, 2, ok, strlen(ok));
    NONE('S', 1, "type='subscribed'");
    NONE('S', 1, "<presence from='bob@example.org/b'");
    smh_drain();
    int subscribed = smh_find('S', 1, "type='subscribed'", "from='bob@example.org'");
    int presence = smh_find('S', 1, "<presence from='bob@example.org/b'", NULL);
    if (!(subscribed >= 0 && presence > subscribed))
        smh_dump();
    assert_true(subscribed >= 0 && presence > subscribed);   /* in order, after the stores */
}

static void test_register(void **state)
{
    const char *get = "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>";
    sm_register(smh.core, smh.front, 50, "example.org", get, strlen(get));
    smh_drain();
    EXPECT('S', 50, "id='r1'", "<username/><password/>");
    const char *set = "<iq type='set' id='r2'><query xmlns='jabber:iq:register'>"
                      "<username>dave</username><password>secret</password></query></iq>";
    smh_clear();
    sm_register(smh.core, smh.front, 50, "example.org", set, strlen(set));
    smh_drain();
    EXPECT('S', 50, "id='r2'", "type='result'");
    smh_clear();
    sm_register(smh.core, smh.front, 51, "example.org", set, strlen(set));
    smh_drain();
    EXPECT('S', 51, "id='r2'", "<conflict");
    smh_clear();
    sm_register(smh.core, smh.front, 52, "closed.org", set, strlen(set));
    smh_drain();
    EXPECT('S', 52, "id='r2'", "<not-allowed");
    const char *bad = "<iq type='set' id='r3'><query xmlns='jabber:iq:register'>"
                      "<username>a b</username><password>x</password></query></iq>";
    smh_clear();
    sm_register(smh.core, smh.front, 53, "example.org", bad, strlen(bad));
    smh_drain();
    EXPECT('S', 53, "id='r3'", "<bad-request");
    smh_clear();
    sm_auth_query(smh.core, smh.front, 54, "example.org", "dave");
    smh_drain();
    assert_int_equal(smh.recs[smh_find('A', 54, NULL, NULL)].status, SMPROTO_AUTH_OK);
}

int main(void)
{
    smh.offline_quota = 2;   /* two messages fill an offline queue here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bind, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_message_online, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_offline, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_undelivered, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_iq, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_parse, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_s2s, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_roster, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_subscription, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_pending, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_subscription_stored_before_seen, smh_setup,
                                        smh_teardown),
        cmocka_unit_test_setup_teardown(test_register, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
