/* tests/unit/test_sm_smacks.c — XEP-0198's SM half (sm/mod_smacks.c) in the harness: enabling,
 * custody of what a session is sent until acknowledged, <r/> answered once the SM has the
 * stanzas, hibernation of a lost connection, resumption on another connection (with replay of
 * exactly what was not acknowledged, and the old connection closed), the account check, the
 * timeout with its fates (offline storage, then unavailable presence), a clean close, the
 * bound on what is kept, and hibernated sessions kept in storage across an SM restart. */
#include "tests/support/sm_harness.h"

/* The last smacks message the SM sent to sid, decoded; false when none. */
static bool sm_said(uint64_t sid, smacks_msg *out)
{
    for (int i = smh.nrecs - 1; i >= 0; i--) {
        smh_record *r = &smh.recs[i];
        if (r->kind == 'M' && r->sid == sid && strcmp(r->text, SMACKS_MODULE) == 0) {
            const uint8_t *body = (const uint8_t *)r->text + strlen(SMACKS_MODULE) + 1;
            assert_true(smacks_msg_get(body, r->len, out));
            return true;
        }
    }
    return false;
}

static char resume_id[SMACKS_ID_MAX + 1];

/* alice (sid 1) and bob (sid 2) are friends and online; alice enables resumption. */
static void alice_enables(void)
{
    smh_befriend();
    smacks_msg en = {.kind = SMACKS_ENABLE, .resume = true, .max = 600};
    smh_smacks(1, &en);
    smacks_msg got;
    assert_true(sm_said(1, &got));
    assert_int_equal(got.kind, SMACKS_ENABLED);
    assert_int_equal(strlen(got.id), 24);
    assert_int_equal(got.max, 300);   /* the server's bound wins over the client's 600 */
    strcpy(resume_id, got.id);
    EXPECT('T', 1, NULL, NULL);       /* the STATE record carries it, for a resync */
    smh_clear();
}

static void bob_tells_alice(const char *body)
{
    char xml[256];
    snprintf(xml, sizeof xml,
             "<message xmlns='jabber:client' from='bob@example.org/b' to='alice@example.org/a' "
             "type='chat'><body>%s</body></message>", body);
    smh_send(2, xml);
}

/* alice's client sends <resume/> with her id and h on connection sid; the SM's answer. */
static smacks_msg alice_resumes(uint64_t sid, uint32_t h)
{
    smacks_msg res = {.kind = SMACKS_RESUME, .host = "example.org", .user = "alice",
                      .id = resume_id, .wire_h = h};
    smh_smacks(sid, &res);
    smacks_msg got;
    assert_true(sm_said(sid, &got));
    return got;
}

/* alice's client on sid acknowledges the first n stanzas, its connection is lost, and it
 * resumes on connection to with h = n: the SM's answer. */
static smacks_msg alice_acks_and_resumes(uint64_t sid, uint64_t to, uint32_t n)
{
    smacks_msg ack = {.kind = SMACKS_ACK, .client_h = n, .sm_acked = n};
    smh_smacks(sid, &ack);
    sm_end(smh.core, smh.front, sid, SMPROTO_END_GONE);
    smh_clear();
    return alice_resumes(to, n);
}

/* alice logs in afresh (sid 5) and sends initial presence: her offline messages come. */
static void alice_logs_in_again(void)
{
    smh_clear();
    smh_bind(5, "alice", "again");
    smh_send(5, "<presence xmlns='jabber:client'/>");
}

static void test_enable_and_ack(void **state)
{
    alice_enables();
    bob_tells_alice("one");
    bob_tells_alice("two");
    EXPECT('S', 1, ">one<", NULL);
    EXPECT('S', 1, ">two<", NULL);
    /* The front asking again (after its link came back) gets the same answer. */
    smacks_msg en = {.kind = SMACKS_ENABLE, .resume = true};
    smh_smacks(1, &en);
    smacks_msg got;
    assert_true(sm_said(1, &got));
    assert_int_equal(got.kind, SMACKS_ENABLED);
    assert_string_equal(got.id, resume_id);
    /* <r/>: answered with the front's count once the SM has what came before. */
    smacks_msg r = {.kind = SMACKS_R, .in_count = 7, .in_local = 1};
    smh_smacks(1, &r);
    assert_true(sm_said(1, &got));
    assert_int_equal(got.kind, SMACKS_A);
    assert_true(got.h == 7);
    /* The client acknowledged the first: a resumption replays only the second. */
    got = alice_acks_and_resumes(1, 9, 1);
    assert_int_equal(got.kind, SMACKS_RESUMED);
    assert_string_equal(got.jid, "alice@example.org/a");
    assert_true(got.client_h == 1 && got.sm_acked == 1);
    EXPECT('S', 9, ">two<", NULL);
    NONE('S', 9, ">one<");
}

