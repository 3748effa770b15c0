/* tests/unit/test_sm_caps.c — entity capabilities (sm/mod_caps.c, sm/caps_ver.c) and the SM's own
 * iq requests under it (sm/iq_out.c), on the in-memory core of tests/support/sm_harness.h: XEP-0115
 * §5.2 and §5.3 verify; one query whatever the number of sessions announcing a ver, all of them
 * told ("caps-known"); a resync's presence; an answer that does not hash to its ver, or comes from
 * elsewhere, is not cached; timeouts and a later retry; unavailable presence; the bounds; and
 * answers that are errors, empty, ill-formed or huge. */
#include "tests/support/sm_harness.h"

#include "sm/caps.h"
#include "sm/caps_ver.h"
#include "sm/iq_out.h"

#define NS_INFO "http://jabber.org/protocol/disco#info"
#define NODE "http://code.google.com/p/exodus"
#define PSI_NODE "http://psi-im.org"
#define EXODUS_VER "QgayPKawpkPSDYmwT/WM94uAlu0="
#define PSI_VER "q07IKJEyjvHSyhy//CH0CxmKi8w="
#define MUC "http://jabber.org/protocol/muc"

/* §5.2 */
#define EXODUS_FEATURES                                                                            \
    "<feature var='http://jabber.org/protocol/caps'/>"                                             \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                                       \
    "<feature var='http://jabber.org/protocol/disco#items'/>"                                      \
    "<feature var='" MUC "'/>"
#define EXODUS_QUERY                                                                               \
    "<query xmlns='" NS_INFO "' node='" NODE "#" EXODUS_VER "'>"                                   \
    "<identity category='client' name='Exodus 0.9.1' type='pc'/>" EXODUS_FEATURES "</query>"

/* §5.3, in another order than the example's: the string sorts it. */
#define PSI_QUERY                                                                                  \
    "<query xmlns='" NS_INFO "' node='" PSI_NODE "#" PSI_VER "'>"                                  \
    "<x xmlns='jabber:x:data' type='result'>"                                                      \
    "<field var='software_version'><value>0.11</value></field>"                                    \
    "<field var='os'><value>Mac</value></field>"                                                   \
    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" \
    "<field var='ip_version'><value>ipv6</value><value>ipv4</value></field>"                       \
    "<field var='os_version'><value>10.5.1</value></field>"                                        \
    "<field var='software'><value>Psi</value></field></x>"                                         \
    "<feature var='" MUC "'/>"                                                                     \
    "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"                        \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                                       \
    "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>"                   \
    "<feature var='http://jabber.org/protocol/disco#items'/>"                                      \
    "<feature var='http://jabber.org/protocol/caps'/>"                                             \
    "</query>"

/* ---- a module that counts "caps-known" per session id ---------------------------------------- */

static int known[16];

static bool watch_known(sm *s, sm_event *ev)
{
    known[ev->session->sid]++;
    assert_ptr_equal(ev->user, ev->session->user);
    return false;
}

static const sm_handler watch_handlers[] = {{SM_CAPS_EVENT, .hook = watch_known}, {NULL}};
static const sm_module mod_watch = {.name = "watch", .handlers = watch_handlers};
static const sm_module *const watch[] = {&mod_watch, NULL};

static void start(const char *extra)
{
    memset(known, 0, sizeof known);
    smh_start(extra, watch);
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void announce_as(uint64_t sid, const char *hash, const char *node, const char *ver)
{
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<presence><c xmlns='" CAPS_NS "' hash='%s' node='%s' ver='%s'/></presence>", hash,
             node, ver);
    smh_send(sid, xml);
}

static void announce(uint64_t sid, const char *ver)
{
    announce_as(sid, "sha-1", NODE, ver);
}

/* How many disco#info queries for ver the SM has sent (to anyone). */
static int queries(const char *ver)
{
    char needle[128];
    snprintf(needle, sizeof needle, "#%s'", ver);
    return smh_count('S', 0, needle);
}

