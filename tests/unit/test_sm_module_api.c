/* tests/unit/test_sm_module_api.c — the module API (sm/module.h) on the in-memory core of
 * tests/support/sm_harness.h: loading the subset sm.xml's <modules> names, a module's own options
 * and their errors, per-session and per-user state (zeroed, kept apart, released), the STATE
 * record a module packs and takes back in a resync (and a malformed one ignored), events one
 * module fires for others, refusals at load, and mod_contact (XEP-0157) as the worked example. */
#include "tests/support/sm_harness.h"
#include "tests/support/tmp.h"

#define NS_FLAG "urn:test:flag"
#define NS_INFO "http://jabber.org/protocol/disco#info"

/* ---- a test module: a flag per session (kept across a resync), a counter per user ---------- */

typedef struct flag_session {
    bool flag;
    char pattern[24];      /* written at creation, checked: module states do not overlap */
} flag_session;
typedef struct flag_user {
    int sets;
} flag_user;

extern const sm_module mod_flag;
static int released_sessions, released_users, inits, finis;

/* iq set <flag xmlns='urn:test:flag'/> raises the session's flag (its STATE record changes);
 * get answers <flag on='0|1' sets='N'/>. */
static void flag_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    flag_session *fs = sm_session_state(s, st->origin, &mod_flag);
    flag_user *fu = sm_user_state(s, st->origin->user, &mod_flag);
    assert_string_equal(fs->pattern, "");   /* zeroed, and nobody else writes here */
    if (strcmp(sm_stanza_type(st), "set") == 0) {
        fs->flag = true;
        fu->sets++;
        sm_session_state_changed(s, st->origin);
        sm_iq_result(s, st, NULL);
        return;
    }
    xml_arena *a = xml_arena_new(256);
    xml_node *q = xml_element_new(a, NULL, NS_FLAG, "flag");
    xml_attr_set(a, q, NULL, "on", fs->flag ? "1" : "0");
    char n[16];
    snprintf(n, sizeof n, "%d", fu->sets);
    xml_attr_set(a, q, NULL, "sets", n);
    xml_attr_set(a, q, NULL, "limit",
                 sm_module_int(s, &mod_flag, "limits/flags") == 7 ? "seven" : "default");
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static void flag_pack(const sm_session *sess, const void *state, buf *out)
{
    sm_pack_flag(out, ((const flag_session *)state)->flag);
}

static void flag_restore(sm_session *sess, void *state, const uint8_t *data, size_t len)
{
    ((flag_session *)state)->flag = sm_unpack_flag(data, len);
}

static void flag_session_release(void *state) { released_sessions++; }
static void flag_user_release(void *state) { released_users++; }

static bool flag_init(sm *s, const sm_module *self, config *file)
{
    inits++;
    return true;
}

static void flag_fini(sm *s, const sm_module *self) { finis++; }

/* An event it fires: "flag-raised" hooks see the stanza. */
static const sm_int_option flag_ints[] = {{"limits/flags", 3, 1, 10}, {NULL}};
static const sm_handler flag_handlers[] = {{"iq/bare/" NS_FLAG ":flag", .iq = flag_iq}, {NULL}};
const sm_module mod_flag = {
    .name = "flag",
    .int_options = flag_ints,
    .init = flag_init,
    .fini = flag_fini,
    .handlers = flag_handlers,
    .features = (const char *const[]){NS_FLAG, NULL},
    .session_state = sizeof(flag_session),
    .user_state = sizeof(flag_user),
    .session_release = flag_session_release,
    .user_release = flag_user_release,
    .pack = flag_pack,
    .restore = flag_restore,
};

/* A second module with state, loaded beside it: writes a pattern over all of its own. */
typedef struct fill_session {
    unsigned char bytes[40];
} fill_session;
extern const sm_module mod_fill;
static bool fill_available(sm *s, sm_event *ev)
{
    memset(sm_session_state(s, ev->session, &mod_fill), 0xAB, sizeof(fill_session));
    return false;
}
static const sm_handler fill_handlers[] = {{"session-available", .hook = fill_available}, {NULL}};
const sm_module mod_fill = {
    .name = "fill",
    .handlers = fill_handlers,
    .session_state = sizeof(fill_session),
};

static const sm_module *const test_modules[] = {&mod_flag, &mod_fill, NULL};

/* ---- loading --------------------------------------------------------------------------------- */

