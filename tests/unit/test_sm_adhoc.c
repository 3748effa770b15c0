/* tests/unit/test_sm_adhoc.c — ad-hoc commands (sm/mod_adhoc.c, XEP-0050) and the admin commands
 * on them (sm/mod_admin_commands.c, sm/admin_motd.c, XEP-0133) against the in-memory core
 * (tests/support/sm_harness.h): the command list and who sees it, every command's happy path and
 * its form's errors, sessions (ids, cancel, expiry, actions), the <admins> option. */
#include "tests/support/sm_harness.h"

#include "core/log.h"
#include "tests/support/tmp.h"

#define NS_CMD "http://jabber.org/protocol/commands"
#define NS_ADMIN "http://jabber.org/protocol/admin"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_INFO "http://jabber.org/protocol/disco#info"
#define ADMINS "<admins><jid>alice@example.org</jid></admins>"

static char sessionid[128];

/* alice (admin) online as sid 1, bob as sid 2; records cleared. */
static void two_online(void)
{
    smh_start(ADMINS, NULL);
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
}

/* Sends a command (action and sessionid optional, fields as XML inside a submitted form, or
 * NULL for none). */
static void command(uint64_t sid, const char *id, const char *node, const char *action,
                    const char *session, const char *fields)
{
    char xml[4096];
    snprintf(xml, sizeof xml,
             "<iq type='set' id='%s' to='example.org'><command xmlns='" NS_CMD "' node='" NS_ADMIN
             "#%s'%s%s%s%s%s%s>%s%s%s</command></iq>",
             id, node, action ? " action='" : "", action ? action : "", action ? "'" : "",
             session ? " sessionid='" : "", session ? session : "", session ? "'" : "",
             fields ? "<x xmlns='jabber:x:data' type='submit'>" : "", fields ? fields : "",
             fields ? "</x>" : "");
    smh_send(sid, xml);
}

/* The sessionid of the answer to id. */
static const char *answer_session(uint64_t sid, const char *id)
{
    char key[64];
    snprintf(key, sizeof key, "id='%s'", id);
    int i = smh_find('S', sid, key, "sessionid='");
    if (i < 0) {
        smh_dump();
        fail_msg("no answer with a sessionid to %s", id);
    }
    const char *p = strstr(smh.recs[i].text, "sessionid='") + 11;
    size_t n = strcspn(p, "'");
    snprintf(sessionid, sizeof sessionid, "%.*s", (int)n, p);
    return sessionid;
}

/* Executes node, then completes it with fields; the answer to "done". */
static void run_command(uint64_t sid, const char *node, const char *fields)
{
    command(sid, "start", node, "execute", NULL, NULL);
    EXPECT('S', sid, "id='start'", "status='executing'");
    command(sid, "done", node, "complete", answer_session(sid, "start"), fields);
}

static char *field(const char *var, const char *value)
{
    static char out[8][512];
    static int next;
    char *f = out[next++ % 8];
    snprintf(f, 512, "<field var='%s'><value>%s</value></field>", var, value);
    return f;
}

static xdb_status account_status(const char *user)
{
    xdb_request *r = xdb_request_new(XDB_USER_CREDS, "example.org", user);
    xdb_status st = xdb_run(smh.db, r);
    xdb_request_free(r);
    return st;
}

/* ---- the list, permissions ------------------------------------------------------------------ */