/* The id of the last query for ver sent to sid. */
static void query_id(uint64_t sid, const char *ver, char id[32])
{
    char needle[128];
    snprintf(needle, sizeof needle, "#%s'", ver);
    int found = -1;
    for (int i = 0; i < smh.nrecs; i++)
        if (smh.recs[i].kind == 'S' && smh.recs[i].sid == sid && strstr(smh.recs[i].text, needle))
            found = i;
    if (found < 0) {
        smh_dump();
        fail_msg("no query for %s to sid %d", ver, (int)sid);
    }
    const char *p = strstr(smh.recs[found].text, " id='");
    assert_non_null(p);
    assert_int_equal(sscanf(p, " id='%31[^']'", id), 1);
}

static void answer(uint64_t sid, const char *id, const char *type, const char *payload)
{
    size_t n = strlen(payload) + 256;
    char *xml = malloc(n);
    snprintf(xml, n, "<iq type='%s' id='%s' to='example.org'>%s</iq>", type, id, payload);
    smh_send(sid, xml);
    free(xml);
}

/* Answers the last query for ver to sid with payload. */
static void answer_query(uint64_t sid, const char *ver, const char *payload)
{
    char id[32];
    query_id(sid, ver, id);
    answer(sid, id, "result", payload);
}

static bool has(const char *full, const char *feature)
{
    jid j;
    assert_int_equal(jid_parse(full, strlen(full), &j), JID_OK);
    sm_session *sess = sm_session_find(smh.core, &j);
    jid_free(&j);
    assert_non_null(sess);
    return sm_caps_has(smh.core, sess, feature);
}

static caps_ver_status ver_of(const char *query, caps_hash h, size_t max_items, char out[64])
{
    sm_stanza *st = sm_parse(smh.core, query, strlen(query));
    assert_non_null(st);
    xml_arena *scratch = xml_arena_new(1024);
    caps_ver_limits lim = {max_items, 65536};
    caps_ver_result r;
    caps_ver_status status = caps_ver(st->node, h, &lim, scratch, &r);
    snprintf(out, 64, "%s", r.ver);
    xml_arena_free(scratch);
    sm_stanza_free(st);
    return status;
}

/* ---- the verification string ------------------------------------------------------------------ */

static void test_ver_examples(void **state)
{
    char ver[64];
    assert_int_equal(ver_of(EXODUS_QUERY, CAPS_SHA1, 100, ver), CAPS_VER_OK);
    assert_string_equal(ver, EXODUS_VER);
    assert_int_equal(ver_of(PSI_QUERY, CAPS_SHA1, 100, ver), CAPS_VER_OK);
    assert_string_equal(ver, PSI_VER);
    assert_int_equal(ver_of(EXODUS_QUERY, CAPS_SHA256, 100, ver), CAPS_VER_OK);
    assert_int_equal(strlen(ver), 44);
    /* §5.4: the same feature or identity twice, two forms of one FORM_TYPE, a FORM_TYPE of two
     * values are ill-formed; so are a missing type, and two fields of one var. */
    static const char *const ill[] = {
        "<query xmlns='" NS_INFO "'><feature var='a'/><feature var='a'/></query>",
        "<query xmlns='" NS_INFO "'><identity category='c' type='t'/>"
        "<identity category='c' type='t'/></query>",
        "<query xmlns='" NS_INFO "'><identity category='c'/></query>",
        "<query xmlns='" NS_INFO "'><x xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'>"
        "<value>f</value></field></x><x xmlns='jabber:x:data'><field var='FORM_TYPE' "
        "type='hidden'><value>f</value></field></x></query>",
        "<query xmlns='" NS_INFO "'><x xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'>"
        "<value>f</value><value>g</value></field></x></query>",
        "<query xmlns='" NS_INFO "'><x xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'>"
        "<value>f</value></field><field var='v'/><field var='v'/></x></query>",
    };
    for (size_t i = 0; i < sizeof ill / sizeof ill[0]; i++)
        assert_int_equal(ver_of(ill[i], CAPS_SHA1, 100, ver), CAPS_VER_ILL_FORMED);
    /* A form whose FORM_TYPE is not hidden is left out. */
    char with[64], without[64];
    ver_of("<query xmlns='" NS_INFO "'><feature var='a'/><x xmlns='jabber:x:data'>"
           "<field var='FORM_TYPE'><value>f</value></field></x></query>", CAPS_SHA1, 100, with);
    ver_of("<query xmlns='" NS_INFO "'><feature var='a'/></query>", CAPS_SHA1, 100, without);
    assert_string_equal(with, without);
    /* Past the items' bound: 1 identity and 4 features are 5. */
    assert_int_equal(ver_of(EXODUS_QUERY, CAPS_SHA1, 4, ver), CAPS_VER_TOO_BIG);
}

