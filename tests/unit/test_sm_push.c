/* tests/unit/test_sm_push.c — push notifications (XEP-0357, sm/mod_push.c, sm/push_notify.c) in
 * the harness, with the component muc.example.org as the app server: the account's feature;
 * <enable/> and <disable/> and their errors; a notification for a message to an account with no
 * session, and to one whose session is hibernated (XEP-0198), with the count, the sender, the
 * client's publish-options and no body (unless <include_body/>); none while a session is active,
 * the count starting again once one is; the rate bound; an app server's error disabling the
 * registration; the bound on registrations; registrations kept across an SM restart; and the
 * metrics. */
#include "tests/support/sm_harness.h"

#define APP "muc.example.org"
#define FORM                                                                                       \
    "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"                        \
    "http://jabber.org/protocol/pubsub#publish-options</value></field>"                            \
    "<field var='secret'><value>s3cr3t</value></field></x>"

static int64_t now_ms = 1000;

/* The clock moves on by ms (the rate bound and the flights' end are on it). */
static void later(int64_t ms)
{
    now_ms += ms;
    sm_tick(smh.core, now_ms);
    smh_drain();
}

/* alice's session sid sends <NAME xmlns=push attrs>inner</NAME>; the answer must hold want. */
static void alice_push(uint64_t sid, const char *name, const char *attrs, const char *inner,
                       const char *want)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq xmlns='jabber:client' type='set' id='p1'><%s "
             "xmlns='urn:xmpp:push:0' %s>%s</%s></iq>", name, attrs, inner, name);
    smh_clear();
    smh_send(sid, xml);
    EXPECT('S', sid, "id='p1'", want);
}

static void bob_says(const char *body)
{
    char xml[256];
    snprintf(xml, sizeof xml, "<message xmlns='jabber:client' to='alice@example.org' "
             "type='chat'><body>%s</body></message>", body);
    smh_send(2, xml);
}

/* alice (sid 1) enables node n1 with a form, then goes; bob is online (sid 2). */
static void alice_enables_and_goes(void)
{
    sm_tick(smh.core, now_ms);
    smh_online(1, "alice", "phone");
    smh_online(2, "bob", "b");
    alice_push(1, "enable", "jid='" APP "' node='n1'", FORM, "type='result'");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    smh_clear();
}

/* The id of the last notification the app server got. */
static void last_id(char out[64])
{
    for (int i = smh.nrecs - 1; i >= 0; i--) {
        const char *p = smh.recs[i].kind == 'C' ? strstr(smh.recs[i].text, " id='") : NULL;
        if (p) {
            snprintf(out, 64, "%.*s", (int)strcspn(p + 5, "'"), p + 5);
            return;
        }
    }
    smh_dump();
    fail_msg("no notification");
}

/* The app server answers its last notification with a result, or an error of type/condition. */
static void app_answers(const char *type, const char *condition)
{
    char id[64], xml[512];
    last_id(id);
    if (type)
        snprintf(xml, sizeof xml, "<iq xmlns='jabber:component:accept' type='error' from='" APP
                 "' to='alice@example.org' id='%s'><error type='%s'><%s xmlns='"
                 "urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", id, type, condition);
    else
        snprintf(xml, sizeof xml, "<iq xmlns='jabber:component:accept' type='result' from='" APP
                 "' to='alice@example.org' id='%s'/>", id);
    smh_component(xml);
}

/* The SM restarts (on extra's options); bob is online again (sid 2); records cleared. */
static void restart(const char *extra)
{
    smh_stop();
    smh_start(extra, NULL);
    sm_tick(smh.core, now_ms);
    smh_online(2, "bob", "b");
    smh_clear();
}