static void test_list_and_forbidden(void **state)
{
    two_online();
    smh_send(1, "<iq type='get' id='f' to='example.org'><query xmlns='" NS_INFO "'/></iq>");
    EXPECT('S', 1, "id='f'", "var='" NS_CMD "'");
    smh_send(1, "<iq type='get' id='l' to='example.org'><query xmlns='" NS_ITEMS "' node='" NS_CMD
                "'/></iq>");
    EXPECT('S', 1, "id='l'", "node='" NS_ADMIN "#add-user'");
    EXPECT('S', 1, "id='l'", "node='" NS_ADMIN "#set-motd'");
    EXPECT('S', 1, "id='l'", "name='Get List of Online Users'");
    /* bob is no admin: an empty list, no info, forbidden. */
    smh_send(2, "<iq type='get' id='l' to='example.org'><query xmlns='" NS_ITEMS "' node='" NS_CMD
                "'/></iq>");
    EXPECT('S', 2, "id='l'", "type='result'");
    NONE('S', 2, "#add-user");
    smh_send(1, "<iq type='get' id='i' to='example.org'><query xmlns='" NS_INFO "' node='" NS_ADMIN
                "#add-user'/></iq>");
    EXPECT('S', 1, "id='i'", "type='command-node'");
    smh_send(2, "<iq type='get' id='i' to='example.org'><query xmlns='" NS_INFO "' node='" NS_ADMIN
                "#add-user'/></iq>");
    EXPECT('S', 2, "id='i'", "<item-not-found");
    static const char *const nodes[] = {"add-user", "delete-user", "disable-user",
                                        "change-user-password", "end-user-session", "user-stats",
                                        "get-online-users-num", "get-online-users-list",
                                        "announce", "set-motd", "edit-motd", "delete-motd", NULL};
    for (int i = 0; nodes[i]; i++) {
        smh_clear();
        command(2, "x", nodes[i], NULL, NULL, NULL);
        EXPECT('S', 2, "id='x'", "<forbidden");
    }
    smh_clear();
    command(1, "n", "no-such-command", NULL, NULL, NULL);
    EXPECT('S', 1, "id='n'", "<item-not-found");
    /* A get is not a command. */
    smh_send(1, "<iq type='get' id='g' to='example.org'><command xmlns='" NS_CMD "' node='" NS_ADMIN
                "#add-user'/></iq>");
    EXPECT('S', 1, "id='g'", "<bad-request");
}

/* ---- sessions and actions -------------------------------------------------------------------- */

static void test_sessions(void **state)
{
    two_online();
    sm_tick(smh.core, 1000);
    command(1, "s", "add-user", NULL, NULL, NULL);
    EXPECT('S', 1, "id='s'", "status='executing'");
    EXPECT('S', 1, "id='s'", "<complete/>");
    EXPECT('S', 1, "id='s'", "var='accountjid'");
    EXPECT('S', 1, "id='s'", NS_ADMIN);
    char sid1[128];
    snprintf(sid1, sizeof sid1, "%s", answer_session(1, "s"));
    /* Unknown id, another requester's, a bad or unsupported action. */
    command(1, "b", "add-user", "complete", "0000000000000001-nope", "");
    EXPECT('S', 1, "id='b'", "<bad-sessionid");
    command(1, "b2", "add-user", "complete", "garbage", "");
    EXPECT('S', 1, "id='b2'", "<bad-sessionid");
    smh_bind(3, "alice", "other");
    command(3, "o", "add-user", "complete", sid1, "");
    EXPECT('S', 3, "id='o'", "<bad-sessionid");
    command(1, "m", "add-user", "dance", sid1, NULL);
    EXPECT('S', 1, "id='m'", "<malformed-action");
    command(1, "p", "add-user", "prev", sid1, NULL);
    EXPECT('S', 1, "id='p'", "<bad-action");
    command(1, "c0", "add-user", "cancel", NULL, NULL);
    EXPECT('S', 1, "id='c0'", "<bad-sessionid");
    /* The session is still there: cancel ends it. */
    command(1, "c", "add-user", "cancel", sid1, NULL);
    EXPECT('S', 1, "id='c'", "status='canceled'");
    command(1, "c2", "add-user", "complete", sid1, "");
    EXPECT('S', 1, "id='c2'", "<bad-sessionid");
    /* A completion without its form. */
    command(1, "s2", "add-user", NULL, NULL, NULL);
    command(1, "nf", "add-user", "complete", answer_session(1, "s2"), NULL);
    EXPECT('S', 1, "id='nf'", "<bad-payload");
    /* A form of another FORM_TYPE. */
    command(1, "s5", "add-user", NULL, NULL, NULL);
    command(1, "ft", "add-user", "complete", answer_session(1, "s5"),
            "<field var='FORM_TYPE'><value>urn:other</value></field>");
    EXPECT('S', 1, "id='ft'", "FORM_TYPE is not the command's");
    /* Idle for ten minutes: expired, before and after the clock reaps it. */
    command(1, "s3", "add-user", NULL, NULL, NULL);
    snprintf(sid1, sizeof sid1, "%s", answer_session(1, "s3"));
    command(1, "s4", "add-user", NULL, NULL, NULL);
    char sid2[128];
    snprintf(sid2, sizeof sid2, "%s", answer_session(1, "s4"));
    sm_tick(smh.core, 1000 + 10 * 60 * 1000);
    command(1, "e1", "add-user", "complete", sid1, field("accountjid", "x@example.org"));
    EXPECT('S', 1, "id='e1'", "<session-expired");
    sm_tick(smh.core, 2000 + 10 * 60 * 1000);
    command(1, "e2", "add-user", "complete", sid2, field("accountjid", "x@example.org"));
    EXPECT('S', 1, "id='e2'", "<session-expired");
    /* At most four sessions a requester: the fifth ends the oldest. */
    smh_clear();
    char ids[5][128];
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "q%d", i);
        command(1, id, "add-user", NULL, NULL, NULL);
        snprintf(ids[i], sizeof ids[i], "%s", answer_session(1, id));
    }
    command(1, "old", "add-user", "cancel", ids[0], NULL);
    EXPECT('S', 1, "id='old'", "<bad-sessionid");
    command(1, "new", "add-user", "cancel", ids[4], NULL);
    EXPECT('S', 1, "id='new'", "status='canceled'");
}

