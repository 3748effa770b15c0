/* tests/unit/test_sm_modules.c — the everyday XEPs as SM modules, on the in-memory core
 * (tests/support/sm_harness.h): vCard (XEP-0054), private XML (XEP-0049), last activity (XEP-0012),
 * blocking (XEP-0191) with its enforcement, and message carbons (XEP-0280) with their copying
 * rules. */
#include <time.h>

#include "tests/support/sm_harness.h"

static void test_disco(void **state)
{
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='d' to='example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const char *features[] = {"vcard-temp", "jabber:iq:private", "jabber:iq:last",
                              "urn:xmpp:blocking", "urn:xmpp:carbons:2"};
    for (size_t i = 0; i < sizeof(features) / sizeof(*features); i++) {
        char var[64];
        snprintf(var, sizeof(var), "<feature var='%s'/>", features[i]);
        EXPECT('S', 1, "id='d'", var);
    }
}

static void test_vcard(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
    /* None yet: one's own is empty; another's is not found. */
    smh_send(1, "<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 1, "id='v1'", "type='result'");
    EXPECT('S', 1, "id='v1'", "<vCard xmlns='vcard-temp'/>");
    smh_send(2, "<iq type='get' id='v2' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 2, "id='v2'", "<item-not-found");
    smh_clear();
    smh_send(1, "<iq type='set' id='s1'><vCard xmlns='vcard-temp'><FN>Alice A.</FN>"
                "<NICKNAME>al</NICKNAME></vCard></iq>");
    EXPECT('S', 1, "id='s1'", "type='result'");
    smh_send(2, "<iq type='get' id='v3' to='Alice@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 2, "id='v3'", "<vCard xmlns='vcard-temp'><FN>Alice A.</FN><NICKNAME>al</NICKNAME></vCard>");
    EXPECT('S', 2, "id='v3'", "from='alice@example.org'");
    smh_send(1, "<iq type='get' id='v4' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 1, "id='v4'", "<FN>Alice A.</FN>");
    /* Setting someone else's is forbidden; a set replaces the whole card. */
    smh_clear();
    smh_send(2, "<iq type='set' id='s2' to='alice@example.org'><vCard xmlns='vcard-temp'><FN>x</FN></vCard></iq>");
    EXPECT('S', 2, "id='s2'", "<forbidden");
    smh_send(1, "<iq type='set' id='s3'><vCard xmlns='vcard-temp'><FN>New</FN></vCard></iq>");
    smh_send(2, "<iq type='get' id='v5' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 2, "id='v5'", "<vCard xmlns='vcard-temp'><FN>New</FN></vCard>");
    /* Over 64 KB: not-acceptable, and the old card stays. */
    size_t big = 70 * 1024;
    char *xml = malloc(big + 200);
    int n = sprintf(xml, "<iq type='set' id='s4'><vCard xmlns='vcard-temp'><PHOTO><BINVAL>");
    memset(xml + n, 'A', big);
    strcpy(xml + n + big, "</BINVAL></PHOTO></vCard></iq>");
    smh_clear();
    smh_send(1, xml);
    free(xml);
    EXPECT('S', 1, "id='s4'", "<not-acceptable");
    smh_send(1, "<iq type='get' id='v6'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 1, "id='v6'", "<FN>New</FN>");
    /* A non-existent account. */
    smh_clear();
    smh_send(1, "<iq type='get' id='v7' to='nobody@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 1, "id='v7'", "type='error'");
}

static void test_private(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
    smh_send(1, "<iq type='get' id='p1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
    EXPECT('S', 1, "id='p1'", "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>");
    smh_clear();
    smh_send(1, "<iq type='set' id='p2'><query xmlns='jabber:iq:private'>"
                "<storage xmlns='storage:bookmarks'><conference jid='r@muc.example.org'/></storage>"
                "<prefs xmlns='x:prefs'><a>1</a></prefs></query></iq>");
    EXPECT('S', 1, "id='p2'", "type='result'");
    assert_int_equal(smh_count('S', 1, "id='p2'"), 1);
    smh_clear();
    smh_send(1, "<iq type='get' id='p3'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
    EXPECT('S', 1, "id='p3'", "<storage xmlns='storage:bookmarks'><conference jid='r@muc.example.org'/></storage>");
    smh_send(1, "<iq type='get' id='p4'><query xmlns='jabber:iq:private'><prefs xmlns='x:prefs'/></query></iq>");
    EXPECT('S', 1, "id='p4'", "<prefs xmlns='x:prefs'><a>1</a></prefs>");
    /* Only one's own. */
    smh_clear();
    smh_send(2, "<iq type='get' id='p5' to='alice@example.org'><query xmlns='jabber:iq:private'><prefs xmlns='x:prefs'/></query></iq>");
    EXPECT('S', 2, "id='p5'", "<forbidden");
    NONE('S', 2, "<a>1</a>");
    smh_send(2, "<iq type='get' id='p6'><query xmlns='jabber:iq:private'><prefs xmlns='x:prefs'/></query></iq>");
    EXPECT('S', 2, "id='p6'", "<prefs xmlns='x:prefs'/>");
    /* Refused namespaces, no child, two children in a get. */
    smh_clear();
    smh_send(1, "<iq type='set' id='e1'><query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query></iq>");
    EXPECT('S', 1, "id='e1'", "<not-acceptable");
    smh_send(1, "<iq type='set' id='e2'><query xmlns='jabber:iq:private'><query xmlns='jabber:iq:private'/></query></iq>");
    EXPECT('S', 1, "id='e2'", "<not-acceptable");
    smh_send(1, "<iq type='get' id='e3'><query xmlns='jabber:iq:private'/></iq>");
    EXPECT('S', 1, "id='e3'", "<bad-format");
    smh_send(1, "<iq type='get' id='e4'><query xmlns='jabber:iq:private'><a xmlns='a'/><b xmlns='b'/></query></iq>");
    EXPECT('S', 1, "id='e4'", "<bad-format");
}

static void test_last(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(3, "carol", "c");
    smh_clear();
    /* The server: its uptime. */
    smh_send(1, "<iq type='get' id='u' to='example.org'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 1, "id='u'", "<query xmlns='jabber:iq:last' seconds='");
    /* bob subscribes to alice (alice's roster: bob "from"); bob logs out with a status. */
    smh_online(2, "bob", "b");
    smh_send(2, "<presence to='alice@example.org' type='subscribe'/>");
    smh_send(1, "<presence to='bob@example.org' type='subscribed'/>");
    smh_send(1, "<presence to='bob@example.org' type='subscribe'/>");
    smh_send(2, "<presence to='alice@example.org' type='subscribed'/>");
    /* bob online: 0. */
    smh_clear();
    smh_send(1, "<iq type='get' id='l1' to='bob@example.org'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 1, "id='l1'", "seconds='0'");
    smh_send(2, "<presence type='unavailable'><status>gone fishing</status></presence>");
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_drain();
    /* Offline: from storage (bob's roster is loaded from storage for the check), with the status. */
    smh_clear();
    smh_send(1, "<iq type='get' id='l2' to='bob@example.org'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 1, "id='l2'", ">gone fishing</query>");
    EXPECT('S', 1, "id='l2'", "type='result'");
    /* carol is not subscribed to bob: forbidden; nor to alice, who is online. */
    smh_clear();
    smh_send(3, "<iq type='get' id='l3' to='bob@example.org'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 3, "id='l3'", "<forbidden");
    smh_send(3, "<iq type='get' id='l4' to='alice@example.org'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 3, "id='l4'", "<forbidden");
    /* Never logged out; no such account. */
    smh_clear();
    smh_send(3, "<iq type='get' id='l5'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 3, "id='l5'", "seconds='0'");
    smh_send(3, "<iq type='get' id='l6' to='nobody@example.org'><query xmlns='jabber:iq:last'/></iq>");
    EXPECT('S', 3, "id='l6'", "<service-unavailable");
}

/* The user's stored last activity (caller frees), or NULL. */
static char *last_doc(const char *user)
{
    xdb_request *r = xdb_request_new(XDB_DOC_GET, "example.org", user);
    xdb_request_set_doc(r, "last", "");
    xdb_run(smh.db, r);
    char *v = r->status == XDB_OK ? strdup(r->value.data) : NULL;
    xdb_request_free(r);
    return v;
}

/* What mod_last records: each unavailable broadcast of a session, the client's (with its status)
 * or the one the server sends for a session that ends while available (without); neither
 * directed unavailable presence nor a session that never was available. */
static void test_last_logouts(void **state)
{
    smh_bind(1, "alice", "a");
    smh_send(1, "<presence type='unavailable'><status>never here</status></presence>");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    assert_null(last_doc("alice"));
    smh_online(2, "bob", "b");
    smh_send(2, "<presence to='carol@example.org' type='unavailable'/>");
    assert_null(last_doc("bob"));
    int64_t before = (int64_t)time(NULL);
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_drain();
    char *v = last_doc("bob");
    assert_non_null(v);
    assert_true(strtoll(v, NULL, 10) >= before);
    assert_null(strchr(v, ' '));
    free(v);
    smh_online(3, "carol", "c");
    smh_send(3, "<presence type='unavailable'><status>back soon</status></presence>");
    v = last_doc("carol");
    assert_non_null(strstr(v, " back soon"));
    free(v);
    smh_send(3, "<presence/>");
    smh_send(3, "<presence type='unavailable'/>");
    v = last_doc("carol");
    assert_null(strchr(v, ' '));
    free(v);
}

static void test_blocking(void **state)
{
    smh_befriend();
    smh_online(3, "carol", "c");
    smh_send(1, "<iq type='get' id='g0'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    smh_bind(4, "alice", "other");   /* did not ask for the list: no pushes */
    smh_clear();
    smh_send(1, "<iq type='get' id='g1'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 1, "id='g1'", "<blocklist xmlns='urn:xmpp:blocking'/>");
    /* Block bob: he sees alice go unavailable first; the result and the push follow. */
    smh_clear();
    smh_send(1, "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='Bob@example.org'/></block></iq>");
    EXPECT('S', 2, "from='alice@example.org/a'", "type='unavailable'");
    EXPECT('S', 1, "id='b1'", "type='result'");
    EXPECT('S', 1, "type='set'", "<block xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></block>");
    NONE('S', 4, "<block");
    smh_clear();
    smh_send(1, "<iq type='get' id='g2'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 1, "id='g2'", "<item jid='bob@example.org'/>");
    /* Inbound: a message gets service-unavailable, presence is dropped, an iq get is refused. */
    smh_clear();
    smh_send(2, "<message to='alice@example.org' type='chat' id='m1'><body>hi</body></message>");
    NONE('S', 1, "hi");
    NONE('S', 4, "hi");
    EXPECT('S', 2, "id='m1'", "<service-unavailable");
    smh_clear();
    smh_send(2, "<presence><show>away</show></presence>");
    NONE('S', 1, "away");
    smh_send(2, "<iq type='get' id='i1' to='alice@example.org/a'><ping xmlns='urn:xmpp:ping'/></iq>");
    NONE('S', 1, "id='i1'");
    EXPECT('S', 2, "id='i1'", "<service-unavailable");
    smh_send(2, "<iq type='get' id='i2' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 2, "id='i2'", "<service-unavailable");
    /* Outbound: refused with the blocking error, from any of alice's resources. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org/b' type='chat' id='m2'><body>psst</body></message>");
    NONE('S', 2, "psst");
    EXPECT('S', 1, "id='m2'", "<error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error>");
    EXPECT('S', 1, "id='m2'", "from='bob@example.org/b'");
    smh_send(4, "<iq type='get' id='i3' to='bob@example.org/b'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 4, "id='i3'", "<blocked xmlns='urn:xmpp:blocking:errors'/>");
    NONE('S', 2, "id='i3'");
    /* alice's presence no longer reaches bob. */
    smh_clear();
    smh_send(1, "<presence><show>chat</show></presence>");
    NONE('S', 2, "<show>chat</show>");
    /* carol is unaffected. */
    smh_clear();
    smh_send(3, "<message to='alice@example.org/a' id='m3'><body>from carol</body></message>");
    EXPECT('S', 1, "from carol", NULL);
    /* A domain entry covers everyone at it; errors. */
    smh_clear();
    smh_send(1, "<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 1, "id='b2'", "<bad-request");
    smh_send(1, "<iq type='set' id='b3'><block xmlns='urn:xmpp:blocking'><item jid='a@@b'/></block></iq>");
    EXPECT('S', 1, "id='b3'", "<jid-malformed");
    smh_send(3, "<iq type='get' id='b4' to='alice@example.org'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 3, "id='b4'", "<forbidden");
    /* Unblock bob: alice's presence goes to him again, and she probes him. */
    smh_clear();
    smh_send(1, "<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></unblock></iq>");
    EXPECT('S', 1, "id='u1'", "type='result'");
    EXPECT('S', 1, "type='set'", "<unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.org'/></unblock>");
    EXPECT('S', 2, "from='alice@example.org/a'", "<show>chat</show>");
    EXPECT('S', 1, "from='bob@example.org/b'", "<show>away</show>");   /* the probe's answer */
    smh_clear();
    smh_send(2, "<message to='alice@example.org/a' type='chat'><body>back</body></message>");
    EXPECT('S', 1, "back", NULL);
    /* The list survives a new login; unblock with no items clears it. */
    smh_send(1, "<iq type='set' id='b5'><block xmlns='urn:xmpp:blocking'><item jid='example.org'/>"
                "<item jid='x@y.org/r'/></block></iq>");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    sm_end(smh.core, smh.front, 4, SMPROTO_END_GONE);
    smh_drain();
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(3, "<message to='alice@example.org/a' id='m4'><body>carol again</body></message>");
    NONE('S', 1, "carol again");
    EXPECT('S', 3, "id='m4'", "<service-unavailable");
    smh_send(1, "<iq type='get' id='g3'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 1, "<item jid='example.org'/>", "<item jid='x@y.org/r'/>");
    smh_clear();
    smh_send(1, "<iq type='set' id='u2'><unblock xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 1, "type='set'", "<unblock xmlns='urn:xmpp:blocking'/>");
    smh_clear();
    smh_send(3, "<message to='alice@example.org/a' id='m5'><body>carol free</body></message>");
    EXPECT('S', 1, "carol free", NULL);
    smh_send(1, "<iq type='get' id='g4'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    EXPECT('S', 1, "id='g4'", "<blocklist xmlns='urn:xmpp:blocking'/>");
}

static int64_t offline_count(const char *user)
{
    xdb_request *r = xdb_request_new(XDB_OFFLINE_COUNT, "example.org", user);
    assert_int_equal(xdb_run(smh.db, r), XDB_OK);
    int64_t n = r->count;
    xdb_request_free(r);
    return n;
}

/* XEP-0191 holds for a user who is not in memory: their block list is loaded before a message is
 * stored offline or a bare-JID iq is answered on their behalf. */
static void test_blocking_offline(void **state)
{
    /* bob's list, written straight to storage: this SM has never loaded him. */
    xdb_request *r = xdb_request_new(XDB_BLOCK_ADD, "example.org", "bob");
    xdb_request_add_jid(r, "alice@example.org");
    assert_int_equal(xdb_run(smh.db, r), XDB_OK);
    xdb_request_free(r);
    smh_online(1, "alice", "a");
    smh_online(3, "carol", "c");
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat' id='m1'><body>hi</body></message>");
    EXPECT('S', 1, "id='m1'", "<service-unavailable");
    smh_send(1, "<message to='bob@example.org/gone' id='m2'><body>hi</body></message>");
    EXPECT('S', 1, "id='m2'", "<service-unavailable");
    smh_send(1, "<iq type='get' id='v1' to='bob@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 1, "id='v1'", "<service-unavailable");
    assert_int_equal(offline_count("bob"), 0);
    /* Loaded only for the check: bob is not kept in memory. */
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.users, 2);
    /* carol is not blocked: hers is stored, and her iq answered. */
    smh_clear();
    smh_send(3, "<message to='bob@example.org' type='chat' id='m3'><body>from carol</body></message>");
    NONE('S', 3, "id='m3'");
    assert_int_equal(offline_count("bob"), 1);
    smh_send(3, "<iq type='get' id='v2' to='bob@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 3, "id='v2'", "<item-not-found");   /* bob has no vCard: answered all the same */
    /* Several stanzas while bob loads keep their order and each gets its answer. */
    smh_clear();
    sm_session_stanza(smh.core, smh.front, 3, "<message to='bob@example.org' id='m4'><body>one</body></message>",
                      strlen("<message to='bob@example.org' id='m4'><body>one</body></message>"));
    sm_session_stanza(smh.core, smh.front, 1, "<message to='bob@example.org' id='m5'><body>two</body></message>",
                      strlen("<message to='bob@example.org' id='m5'><body>two</body></message>"));
    smh_drain();
    EXPECT('S', 1, "id='m5'", "<service-unavailable");
    NONE('S', 3, "id='m4'");
    assert_int_equal(offline_count("bob"), 2);
    /* bob logs in: only carol's messages are waiting. */
    smh_clear();
    smh_online(2, "bob", "b");
    EXPECT('S', 2, "from carol", NULL);
    EXPECT('S', 2, "id='m4'", NULL);
    NONE('S', 2, "id='m1'");
    NONE('S', 2, "id='m5'");
}

/* The same after bob blocked alice in this process and logged out (he is evicted from memory). */
static void test_blocking_after_logout(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_send(2, "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='alice@example.org'/></block></iq>");
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_drain();
    jid bob;
    assert_int_equal(jid_parse("bob@example.org", 15, &bob), JID_OK);
    assert_null(sm_user_find(smh.core, &bob));
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat' id='m1'><body>hi</body></message>");
    EXPECT('S', 1, "id='m1'", "<service-unavailable");
    assert_int_equal(offline_count("bob"), 0);
    assert_null(sm_user_find(smh.core, &bob));
    jid_free(&bob);
}

/* SIGTERM: every session ends as a logout would: END (shutdown), unavailable presence, last
 * activity stored; a contact with no session here is not loaded for the broadcast. */
static void test_shutdown(void **state)
{
    smh_befriend();
    /* carol subscribes to alice, then leaves: alice's roster has carol (from), carol is gone. */
    smh_online(3, "carol", "c");
    smh_send(3, "<presence to='alice@example.org' type='subscribe'/>");
    smh_send(1, "<presence to='carol@example.org' type='subscribed'/>");
    sm_end(smh.core, smh.front, 3, SMPROTO_END_GONE);
    smh_drain();
    smh_bind(4, "carol", "quiet");   /* bound, never available: ends without a broadcast */
    smh_clear();
    int64_t before = (int64_t)time(NULL);
    sm_shutdown(smh.core);
    const uint64_t sids[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        int i = smh_find('E', sids[k], NULL, NULL);
        assert_true(i >= 0);
        assert_int_equal(smh.recs[i].status, SMPROTO_END_SHUTDOWN);
    }
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.sessions, 0);
    assert_int_equal(st.users, 0);
    /* What was submitted: last activity for alice and bob, and no load for carol. */
    int last = 0;
    for (size_t k = smh.qhead; k < smh.qtail; k++) {
        assert_int_not_equal(smh.queue[k].r->op, XDB_ROSTER_LOAD);
        assert_int_not_equal(smh.queue[k].r->op, XDB_BLOCK_LIST);
        last += smh.queue[k].r->op == XDB_DOC_PUT && strcmp(smh.queue[k].r->store, "last") == 0;
    }
    assert_int_equal(last, 2);
    smh_drain();
    const char *users[] = {"alice", "bob"};
    for (int k = 0; k < 2; k++) {
        xdb_request *r = xdb_request_new(XDB_DOC_GET, "example.org", users[k]);
        xdb_request_set_doc(r, "last", "");
        assert_int_equal(xdb_run(smh.db, r), XDB_OK);
        assert_true(strtoll(r->value.data, NULL, 10) >= before);   /* stored now, not some earlier logout */
        xdb_request_free(r);
    }
    /* Stanzas that reach the core afterwards find no session. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org'><body>late</body></message>");
    assert_int_equal(smh.nrecs, 0);
}

/* Storage failing: an offline message goes back to its sender as a temporary error (never
 * silence), a login gets a storage error (the front says temporary-auth-failure). */
static void test_storage_failure(void **state)
{
    smh_online(1, "alice", "a");
    assert_int_equal(db_exec(smh.db, "DROP TABLE offline"), DB_OK);
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat' id='m1'><body>hi</body></message>");
    EXPECT('S', 1, "id='m1'", "type='wait'");
    EXPECT('S', 1, "id='m1'", "<resource-constraint");
    assert_int_equal(db_exec(smh.db, "DROP TABLE users"), DB_OK);
    smh_clear();
    sm_auth_query(smh.core, smh.front, 7, "example.org", "carol");
    smh_drain();
    int i = smh_find('A', 7, NULL, NULL);
    assert_true(i >= 0);
    assert_int_equal(smh.recs[i].status, SMPROTO_AUTH_ERROR);
}

static void test_carbons(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "alice", "b");
    smh_online(3, "alice", "c");   /* carbons not enabled */
    smh_online(4, "bob", "b");
    smh_clear();
    smh_send(1, "<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    smh_send(2, "<iq type='set' id='c2'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    EXPECT('S', 1, "id='c1'", "type='result'");
    EXPECT('S', 2, "id='c2'", "type='result'");
    /* A chat to a full JID: the others with carbons get <received/>. */
    smh_clear();
    smh_send(4, "<message to='alice@example.org/a' type='chat' id='m1'><body>one</body></message>");
    EXPECT('S', 1, "id='m1'", "<body>one</body>");
    EXPECT('S', 2, "<message from='alice@example.org' to='alice@example.org/b' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'", "<body>one</body><stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id=");
    EXPECT('S', 2, "<received", "</message></forwarded></received></message>");
    EXPECT('S', 2, "<received", "to='alice@example.org/a' type='chat' id='m1' from='bob@example.org/b'>");
    NONE('S', 3, "one");
    assert_int_equal(smh_count('S', 1, "one"), 1);
    /* To the bare JID: all three get the chat (same priority); no copies needed. */
    smh_clear();
    smh_send(4, "<message to='alice@example.org' type='chat' id='m2'><body>two</body></message>");
    assert_int_equal(smh_count('S', 1, "two"), 1);
    assert_int_equal(smh_count('S', 2, "two"), 1);
    NONE('S', 0, "<received");
    /* Sent by alice/a: <sent/> to b, not to c, not back to a. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat' id='m3'><body>three</body></message>");
    EXPECT('S', 4, "id='m3'", "three");
    EXPECT('S', 2, "<message from='alice@example.org' to='alice@example.org/b' type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>", "to='bob@example.org' type='chat' id='m3' from='alice@example.org/a'><body>three</body>");
    NONE('S', 3, "three");
    NONE('S', 1, "<sent");
    /* <private/>: no copy, and it is stripped before delivery; <no-copy/> too. */
    smh_clear();
    smh_send(1, "<message to='bob@example.org' type='chat' id='m4'><body>four</body><private xmlns='urn:xmpp:carbons:2'/></message>");
    EXPECT('S', 4, "four", NULL);
    NONE('S', 4, "private");
    NONE('S', 2, "four");
    smh_send(4, "<message to='alice@example.org/a' type='chat' id='m5'><body>five</body><no-copy xmlns='urn:xmpp:hints'/></message>");
    EXPECT('S', 1, "five", NULL);
    NONE('S', 2, "five");
    /* Eligibility: normal with a body yes; normal without body no, unless a chat state;
     * headline and groupchat no. */
    smh_clear();
    smh_send(4, "<message to='alice@example.org/a' id='m6'><body>six</body></message>");
    EXPECT('S', 2, "<received", "six");
    smh_send(4, "<message to='alice@example.org/a' id='m7'><subject>seven</subject></message>");
    NONE('S', 2, "seven");
    smh_send(4, "<message to='alice@example.org/a' id='m8'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    EXPECT('S', 2, "<received", "id='m8'");
    smh_send(4, "<message to='alice@example.org/a' type='headline' id='m9'><body>nine</body></message>");
    NONE('S', 2, "nine");
    /* Disable: no more copies. */
    smh_clear();
    smh_send(2, "<iq type='set' id='c3'><disable xmlns='urn:xmpp:carbons:2'/></iq>");
    smh_send(4, "<message to='alice@example.org/a' type='chat' id='m10'><body>ten</body></message>");
    NONE('S', 2, "ten");
    /* Only the user may enable; get is not a thing. */
    smh_clear();
    smh_send(4, "<iq type='set' id='c4' to='alice@example.org'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    EXPECT('S', 4, "id='c4'", "<forbidden");
    smh_send(1, "<iq type='get' id='c5'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    EXPECT('S', 1, "id='c5'", "<bad-request");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disco, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_vcard, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_private, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_last, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_last_logouts, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_blocking, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_blocking_offline, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_blocking_after_logout, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_carbons, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_storage_failure, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
