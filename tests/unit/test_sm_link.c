/* tests/unit/test_sm_link.c — the SM's end of smproto links.
 *
 * sm/link_sm.c over socketpairs, with stub handlers: the XEP-0114 opening (unknown id, wrong
 * secret, right secret), a link up as a component from its handshake, the switch to frames on
 * <smproto version='N'/> (the front's instance and acked handed to the owner, whose count the
 * answer's received= carries; version 1, a missing or malformed instance or acked refused) with a
 * frame in the same write, PING answered with PONG, frames (ACK included) handed to the owner, a
 * bad frame closing the link, components that keep speaking XML, and replacement of a link by a
 * newer one with the same id.
 *
 * Then sm/server.c's custody over real loopback links (fronts played by this test, storage in a
 * scratch SQLite database): what received= says per service id (the same instance resumes where
 * the SM's count stands, a new one where it says it was acknowledged, another service has its
 * own), the SM's ACK numbering continuing across links, a stanza routed to another front
 * acknowledged to its sender only once that front acknowledged it, or, when that front's link
 * goes down first, once the stanza handed back has been stored offline (and it is then delivered
 * from there), a front link lost while two sessions of one user on it are available, and a
 * server freed with fronts connected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>


#include "core/evloop.h"
#include "core/log.h"
#include "core/scram.h"
#include "sm/server.h"
#include "smproto/frame.h"
#include "smproto/handshake.h"
#include "sm/link_sm.h"
#include "xdbsql/xdbsql.h"
#include "tests/support/net.h"
#include "tests/support/tmp.h"

static evloop *loop;
static link_sm_server *srv;
static int ups, downs, components, nframes, nstanzas;
static smproto_frame last_frame;
static uint8_t last_payload[256];
static link_sm *last_up;
static char last_instance[40];
static uint64_t last_acked, answer_received;

static uint64_t h_up(void *ctx, link_sm *l, const link_sm_hello *hello)
{
    ups++;
    components += hello == NULL;
    last_up = l;
    if (hello) {
        snprintf(last_instance, sizeof(last_instance), "%s", hello->instance);
        last_acked = hello->acked;
    }
    return answer_received;
}
static void h_down(void *ctx, link_sm *l) { downs++; }
static void h_frame(void *ctx, link_sm *l, const smproto_frame *f)
{
    nframes++;
    last_frame = *f;
    memcpy(last_payload, f->payload, f->len < sizeof(last_payload) ? f->len : sizeof(last_payload));
    /* echo a STANZA back, as the core would answer */
    if (f->type == SMPROTO_STANZA)
        smproto_put(link_sm_out(l), SMPROTO_STANZA, f->sid, "<ok/>", 5);
}
static void h_stanza(void *ctx, link_sm *l, xml_node *st, xml_arena *a)
{
    nstanzas++;
    assert_string_equal(st->name, "message");
    buf_append(link_sm_out(l), "<message/>", 10);
    xml_arena_free(a);
}

static sm_service services[] = {{"front", NULL, 0, "s3cret", SM_ROLE_FRONT},
                                {"muc.example.org", NULL, 0, "m", SM_ROLE_COMPONENT}};

static void stop(timer *t, void *arg) { evloop_stop(loop); }
static void flush_hook(evloop *l, void *arg) { link_sm_flush_all(srv); }

/* Runs the loop until it has been idle a moment (what was written is handled by then). */
static void spin(void)
{
    timer t;
    timer_init(&t, stop, NULL);
    evloop_timer_after(loop, &t, 30);
    evloop_run(loop);
    link_sm_flush_all(srv);   /* the iteration that stopped did not reach before_sleep */
}

static int setup(void **state)
{
    loop = evloop_create();
    link_sm_handlers h = {h_up, h_frame, h_stanza, h_down};
    srv = link_sm_server_new(loop, services, 2, &h, NULL);
    evloop_before_sleep(loop, flush_hook, NULL);
    ups = downs = components = nframes = nstanzas = 0;
    last_instance[0] = 0;
    last_acked = answer_received = 0;
    return 0;
}