/* ---- accounts --------------------------------------------------------------------------------- */

static void test_add_user(void **state)
{
    two_online();
    run_command(1, "add-user",
                field("accountjid", "dave@example.org") /* */);
    EXPECT('S', 1, "id='done'", "<bad-payload");        /* no password */
    smh_clear();
    char f[2048];
    snprintf(f, sizeof f, "%s%s%s", field("accountjid", "dave@example.org"),
             field("password", "s3cret"), field("password-verify", "other"));
    run_command(1, "add-user", f);
    EXPECT('S', 1, "id='done'", "the passwords differ");
    smh_clear();
    snprintf(f, sizeof f, "%s%s%s", field("accountjid", "dave@elsewhere.net"),
             field("password", "s3cret"), field("password-verify", "s3cret"));
    run_command(1, "add-user", f);
    EXPECT('S', 1, "id='done'", "not an account of a host you administer");
    smh_clear();
    snprintf(f, sizeof f, "%s%s%s", field("accountjid", "not a jid@@"),
             field("password", "s3cret"), field("password-verify", "s3cret"));
    run_command(1, "add-user", f);
    EXPECT('S', 1, "id='done'", "<bad-payload");
    assert_int_equal(account_status("dave"), XDB_NOT_FOUND);
    smh_clear();
    snprintf(f, sizeof f, "%s%s%s", field("accountjid", "dave@example.org"),
             field("password", "s3cret"), field("password-verify", "s3cret"));
    run_command(1, "add-user", f);
    EXPECT('S', 1, "id='done'", "status='completed'");
    EXPECT('S', 1, "id='done'", "Created dave@example.org");
    assert_int_equal(account_status("dave"), XDB_OK);
    smh_clear();
    run_command(1, "add-user", f);
    EXPECT('S', 1, "id='done'", "<conflict");
}

static void test_password_delete_disable(void **state)
{
    two_online();
    xdb_request *before = xdb_request_new(XDB_USER_CREDS, "example.org", "bob");
    assert_int_equal(xdb_run(smh.db, before), XDB_OK);
    char f[2048];
    snprintf(f, sizeof f, "%s", field("accountjid", "bob@example.org"));
    run_command(1, "change-user-password", f);
    EXPECT('S', 1, "id='done'", "the field password is required");
    smh_clear();
    snprintf(f, sizeof f, "%s%s", field("accountjid", "nobody@example.org"),
             field("password", "n3w"));
    run_command(1, "change-user-password", f);
    EXPECT('S', 1, "id='done'", "<item-not-found");
    smh_clear();
    snprintf(f, sizeof f, "%s%s", field("accountjid", "carol@example.org"),
             field("password", "n3w"));
    run_command(1, "change-user-password", f);
    EXPECT('S', 1, "id='done'", "Changed the password of carol@example.org");
    /* Disabling bob: his session ends, his password is one nobody knows. */
    smh_clear();
    run_command(1, "disable-user", field("accountjids", "bob@example.org"));
    EXPECT('S', 1, "id='done'", "Disabled 1 account(s)");
    EXPECT('E', 2, "ended by an administrator", NULL);
    xdb_request *after = xdb_request_new(XDB_USER_CREDS, "example.org", "bob");
    assert_int_equal(xdb_run(smh.db, after), XDB_OK);
    assert_memory_not_equal(before->creds.sha256.stored_key, after->creds.sha256.stored_key,
                            32);
    xdb_request_free(before);
    xdb_request_free(after);
    /* Deleting: several at once, one missing. */
    smh_clear();
    snprintf(f, sizeof f,
             "<field var='accountjids'><value>carol@example.org</value>"
             "<value>ghost@example.org</value></field>");
    run_command(1, "delete-user", f);
    EXPECT('S', 1, "id='done'", "Deleted 1 account(s)");
    EXPECT('S', 1, "id='done'", "ghost@example.org: no such account");
    assert_int_equal(account_status("carol"), XDB_NOT_FOUND);
    smh_clear();
    run_command(1, "delete-user", NULL);
    EXPECT('S', 1, "id='done'", "<bad-payload");
    smh_clear();
    run_command(1, "delete-user", field("accountjids", "carol@closed.org/x"));
    EXPECT('S', 1, "id='done'", "<bad-payload");
}

