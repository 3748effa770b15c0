/* tests/unit/sm_harness.h — an in-memory session manager for the SM module tests: a transport
 * that records what the core sends, storage run synchronously on a scratch SQLite database with
 * callbacks run when the test drains them (as xdbsql_dispatch would), and helpers to bind
 * sessions and send stanzas. Static functions: each test file includes it once. */
#ifndef JABSHARD_TESTS_SM_HARNESS_H
#define JABSHARD_TESTS_SM_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sm/config.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "sm/sm.h"
#include "smproto/frame.h"

/* Each test file uses some of the helpers below. */
#pragma GCC diagnostic ignored "-Wunused-function"

typedef struct h_rec {
    char kind;          /* S stanza, A auth answer, B bound, E end, C component */
    uint64_t sid;
    uint8_t status;
    char *text;
} h_rec;

static h_rec recs[1024];
static int nrecs;

static void record(char kind, uint64_t sid, uint8_t status, const char *text, size_t len)
{
    assert_true(nrecs < 1024);
    recs[nrecs++] = (h_rec){kind, sid, status, text ? strndup(text, len) : NULL};
}

static void clear(void)
{
    for (int i = 0; i < nrecs; i++)
        free(recs[i].text);
    nrecs = 0;
}

static void t_stanza(void *ctx, void *link, uint64_t sid, const char *xml, size_t len)
{
    record('S', sid, 0, xml, len);
}
static void t_auth(void *ctx, void *link, uint64_t sid, uint8_t status, const xdb_credentials *c)
{
    record('A', sid, status, NULL, 0);
}
static void t_bound(void *ctx, void *link, uint64_t sid, uint8_t status, const char *full)
{
    record('B', sid, status, full, full ? strlen(full) : 0);
}
static void t_end(void *ctx, void *link, uint64_t sid, uint8_t reason, const char *text)
{
    record('E', sid, reason, text, strlen(text));
}
static void t_component(void *ctx, void *link, const char *xml, size_t len)
{
    record('C', 0, 0, xml, len);
}
/* A STATE record is kept as its bytes (text, len in status's place is not enough: use state_of). */
static void t_state(void *ctx, void *link, uint64_t sid, const uint8_t *state, size_t len)
{
    assert_true(nrecs < 1024);
    char *copy = malloc(len + 1);
    memcpy(copy, state, len);
    copy[len] = 0;
    recs[nrecs++] = (h_rec){'T', sid, (uint8_t)len, copy};
}

typedef struct h_pend {
    xdb_request *r;
    xdb_callback cb;
    void *ctx;
} h_pend;
static h_pend queue[4096];
static size_t qhead, qtail;
static db_conn *db;

static void submit(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx)
{
    xdb_run(db, r);
    assert_true(qtail < 4096);
    queue[qtail++] = (h_pend){r, cb, cbctx};
}

static void drain(void)
{
    while (qhead < qtail) {
        h_pend p = queue[qhead++];
        if (p.cb)
            p.cb(p.r, p.ctx);
        xdb_request_free(p.r);
    }
}

/* example.org allows in-band registration, closed.org does not; a component serves
 * muc.example.org. A test file may set the offline quota before including this file; a test may
 * start the core again with more configuration or modules (start_core). */
#ifndef SM_HARNESS_OFFLINE_QUOTA
#define SM_HARNESS_OFFLINE_QUOTA 10
#endif
#define H_STR_(x) #x
#define H_STR(x) H_STR_(x)
static sm_config cfg;
static sm *core;
static sm_link *front, *comp;
static char dbpath[64];
static const sm_module *h_modules[64];

static void adduser(const char *host, const char *user)
{
    xdb_request *r = xdb_request_new(XDB_USER_CREATE, host, user);
    xdb_request_set_password(r, "pw");
    assert_int_equal(xdb_run(db, r), XDB_OK);
    xdb_request_free(r);
}

static void stop_core(void)
{
    if (!core)
        return;
    drain();
    sm_free(core);
    core = NULL;
    sm_config_free(&cfg);
}

/* (Re)starts the core on a configuration file holding the harness's hosts plus extra (elements
 * under <sm>, "" for none), with the built-in modules followed by the NULL-terminated
 * extra_modules (or none). Storage and its users stay. */
