/* tests/unit/test_sm_mam.c — message archives (sm/mod_mam.c and its files) in the harness: both
 * archives of a chat, the stanza id delivered (and a forged one removed), queries by contact with
 * results forwarded and delayed, paging forwards, backwards and flipped, preferences, hints,
 * offline messages, metadata, the errors, batches by storage lane, and the archive across an SM
 * restart. */
#include "tests/support/sm_harness.h"

#define MAM "urn:xmpp:mam:2"

static void chat(uint64_t sid, const char *to, const char *body)
{
    char xml[512];
    snprintf(xml, sizeof xml, "<message to='%s@example.org' type='chat'><body>%s</body></message>",
             to, body);
    smh_send(sid, xml);
}

/* sid queries its archive: form fields (var, value pairs ending in NULL) and RSM (inner XML of
 * <set/>, or NULL); extra: more children of <query/>. */
static void query(uint64_t sid, const char *const *fields, const char *set, const char *extra)
{
    char xml[2048];
    int n = snprintf(xml, sizeof xml, "<iq type='set' id='q'><query xmlns='" MAM "' queryid='Q1'>");
    if (fields) {
        n += snprintf(xml + n, sizeof xml - (size_t)n,
                      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
                      "type='hidden'><value>" MAM "</value></field>");
        for (size_t i = 0; fields[i]; i += 2)
            n += snprintf(xml + n, sizeof xml - (size_t)n, "<field var='%s'><value>%s</value>"
                          "</field>", fields[i], fields[i + 1]);
        n += snprintf(xml + n, sizeof xml - (size_t)n, "</x>");
    }
    if (set)
        n += snprintf(xml + n, sizeof xml - (size_t)n,
                      "<set xmlns='http://jabber.org/protocol/rsm'>%s</set>", set);
    snprintf(xml + n, sizeof xml - (size_t)n, "%s</query></iq>", extra ? extra : "");
    smh_clear();
    smh_send(sid, xml);
}

/* The bodies of the results sid got, in order, joined by ','. */
static void bodies(uint64_t sid, char *out, size_t size)
{
    out[0] = 0;
    for (int i = 0; i < smh.nrecs; i++) {
        const char *t = smh.recs[i].text;
        if (smh.recs[i].kind != 'S' || smh.recs[i].sid != sid || !strstr(t, "<result"))
            continue;
        const char *b = strstr(t, "<body>");
        if (b)
            snprintf(out + strlen(out), size - strlen(out), "%s%.*s", *out ? "," : "",
                     (int)(strstr(b, "</body>") - b - 6), b + 6);
    }
}

static void assert_bodies(uint64_t sid, const char *want)
{
    char got[1024];
    bodies(sid, got, sizeof got);
    if (strcmp(got, want) != 0) {
        smh_dump();
        fail_msg("results '%s', expected '%s'", got, want);
    }
}

/* The id of the result holding body, in out. */
static void result_id(uint64_t sid, const char *body, char *out)
{
    char needle[64];
    snprintf(needle, sizeof needle, "<body>%s</body>", body);
    int i = smh_find('S', sid, "<result", needle);
    assert_true(i >= 0);
    const char *p = strstr(strstr(smh.recs[i].text, "<result"), " id='");
    assert_non_null(p);
    sscanf(p + 5, "%63[^']", out);
}