static void test_feature(void **state)
{
    smh_online(1, "alice", "phone");
    smh_send(1, "<iq xmlns='jabber:client' type='get' id='d1' to='alice@example.org'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "id='d1'", "var='urn:xmpp:push:0'");
}

static void test_enable_errors(void **state)
{
    smh_online(1, "alice", "phone");
    alice_push(1, "enable", "node='n'", "", "<bad-request");
    alice_push(1, "enable", "jid='" APP "'", "", "<bad-request");
    alice_push(1, "enable", "jid='" APP "' node=''", "", "<bad-request");
    alice_push(1, "enable", "jid='@@' node='n'", "", "<jid-malformed");
    alice_push(1, "enable", "jid='" APP "' node='n'",
               "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>other"
               "</value></field></x>", "<bad-request");
    alice_push(1, "disable", "", "", "<bad-request");
    alice_push(1, "other", "", "", "<feature-not-implemented");
    char node[700];
    memset(node, 'n', sizeof node - 1);
    node[sizeof node - 1] = '\0';
    char attrs[800];
    snprintf(attrs, sizeof attrs, "jid='" APP "' node='%s'", node);
    alice_push(1, "enable", attrs, "", "<not-acceptable");
    smh_clear();
    smh_send(1, "<iq xmlns='jabber:client' type='get' id='g'><enable xmlns='urn:xmpp:push:0' "
                "jid='" APP "' node='n'/></iq>");
    EXPECT('S', 1, "id='g'", "<bad-request");
    /* Not for another account's registrations. */
    smh_online(2, "bob", "b");
    smh_send(2, "<iq xmlns='jabber:client' type='set' id='b1' to='alice@example.org'><enable "
                "xmlns='urn:xmpp:push:0' jid='" APP "' node='n'/></iq>");
    EXPECT('S', 2, "id='b1'", "<forbidden");
}

/* wait ms later a message from bob is only counted; wait2 ms later the next one's notification
 * goes, with count. */
static void held_then_sent(int64_t wait, int64_t wait2, int count)
{
    smh_clear();
    later(wait);
    bob_says("held");
    NONE('C', 0, NULL);
    later(wait2);
    bob_says("sent");
    char want[64];
    snprintf(want, sizeof want, "<field var='message-count'><value>%d</value>", count);
    EXPECT('C', 0, want, NULL);
}

static void test_offline_notification(void **state)
{
    alice_enables_and_goes();
    bob_says("first secret");
    EXPECT('C', 0, "<iq from='alice@example.org' to='" APP "' type='set'", NULL);
    EXPECT('C', 0, "<publish node='n1'><item><notification xmlns='urn:xmpp:push:0'>", NULL);
    EXPECT('C', 0, "<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value>", NULL);
    EXPECT('C', 0, "<field var='message-count'><value>1</value>", NULL);
    EXPECT('C', 0, "<field var='last-message-sender'><value>bob@example.org/b</value>", NULL);
    EXPECT('C', 0, "<publish-options><x xmlns='jabber:x:data' type='submit'>", "s3cr3t");
    NONE('C', 0, "first secret");
    NONE('C', 0, "last-message-body");
    /* Waiting for the app server: the next only counts. */
    bob_says("second");
    assert_int_equal(smh_count('C', 0, NULL), 1);
    app_answers(NULL, NULL);
    /* Answered, but within push/interval (5 s); then the count so far goes. */
    held_then_sent(1000, 5000, 4);
    /* An unanswered one ends at push/timeout (30 s). */
    held_then_sent(10000, 31000, 6);
    /* The counts, by fate. */
    buf out = BUF_INIT;
    sm_event ev = {.out = &out};
    sm_fire(smh.core, SM_EV_METRICS, &ev);
    buf_append(&out, "", 1);
    static const char *const want[] = {
        "jabshard_sm_push_notifications_total{result=\"sent\"} 3",
        "jabshard_sm_push_notifications_total{result=\"limited\"} 3",
        "jabshard_sm_push_answers_total{result=\"accepted\"} 1",
        "jabshard_sm_push_answers_total{result=\"unanswered\"} 1",
        "jabshard_sm_push_answers_total{result=\"disabled\"} 0",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(buf_data(&out), want[i]))
            fail_msg("no '%s' in:\n%s", want[i], buf_data(&out));
    buf_free(&out);
}

static void test_active_session_resets(void **state)
{
    alice_enables_and_goes();
    bob_says("one");
    EXPECT('C', 0, "<value>1</value>", NULL);
    app_answers(NULL, NULL);
    /* alice is back: no notification, and the count starts again. */
    smh_online(3, "alice", "again");
    smh_clear();
    later(10000);
    bob_says("two");
    NONE('C', 0, NULL);
    EXPECT('S', 3, ">two<", NULL);
    /* A headline or a message without a body is not pushed either. */
    sm_end(smh.core, smh.front, 3, SMPROTO_END_GONE);
    smh_drain();
    smh_clear();
    smh_send(2, "<message xmlns='jabber:client' to='alice@example.org' type='chat'><active "
                "xmlns='http://jabber.org/protocol/chatstates'/></message>");
    smh_send(2, "<message xmlns='jabber:client' to='alice@example.org' type='headline'>"
                "<body>h</body></message>");
    NONE('C', 0, NULL);
    /* An OMEMO message without a fallback body is. */
    smh_send(2, "<message xmlns='jabber:client' to='alice@example.org' type='chat'><encrypted "
                "xmlns='eu.siacs.conversations.axolotl'><payload>x</payload></encrypted>"
                "</message>");
    EXPECT('C', 0, "<value>1</value>", NULL);
}

static void test_include_body(void **state)
{
    smh_stop();
    smh_start("<push><include_body/><body_max>5</body_max></push>", NULL);
    alice_enables_and_goes();
    bob_says("h\xc3\xa9llo world");
    EXPECT('C', 0, "<field var='last-message-body'><value>h\xc3\xa9ll</value>", NULL);
}

static void test_error_disables(void **state)
{
    alice_enables_and_goes();
    bob_says("one");
    app_answers("wait", "resource-constraint");
    later(6000);
    smh_clear();
    bob_says("two");
    EXPECT('C', 0, "<value>2</value>", NULL);
    app_answers("cancel", "item-not-found");
    later(6000);
    smh_clear();
    bob_says("three");
    NONE('C', 0, NULL);
    /* Gone from storage too. */
    restart("");
    bob_says("four");
    NONE('C', 0, NULL);
}

static void test_survives_restart(void **state)
{
    alice_enables_and_goes();
    bob_says("one");
    EXPECT('C', 0, "<value>1</value>", NULL);
    /* A node with characters that need escaping, as a key and in the document (a session
     * without presence: not active, the count goes on). */
    smh_bind(1, "alice", "phone");
    alice_push(1, "enable", "jid='" APP "' node='a&amp;&lt;b &apos;c'", "", "type='result'");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    restart("");
    bob_says("two");
    EXPECT('C', 0, "node='n1'", "<value>2</value>");
    EXPECT('C', 0, "node='a&amp;&lt;b &apos;c'", "<value>2</value>");
}

static void test_disable(void **state)
{
    sm_tick(smh.core, now_ms);
    smh_online(1, "alice", "phone");
    alice_push(1, "enable", "jid='" APP "' node='n1'", "", "type='result'");
    alice_push(1, "enable", "jid='" APP "' node='n2'", "", "type='result'");
    alice_push(1, "enable", "jid='" APP "' node='n3'", "", "type='result'");
    alice_push(1, "disable", "jid='" APP "' node='n2'", "", "type='result'");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_online(2, "bob", "b");
    smh_clear();
    bob_says("one");
    EXPECT('C', 0, "node='n1'", NULL);
    EXPECT('C', 0, "node='n3'", NULL);
    NONE('C', 0, "node='n2'");
    /* Without a node: every registration with that app server. */
    smh_online(1, "alice", "phone");
    alice_push(1, "disable", "jid='" APP "'", "", "type='result'");
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    later(60000);
    smh_clear();
    bob_says("two");
    NONE('C', 0, NULL);
}

static void test_bound_replaces_oldest(void **state)
{
    smh_stop();
    smh_start("<push><registrations>2</registrations></push>", NULL);
    sm_tick(smh.core, now_ms);
    smh_online(1, "alice", "phone");
    alice_push(1, "enable", "jid='" APP "' node='n1'", "", "type='result'");
    alice_push(1, "enable", "jid='" APP "' node='n2'", "", "type='result'");
    alice_push(1, "enable", "jid='" APP "' node='n1'", FORM, "type='result'");   /* replaces */
    alice_push(1, "enable", "jid='" APP "' node='n3'", "", "type='result'");      /* n2 goes */
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    restart("<push><registrations>2</registrations></push>");
    bob_says("one");
    EXPECT('C', 0, "node='n1'", "s3cr3t");
    EXPECT('C', 0, "node='n3'", NULL);
    NONE('C', 0, "node='n2'");
}

static void test_hibernated(void **state)
{
    sm_tick(smh.core, now_ms);
    smh_online(1, "alice", "phone");
    smh_online(2, "bob", "b");
    alice_push(1, "enable", "jid='" APP "' node='n1'", "", "type='result'");
    smacks_msg en = {.kind = SMACKS_ENABLE, .resume = true, .max = 300};
    smh_smacks(1, &en);
    /* Active: nothing pushed. */
    smh_clear();
    bob_says("zero");
    NONE('C', 0, NULL);
    /* Hibernated: pushed, and the session keeps the message. */
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    smh_clear();
    bob_says("one");
    EXPECT('C', 0, "<value>1</value>", "bob@example.org/b");
    NONE('S', 1, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_feature, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_enable_errors, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_offline_notification, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_active_session_resets, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_include_body, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_error_disables, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_survives_restart, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_disable, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bound_replaces_oldest, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_hibernated, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
