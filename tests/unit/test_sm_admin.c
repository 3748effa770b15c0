/* tests/unit/test_sm_admin.c — the SM's admin channel (sm/admin.h): request parsing and replies
 * against the in-memory core (tests/support/sm_harness.h), and one round trip over the Unix socket
 * served by an event loop. */
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tests/support/sm_harness.h"

#include "core/buf.h"
#include "sm/admin.h"

static sm_admin_status run(const char *line, char **reply)
{
    buf out = BUF_INIT;
    sm_admin_status st = sm_admin_execute(smh.core, NULL, line, strlen(line), &out);
    buf_append(&out, "", 1);
    *reply = strdup(buf_data(&out));
    buf_free(&out);
    return st;
}

static void test_parse(void **state)
{
    char *r;
    const char *bad[] = {"", "session", "sessions now", "kick", "kick ", "kick a@example.org b",
                         "KICK alice@example.org", "reboot", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(run(bad[i], &r), SM_ADMIN_ERROR);
        assert_non_null(strstr(r, "error: unknown request"));
        free(r);
    }
    /* Trailing blanks and a CR are tolerated. */
    assert_int_equal(run("sessions \r", &r), SM_ADMIN_OK);
    assert_string_equal(r, "ok\n");
    free(r);
    assert_int_equal(run("kick  a@@b", &r), SM_ADMIN_REFUSED);
    assert_non_null(strstr(r, "refused: a@@b is not a valid JID"));
    free(r);
    assert_int_equal(run("kick someone@elsewhere.net", &r), SM_ADMIN_REFUSED);
    assert_non_null(strstr(r, "not an account of this server"));
    free(r);
    assert_int_equal(run("kick example.org", &r), SM_ADMIN_REFUSED);
    free(r);
}

static void test_sessions_and_kick(void **state)
{
    smh_online(1, "bob", "b");
    smh_bind(2, "alice", "home");
    smh_bind(3, "alice", "work");
    char *r;
    assert_int_equal(run("sessions", &r), SM_ADMIN_OK);
    /* Sorted by JID; columns: JID, link, sid, since, state. */
    const char *a = strstr(r, "alice@example.org/home\tfront\t0000000000000002\t");
    const char *w = strstr(r, "alice@example.org/work\tfront\t0000000000000003\t");
    const char *b = strstr(r, "bob@example.org/b\tfront\t0000000000000001\t");
    assert_true(a && w && b && a < w && w < b);
    assert_non_null(strstr(b, "Z\tavailable\n"));
    assert_non_null(strstr(a, "Z\tbound\n"));
    assert_non_null(strstr(r, "\nok\n"));
    free(r);
    /* A full JID: that session, with END kicked and the text the front shows. */
    smh_clear();
    assert_int_equal(run("kick alice@example.org/work", &r), SM_ADMIN_OK);
    assert_string_equal(r, "kicked 1 session(s)\nok\n");
    free(r);
    int e = smh_find('E', 3, "kicked by an administrator", NULL);
    assert_true(e >= 0);
    assert_int_equal(smh.recs[e].status, SMPROTO_END_KICKED);
    assert_int_equal(smh_count('E', 0, NULL), 1);
    assert_int_equal(run("kick alice@example.org/work", &r), SM_ADMIN_REFUSED);
    assert_non_null(strstr(r, "refused: alice@example.org/work has no session"));
    free(r);
    /* A bare JID: every session; bob's contacts see him go. */
    smh_bind(3, "bob", "c");
    smh_clear();
    assert_int_equal(run("kick Bob@example.org", &r), SM_ADMIN_OK);
    assert_string_equal(r, "kicked 2 session(s)\nok\n");
    free(r);
    assert_int_equal(smh_count('E', 1, "kicked by an administrator"), 1);
    assert_int_equal(smh_count('E', 3, "kicked by an administrator"), 1);
    assert_int_equal(run("sessions", &r), SM_ADMIN_OK);
    assert_null(strstr(r, "bob@"));
    assert_non_null(strstr(r, "alice@example.org/home"));
    free(r);
}