static void test_chat_archived_both_sides(void **state)
{
    smh_befriend();
    smh_send(2, "<message to='alice@example.org' type='chat'><body>hi</body>"
                "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='forged'/></message>");
    EXPECT('S', 1, "<body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org'", NULL);
    NONE('S', 1, "forged");
    chat(1, "bob", "hello");
    static const char *const with_bob[] = {"with", "bob@example.org", NULL};
    query(1, with_bob, NULL, NULL);
    assert_bodies(1, "hi,hello");
    EXPECT('S', 1, "<result xmlns='" MAM "' queryid='Q1' id=", "<forwarded xmlns='urn:xmpp:forward"
                                                              ":0'><delay xmlns='urn:xmpp:delay'");
    EXPECT('S', 1, "id='q'", "<fin xmlns='" MAM "' complete='true'");
    /* The archived copy is the delivered one: with its stanza id. */
    char id[64];
    result_id(1, "hi", id);
    EXPECT('S', 1, "<stanza-id", id);
    query(2, NULL, NULL, NULL);
    assert_bodies(2, "hi,hello");
    /* Others' archives and bad queries. */
    smh_clear();
    smh_send(2, "<iq type='set' id='x' to='alice@example.org'><query xmlns='" MAM "'/></iq>");
    EXPECT('S', 2, "id='x'", "forbidden");
    static const char *const bad[] = {"frobnicate", "1", NULL};
    query(1, bad, NULL, NULL);
    EXPECT('S', 1, "id='q'", "bad-request");
    static const char *const bad_date[] = {"start", "yesterday", NULL};
    query(1, bad_date, NULL, NULL);
    EXPECT('S', 1, "id='q'", "bad-request");
    query(1, NULL, "<after>nope</after>", NULL);
    EXPECT('S', 1, "id='q'", "item-not-found");
    query(1, NULL, "<index>1</index><after>x</after>", NULL);
    EXPECT('S', 1, "id='q'", "bad-request");
    smh_clear();
    smh_send(1, "<iq type='get' id='f'><query xmlns='" MAM "'/></iq>");
    EXPECT('S', 1, "id='f'", "<field var='with' type='jid-single'/>");
    smh_send(1, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "urn:xmpp:mam:2#extended", "urn:xmpp:sid:0");
}

/* The same message routed twice (a frame a restarted SM gets again) has the same stanza id both
 * times, and is archived once. */
static void test_same_message_same_id(void **state)
{
    smh_befriend();
    const char *m = "<message to='alice@example.org/a' type='chat' id='x1'><body>again</body></message>";
    smh_clear();
    smh_send(2, m);
    int first = smh_find('S', 1, "<body>again</body>", NULL);
    assert_true(first >= 0);
    char id1[80];
    sscanf(strstr(smh.recs[first].text, "<stanza-id"), "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='%63[^']", id1);
    smh_clear();
    smh_send(2, m);
    EXPECT('S', 1, "<body>again</body>", id1);
    query(1, NULL, NULL, NULL);
    assert_bodies(1, "again");
}

static void test_paging(void **state)
{
    smh_befriend();
    for (int i = 1; i <= 7; i++) {
        char body[8];
        snprintf(body, sizeof body, "m%d", i);
        chat(2, "alice", body);
    }
    query(1, NULL, "<max>3</max>", NULL);
    assert_bodies(1, "m1,m2,m3");
    NONE('S', 1, "complete='true'");
    char last[64];
    result_id(1, "m3", last);
    char set[128];
    snprintf(set, sizeof set, "<max>3</max><after>%s</after>", last);
    query(1, NULL, set, NULL);
    assert_bodies(1, "m4,m5,m6");
    /* The last page, then the one before it. */
    query(1, NULL, "<max>3</max><before/>", NULL);
    assert_bodies(1, "m5,m6,m7");
    char first[64];
    result_id(1, "m5", first);
    snprintf(set, sizeof set, "<max>3</max><before>%s</before>", first);
    query(1, NULL, set, NULL);
    assert_bodies(1, "m2,m3,m4");
    snprintf(set, sizeof set, "<max>3</max><before>%s</before>", first);
    query(1, NULL, set, "<flip-page/>");
    assert_bodies(1, "m4,m3,m2");
    /* RSM index: from the start, that many skipped; the first says its index. */
    query(1, NULL, "<max>2</max><index>4</index>", NULL);
    assert_bodies(1, "m5,m6");
    EXPECT('S', 1, "<first index='4'>", NULL);
    /* mam:2#extended: metadata, and ids. */
    smh_clear();
    smh_send(1, "<iq type='get' id='md'><metadata xmlns='" MAM "'/></iq>");
    EXPECT('S', 1, "id='md'", "<start id=");
    EXPECT('S', 1, "id='md'", "<end id=");
    char want[64];
    query(1, NULL, "<max>1</max><before/>", NULL);
    result_id(1, "m7", want);
    static const char *ids[] = {"ids", NULL, NULL};
    ids[1] = want;
    query(1, ids, NULL, NULL);
    assert_bodies(1, "m7");
}

