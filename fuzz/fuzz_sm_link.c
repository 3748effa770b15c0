/* fuzz/fuzz_sm_link.c — libFuzzer target for what the session manager reads from its links: a
 * front's frames (sm/frame_in.c into the core) and an XEP-0114 component's stanzas (into
 * sm_component_stanza), with every module registered and real storage (SQLite, run
 * synchronously, the answers handed back after each frame as the storage workers would).
 *
 * Input: byte 0 bit 0 picks the peer (a front, else a component serving component.localhost);
 * the rest is what it sends: frames back to back, or the XML after a component's stream header.
 * With bit 0 clear and bit 1 set, group chat (sm/mod_muc.c): four sessions are bound and
 * available (alice and bob at localhost, two resources each), and the rest is records, a byte
 * picking the session, a byte for the length and that many bytes, each a stanza the session
 * sends (to conference.localhost, the SM's room service, if the input likes). Two hosts are
 * served (localhost, example.com) with accounts alice and bob on each; alice@localhost is an
 * administrator (ad-hoc commands, sm/mod_admin_commands.c). In those records abbreviations stand
 * for what a byte of length cannot hold or the input cannot know: @S@ the last ad-hoc sessionid
 * the SM sent, @Q@ <iq type='set' id='q' to='localhost'>, @C@ http://jabber.org/protocol/commands,
 * @A@ http://jabber.org/protocol/admin#, @D@ jabber:x:data and @F@ <field var='.
 *
 * Checks: no crash, abort or sanitizer report whatever a peer sends (security issue 12: a stanza
 * grown past a frame aborted the SM); every frame the SM sends is one a front accepts (a STANZA
 * payload of at most SMPROTO_MAX_PAYLOAD bytes, well-formed control records); what the SM sends
 * in all is at most OUTPUT_FACTOR times what it was sent plus OUTPUT_SLACK (a presence broadcast
 * reaches at most the few accounts here), times the sessions in group chat (a room sends each
 * occupant what one sends); after shutdown no session is left.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmlstream.h"
#include "sm/config.h"
#include "sm/frame_in.h"
#include "sm/modules.h"
#include "sm/sm.h"
#include "smproto/frame.h"
#include "xdbsql/xdbsql.h"

#define OUTPUT_FACTOR 16
#define OUTPUT_SLACK (256 * 1024)
#define QUEUE_MAX 4096
#define MUC_SESSIONS 4

static db_conn *db;
static size_t sent_bytes;
static char last_sessionid[64];     /* the last sessionid='...' the SM sent (@S@) */

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* ---- the transport: what the SM sends, checked and counted ---- */

static void t_stanza(void *ctx, void *link, uint64_t sid, const char *xml, size_t len)
{
    buf b = BUF_INIT;
    check(smproto_put(&b, SMPROTO_STANZA, sid, xml, len));
    buf_free(&b);
    sent_bytes += len;
    static const char key[] = "sessionid='";
    const char *p = memmem(xml, len, key, sizeof key - 1);
    if (p) {
        p += sizeof key - 1;
        const char *end = memchr(p, '\'', len - (size_t)(p - xml));
        if (end && (size_t)(end - p) < sizeof last_sessionid)
            snprintf(last_sessionid, sizeof last_sessionid, "%.*s", (int)(end - p), p);
    }
}
static void t_auth(void *ctx, void *link, uint64_t sid, uint8_t status, const xdb_credentials *c)
{
    check(status <= SMPROTO_AUTH_ERROR && (status == SMPROTO_AUTH_OK) == (c != NULL));
    sent_bytes += 64;
}
static void t_bound(void *ctx, void *link, uint64_t sid, uint8_t status, const char *full)
{
    buf b = BUF_INIT;
    smproto_put_bound(&b, sid, status, full);   /* aborts on a record a front would refuse */
    sent_bytes += buf_len(&b);
    buf_free(&b);
}
static void t_end(void *ctx, void *link, uint64_t sid, uint8_t reason, const char *text)
{
    buf b = BUF_INIT;
    smproto_put_end(&b, sid, reason, text);
    sent_bytes += buf_len(&b);
    buf_free(&b);
}
static void t_component(void *ctx, void *link, const char *xml, size_t len)
{
    sent_bytes += len;
}
static void t_state(void *ctx, void *link, uint64_t sid, const uint8_t *state, size_t len)
{
    buf b = BUF_INIT;
    smproto_put_state(&b, sid, state, len);   /* aborts on a record longer than a front keeps */
    sent_bytes += buf_len(&b);
    buf_free(&b);
}