static void test_online_and_end_session(void **state)
{
    two_online();
    smh_bind(3, "bob", "c");
    smh_clear();
    command(1, "n", "get-online-users-num", NULL, NULL, NULL);
    EXPECT('S', 1, "id='n'", "status='completed'");
    EXPECT('S', 1, "var='onlineusersnum'", "<value>2</value>");
    run_command(1, "get-online-users-list", field("max_items", "none"));
    EXPECT('S', 1, "id='done'", "<value>alice@example.org</value><value>bob@example.org</value>");
    smh_clear();
    run_command(1, "get-online-users-list", field("max_items", "1"));
    EXPECT('S', 1, "id='done'", "<value>alice@example.org</value></field>");
    smh_clear();
    run_command(1, "get-online-users-list", field("max_items", "many"));
    EXPECT('S', 1, "id='done'", "<bad-payload");
    /* A full JID ends that session, a bare one all of them. */
    smh_clear();
    run_command(1, "end-user-session", field("accountjids", "bob@example.org/c"));
    EXPECT('S', 1, "id='done'", "Ended 1 session(s)");
    EXPECT('E', 3, "ended by an administrator", NULL);
    NONE('E', 2, NULL);
    smh_bind(3, "bob", "c");
    smh_clear();
    run_command(1, "end-user-session", field("accountjids", "bob@example.org"));
    EXPECT('S', 1, "id='done'", "Ended 2 session(s)");
}

static void test_user_stats(void **state)
{
    smh_start(ADMINS, NULL);
    smh_befriend();
    run_command(1, "user-stats", field("accountjid", "bob@example.org"));
    EXPECT('S', 1, "var='rostersize'", "<value>1</value>");
    EXPECT('S', 1, "var='onlineresources'", "<value>b</value>");
    NONE('S', 1, "ipaddresses");
    /* carol is not in memory: from storage. */
    smh_clear();
    run_command(1, "user-stats", field("accountjid", "carol@example.org"));
    EXPECT('S', 1, "var='rostersize'", "<value>0</value>");
    smh_clear();
    run_command(1, "user-stats", field("accountjid", "ghost@example.org"));
    EXPECT('S', 1, "id='done'", "<item-not-found");
}

/* ---- announcements and the message of the day ------------------------------------------------ */

static void test_announce(void **state)
{
    two_online();
    char f[1024];
    snprintf(f, sizeof f, "%s<field var='announcement'><value>line one</value>"
                          "<value>line two</value></field>",
             field("subject", "Maintenance"));
    run_command(1, "announce", f);
    EXPECT('S', 1, "id='done'", "Sent to 2 session(s)");
    EXPECT('S', 2, "type='headline'", "<body>line one\nline two</body>");
    EXPECT('S', 2, "from='example.org'", "<subject>Maintenance</subject>");
    smh_clear();
    run_command(1, "announce", field("subject", "nothing"));
    EXPECT('S', 1, "id='done'", "the field announcement is required");
    NONE('S', 2, "headline");
}