/* ---- the module --------------------------------------------------------------------------------- */

static void test_one_query_for_many(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    smh_bind(2, "alice", "b");
    smh_bind(3, "bob", "c");
    smh_clear();
    announce(1, EXODUS_VER);
    announce(2, EXODUS_VER);
    announce(3, EXODUS_VER);
    assert_int_equal(queries(EXODUS_VER), 1);
    EXPECT('S', 1, "type='get'", "node='" NODE "#" EXODUS_VER "'");
    assert_false(has("alice@example.org/b", MUC));
    answer_query(1, EXODUS_VER, EXODUS_QUERY);
    for (int sid = 1; sid <= 3; sid++)
        assert_int_equal(known[sid], 1);
    assert_true(has("alice@example.org/a", MUC));
    assert_true(has("alice@example.org/b", "http://jabber.org/protocol/caps"));
    assert_true(has("bob@example.org/c", MUC));
    assert_false(has("bob@example.org/c", "urn:xmpp:none"));
    /* The same caps again: nothing asked, nothing fired. A new session: from the cache. */
    announce(2, EXODUS_VER);
    smh_bind(4, "carol", "d");
    announce(4, EXODUS_VER);
    assert_int_equal(queries(EXODUS_VER), 0);
    assert_int_equal(known[2], 1);
    assert_int_equal(known[4], 1);
    assert_true(has("carol@example.org/d", MUC));
    /* A resync re-sends the session's presence: its caps come back from the cache. */
    smh_clear();
    sm_resync(smh.core, smh.front, 5, "carol@example.org/r", NULL, 0,
              "<presence><c xmlns='" CAPS_NS "' hash='sha-1' node='" NODE "' ver='" EXODUS_VER
              "'/></presence>");
    smh_drain();
    assert_int_equal(known[5], 1);
    assert_true(has("carol@example.org/r", MUC));
    /* A change of caps is a new "caps-known". */
    announce(1, PSI_VER);
    answer_query(1, PSI_VER, PSI_QUERY);
    assert_int_equal(known[1], 2);
    assert_true(has("alice@example.org/a", MUC));
}

/* An answer that hashes to another ver teaches nothing and is not cached: the next session with
 * that ver is asked again. */
static void test_wrong_hash(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    smh_bind(2, "bob", "b");
    smh_clear();
    announce(1, PSI_VER);
    answer_query(1, PSI_VER, EXODUS_QUERY);
    assert_false(has("alice@example.org/a", MUC));
    assert_int_equal(known[1], 0);
    announce(2, PSI_VER);
    assert_int_equal(queries(PSI_VER), 2);
    answer_query(2, PSI_VER, PSI_QUERY);
    assert_true(has("bob@example.org/b", MUC));
}

/* Only the JID asked may answer, with the query's id, to the host. */
static void test_answer_from_elsewhere(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    smh_bind(2, "bob", "b");
    smh_clear();
    announce(1, EXODUS_VER);
    char id[32];
    query_id(1, EXODUS_VER, id);
    answer(2, id, "result", EXODUS_QUERY);
    answer(1, "other", "result", EXODUS_QUERY);
    assert_false(has("alice@example.org/a", MUC));
    answer(1, id, "result", EXODUS_QUERY);
    assert_true(has("alice@example.org/a", MUC));
    /* Its answer taken, the id matches nothing any more: dropped as before. */
    smh_clear();
    answer(1, id, "result", EXODUS_QUERY);
    NONE('S', 1, "<error");
}