static void test_ack_out_of_order_ignored(void **state)
{
    alice_enables();
    bob_tells_alice("one");
    /* More than was sent, or going back: ignored. */
    smacks_msg ack = {.kind = SMACKS_ACK, .client_h = 5, .sm_acked = 5};
    smh_smacks(1, &ack);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_clear();
    alice_resumes(9, 0);
    EXPECT('S', 9, ">one<", NULL);
}

static void test_hibernation_keeps_session(void **state)
{
    alice_enables();
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    /* Still there, available to bob, and nothing goes to a connection. */
    jid j;
    assert_int_equal(jid_parse("alice@example.org/a", 19, &j), JID_OK);
    sm_session *sess = sm_session_find(smh.core, &j);
    assert_non_null(sess);
    assert_true(sm_session_detached(sess));
    jid_free(&j);
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.detached, 1);
    NONE('S', 2, "unavailable");
    bob_tells_alice("while away");
    NONE('S', 1, "while away");
    /* Resumed on another connection: the message comes then. */
    alice_resumes(9, 0);
    EXPECT('S', 9, "while away", NULL);
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.detached, 0);
    /* What the old connection hands back is the session's, kept: no offline copy. */
    const char *xml = "<message xmlns='jabber:client' from='bob@example.org/b' "
                      "to='alice@example.org/a' type='chat'><body>late</body></message>";
    sm_undelivered(smh.core, smh.front, 1, xml, strlen(xml));
    smh_drain();
    smh_clear();
    smh_bind(5, "alice", "other");
    smh_send(5, "<presence xmlns='jabber:client'/>");
    NONE('S', 5, ">late<");
    /* Ten minutes on, the old connection is forgotten: what it hands back then meets the fates
     * of the undelivered (offline), as for any ended session. */
    sm_tick(smh.core, 10 * 60 * 1000 + 1);
    sm_undelivered(smh.core, smh.front, 1, xml, strlen(xml));
    smh_drain();
    smh_clear();
    smh_bind(6, "alice", "third");
    smh_send(6, "<presence xmlns='jabber:client'/>");
    EXPECT('S', 6, ">late<", NULL);
}

static void test_resume_takes_over_live_connection(void **state)
{
    alice_enables();
    alice_resumes(9, 0);
    /* The old connection is closed as replaced (<conflict/>). */
    EXPECT('E', 1, NULL, NULL);
    assert_int_equal(smh.recs[smh_find('E', 1, NULL, NULL)].status, SMPROTO_END_REPLACED);
    smacks_msg got;
    assert_true(sm_said(9, &got));
    assert_int_equal(got.kind, SMACKS_RESUMED);
    /* Stanzas now go to the new connection. */
    smh_clear();
    bob_tells_alice("here");
    EXPECT('S', 9, ">here<", NULL);
    NONE('S', 1, ">here<");
}

static void test_resume_refused(void **state)
{
    alice_enables();
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smacks_msg got;
    /* Another account cannot use alice's id. */
    smacks_msg res = {.kind = SMACKS_RESUME, .host = "example.org", .user = "bob",
                      .id = resume_id, .wire_h = 0};
    smh_smacks(9, &res);
    assert_true(sm_said(9, &got));
    assert_int_equal(got.kind, SMACKS_FAILED);
    assert_int_equal(got.condition, SMACKS_ITEM_NOT_FOUND);
    /* Nor another host. */
    res.user = "alice";
    res.host = "closed.org";
    smh_smacks(10, &res);
    assert_true(sm_said(10, &got));
    assert_int_equal(got.condition, SMACKS_ITEM_NOT_FOUND);
    /* An unknown id. */
    res.host = "example.org";
    res.id = "AAAAAAAAAAAAAAAAAAAAAAAA";
    smh_smacks(11, &res);
    assert_true(sm_said(11, &got));
    assert_int_equal(got.condition, SMACKS_ITEM_NOT_FOUND);
    /* From a connection that already has a session. */
    res.id = resume_id;
    smh_smacks(2, &res);
    assert_true(sm_said(2, &got));
    assert_int_equal(got.condition, SMACKS_UNEXPECTED_REQUEST);
}

/* alice enables resumption at 1 s, her connection is lost, and bob sends her "kept". */
static void alice_away_with_kept(void)
{
    alice_enables();
    sm_tick(smh.core, 1000);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    bob_tells_alice("kept");
}