static void test_status_stats_announce(void **state)
{
    smh_online(1, "alice", "a");
    smh_bind(2, "bob", "b");
    smh_clear();
    char *r;
    assert_int_equal(run("status", &r), SM_ADMIN_OK);
    assert_non_null(strstr(r, "started\t20"));
    assert_non_null(strstr(r, "\nuptime\t"));
    assert_non_null(strstr(r, "\nsessions\t2\n"));
    assert_non_null(strstr(r, "\nusers\t2\n"));
    assert_non_null(strstr(r, "\nstarting\t"));
    assert_non_null(strstr(r, "\nstorage\t-\tunknown\t"));
    assert_non_null(strstr(r, "\nok\n"));
    free(r);
    sm_admin_storage st = {.driver = "sqlite", .workers = 2, .pending = 3, .down = true,
                           .outages = 1};
    buf out = BUF_INIT;
    assert_int_equal(sm_admin_execute(smh.core, &st, "status", 6, &out), SM_ADMIN_OK);
    buf_append(&out, "", 1);
    assert_non_null(strstr(buf_data(&out), "\nstorage\tsqlite\tdown\t2\t3\t1\n"));
    buf_truncate(&out, 0);
    assert_int_equal(sm_admin_execute(smh.core, &st, "stats", 5, &out), SM_ADMIN_OK);
    buf_append(&out, "", 1);
    const char *want[] = {"sessions\t2\n", "sessions_available\t1\n", "sessions_detached\t0\n",
                          "users\t2\n", "dropped_stale\t", "dropped_bad\t", "dropped_too_big\t",
                          "storage_pending\t3\n", "links\t", "uptime\t", "ok\n", NULL};
    for (int i = 0; want[i]; i++)
        if (!strstr(buf_data(&out), want[i]))
            fail_msg("no %s in %s", want[i], buf_data(&out));
    buf_free(&out);
    /* announce: a headline to every session, from its host. */
    assert_int_equal(run("announce Back in  five minutes", &r), SM_ADMIN_OK);
    assert_string_equal(r, "announced to 2 session(s)\nok\n");
    free(r);
    EXPECT('S', 1, "type='headline'", "<body>Back in  five minutes</body>");
    EXPECT('S', 2, "from='example.org'", "<body>Back in  five minutes</body>");
    assert_int_equal(run("announce", &r), SM_ADMIN_ERROR);
    free(r);
    assert_int_equal(run("announce bell\a", &r), SM_ADMIN_REFUSED);
    assert_non_null(strstr(r, "control characters"));
    free(r);
    assert_int_equal(run("announce caf\xc3", &r), SM_ADMIN_REFUSED);
    assert_non_null(strstr(r, "not UTF-8"));
    free(r);
    assert_int_equal(run("status now", &r), SM_ADMIN_ERROR);
    free(r);
}

/* ---- over the socket ---- */

typedef struct client {
    evloop *loop;
    char path[108];
    char reply[4096];
} client;

static void *client_run(void *arg)
{
    client *c = arg;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, c->path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        /* In two writes: the SM must wait for the whole line. */
        (void)!write(fd, "sess", 4);
        usleep(10000);
        (void)!write(fd, "ions\n", 5);
        size_t n = 0;
        ssize_t k;
        while ((k = read(fd, c->reply + n, sizeof(c->reply) - 1 - n)) > 0)
            n += (size_t)k;
        c->reply[n] = '\0';
    }
    close(fd);
    evloop_wake(c->loop);
    return NULL;
}

static void stop_loop(evloop *loop, void *arg)
{
    evloop_stop(loop);
}

static void test_socket(void **state)
{
    smh_online(1, "alice", "a");
    client c = {.loop = evloop_create()};
    assert_non_null(c.loop);
    snprintf(c.path, sizeof(c.path), "%s/admin.sock", smh.dir);
    char err[256];
    sm_admin *a = sm_admin_open(c.loop, smh.core, c.path, err, sizeof(err));
    assert_non_null(a);
    struct stat sb;
    assert_int_equal(stat(c.path, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* A second SM on the same socket is refused. */
    assert_null(sm_admin_open(c.loop, smh.core, c.path, err, sizeof(err)));
    assert_non_null(strstr(err, "another session manager"));
    evloop_on_wake(c.loop, stop_loop, NULL);
    pthread_t t;
    pthread_create(&t, NULL, client_run, &c);
    evloop_run(c.loop);
    pthread_join(t, NULL);
    assert_non_null(strstr(c.reply, "alice@example.org/a\tfront\t"));
    assert_non_null(strstr(c.reply, "\tavailable\nok\n"));
    sm_admin_close(a);
    assert_int_equal(stat(c.path, &sb), -1);
    /* A socket file left behind by an SM that died is replaced. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, c.path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    a = sm_admin_open(c.loop, smh.core, c.path, err, sizeof(err));
    assert_non_null(a);
    sm_admin_close(a);
    evloop_destroy(c.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_sessions_and_kick, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_status_stats_announce, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_socket, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