static void t_module(void *ctx, void *link, uint64_t sid, const char *name, const uint8_t *body,
                     size_t len)
{
    buf b = BUF_INIT;
    check(smproto_put_module(&b, sid, name, body, len));   /* a message a front would refuse */
    sent_bytes += buf_len(&b);
    buf_free(&b);
}

/* ---- storage: run at once, answered when the test drains, in order ---- */

typedef struct pending {
    xdb_request *r;
    xdb_callback cb;
    void *ctx;
} pending;
static pending queue[QUEUE_MAX];
static size_t qhead, qtail;

static void drain(void)
{
    while (qhead < qtail) {
        pending p = queue[qhead++];
        if (p.cb)
            p.cb(p.r, p.ctx);
        xdb_request_free(p.r);
    }
    qhead = qtail = 0;
}

static void submit(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx)
{
    xdb_run(db, r);
    if (qtail == QUEUE_MAX)   /* answers go back in order; make room by answering the oldest */
        drain();
    queue[qtail++] = (pending){r, cb, cbctx};
}

/* ---- setup ---- */

/* localhost takes registrations, example.com does not; every built-in module, its defaults. */
static const char config_text[] = "<sm><host name='localhost'><register/></host>"
                                  "<host name='example.com'/><offline_quota>10</offline_quota>"
                                  "<admins><jid>alice@localhost</jid></admins>"
                                  "<upload><secret>fuzz upload secret</secret></upload></sm>";
static sm_config cfg;

static void adduser(const char *host, const char *user)
{
    xdb_request *r = xdb_request_new(XDB_USER_CREATE, host, user);
    xdb_request_set_password(r, "pw");
    xdb_run(db, r);
    xdb_request_free(r);
}

static void init(void)
{
    log_set_level(LL_ERROR);
    char path[] = "/tmp/fuzz_sm_link.XXXXXX";
    int fd = mkstemp(path);
    check(fd >= 0);
    close(fd);
    db_settings s = {.driver = "sqlite", .path = path};
    char err[256];
    db = db_open(&s, err, sizeof err);
    check(db && xdb_migrate(db, err, sizeof err) == 0);
    unlink(path);   /* the open connection keeps it */
    static const char *const hosts[] = {"localhost", "example.com"};
    for (int h = 0; h < 2; h++) {
        adduser(hosts[h], "alice");
        adduser(hosts[h], "bob");
    }
    char cpath[] = "/tmp/fuzz_sm_link.xml.XXXXXX";
    fd = mkstemp(cpath);
    check(fd >= 0 && write(fd, config_text, sizeof config_text - 1) == sizeof config_text - 1);
    close(fd);
    config_error cerr;
    check(sm_config_load(cpath, sm_builtin_modules, &cfg, &cerr) == 0);
    unlink(cpath);
}

static bool account_exists(const char *host, const char *user)
{
    xdb_request *r = xdb_request_new(XDB_USER_CREDS, host, user);
    bool exists = xdb_run(db, r) == XDB_OK;
    xdb_request_free(r);
    return exists;
}

/* Every input starts from the accounts (the admin commands add and delete some) with nothing
 * stored. */
static void wipe(void)
{
    static const char *const hosts[] = {"localhost", "example.com"};
    db_exec(db, "DELETE FROM users WHERE username NOT IN ('alice', 'bob')");
    for (int h = 0; h < 2; h++) {
        if (!account_exists(hosts[h], "alice"))
            adduser(hosts[h], "alice");
        if (!account_exists(hosts[h], "bob"))
            adduser(hosts[h], "bob");
    }
    last_sessionid[0] = '\0';
    static const char *const tables[] = {
        "roster_groups", "roster_items", "roster_pending", "offline", "documents", "blocklist",
        "archive", "pep_items", "pep_nodes", "hibernated_stanzas", "hibernated",
        "users WHERE id IN (SELECT user_id FROM rooms)", "rooms"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM %s", tables[i]);
        db_exec(db, sql);
    }
}

/* ---- the peers ---- */

/* Each frame, the SM's clock moves a minute: hibernated sessions (mod_smacks) time out within
 * an input. */