static void test_subset_loaded(void **state)
{
    smh_start("<modules><module>ping</module><module>disco</module></modules>", NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='p' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 1, "id='p'", "type='result'");
    /* The roster module is not loaded: its iq is nobody's. */
    smh_send(1, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
    EXPECT('S', 1, "id='r'", "<service-unavailable");
    /* disco lists only what is loaded. */
    smh_send(1, "<iq type='get' id='d' to='example.org'><query xmlns='" NS_INFO "'/></iq>");
    EXPECT('S', 1, "id='d'", "var='urn:xmpp:ping'");
    NONE('S', 1, "var='urn:xmpp:blocking'");
    NONE('S', 1, "var='urn:xmpp:carbons:2'");
}

static void test_module_state(void **state)
{
    inits = finis = released_sessions = released_users = 0;
    smh_start("<limits><flags>7</flags></limits>", test_modules);
    assert_int_equal(inits, 1);
    smh_online(1, "alice", "a");
    smh_online(2, "alice", "b");
    smh_clear();
    smh_send(1, "<iq type='get' id='g1'><flag xmlns='" NS_FLAG "'/></iq>");
    EXPECT('S', 1, "id='g1'", "on='0'");
    EXPECT('S', 1, "sets='0'", "limit='seven'");
    /* Raising it changes the session's STATE record: the module's name and its byte. */
    smh_clear();
    smh_send(1, "<iq type='set' id='s1'><flag xmlns='" NS_FLAG "'/></iq>");
    EXPECT('S', 1, "id='s1'", "type='result'");
    int t = smh_find('T', 1, NULL, NULL);
    assert_true(t >= 0);
    assert_int_equal(smh.recs[t].status, 7);
    assert_memory_equal(smh.recs[t].text, "\4flag\1\1", 7);
    /* Per session: b's flag is down; per user: both see one set. */
    smh_clear();
    smh_send(2, "<iq type='get' id='g2'><flag xmlns='" NS_FLAG "'/></iq>");
    EXPECT('S', 2, "on='0'", "sets='1'");
    /* Ending a session releases its state; the user's goes with the user. */
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    assert_int_equal(released_sessions, 1);
    assert_int_equal(released_users, 0);
    sm_end(smh.core, smh.front, 2, SMPROTO_END_GONE);
    smh_drain();
    assert_int_equal(released_sessions, 2);
    assert_int_equal(released_users, 1);
    smh_stop();
    assert_int_equal(finis, 1);
}

/* An SM restart: the front gives back each session's record; the module takes its part back,
 * ignores other modules' parts, and a malformed record is ignored whole. */
static void test_state_through_resync(void **state)
{
    smh_start("", test_modules);
    smh_clear();
    static const uint8_t record[] = "\7unknown\2zz\4flag\1\1";
    sm_resync(smh.core, smh.front, 5, "alice@example.org/r", record, sizeof record - 1, "");
    smh_drain();
    NONE('E', 5, NULL);
    smh_send(5, "<iq type='get' id='g'><flag xmlns='" NS_FLAG "'/></iq>");
    EXPECT('S', 5, "id='g'", "on='1'");
    /* A good part, then one that claims more bytes than there are: none of it is applied. */
    static const uint8_t truncated[] = "\4flag\1\1\3bad\11x";
    smh_clear();
    sm_resync(smh.core, smh.front, 6, "bob@example.org/r", truncated, sizeof truncated - 1, "");
    smh_drain();
    smh_send(6, "<iq type='get' id='h'><flag xmlns='" NS_FLAG "'/></iq>");
    EXPECT('S', 6, "id='h'", "on='0'");
}

/* Two modules' session state never overlap: one fills all of its own, the other's stays zero
 * (flag_iq asserts its pattern is untouched). */
static void test_states_apart(void **state)
{
    smh_start("", test_modules);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='g'><flag xmlns='" NS_FLAG "'/></iq>");
    EXPECT('S', 1, "id='g'", "on='0'");
}

/* What a module may not do is refused when it loads: the core does not start. */
static bool refuse_init(sm *s, const sm_module *self, config *file) { return false; }

static void test_refused_at_load(void **state)
{
    smh_stop();
    static const sm_handler bad_event[] = {{"presence-sideways", .hook = fill_available}, {NULL}};
    static const sm_module bad_hook = {.name = "bad_hook", .handlers = bad_event};
    static const sm_handler bad_iq[] = {{"iq-get/nowhere/x:y", .iq = flag_iq}, {NULL}};
    static const sm_module bad_address = {.name = "bad_address", .handlers = bad_iq};
    static const sm_module no_start = {.name = "no_start", .init = refuse_init};
    /* The worked example without the module whose event it hooks. */
    static const sm_module *const bad[] = {&bad_hook, &bad_address, &no_start, &mod_contact};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const sm_module *table[] = {&mod_ping, bad[i], NULL};
        memset(&smh.cfg, 0, sizeof smh.cfg);
        assert_null(sm_new(&smh.cfg, table, &smh_transport, NULL, smh_submit, NULL));
    }
    /* Room archives without the archives they write through. */
    const sm_module *rooms_without_mam[] = {&mod_muc, &mod_muc_mam, NULL};
    memset(&smh.cfg, 0, sizeof smh.cfg);
    assert_null(sm_new(&smh.cfg, rooms_without_mam, &smh_transport, NULL, smh_submit, NULL));
}

/* An option a module reads is checked when the file loads: the error names file, line and
 * element. */