static void test_motd(void **state)
{
    two_online();
    run_command(1, "set-motd", NULL);
    EXPECT('S', 1, "id='done'", "<bad-payload");
    smh_clear();
    run_command(1, "set-motd", field("motd", "Welcome back"));
    EXPECT('S', 1, "id='done'", "Message of the day set");
    /* A new session gets it once, when available. */
    smh_bind(3, "bob", "new");
    NONE('S', 3, "Welcome back");
    smh_send(3, "<presence/>");
    EXPECT('S', 3, "<body>Welcome back</body>", "from='example.org'");
    smh_clear();
    smh_send(3, "<presence><show>away</show></presence>");
    NONE('S', 3, "Welcome back");
    /* Kept in storage: after a restart the edit form shows it, and logins get it. */
    smh_start(ADMINS, NULL);
    smh_drain();
    smh_online(1, "alice", "a");
    EXPECT('S', 1, "<body>Welcome back</body>", NULL);
    smh_clear();
    command(1, "e", "edit-motd", NULL, NULL, NULL);
    EXPECT('S', 1, "id='e'", "<value>Welcome back</value>");
    command(1, "e2", "edit-motd", "complete", answer_session(1, "e"),
            "<field var='motd'><value>New</value><value>text</value></field>");
    EXPECT('S', 1, "id='e2'", "status='completed'");
    smh_online(4, "bob", "z");
    EXPECT('S', 4, "<body>New\ntext</body>", NULL);
    /* Deleted: nothing at login. */
    smh_clear();
    command(1, "d", "delete-motd", NULL, NULL, NULL);
    EXPECT('S', 1, "id='d'", "Message of the day deleted");
    smh_online(5, "carol", "c");
    NONE('S', 5, "<body>");
}

/* ---- configuration ---------------------------------------------------------------------------- */

static void test_config(void **state)
{
    smh_stop();
    config_error err;
    char *path = tmp_write(smh.dir, "a.xml", "<sm>\n<host name='example.org'/>\n<admins>\n"
                           "<jid>example.org</jid>\n</admins>\n<modules><module>disco</module><module>adhoc</module>"
                           "<module>admin_commands</module></modules></sm>\n");
    if (sm_config_load(path, sm_builtin_modules, &smh.cfg, &err) != 0)
        fail_msg("%s", err.text);
    assert_null(sm_new(&smh.cfg, sm_builtin_modules, &smh_transport, NULL, smh_submit, NULL));
    assert_int_equal(config_check(smh.cfg.cfg, &err), -1);
    assert_non_null(strstr(err.text, ":4: <admins/jid>: expected an account's bare JID"));
    assert_int_equal(smh.qtail, smh.qhead);     /* nothing asked of storage */
    sm_config_free(&smh.cfg);
    free(path);
    path = tmp_write(smh.dir, "b.xml", "<sm>\n<host name='example.org'>\n<admins>\n"
                     "<jd>alice@example.org</jd>\n</admins>\n</host>\n</sm>\n");
    assert_int_equal(sm_config_load(path, sm_builtin_modules, &smh.cfg, &err), -1);
    assert_non_null(strstr(err.text, ":4:"));
    assert_non_null(strstr(err.text, "jd"));
    free(path);
}

/* A host's administrators administer that host alone. */
static void test_host_admins(void **state)
{
    smh_stop();
    config_error err;
    char *path = tmp_write(smh.dir, "c.xml", "<sm><host name='example.org'><admins>"
                     "<jid>bob@example.org</jid></admins></host><host name='closed.org'/>"
                     SMH_UPLOAD "</sm>");
    assert_int_equal(sm_config_load(path, sm_builtin_modules, &smh.cfg, &err), 0);
    smh.core = sm_new(&smh.cfg, sm_builtin_modules, &smh_transport, NULL, smh_submit, NULL);
    assert_non_null(smh.core);
    smh.front = sm_link_up(smh.core, (void *)1, "front", false);
    smh_online(2, "bob", "b");
    smh_online(1, "alice", "a");
    smh_clear();
    command(2, "ok", "get-online-users-num", NULL, NULL, NULL);
    EXPECT('S', 2, "id='ok'", "status='completed'");
    command(1, "no", "get-online-users-num", NULL, NULL, NULL);
    EXPECT('S', 1, "id='no'", "<forbidden");
    smh_send(2, "<iq type='set' id='cl' to='closed.org'><command xmlns='" NS_CMD "' node='" NS_ADMIN
                "#get-online-users-num'/></iq>");
    EXPECT('S', 2, "id='cl'", "<forbidden");
    free(path);
}

int main(void)
{
    log_set_level(LL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_and_forbidden, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_sessions, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_add_user, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_password_delete_disable, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_online_and_end_session, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_user_stats, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_announce, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_motd, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_config, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_host_admins, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests_name("sm_adhoc", tests, NULL, NULL);
}