static void test_timeout_then_retry(void **state)
{
    start("");
    sm_tick(smh.core, 1000);
    smh_bind(1, "alice", "a");
    smh_clear();
    announce(1, EXODUS_VER);
    char id[32];
    query_id(1, EXODUS_VER, id);
    sm_tick(smh.core, 30000);
    sm_tick(smh.core, 31001);
    answer(1, id, "result", EXODUS_QUERY);   /* too late */
    assert_false(has("alice@example.org/a", MUC));
    announce(1, EXODUS_VER);
    assert_int_equal(queries(EXODUS_VER), 2);
    answer_query(1, EXODUS_VER, EXODUS_QUERY);
    assert_true(has("alice@example.org/a", MUC));
}

static void test_unavailable_clears(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    announce(1, EXODUS_VER);
    answer_query(1, EXODUS_VER, EXODUS_QUERY);
    assert_true(has("alice@example.org/a", MUC));
    smh_send(1, "<presence type='unavailable'/>");
    assert_false(has("alice@example.org/a", MUC));
    announce(1, EXODUS_VER);
    assert_true(has("alice@example.org/a", MUC));
    /* Presence without caps, legacy caps (no hash), an unknown hash: none. */
    smh_send(1, "<presence/>");
    assert_false(has("alice@example.org/a", MUC));
    announce(1, EXODUS_VER);
    announce_as(1, "", NODE, EXODUS_VER);
    assert_false(has("alice@example.org/a", MUC));
    announce(1, EXODUS_VER);
    announce_as(1, "md5", NODE, EXODUS_VER);
    assert_false(has("alice@example.org/a", MUC));
    /* Directed presence says nothing of the session's caps. */
    announce(1, EXODUS_VER);
    smh_send(1, "<presence to='bob@example.org' type='unavailable'/>");
    assert_true(has("alice@example.org/a", MUC));
}

/* A session that ends while its query is out: the answer finds nobody to tell, and is cached. */
static void test_session_ends_while_asked(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    smh_bind(2, "bob", "b");
    smh_clear();
    announce(1, EXODUS_VER);
    announce(2, EXODUS_VER);
    char id[32];
    query_id(1, EXODUS_VER, id);
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_drain();
    answer(1, id, "result", EXODUS_QUERY);
    assert_true(has("alice@example.org/a", MUC));
    /* The one asked switching to other caps cancels the query nobody waits for any more. */
    announce(1, PSI_VER);
    query_id(1, PSI_VER, id);
    announce(1, EXODUS_VER);
    answer(1, id, "result", PSI_QUERY);
    smh_bind(3, "carol", "c");
    announce(3, PSI_VER);
    assert_int_equal(queries(PSI_VER), 1);   /* asked again: the first answer was not taken */
}

static void test_bounds(void **state)
{
    /* cache_max 1: the older entry goes, its sessions keep their features. */
    start("<caps><cache_max>1</cache_max></caps>");
    smh_bind(1, "alice", "a");
    smh_bind(2, "bob", "b");
    smh_bind(3, "carol", "c");
    smh_clear();
    announce(1, EXODUS_VER);
    answer_query(1, EXODUS_VER, EXODUS_QUERY);
    announce(2, PSI_VER);
    answer_query(2, PSI_VER, PSI_QUERY);
    assert_true(has("alice@example.org/a", MUC));
    announce(3, EXODUS_VER);
    assert_int_equal(queries(EXODUS_VER), 2);
    /* queries 1: a second unknown ver is not asked while the first is out. */
    start("<caps><queries>1</queries></caps>");
    smh_bind(1, "alice", "a");
    smh_bind(2, "bob", "b");
    smh_clear();
    announce(1, EXODUS_VER);
    announce(2, PSI_VER);
    assert_int_equal(queries(EXODUS_VER), 1);
    assert_int_equal(queries(PSI_VER), 0);
    /* max_items 4: the Exodus answer has 5. */
    start("<caps><max_items>4</max_items></caps>");
    smh_bind(1, "alice", "a");
    announce(1, EXODUS_VER);
    answer_query(1, EXODUS_VER, EXODUS_QUERY);
    assert_false(has("alice@example.org/a", MUC));
    assert_int_equal(known[1], 0);
}