static void test_option_error(void **state)
{
    smh_stop();
    char *path = tmp_write(smh.dir, "flags.xml", "<sm>\n<host name='example.org'/>\n<limits>\n"
                           "<flags>11</flags>\n</limits>\n</sm>\n");
    assert_non_null(path);
    const sm_module *table[] = {&mod_flag, NULL};
    config_error err;
    assert_int_equal(sm_config_load(path, table, &smh.cfg, &err), -1);
    assert_non_null(strstr(err.text, ":4: <limits/flags>: expected an integer from 1 to 10"));
    free(path);
}

/* ---- events a module fires, and the worked example: XEP-0157 in disco ------------------------ */

static void test_contact_addresses(void **state)
{
    smh_start("<contact><abuse>mailto:abuse@example.org</abuse>"
              "<abuse>xmpp:abuse@example.org</abuse>"
              "<security>https://example.org/.well-known/security.txt</security></contact>",
              NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='d' to='example.org'><query xmlns='" NS_INFO "'/></iq>");
    EXPECT('S', 1, "id='d'", "<x xmlns='jabber:x:data' type='result'>");
    int i = smh_find('S', 1, "id='d'", NULL);
    const char *x = strstr(smh.recs[i].text, "<x ");
    assert_non_null(strstr(x, "<field var='FORM_TYPE' type='hidden'><value>"
                              "http://jabber.org/network/serverinfo</value></field>"));
    assert_non_null(strstr(x, "<field var='abuse-addresses' type='list-multi'>"
                              "<value>mailto:abuse@example.org</value>"
                              "<value>xmpp:abuse@example.org</value></field>"));
    assert_non_null(strstr(x, "<field var='security-addresses' type='list-multi'><value>"
                              "https://example.org/.well-known/security.txt</value></field>"));
    assert_null(strstr(x, "admin-addresses"));
    /* An account's disco#info has no server form. */
    smh_clear();
    smh_send(1, "<iq type='get' id='u' to='bob@example.org'><query xmlns='" NS_INFO "'/></iq>");
    EXPECT('S', 1, "id='u'", "type='result'");
    NONE('S', 1, "serverinfo");
}

static void test_contact_per_host(void **state)
{
    smh_stop();
    char *path = tmp_write(smh.dir, "contact.xml",
                           "<sm><host name='example.org'><contact><admin>xmpp:boss@example.org"
                           "</admin></contact></host><host name='closed.org'><contact/></host>"
                           "<host name='other.org'/><contact><support>https://help.example"
                           "</support></contact>" SMH_UPLOAD "</sm>");
    assert_non_null(path);
    config_error err;
    if (sm_config_load(path, sm_builtin_modules, &smh.cfg, &err) != 0)
        fail_msg("%s", err.text);
    free(path);
    smh.core = sm_new(&smh.cfg, sm_builtin_modules, &smh_transport, NULL, smh_submit, NULL);
    smh.front = sm_link_up(smh.core, (void *)1, "front", false);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='e' to='example.org'><query xmlns='" NS_INFO "'/></iq>");
    smh_send(1, "<iq type='get' id='c' to='closed.org'><query xmlns='" NS_INFO "'/></iq>");
    smh_send(1, "<iq type='get' id='o' to='other.org'><query xmlns='" NS_INFO "'/></iq>");
    EXPECT('S', 1, "id='e'", "<value>xmpp:boss@example.org</value>");
    int e = smh_find('S', 1, "id='e'", NULL), c = smh_find('S', 1, "id='c'", NULL),
        o = smh_find('S', 1, "id='o'", NULL);
    assert_true(e >= 0 && c >= 0 && o >= 0);
    assert_null(strstr(smh.recs[e].text, "help.example"));   /* its own replaces the root's */
    assert_null(strstr(smh.recs[c].text, "serverinfo"));     /* its own, empty <contact/> */
    assert_non_null(strstr(smh.recs[o].text, "<value>https://help.example</value>"));
    assert_null(strstr(smh.recs[o].text, "boss"));
}

static void test_contact_bad_uri(void **state)
{
    smh_stop();
    char *path = tmp_write(smh.dir, "contact.xml", "<sm>\n<host name='example.org'/>\n<contact>\n"
                           "<abuse>abuse at example</abuse>\n</contact>\n</sm>\n");
    assert_non_null(path);
    config_error err;
    assert_int_equal(sm_config_load(path, sm_builtin_modules, &smh.cfg, &err), 0);
    assert_null(sm_new(&smh.cfg, sm_builtin_modules, &smh_transport, NULL, smh_submit, NULL));
    assert_int_equal(config_check(smh.cfg.cfg, &err), -1);
    assert_non_null(strstr(err.text, ":4: <contact/abuse>: expected a URI"));
    sm_config_free(&smh.cfg);
    free(path);
}

int main(void)
{
    log_set_level(LL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subset_loaded, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_module_state, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_state_through_resync, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_states_apart, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_refused_at_load, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_option_error, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_contact_addresses, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_contact_per_host, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_contact_bad_uri, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests_name("sm_module_api", tests, NULL, NULL);
}