static void test_prefs_hints_offline(void **state)
{
    smh_befriend();
    smh_clear();
    smh_send(1, "<iq type='set' id='p'><prefs xmlns='" MAM "' default='never'><always><jid>"
                "carol@example.org</jid></always></prefs></iq>");
    EXPECT('S', 1, "id='p'", "<prefs xmlns='" MAM "' default='never'><always><jid>carol@example."
                             "org</jid></always><never/></prefs>");
    chat(2, "alice", "not kept");
    smh_online(3, "carol", "c");
    chat(3, "alice", "kept");
    smh_send(3, "<message to='alice@example.org' type='chat'><body>hinted</body>"
                "<no-store xmlns='urn:xmpp:hints'/></message>");
    query(1, NULL, NULL, NULL);
    assert_bodies(1, "kept");
    smh_clear();
    smh_send(1, "<iq type='get' id='pg'><prefs xmlns='" MAM "'/></iq>");
    EXPECT('S', 1, "id='pg'", "default='never'");
    /* bob's own archive has his message (his default is always); a message to an offline account
     * is archived too. */
    query(2, NULL, NULL, NULL);
    assert_bodies(2, "not kept");
    smh_online(4, "bob", "b2");
    sm_end(smh.core, smh.front, 3, SMPROTO_END_GONE);
    chat(4, "carol", "while away");
    smh_online(5, "carol", "c2");
    query(5, NULL, NULL, NULL);
    assert_bodies(5, "kept,while away");   /* <no-store/>: in no archive */
}

/* Written by the tick, the archive outlives the SM; the preferences too. */
/* Storage lanes by the account's first letter: alice and carol in 1, bob in 0. */
static int parity_lane(void *ctx, const char *host, const char *user)
{
    return user[0] % 2;
}

/* How many messages user's archive holds in storage. */
static size_t stored(const char *user)
{
    xdb_request *r = xdb_request_new(XDB_MAM_QUERY, "example.org", user);
    assert_int_equal(xdb_run(smh.db, r), XDB_OK);
    size_t n = r->mam.n;
    xdb_request_free(r);
    return n;
}

/* Messages wait by storage lane: a query writes its account's lane (with every account of it)
 * and no other; the tick writes the rest. */
static void test_lanes(void **state)
{
    sm_set_storage_lanes(smh.core, 2, parity_lane);
    smh_befriend();
    chat(2, "alice", "one");
    chat(1, "carol", "two");
    assert_int_equal(stored("alice") + stored("bob") + stored("carol"), 0);
    query(1, NULL, NULL, NULL);
    assert_bodies(1, "one,two");
    assert_int_equal(stored("carol"), 1);
    assert_int_equal(stored("bob"), 0);
    sm_tick(smh.core, 2000);
    smh_drain();
    assert_int_equal(stored("bob"), 1);
}

static void test_restart(void **state)
{
    smh_befriend();
    chat(2, "alice", "before");
    sm_tick(smh.core, 2000);
    smh_drain();
    smh_stop();
    smh_start("", NULL);
    smh_online(1, "alice", "a");
    query(1, NULL, NULL, NULL);
    assert_bodies(1, "before");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_archived_both_sides, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_paging, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_same_message_same_id, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_prefs_hints_offline, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_lanes, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_restart, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