/* What a client may answer instead: errors, no query, huge or ill-formed lists, another ver's. */
static void test_garbage_answers(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    size_t cap = 200000, len = 0;
    char *huge = malloc(cap);
    len += (size_t)snprintf(huge, cap, "<query xmlns='" NS_INFO "'>");
    for (int i = 0; i < 5000; i++)
        len += (size_t)snprintf(huge + len, cap - len, "<feature var='urn:f:%d'/>", i);
    snprintf(huge + len, cap - len, "</query>");
    const char *const bad[] = {
        "",
        "<ping xmlns='urn:xmpp:ping'/>",
        "<query xmlns='" NS_INFO "'><feature var='" MUC "'/><feature var='" MUC "'/></query>",
        "<query xmlns='" NS_INFO "'><feature/><identity/><x xmlns='jabber:x:data'><field/>"
        "</x></query>",
        huge,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        smh_send(1, "<presence/>");
        announce(1, EXODUS_VER);
        answer_query(1, EXODUS_VER, bad[i]);
        assert_false(has("alice@example.org/a", MUC));
    }
    smh_send(1, "<presence/>");
    announce(1, EXODUS_VER);
    char id[32];
    query_id(1, EXODUS_VER, id);
    answer(1, id, "error", "<error type='cancel'><service-unavailable "
                           "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
    assert_false(has("alice@example.org/a", MUC));
    assert_int_equal(known[1], 0);
    free(huge);
}

/* sm_iq_request to a JID with no session: the error comes back at once, before it returns, and
 * is the request's last call. */
static int iq_calls;
static char iq_type[16];

static void iq_reply(sm *s, const sm_stanza *reply, void *ctx)
{
    iq_calls++;
    assert_ptr_equal(ctx, &iq_calls);
    snprintf(iq_type, sizeof iq_type, "%s", reply ? sm_stanza_type(reply) : "none");
}

static void test_iq_request(void **state)
{
    start("");
    sm_tick(smh.core, 5000);
    jid gone;
    assert_int_equal(jid_parse("alice@example.org/gone", 22, &gone), JID_OK);
    xml_arena *a = xml_arena_new(256);
    xml_node *ping = xml_element_new(a, NULL, "urn:xmpp:ping", "ping");
    assert_true(sm_iq_request(smh.core, "get", "example.org", &gone, ping, 5, iq_reply, &iq_calls));
    assert_int_equal(iq_calls, 1);
    assert_string_equal(iq_type, "error");
    /* To a session: answered by its result; a cancelled one is never called. */
    smh_bind(1, "alice", "a");
    jid a1;
    assert_int_equal(jid_parse("alice@example.org/a", 19, &a1), JID_OK);
    assert_true(sm_iq_request(smh.core, "get", "example.org", &a1, ping, 5, iq_reply, &iq_calls));
    EXPECT('S', 1, "<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    int i = smh_find('S', 1, "<ping", NULL);
    char id[32];
    assert_int_equal(sscanf(strstr(smh.recs[i].text, " id='"), " id='%31[^']'", id), 1);
    answer(1, id, "result", "");
    assert_int_equal(iq_calls, 2);
    assert_string_equal(iq_type, "result");
    assert_true(sm_iq_request(smh.core, "get", "example.org", &a1, ping, 5, iq_reply, &iq_calls));
    sm_iq_cancel(smh.core, iq_reply, &iq_calls);
    sm_tick(smh.core, 20000);
    assert_int_equal(iq_calls, 2);
    /* A timeout calls it with NULL. */
    assert_true(sm_iq_request(smh.core, "get", "example.org", &a1, ping, 5, iq_reply, &iq_calls));
    sm_tick(smh.core, 24000);
    assert_int_equal(iq_calls, 2);
    sm_tick(smh.core, 25000);
    assert_int_equal(iq_calls, 3);
    assert_string_equal(iq_type, "none");
    xml_arena_free(a);
    jid_free(&gone);
    jid_free(&a1);
}

static void test_not_loaded(void **state)
{
    smh_start("<modules><module>presence</module><module>roster</module></modules>", NULL);
    smh_bind(1, "alice", "a");
    announce(1, EXODUS_VER);
    assert_int_equal(queries(EXODUS_VER), 0);
    assert_false(has("alice@example.org/a", MUC));
}

/* The SM stops with queries out: their callbacks free everything (the sanitizer builds check). */
static void test_stop_with_queries_out(void **state)
{
    start("");
    smh_bind(1, "alice", "a");
    smh_bind(2, "bob", "b");
    announce(1, EXODUS_VER);
    announce(2, PSI_VER);
    smh_stop();
}

/* A front's link comes up: it is told each host's ver (XEP-0115 §6.3), which is the ver of what a
 * disco#info query for the server's caps node (node#ver) is answered. */
static void test_server_caps(void **state)
{
    smh_clear();
    sm_link *l = sm_link_up(smh.core, (void *)7, "front2", false);
    assert_non_null(l);
    assert_int_equal(smh_find('M', 0, "caps", NULL), -1);   /* not before its resync ends */
    sm_front_resynced(smh.core, l);
    int m = smh_find('M', 0, "caps", NULL);
    assert_true(m >= 0);
    const char *body = smh.recs[m].text + strlen("caps") + 1;
    size_t len = smh.recs[m].len;
    char ver[CAPS_VER_MAX] = "";
    for (const char *p = body; p < body + len; p += strlen(p) + 1) {
        const char *v = p + strlen(p) + 1;
        if (!strcmp(p, "example.org"))
            snprintf(ver, sizeof ver, "%s", v);
        p = v;
    }
    assert_true(*ver);
    smh_bind(1, "alice", "a");   /* (clears the records) */
    char iq[256];
    snprintf(iq, sizeof iq, "<iq type='get' id='sc' to='example.org'><query xmlns='http://jabber."
                            "org/protocol/disco#info' node='https://jabshard.org/caps#%s'/></iq>",
             ver);
    smh_clear();
    smh_send(1, iq);
    int r = smh_find('S', 1, "id='sc'", "type='result'");
    assert_true(r >= 0);
    EXPECT('S', 1, "node='https://jabshard.org/caps#", ver);
    /* The answer's ver is the one announced. */
    const char *q = strstr(smh.recs[r].text, "<query");
    sm_stanza *answer = sm_parse(smh.core, q, strlen(q) - strlen("</iq>"));
    assert_non_null(answer);
    xml_arena *scratch = xml_arena_new(4096);
    caps_ver_limits lim = {100000, 1 << 20};
    caps_ver_result res;
    assert_int_equal(caps_ver(answer->node, CAPS_SHA1, &lim, scratch, &res), CAPS_VER_OK);
    assert_string_equal(res.ver, ver);
    xml_arena_free(scratch);
    sm_stanza_free(answer);
    /* Any other node of the server: item-not-found. */
    smh_clear();
    smh_send(1, "<iq type='get' id='sn' to='example.org'><query xmlns='http://jabber.org/protocol/"
                "disco#info' node='elsewhere'/></iq>");
    EXPECT('S', 1, "id='sn'", "item-not-found");
    sm_link_down(smh.core, l);
}

int main(void)
{
    log_set_level(LL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_caps, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_ver_examples, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_one_query_for_many, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_hash, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_answer_from_elsewhere, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_then_retry, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_unavailable_clears, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_session_ends_while_asked, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bounds, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_answers, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_iq_request, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_not_loaded, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_queries_out, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests_name("sm_caps", tests, NULL, NULL);
}