static int teardown(void **state)
{
    link_sm_server_free(srv);
    evloop_destroy(loop);
    return 0;
}

static int peer(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_non_null(link_sm_adopt(srv, sv[0], "test"));
    return sv[1];
}

#define OPEN_FRONT "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' " \
                   "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>"

/* Opens a stream to id and answers the handshake with secret; returns the SM's stream id. */
static void opening(int fd, const char *id, const char *secret, char *reply, size_t cap, bool *eof)
{
    char hdr[256];
    snprintf(hdr, sizeof(hdr), OPEN_FRONT, id);
    net_must_write_str(fd, hdr);
    spin();
    net_read_available(fd, reply, cap, eof);
    const char *p = strstr(reply, "id='");
    assert_non_null(p);
    char sid[64] = {0};
    memcpy(sid, p + 4, SMPROTO_STREAM_ID_LEN);
    char digest[SMPROTO_DIGEST_LEN + 1], hs[128];
    smproto_handshake_digest(sid, secret, digest);
    snprintf(hs, sizeof(hs), "<handshake>%s</handshake>", digest);
    net_must_write_str(fd, hs);
    spin();
    net_read_available(fd, reply, cap, eof);
}

static void test_unknown_id(void **state)
{
    int fd = peer();
    char hdr[256], out[4096];
    bool eof;
    snprintf(hdr, sizeof(hdr), OPEN_FRONT, "nobody");
    net_must_write_str(fd, hdr);
    spin();
    net_read_available(fd, out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<host-unknown"));
    assert_true(eof);
    assert_int_equal(ups, 0);
    close(fd);
}

static void test_wrong_secret(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "front", "wrong", out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<not-authorized"));
    assert_true(eof);
    assert_int_equal(ups, 0);
    close(fd);
}

static void test_frames(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "front", "s3cret", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    assert_false(eof);
    /* A front is up once it has asked for frames, never as a component. */
    assert_int_equal(ups, 0);
    /* The first frame follows <smproto/> in the same write. */
    answer_received = 12345678901234ull;
    buf b = BUF_INIT;
    buf_appendf(&b, "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' "
                "instance='0123456789abcdef0123456789abcdef' acked='12345678901234'/>");
    smproto_put_ping(&b, SMPROTO_PING, 77);
    smproto_put_ack(&b, 3);
    smproto_put(&b, SMPROTO_STANZA, 42, "<message/>", 10);
    net_must_write(fd, buf_data(&b), buf_len(&b));
    buf_free(&b);
    spin();
    /* The front is up with what it said. */
    assert_int_equal(downs, 0);
    assert_int_equal(ups, 1);
    assert_int_equal(components, 0);
    assert_string_equal(last_instance, "0123456789abcdef0123456789abcdef");
    assert_int_equal(last_acked, 12345678901234ull);
    assert_int_equal(nframes, 2);   /* the ACK and the STANZA; the PING never reaches the owner */
    assert_int_equal(last_frame.type, SMPROTO_STANZA);
    assert_int_equal(last_frame.sid, 42);
    assert_memory_equal(last_payload, "<message/>", 10);
    size_t n = net_read_available(fd, out, sizeof(out), &eof);
    const char *ans = "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' received='12345678901234'/>";
    assert_true(n > strlen(ans));
    assert_memory_equal(out, ans, strlen(ans));
    smproto_frame f;
    size_t used;
    const uint8_t *p = (const uint8_t *)out + strlen(ans);
    size_t left = n - strlen(ans);
    assert_int_equal(smproto_frame_next(p, left, &f, &used), SMPROTO_FRAME_OK);
    uint64_t token;
    assert_int_equal(f.type, SMPROTO_PONG);
    assert_true(smproto_get_ping(&f, &token));
    assert_int_equal(token, 77);
    assert_int_equal(smproto_frame_next(p + used, left - used, &f, &used), SMPROTO_FRAME_OK);
    assert_int_equal(f.type, SMPROTO_STANZA);
    assert_int_equal(f.sid, 42);
    /* A frame split across writes is handed over whole. */
    buf_init(&b);
    smproto_put(&b, SMPROTO_STANZA, 43, "<presence/>", 11);
    net_must_write(fd, buf_data(&b), 5);
    spin();
    assert_int_equal(nframes, 2);
    net_must_write(fd, buf_data(&b) + 5, buf_len(&b) - 5);
    spin();
    assert_int_equal(nframes, 3);
    assert_int_equal(last_frame.sid, 43);
    buf_free(&b);
    /* A bad frame (unknown type) closes the link. */
    uint8_t bad[16] = {0, 0, 0, 0, 99};
    net_must_write(fd, bad, sizeof(bad));
    spin();
    net_read_available(fd, out, sizeof(out), &eof);
    assert_true(eof);
    assert_int_equal(downs, 1);
    close(fd);
}

/* Every <smproto/> request a front could get wrong: refused with the stream error named, the link
 * closed, the owner never told of a front. */
static void test_hello_refused(void **state)
{
    static const struct {
        const char *hello, *error;
    } cases[] = {
        {"<smproto xmlns='urn:jabshard:smproto' version='1'/>", "<unsupported-version"},
        {"<smproto xmlns='urn:jabshard:smproto' version='2' instance='ab' acked='0'/>",
         "<unsupported-version"},   /* version 2's STATE was one byte of flags */
        {"<smproto xmlns='urn:jabshard:smproto' version='99' instance='ab' acked='0'/>",
         "<unsupported-version"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' acked='0'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='' acked='0'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='AB' acked='0'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='a-b' acked='0'/>",
         "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' "
         "instance='0123456789abcdef0123456789abcdef0' acked='0'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' acked=''/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' acked='-1'/>",
         "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' acked=' 1'/>",
         "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' acked='1x'/>",
         "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' "
         "acked='18446744073709551616'/>", "<bad-format"},
        {"<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' "
         "acked='000000000000000000001'/>", "<bad-format"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = peer();
        char out[4096];
        bool eof;
        ups = downs = components = 0;
        opening(fd, "front", "s3cret", out, sizeof(out), &eof);
        assert_string_equal(out, "<handshake/>");
        net_must_write_str(fd, cases[i].hello);
        spin();
        net_read_available(fd, out, sizeof(out), &eof);
        if (!strstr(out, cases[i].error) || !eof)
            fail_msg("%s: got '%s'%s", cases[i].hello, out, eof ? "" : " (still open)");
        assert_int_equal(ups, 0);           /* never up */
        assert_int_equal(downs, 0);
        close(fd);
    }
    /* The largest acked there is, and the longest instance, are fine. */
    int fd = peer();
    char out[4096];
    bool eof;
    answer_received = UINT64_MAX;
    opening(fd, "front", "s3cret", out, sizeof(out), &eof);
    net_must_write_str(fd, "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' "
                           "instance='ffffffffffffffffffffffffffffffff' "
                           "acked='18446744073709551615'/>");
    spin();
    net_read_available(fd, out, sizeof(out), &eof);
    assert_false(eof);
    assert_string_equal(out, "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' "
                             "received='18446744073709551615'/>");
    assert_int_equal(last_acked, UINT64_MAX);
    close(fd);
}

static void test_component(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "muc.example.org", "m", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    assert_int_equal(ups, 1);       /* up at once: the SM may speak first (XEP-0114 §3) */
    assert_int_equal(components, 1);
    net_must_write_str(fd, "<message to='a@example.org' from='r@muc.example.org'/>");
    spin();
    assert_int_equal(ups, 1);
    assert_int_equal(nstanzas, 1);
    net_read_available(fd, out, sizeof(out), &eof);
    assert_string_equal(out, "<message/>");
    net_must_write_str(fd, "</stream:stream>");
    spin();
    net_read_available(fd, out, sizeof(out), &eof);
    assert_true(eof);
    assert_int_equal(downs, 1);
    close(fd);
}

/* Finding 4 of the security review: a component that asks for frames (it would read any user's
 * SCRAM keys and bind as anyone), and a front that sends XML stanzas, are refused and closed. */
static void test_roles_enforced(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "muc.example.org", "m", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    assert_int_equal(ups, 1);
    net_must_write_str(fd, "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='ab' acked='0'/>");
    spin();
    net_read_available(fd, out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<not-authorized"));
    assert_true(eof);
    assert_int_equal(ups, 1);        /* only the component's own */
    assert_int_equal(components, 1);
    assert_int_equal(downs, 1);
    assert_int_equal(nframes, 0);
    close(fd);

    fd = peer();
    opening(fd, "front", "s3cret", out, sizeof(out), &eof);
    net_must_write_str(fd, "<message to='a@example.org' from='front'/>");
    spin();
    net_read_available(fd, out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<not-authorized"));
    assert_true(eof);
    assert_int_equal(ups, 1);
    assert_int_equal(nstanzas, 0);
    close(fd);
}

static void test_replace(void **state)
{
    int a = peer(), b = peer();
    char out[4096];
    bool eof;
    opening(a, "front", "s3cret", out, sizeof(out), &eof);
    net_must_write_str(a, "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='a1' acked='0'/>");
    spin();
    assert_int_equal(ups, 1);
    assert_int_equal(downs, 0);
    opening(b, "front", "s3cret", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    assert_int_equal(downs, 1);     /* the old link went when the new one proved itself */
    assert_int_equal(ups, 1);       /* the new one is up at its <smproto/> */
    net_read_available(a, out, sizeof(out), &eof);
    assert_true(eof);
    close(a);
    close(b);
}

/* ======== sm/server.c: custody on real links ================================================== */

#define SRV_HOST "example.org"

static char *scratch, *db_path;
static sm_service srv_services[3];
static sm_host srv_hosts[1];
static sm_config srv_cfg;
static xdbsql *xdb;
static sm_server *server;

static void wake_loop(void *ctx) { evloop_wake(ctx); }

static int server_setup(void **state)
{
    log_set_level(getenv("TEST_LOG") ? LL_DEBUG : LL_ERROR);
    loop = evloop_create();
    scratch = tmp_dir("sm_link");
    assert_non_null(scratch);
    db_path = tmp_path(scratch, "sm.db");
    srv_services[0] = (sm_service){"f1", "127.0.0.1", net_must_free_port(), "one", SM_ROLE_FRONT};
    srv_services[1] = (sm_service){"f2", "127.0.0.1", net_must_free_port(), "two", SM_ROLE_FRONT};
    srv_services[2] = (sm_service){"muc." SRV_HOST, "127.0.0.1", net_must_free_port(), "three",
                                   SM_ROLE_COMPONENT};
    srv_hosts[0] = (sm_host){SRV_HOST, NULL};
    memset(&srv_cfg, 0, sizeof(srv_cfg));
    srv_cfg.services = srv_services;
    srv_cfg.nservices = 3;
    srv_cfg.hosts = srv_hosts;
    srv_cfg.nhosts = 1;
    sm_limits_default(&srv_cfg.limits);
    srv_cfg.storage.db.driver = "sqlite";
    srv_cfg.storage.db.path = db_path;
    srv_cfg.storage.workers = 1;
    srv_cfg.storage.notify = wake_loop;
    srv_cfg.storage.notify_ctx = loop;
    char err[256];
    /* The accounts the sessions bind to. */
    db_conn *c = db_open(&srv_cfg.storage.db, err, sizeof(err));
    if (!c || xdb_migrate(c, err, sizeof(err)) != 0)
        fail_msg("storage: %s", err);
    static const char *const users[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        xdb_request *r = xdb_request_new(XDB_USER_CREATE, SRV_HOST, users[i]);
        scram_derive(SCRAM_SHA1, "pw", NULL, 0, 4096, &r->creds.sha1);
        scram_derive(SCRAM_SHA256, "pw", NULL, 0, 4096, &r->creds.sha256);
        assert_int_equal(xdb_run(c, r), XDB_OK);
        xdb_request_free(r);
    }
    db_close(c);
    xdb = xdbsql_open(&srv_cfg.storage, err, sizeof(err));
    if (!xdb)
        fail_msg("storage: %s", err);
    server = sm_server_new(loop, &srv_cfg, xdb);
    if (sm_server_listen(server, err, sizeof(err)) != 0)
        fail_msg("listen: %s", err);
    return 0;
}

static int server_teardown(void **state)
{
    xdbsql_close(xdb);
    sm_server_free(server);
    evloop_destroy(loop);
    free(db_path);
    tmp_dir_remove(scratch);
    return 0;
}

/* Runs the SM's loop for ms. */
static void run_ms(unsigned ms)
{
    timer t;
    timer_init(&t, stop, NULL);
    evloop_timer_after(loop, &t, ms);
    evloop_run(loop);
}

/* A front played by the test: what it was sent, frame by frame. */
typedef struct got_frame {
    smproto_type type;
    uint64_t sid;
    char text[512];         /* a STANZA's XML, a BOUND's JID */
    uint8_t status;
} got_frame;

typedef struct ffront {
    int fd;
    buf rx;
    bool eof;
    bool auto_ack;          /* acknowledge every counted frame as it is read */
    uint64_t counted;       /* counted frames received on this link */
    uint64_t sm_acked;      /* the SM's last ACK on this link */
    unsigned nacks;         /* ACK frames received */
    got_frame got[64];
    unsigned ngot;          /* counted frames kept in got (the first 64) */
} ffront;

static void ff_send(ffront *ff, const buf *b) { net_must_write(ff->fd, buf_data(b), buf_len(b)); }

static void ff_ack(ffront *ff)
{
    buf b = BUF_INIT;
    smproto_put_ack(&b, ff->counted);
    ff_send(ff, &b);
    buf_free(&b);
}

/* Reads what has come; after the opening, decodes frames. */
static void ff_read(ffront *ff, bool frames)
{
    for (;;) {
        char *p = buf_reserve(&ff->rx, 65536);
        ssize_t r = read(ff->fd, p, buf_avail(&ff->rx));
        if (r == 0)
            ff->eof = true;
        if (r <= 0)
            break;
        buf_commit(&ff->rx, (size_t)r);
    }
    if (!frames)
        return;
    uint64_t before = ff->counted;
    smproto_frame f;
    size_t used;
    smproto_frame_status st;
    while ((st = smproto_frame_next((const uint8_t *)buf_data(&ff->rx), buf_len(&ff->rx), &f,
                                    &used)) == SMPROTO_FRAME_OK) {
        if (f.type == SMPROTO_ACK) {
            uint64_t n;
            assert_true(smproto_get_ack(&f, &n));
            assert_true(n >= ff->sm_acked);     /* cumulative */
            ff->sm_acked = n;
            ff->nacks++;
        } else if (smproto_counted(f.type)) {
            ff->counted++;
            if (ff->ngot < 64) {
                got_frame *g = &ff->got[ff->ngot++];
                memset(g, 0, sizeof(*g));
                g->type = f.type;
                g->sid = f.sid;
                const char *bound_jid;
                if (f.type == SMPROTO_STANZA)
                    snprintf(g->text, sizeof(g->text), "%.*s", (int)f.len,
                             (const char *)f.payload);
                else if (f.type == SMPROTO_BOUND && smproto_get_bound(&f, &g->status, &bound_jid))
                    snprintf(g->text, sizeof(g->text), "%s", bound_jid ? bound_jid : "");
            }
        }
        buf_consume(&ff->rx, used);
    }
    assert_int_not_equal(st, SMPROTO_FRAME_BAD);
    if (ff->auto_ack && ff->counted != before)
        ff_ack(ff);
}

/* Runs the SM until cond holds for ff (at most 10 s: a hang is a failure, not a slow run). */
#define PUMP_UNTIL(ff, frames, cond)                                                              \
    do {                                                                                          \
        int tries_ = 0;                                                                           \
        for (;;) {                                                                                \
            ff_read((ff), (frames));                                                              \
            if (cond)                                                                             \
                break;                                                                            \
            if (++tries_ > 1000)                                                                  \
                fail_msg("timed out waiting for %s", #cond);                                      \
            run_ms(10);                                                                           \
        }                                                                                         \
    } while (0)

static bool rx_has(const ffront *ff, const char *text)
{
    return buf_len(&ff->rx) &&
           memmem(buf_data(&ff->rx), buf_len(&ff->rx), text, strlen(text)) != NULL;
}

/* Connects as service svc, up to the SM's <handshake/>. */
static void ff_connect(ffront *ff, int svc)
{
    memset(ff, 0, sizeof(*ff));
    buf_init(&ff->rx);
    ff->auto_ack = true;
    ff->fd = net_must_connect(srv_services[svc].port);
    fcntl(ff->fd, F_SETFL, fcntl(ff->fd, F_GETFL) | O_NONBLOCK);
    char text[256];
    snprintf(text, sizeof(text), OPEN_FRONT, srv_services[svc].id);
    net_must_write_str(ff->fd, text);
    PUMP_UNTIL(ff, false, rx_has(ff, "id='") && strchr(strstr(buf_data(&ff->rx), "id='") + 4, '\''));
    char id[64] = {0};
    const char *p = strstr(buf_data(&ff->rx), "id='") + 4;
    memcpy(id, p, (size_t)(strchr(p, '\'') - p));
    char digest[SMPROTO_DIGEST_LEN + 1];
    smproto_handshake_digest(id, srv_services[svc].secret, digest);
    snprintf(text, sizeof(text), "<handshake>%s</handshake>", digest);
    net_must_write_str(ff->fd, text);
    PUMP_UNTIL(ff, false, rx_has(ff, "<handshake/>"));
}

/* Connects as service svc, asks for frames as instance with acked; returns received=. */
static uint64_t ff_open(ffront *ff, int svc, const char *instance, uint64_t acked)
{
    ff_connect(ff, svc);
    char text[256];
    snprintf(text, sizeof(text),
             "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='%s' acked='%llu'/>",
             instance, (unsigned long long)acked);
    net_must_write_str(ff->fd, text);
    PUMP_UNTIL(ff, false, rx_has(ff, "received='") && strstr(strstr(buf_data(&ff->rx),
                                                                   "received='"), "/>"));
    const char *r = strstr(buf_data(&ff->rx), "received='") + 10;
    uint64_t received = strtoull(r, NULL, 10);
    buf_consume(&ff->rx, (size_t)(strstr(r, "/>") + 2 - (const char *)buf_data(&ff->rx)));
    return received;
}

/* Closes the front's end and lets the SM see it. */
static void ff_close(ffront *ff)
{
    close(ff->fd);
    ff->fd = -1;
    buf_free(&ff->rx);
    run_ms(30);
}

static void ff_bind(ffront *ff, uint64_t sid, const char *user, const char *resource)
{
    buf b = BUF_INIT;
    smproto_put_bind(&b, sid, SRV_HOST, user, resource, 0);
    ff_send(ff, &b);
    buf_free(&b);
    unsigned n = ff->ngot;
    PUMP_UNTIL(ff, true, ff->ngot > n && ff->got[ff->ngot - 1].type == SMPROTO_BOUND);
    assert_int_equal(ff->got[ff->ngot - 1].status, SMPROTO_BOUND_OK);
    assert_int_equal(ff->got[ff->ngot - 1].sid, sid);
}

static void ff_stanza(ffront *ff, uint64_t sid, const char *xml)
{
    buf b = BUF_INIT;
    smproto_put(&b, SMPROTO_STANZA, sid, xml, strlen(xml));
    ff_send(ff, &b);
    buf_free(&b);
}

/* END frames for sessions the SM never had: counted, finished at once (dropped as stale). */
static void ff_ends(ffront *ff, int n)
{
    buf b = BUF_INIT;
    for (int i = 0; i < n; i++)
        smproto_put_end(&b, smproto_sid(0, 100 + (uint32_t)i, 1), SMPROTO_END_GONE, "");
    ff_send(ff, &b);
    buf_free(&b);
}

static void test_server_received_per_instance(void **state)
{
    ffront f1, f2;
    assert_int_equal(ff_open(&f1, 0, "aa", 0), 0);
    ff_ends(&f1, 3);
    PUMP_UNTIL(&f1, true, f1.sm_acked == 3);
    ff_close(&f1);
    /* The same instance: where the SM's count stands, whatever it says was acknowledged. */
    assert_int_equal(ff_open(&f1, 0, "aa", 1), 3);
    ff_ends(&f1, 1);                    /* numbered 4: the numbering goes on across links */
    PUMP_UNTIL(&f1, true, f1.sm_acked == 4);
    assert_int_equal(f1.nacks, 1);      /* nothing told again on the new link */
    ff_close(&f1);
    /* It may say more was acknowledged than the SM counted (an SM of before a restart did). */
    assert_int_equal(ff_open(&f1, 0, "aa", 9), 9);
    ff_ends(&f1, 1);
    PUMP_UNTIL(&f1, true, f1.sm_acked == 10);
    ff_close(&f1);
    /* Another service id has its own memory. */
    assert_int_equal(ff_open(&f2, 1, "aa", 0), 0);
    ff_close(&f2);
    /* A new instance of the first: what it says was acknowledged. */
    assert_int_equal(ff_open(&f1, 0, "bb", 2), 2);
    ff_ends(&f1, 2);
    PUMP_UNTIL(&f1, true, f1.sm_acked == 4);
    ff_close(&f1);
    /* ... and the SM remembers the new one, not the old. */
    assert_int_equal(ff_open(&f1, 0, "aa", 0), 0);
    ff_close(&f1);
    assert_int_equal(ff_open(&f1, 0, "aa", 0), 0);
    ff_close(&f1);
}

/* a@ on f1 and b@ on f2, bound (each BOUND acknowledged by its front). */
static void two_fronts(ffront *f1, ffront *f2)
{
    assert_int_equal(ff_open(f1, 0, "f1f1", 0), 0);
    assert_int_equal(ff_open(f2, 1, "f2f2", 0), 0);
    ff_bind(f1, 1, "a", "r1");
    ff_bind(f2, 2, "b", "r2");
    PUMP_UNTIL(f1, true, f1->sm_acked == 1);
    PUMP_UNTIL(f2, true, f2->sm_acked == 1);
}

static const char MSG_A_TO_B[] = "<message from='a@" SRV_HOST "/r1' to='b@" SRV_HOST "/r2' "
                                 "type='chat' id='m1'><body>hi</body></message>";

static void test_server_ack_after_destination_ack(void **state)
{
    ffront f1, f2;
    two_fronts(&f1, &f2);
    f2.auto_ack = false;
    ff_stanza(&f1, 1, MSG_A_TO_B);      /* f1's frame 2 */
    unsigned n = f2.ngot;
    PUMP_UNTIL(&f2, true, f2.ngot > n);
    assert_int_equal(f2.got[n].type, SMPROTO_STANZA);
    assert_non_null(strstr(f2.got[n].text, "<body>hi</body>"));
    /* The SM has done all it will do with the frame until f2 acknowledges: f1 is not told. */
    run_ms(50);
    ff_read(&f1, true);
    assert_int_equal(f1.sm_acked, 1);
    ff_ack(&f2);
    PUMP_UNTIL(&f1, true, f1.sm_acked == 2);
    /* An ACK beyond what the SM sent is a protocol error: the link goes. */
    buf b = BUF_INIT;
    smproto_put_ack(&b, f2.counted + 1);
    ff_send(&f2, &b);
    buf_free(&b);
    PUMP_UNTIL(&f2, true, f2.eof);
    ff_close(&f2);
    ff_close(&f1);
}

static void test_server_handed_back_goes_offline(void **state)
{
    ffront f1, f2;
    two_fronts(&f1, &f2);
    f2.auto_ack = false;
    ff_stanza(&f1, 1, MSG_A_TO_B);
    unsigned n = f2.ngot;
    PUMP_UNTIL(&f2, true, f2.ngot > n);
    ff_close(&f2);                      /* without acknowledging it */
    /* Handed back, stored offline for b: only then is f1 told. */
    PUMP_UNTIL(&f1, true, f1.sm_acked == 2);
    /* b comes back (a new front instance), and gets it from offline storage. */
    assert_int_equal(ff_open(&f2, 1, "f2f2f2", 0), 0);
    ff_bind(&f2, 3, "b", "r3");
    n = f2.ngot;
    ff_stanza(&f2, 3, "<presence from='b@" SRV_HOST "/r3'/>");
    PUMP_UNTIL(&f2, true, f2.ngot > n && strstr(f2.got[f2.ngot - 1].text, "<body>hi</body>"));
    ff_close(&f2);
    ff_close(&f1);
}

/* The link of a front goes while two available sessions of one user are on it: the first to end
 * sends its unavailable presence to the other, on the link going down. */
static void test_server_front_down_with_two_resources(void **state)
{
    ffront f1, f2;
    two_fronts(&f1, &f2);
    ff_bind(&f2, 3, "b", "r3");
    ff_stanza(&f2, 2, "<presence from='b@" SRV_HOST "/r2'/>");
    ff_stanza(&f2, 3, "<presence from='b@" SRV_HOST "/r3'/>");
    PUMP_UNTIL(&f2, true, f2.sm_acked == 4);
    ff_close(&f2);
    /* The SM goes on: f2 comes back and binds, a's message reaches it. */
    assert_int_equal(ff_open(&f2, 1, "f2f2", 0), 4);
    ff_bind(&f2, 4, "b", "r2");
    ff_stanza(&f1, 1, MSG_A_TO_B);
    PUMP_UNTIL(&f2, true, strstr(f2.got[f2.ngot - 1].text, "<body>hi</body>"));
    PUMP_UNTIL(&f1, true, f1.sm_acked == 2);
    ff_close(&f2);
    ff_close(&f1);
}

/* Freed with fronts and a component up, and frames in custody (under ASan: nothing leaks). */
static void test_server_freed_with_fronts_up(void **state)
{
    ffront f1, f2, comp;
    two_fronts(&f1, &f2);
    f2.auto_ack = false;
    ff_stanza(&f1, 1, MSG_A_TO_B);
    unsigned n = f2.ngot;
    PUMP_UNTIL(&f2, true, f2.ngot > n);
    ff_connect(&comp, 2);   /* a component: up from its handshake */
    /* teardown frees the server now; the test's ends close after */
    ffront *all[] = {&f1, &f2, &comp};
    for (int i = 0; i < 3; i++) {
        close(all[i]->fd);
        buf_free(&all[i]->rx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hello_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_component, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_received_per_instance, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_server_ack_after_destination_ack, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_server_handed_back_goes_offline, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_server_front_down_with_two_resources, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_server_freed_with_fronts_up, server_setup,
                                        server_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