static void test_timeout_stores_then_unavailable(void **state)
{
    alice_away_with_kept();
    smh_clear();
    sm_tick(smh.core, 1000 + 299 * 1000);
    NONE('S', 2, "unavailable");
    sm_tick(smh.core, 1000 + 300 * 1000);
    smh_drain();
    /* bob sees alice go; the id is gone. */
    EXPECT('S', 2, "unavailable", "alice@example.org/a");
    sm_stats st;
    sm_get_stats(smh.core, &st);
    assert_int_equal(st.detached, 0);
    smacks_msg got = alice_resumes(9, 0);
    assert_int_equal(got.condition, SMACKS_ITEM_NOT_FOUND);
    /* The message is in offline storage: the next login gets it. */
    alice_logs_in_again();
    EXPECT('S', 5, ">kept<", NULL);
}

static void test_clean_close_ends(void **state)
{
    alice_enables();
    smacks_msg close = {.kind = SMACKS_CLOSE};
    smh_smacks(1, &close);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    EXPECT('S', 2, "unavailable", "alice@example.org/a");
}

static void test_without_resumption_ends(void **state)
{
    smh_befriend();
    smacks_msg en = {.kind = SMACKS_ENABLE, .resume = false};
    smh_smacks(1, &en);
    smacks_msg got;
    assert_true(sm_said(1, &got));
    assert_int_equal(got.kind, SMACKS_ENABLED);
    assert_string_equal(got.id, "");
    bob_tells_alice("unacked");
    smh_clear();
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    EXPECT('S', 2, "unavailable", "alice@example.org/a");
    /* What alice never acknowledged is offline. */
    alice_logs_in_again();
    EXPECT('S', 5, ">unacked<", NULL);
}

static void test_bound_on_kept(void **state)
{
    smh_stop();
    smh_start("<smacks><queue_max>3</queue_max></smacks>", NULL);
    alice_enables();
    for (int i = 0; i < 5; i++) {
        char body[16];
        snprintf(body, sizeof body, "m%d", i);
        bob_tells_alice(body);
    }
    /* The first three went out; past the bound nothing more does, and the session ends at the
     * next tick with <policy-violation/>; what it held is offline. */
    EXPECT('S', 1, ">m2<", NULL);
    NONE('S', 1, ">m3<");
    sm_tick(smh.core, 5000);
    smh_drain();
    EXPECT('E', 1, NULL, NULL);
    assert_int_equal(smh.recs[smh_find('E', 1, NULL, NULL)].status, SMPROTO_END_KICKED);
    alice_logs_in_again();
    EXPECT('S', 5, ">m0<", NULL);
    EXPECT('S', 5, ">m4<", NULL);
}

/* The front's link is cut while the SM lives: the session waits detached, the front's resync
 * takes it back as it is (no presence change for bob), and its SYNC gets what was on the link. */
static void test_link_cut_reattach(void **state)
{
    alice_enables();
    bob_tells_alice("in flight");
    EXPECT('S', 1, "in flight", NULL);
    sm_link *cut = smh.front;
    /* bob moves to another front, which stays. */
    sm_link *other = sm_link_up(smh.core, (void *)3, "other", false);
    smh.front = other;
    smh_bind(2, "bob", "b2");
    smh_send(2, "<presence xmlns='jabber:client'/>");
    smh_clear();
    sm_link_down(smh.core, cut);
    smh_drain();
    NONE('S', 0, "from='alice@example.org/a' type='unavailable'");
    sm_link *back = sm_link_up(smh.core, (void *)4, "front", false);
    sm_resync(smh.core, back, 1, "alice@example.org/a", NULL, 0, "");
    smh_drain();
    NONE('S', 0, "<presence from='alice@example.org/a'");
    /* The front never got it: SYNC says so, and the SM sends it again. */
    smh.front = back;
    smacks_msg sync = {.kind = SMACKS_SYNC, .sm_received = 0, .sm_acked = 0, .in_count = 0};
    smh_smacks(1, &sync);
    EXPECT('S', 1, "in flight", NULL);
    /* An earlier link's SYNC that the front sends again after this one (the SM had not
     * acknowledged it): nothing is sent twice. */
    smh_clear();
    smh_smacks(1, &sync);
    NONE('S', 1, "in flight");
    /* And the session is the same one: still resumable with its id, which a resumption uses. */
    smh_clear();
    smacks_msg got = alice_resumes(9, 1);
    assert_int_equal(got.kind, SMACKS_RESUMED);
    NONE('S', 9, "in flight");
}