static void start_core(const char *extra, const sm_module *const *extra_modules)
{
    stop_core();
    size_t n = 0;
    for (size_t i = 0; sm_builtin_modules[i]; i++)
        h_modules[n++] = sm_builtin_modules[i];
    for (size_t i = 0; extra_modules && extra_modules[i]; i++)
        h_modules[n++] = extra_modules[i];
    h_modules[n] = NULL;
    char path[sizeof dbpath + 8];
    snprintf(path, sizeof path, "%s.xml", dbpath);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "<sm><host name='example.org'><register/></host><host name='closed.org'/>"
               "<offline_quota>" H_STR(SM_HARNESS_OFFLINE_QUOTA) "</offline_quota>%s</sm>\n",
            extra);
    fclose(f);
    config_error err;
    if (sm_config_load(path, h_modules, &cfg, &err) != 0)
        fail_msg("%s", err.text);
    unlink(path);
    static const sm_transport t = {t_stanza, t_auth, t_bound, t_end, t_component, t_state};
    core = sm_new(&cfg, h_modules, &t, NULL, submit, NULL);
    assert_non_null(core);
    front = sm_link_up(core, (void *)1, "front", false);
    comp = sm_link_up(core, (void *)2, "muc.example.org", true);
}

static int setup(void **state)
{
    strcpy(dbpath, "/tmp/test_sm_harness.XXXXXX");
    int fd = mkstemp(dbpath);
    assert_true(fd >= 0);
    close(fd);
    db_settings s = {.driver = "sqlite", .path = dbpath};
    char err[256];
    db = db_open(&s, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(xdb_migrate(db, err, sizeof(err)), 0);
    adduser("example.org", "alice");
    adduser("example.org", "bob");
    adduser("example.org", "carol");
    start_core("", NULL);
    return 0;
}

static int teardown(void **state)
{
    stop_core();
    clear();
    db_close(db);
    char path[80];
    unlink(dbpath);
    snprintf(path, sizeof(path), "%s-wal", dbpath);
    unlink(path);
    snprintf(path, sizeof(path), "%s-shm", dbpath);
    unlink(path);
    qhead = qtail = 0;
    return 0;
}

/* The index of the first record of kind for sid (0: any) containing a and b, or -1. */
static int find(char kind, uint64_t sid, const char *a, const char *b)
{
    for (int i = 0; i < nrecs; i++)
        if (recs[i].kind == kind && (!sid || recs[i].sid == sid) &&
            (!a || (recs[i].text && strstr(recs[i].text, a))) &&
            (!b || (recs[i].text && strstr(recs[i].text, b))))
            return i;
    return -1;
}

static int count(char kind, uint64_t sid, const char *a)
{
    int n = 0;
    for (int i = 0; i < nrecs; i++)
        if (recs[i].kind == kind && (!sid || recs[i].sid == sid) &&
            (!a || (recs[i].text && strstr(recs[i].text, a))))
            n++;
    return n;
}

static void dump(void)
{
    for (int i = 0; i < nrecs; i++)
        fprintf(stderr, "  %c sid=%llu st=%u %s\n", recs[i].kind, (unsigned long long)recs[i].sid,
                recs[i].status, recs[i].text ? recs[i].text : "");
}

static void send_xml(uint64_t sid, const char *xml)
{
    sm_session_stanza(core, front, sid, xml, strlen(xml));
    drain();
}

static void bind_session(uint64_t sid, const char *user, const char *res)
{
    clear();
    sm_bind(core, front, sid, "example.org", user, res, 0);
    drain();
    int i = find('B', sid, NULL, NULL);
    assert_true(i >= 0);
    assert_int_equal(recs[i].status, SMPROTO_BOUND_OK);
}

static void online(uint64_t sid, const char *user, const char *res)
{
    bind_session(sid, user, res);
    send_xml(sid, "<presence/>");
}

#define EXPECT(kind, sid, a, b)                                                                    \
    do {                                                                                           \
        if (find(kind, sid, a, b) < 0) {                                                           \
            dump();                                                                                \
            const char *a_ = (a), *b_ = (b);                                                       \
            fail_msg("no %c record for sid %d with '%s' '%s'", kind, (int)(sid), a_ ? a_ : "",     \
                     b_ ? b_ : "");                                                                \
        }                                                                                          \
    } while (0)

#define NONE(kind, sid, a)                                                                         \
    do {                                                                                           \
        if (count(kind, sid, a) != 0) {                                                            \
            dump();                                                                                \
            const char *a_ = (a);                                                                  \
            fail_msg("unexpected %c record for sid %d with '%s'", kind, (int)(sid), a_ ? a_ : ""); \
        }                                                                                          \
    } while (0)

/* alice and bob subscribed to each other (both), both online: alice sid 1, bob sid 2. */
static void befriend(void)
{
    online(1, "alice", "a");
    online(2, "bob", "b");
    send_xml(1, "<presence to='bob@example.org' type='subscribe'/>");
    send_xml(2, "<presence to='alice@example.org' type='subscribed'/>");
    send_xml(2, "<presence to='alice@example.org' type='subscribe'/>");
    send_xml(1, "<presence to='bob@example.org' type='subscribed'/>");
    clear();
}

#endif