static void front_sends(sm *core, sm_link *front, const uint8_t *data, size_t size)
{
    int64_t now = 0;
    while (size) {
        sm_tick(core, now += 60000);
        smproto_frame f;
        size_t used;
        if (smproto_frame_next(data, size, &f, &used) != SMPROTO_FRAME_OK)
            return;
        if (!sm_frame_in(core, front, &f))
            return;   /* a protocol error: the link would close */
        drain();
        data += used;
        size -= used;
    }
}

/* A record's stanza with the abbreviations (see the top) expanded. */
static void expand(const uint8_t *data, size_t len, buf *out)
{
    static const char *const abbrev[][2] = {
        {"@S@", last_sessionid},
        {"@C@", "http://jabber.org/protocol/commands"},
        {"@A@", "http://jabber.org/protocol/admin#"},
        {"@D@", "jabber:x:data"},
        {"@Q@", "<iq type='set' id='q' to='localhost'>"},
        {"@F@", "<field var='"},
    };
    enum { ABBREVS = sizeof abbrev / sizeof abbrev[0] };
    for (size_t i = 0; i < len;) {
        size_t k = 0;
        while (k < ABBREVS && (len - i < 3 || memcmp(data + i, abbrev[k][0], 3) != 0))
            k++;
        if (k < ABBREVS) {
            buf_append(out, abbrev[k][1], strlen(abbrev[k][1]));
            i += 3;
        } else {
            buf_append(out, data + i++, 1);
        }
    }
}

/* Group chat: MUC_SESSIONS sessions, available; then records of (session, length, stanza). */
static void sessions_send(sm *core, sm_link *front, const uint8_t *data, size_t size)
{
    static const char *const users[] = {"alice", "alice", "bob", "bob"};
    static const char *const resources[] = {"a", "b", "a", "b"};
    for (uint64_t sid = 1; sid <= MUC_SESSIONS; sid++) {
        sm_bind(core, front, sid, "localhost", users[sid - 1], resources[sid - 1], 0);
        drain();
        sm_session_stanza(core, front, sid, "<presence/>", 11);
        drain();
    }
    int64_t now = 0;
    while (size >= 2) {
        uint64_t sid = data[0] % MUC_SESSIONS + 1;
        size_t len = data[1] < size - 2 ? data[1] : size - 2;
        sm_tick(core, now += 1000);
        buf st = BUF_INIT;
        expand(data + 2, len, &st);
        sm_session_stanza(core, front, sid, buf_len(&st) ? buf_data(&st) : "", buf_len(&st));
        buf_free(&st);
        drain();
        data += 2 + len;
        size -= 2 + len;
    }
}

typedef struct component_ctx {
    sm *core;
    sm_link *link;
} component_ctx;

static void component_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    component_ctx *c = ctx;
    sm_component_stanza(c->core, c->link, st, arena);
    drain();
}

static void component_sends(sm *core, sm_link *comp, const uint8_t *data, size_t size)
{
    static const char header[] = "<stream:stream xmlns='jabber:component:accept' "
                                 "xmlns:stream='http://etherx.jabber.org/streams' "
                                 "to='component.localhost'>";
    component_ctx c = {core, comp};
    xmlstream_handlers h = {.stanza = component_stanza};
    xmlstream *xs = xmlstream_new(&h, &c, NULL);
    if (xmlstream_feed(xs, header, sizeof header - 1, NULL) == XMLSTREAM_OK)
        xmlstream_feed(xs, data, size, NULL);
    xmlstream_free(xs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    if (size < 1)
        return 0;
    bool component = data[0] & 1, muc = !component && (data[0] & 2);
    data++;
    size--;
    wipe();
    sent_bytes = 0;
    static const sm_transport t = {t_stanza, t_auth, t_bound, t_end, t_component, t_state,
                                   t_module};
    sm *core = sm_new(&cfg, sm_builtin_modules, &t, NULL, submit, NULL);
    check(core != NULL);
    sm_link *front = sm_link_up(core, (void *)1, "front", false);
    sm_link *comp = sm_link_up(core, (void *)2, "component.localhost", true);
    if (component)
        component_sends(core, comp, data, size);
    else if (muc)
        sessions_send(core, front, data, size);
    else
        front_sends(core, front, data, size);
    drain();
    check(sent_bytes <= OUTPUT_FACTOR * size * (muc ? MUC_SESSIONS : 1) + OUTPUT_SLACK);
    sm_shutdown(core);
    drain();
    sm_stats st;
    sm_get_stats(core, &st);
    check(st.sessions == 0);
    sm_free(core);
    return 0;
}