/* After an SM restart the front's resync restores the session and its SYNC gives the numbering:
 * acknowledgements go on, the id still resumes it, and what only the old SM had is counted lost. */
static void test_restart_takes_front_numbering(void **state)
{
    alice_enables();
    /* Its STATE record, as the front keeps it. */
    smh_clear();
    smacks_msg ack0 = {.kind = SMACKS_ACK};
    smh_smacks(1, &ack0);
    jid j;
    assert_int_equal(jid_parse("alice@example.org/a", 19, &j), JID_OK);
    sm_session_state_changed(smh.core, sm_session_find(smh.core, &j));
    jid_free(&j);
    int t = smh_find('T', 1, NULL, NULL);
    assert_true(t >= 0);
    size_t rlen = smh.recs[t].status;
    uint8_t record[256];
    memcpy(record, smh.recs[t].text, rlen);
    smh_stop();
    smh_start("", NULL);
    sm_resync(smh.core, smh.front, 1, "alice@example.org/a", record, rlen, "");
    /* The front had 5 of the SM's, the client acknowledged 3. Its SYNC comes before alice's
     * roster has loaded (the resync waits for it): it is applied when the session is restored. */
    smacks_msg sync = {.kind = SMACKS_SYNC, .sm_received = 5, .sm_acked = 3, .in_count = 4,
                       .in_local = 1};
    smh_smacks(1, &sync);
    smh_bind(2, "bob", "b");
    bob_tells_alice("after");
    EXPECT('S', 1, ">after<", NULL);
    /* The client acknowledges two more (numbers 4 and 5, lost): "after" (6) stays kept. */
    smacks_msg ack = {.kind = SMACKS_ACK, .client_h = 9, .sm_acked = 5, .in_local = 1};
    smh_smacks(1, &ack);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_clear();
    smacks_msg got = alice_resumes(9, 9);
    assert_int_equal(got.kind, SMACKS_RESUMED);
    assert_true(got.sm_acked == 5);
    assert_true(got.h == 4);     /* what the front had counted of the client */
    EXPECT('S', 9, ">after<", NULL);
}

/* alice's session is alive with her id (the JID's session, detached), or not. */
static bool alice_hibernates(void)
{
    jid j;
    assert_int_equal(jid_parse("alice@example.org/a", 19, &j), JID_OK);
    sm_session *sess = sm_session_find(smh.core, &j);
    jid_free(&j);
    return sess && sm_session_detached(sess);
}

static size_t stored_hibernations(void)
{
    xdb_request *r = xdb_request_new(XDB_HIB_LOAD, NULL, NULL);
    assert_int_equal(xdb_run(smh.db, r), XDB_OK);
    size_t n = r->nhibernations;
    xdb_request_free(r);
    return n;
}

/* Storage has alice's hibernation; the SM is started again (what ran before is freed as a kill
 * would leave it) and revives her session, detached. */
static void restart_revives_alice(void)
{
    smh_drain();
    assert_int_equal(stored_hibernations(), 1);
    smh_stop();
    smh_start("", NULL);
    smh_drain();
    assert_true(alice_hibernates());
}

/* The SM is killed (no graceful stop) while alice hibernates with two unacknowledged messages and
 * a third that came while she was away: the new SM revives her session from storage, and her
 * resume on any connection replays the three in order; storage forgets it then. */
static void test_hibernated_survives_restart(void **state)
{
    alice_enables();
    bob_tells_alice("one");
    bob_tells_alice("two");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    bob_tells_alice("three");
    restart_revives_alice();
    /* bob sees her as she was: available (a probe is answered for her). */
    smh_clear();
    smh_bind(2, "bob", "b");
    smh_send(2, "<presence xmlns='jabber:client'/>");
    EXPECT('S', 2, "alice@example.org/a", NULL);
    NONE('S', 2, "unavailable");
    bob_tells_alice("four");
    smh_drain();
    smh_clear();
    smacks_msg got = alice_resumes(9, 0);
    assert_int_equal(got.kind, SMACKS_RESUMED);
    int one = smh_find('S', 9, ">one<", NULL), two = smh_find('S', 9, ">two<", NULL);
    int three = smh_find('S', 9, ">three<", NULL), four = smh_find('S', 9, ">four<", NULL);
    assert_true(one >= 0 && one < two && two < three && three < four);
    assert_int_equal(smh_count('S', 9, "<message"), 4);
    smh_drain();
    assert_int_equal(stored_hibernations(), 0);
    /* Her client acknowledges them (and bob's presence, fifth): nothing is replayed after. */
    assert_int_equal(smh_count('S', 9, "<presence"), 1);
    got = alice_acks_and_resumes(9, 10, 5);
    assert_int_equal(got.kind, SMACKS_RESUMED);
    assert_int_equal(smh_count('S', 10, "<message"), 0);
}

/* A hibernated session whose time ran out while the SM was down ends once revived: what it kept
 * goes to offline storage; a graceful stop keeps it stored (not ended). */
static void test_hibernated_restart_fates(void **state)
{
    alice_away_with_kept();
    smh_drain();
    sm_shutdown(smh.core);
    restart_revives_alice();
    /* Past her 300 s. */
    sm_tick(smh.core, 301 * 1000 + 1000 * 1000);
    sm_tick(smh.core, 301 * 1000 + 1000 * 1000 + 1);
    smh_drain();
    assert_false(alice_hibernates());
    assert_int_equal(stored_hibernations(), 0);
    alice_logs_in_again();
    EXPECT('S', 5, ">kept<", NULL);
}

/* A record whose session a front re-announced first (the resume had reached the SM, not yet
 * storage, when it was killed) is the front's: storage drops it. */
static void test_hibernated_front_first(void **state)
{
    alice_enables();
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    smh_stop();
    smh_start("", NULL);
    /* The front's resync comes before storage answers (its request is queued, not run). */
    sm_resync(smh.core, smh.front, 7, "alice@example.org/a", NULL, 0, "");
    smh_drain();
    smh_drain();
    jid j;
    assert_int_equal(jid_parse("alice@example.org/a", 19, &j), JID_OK);
    sm_session *sess = sm_session_find(smh.core, &j);
    jid_free(&j);
    assert_non_null(sess);
    assert_false(sm_session_detached(sess));
    assert_int_equal(stored_hibernations(), 0);
}

/* A front dropped a kept stanza as a duplicate (a restarted SM sent it again): the SM forgets it
 * and renumbers the rest as the front counts them. */
static void test_skip(void **state)
{
    alice_enables();
    bob_tells_alice("one");
    bob_tells_alice("again");
    bob_tells_alice("three");
    smacks_msg skip = {.kind = SMACKS_SKIP, .seq = 2};
    smh_smacks(1, &skip);
    /* Out of range: ignored. */
    skip.seq = 9;
    smh_smacks(1, &skip);
    skip.seq = 0;
    smh_smacks(1, &skip);
    /* The client acknowledged the first (one); "three" is number 2 now. */
    smacks_msg ack = {.kind = SMACKS_ACK, .client_h = 1, .sm_acked = 1};
    smh_smacks(1, &ack);
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_clear();
    alice_resumes(9, 1);
    EXPECT('S', 9, ">three<", NULL);
    NONE('S', 9, ">again<");
    NONE('S', 9, ">one<");
    /* And acknowledging 2 empties it. */
    ack = (smacks_msg){.kind = SMACKS_ACK, .client_h = 2, .sm_acked = 2};
    smh_smacks(9, &ack);
    sm_end(smh.core, smh.front, 9, SMPROTO_END_GONE);
    smh_clear();
    alice_resumes(10, 2);
    NONE('S', 10, ">three<");
}

static void test_malformed_message_ignored(void **state)
{
    smh_befriend();
    static const uint8_t bad[][6] = {{0}, {99}, {SMACKS_ENABLE, 2, 0, 0, 0, 0}, {SMACKS_A, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        sm_module_message(smh.core, smh.front, 1, SMACKS_MODULE, strlen(SMACKS_MODULE), bad[i],
                          sizeof bad[i]);
    NONE('M', 1, NULL);
    /* A message for a module that is not loaded gets an empty answer of that name. */
    sm_module_message(smh.core, smh.front, 1, "nosuch", 6, (const uint8_t *)"x", 1);
    EXPECT('M', 1, "nosuch", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enable_and_ack, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_ack_out_of_order_ignored, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_hibernation_keeps_session, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_resume_takes_over_live_connection, smh_setup,
                                        smh_teardown),
        cmocka_unit_test_setup_teardown(test_resume_refused, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_stores_then_unavailable, smh_setup,
                                        smh_teardown),
        cmocka_unit_test_setup_teardown(test_clean_close_ends, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_without_resumption_ends, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bound_on_kept, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_link_cut_reattach, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_restart_takes_front_numbering, smh_setup,
                                        smh_teardown),
        cmocka_unit_test_setup_teardown(test_hibernated_survives_restart, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_hibernated_restart_fates, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_hibernated_front_first, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_skip, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_message_ignored, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
