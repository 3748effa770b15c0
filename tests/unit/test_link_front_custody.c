/* tests/unit/test_link_front_custody.c — the front's custody of what it sends the SM
 * (shard/link_front.c with a real IO thread, shard/iothread.c) against an SM played by this
 * test over loopback TCP, which acknowledges some frames and drops the link at chosen points:
 *   - after a loss the front asks with the same instance id and the acked= count the SM gave it,
 *     and once told received=R sends exactly its frames after R again, in order, after the
 *     resync and before anything newer, with no duplicate; received= below acked= or beyond what
 *     it sent is refused; so is an ACK beyond what it sent; another front process has another
 *     instance id;
 *   - it acknowledges the SM's counted frames (not PING) as it takes them;
 *   - a login waiting for AUTH_ANSWER when the link drops is asked again after the resync, once;
 *   - the resync carries a bound session's JID, the STATE record the SM gave it and its last
 *     broadcast presence; a resync that was itself never acknowledged is not sent again on the
 *     next link (the new resync replaces it);
 *   - an SM that only acknowledges (sends nothing counted back) keeps the front sending past
 *     <sm><hold> bytes in flight;
 *   - XEP-0352: what the IO thread holds for an inactive client is written only with an urgent
 *     stanza, after what was held and in order; what it still holds when the connection ends
 *     goes back UNDELIVERED, as sent, before the session's END;
 *   - <sm><standby>: a failed attempt moves the link to the next SM, which gets the resync and
 *     what the first had not acknowledged; a link that was up tries its own SM again first.
 * The SM's side runs in the test thread, blocking with timeouts: a hang fails the test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/scram.h"
#include "shard/front_config.h"
#include "shard/iothread.h"
#include "shard/verify_pool.h"
#include "smproto/frame.h"
#include "smproto/handshake.h"
#include "shard/link_front.h"
#include "tests/support/net.h"
#include "tests/support/tmp.h"

#define SECRET "s3cret"
#define PASSWORD "pencil"
#define TIMEOUT_S 20

/* ---- the front ------------------------------------------------------------------------------- */

typedef struct front {
    front_config cfg;
    link_front *link;
    verify_pool *verify;
    iothread_shared shared;     /* the IO threads keep a pointer to it */
    iothread *io;               /* the first */
    iothread *ios[2];
    unsigned nio;
    int port;
} front;

/* threads IO threads (one, so that everything a test does is ordered the way it does it, unless
 * the test is about two); standby_port: a second SM of <sm> (<standby>), 0 for none. */
static void front_start_threads(front *f, int sm_port, size_t hold, int standby_port,
                                unsigned threads)
{
    int tls_port = net_must_free_port();
    f->port = net_must_free_port();
    char *dir = tmp_dir("link_front_custody");
    assert_non_null(dir);
    char standby[96] = "";
    if (standby_port)
        snprintf(standby, sizeof standby, "<standby><host>127.0.0.1</host><port>%d</port>"
                 "</standby>", standby_port);
    char *path = tmp_write(dir, "jadc2s.xml",
                           "<jadc2s><sm><host>127.0.0.1</host><port>%d</port><secret>%s</secret>"
                           "<id>jadc2s</id><hold>%zu</hold>%s</sm><local><id>localhost</id>"
                           "<ip>127.0.0.1</ip><port>%d</port><ssl><port>%d</port>"
                           "<required>false</required></ssl></local>"
                           "<max_fds>67</max_fds><threads>%u</threads>"
                           "<limits><max_bps>0</max_bps><conn_rate>0</conn_rate>"
                           "<auth_delay>0</auth_delay></limits>"
                           "<log><level>error</level></log></jadc2s>",
                           sm_port, SECRET, hold, standby, f->port, tls_port, threads);
    assert_non_null(path);
    config_error cerr;
    if (front_config_load(path, &f->cfg, &cerr) != 0)
        fail_msg("front config: %s", cerr.text);
    free(path);
    tmp_dir_remove(dir);
    f->link = link_front_new(&f->cfg, threads);
    f->verify = verify_pool_new(1, iothread_verify_done);
    f->shared = (iothread_shared){.cfg = &f->cfg, .link = f->link, .verify = f->verify};
    f->nio = threads;
    for (unsigned i = 0; i < threads; i++) {
        char err[256];
        f->ios[i] = iothread_new(&f->shared, i, front_shard_slots(f->cfg.max_fds, threads), err,
                                 sizeof err);
        if (!f->ios[i])
            fail_msg("IO thread: %s", err);
        link_front_attach(f->link, i, iothread_loop(f->ios[i]));
    }
    f->io = f->ios[0];
    assert_int_equal(link_front_start(f->link), 0);
    for (unsigned i = 0; i < threads; i++)
        assert_int_equal(iothread_start(f->ios[i]), 0);
}

static void front_start(front *f, int sm_port, size_t hold)
{
    front_start_threads(f, sm_port, hold, 0, 1);
}

static void front_stop(front *f)
{
    for (unsigned i = 0; i < f->nio; i++)
        iothread_shutdown(f->ios[i]);
    for (unsigned i = 0; i < f->nio; i++)
        iothread_join(f->ios[i]);
    link_front_stop(f->link);
    verify_pool_free(f->verify);
    for (unsigned i = 0; i < f->nio; i++)
        iothread_free(f->ios[i]);
    link_front_free(f->link);
    front_config_free(&f->cfg);
}

/* ---- the SM, played here --------------------------------------------------------------------- */

typedef struct smconn {
    int fd;
    buf in;
    size_t pending;         /* bytes of the frame last returned, consumed at the next read */
    uint64_t counted;       /* counted frames received on this link */
    uint64_t front_acked;   /* the front's last ACK on this link */
} smconn;

typedef struct hello {
    char instance[64];
    unsigned long long acked;
} hello;

static void attr(const char *tag, const char *name, char *out, size_t cap)
{
    char key[32];
    snprintf(key, sizeof key, " %s='", name);
    const char *p = strstr(tag, key);
    if (!p)
        fail_msg("no %s in %s", name, tag);
    p += strlen(key);
    const char *e = strchr(p, '\'');
    assert_non_null(e);
    assert_true((size_t)(e - p) < cap);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
}

/* Accepts the front's next connection and plays the opening up to its <smproto/> request. */
static void sm_accept(int lfd, smconn *c, hello *h)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, TIMEOUT_S * 1000) != 1)
        fail_msg("the front did not connect");
    memset(c, 0, sizeof *c);
    c->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(c->fd >= 0);
    net_set_timeout(c->fd, TIMEOUT_S);
    buf_init(&c->in);
    char id[SMPROTO_STREAM_ID_LEN + 1], digest[SMPROTO_DIGEST_LEN + 1], expect[128];
    smproto_handshake_stream_id(id);
    smproto_handshake_digest(id, SECRET, digest);
    snprintf(expect, sizeof expect, "<handshake>%s</handshake>", digest);
    size_t at = net_must_read_until(c->fd, &c->in, 0, "to='jadc2s'>");
    buf out = BUF_INIT;
    buf_appendf(&out, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                "xmlns:stream='http://etherx.jabber.org/streams' from='jadc2s' id='%s'>", id);
    net_must_write(c->fd, buf_data(&out), buf_len(&out));
    buf_free(&out);
    at = net_must_read_until(c->fd, &c->in, at, expect);
    net_must_write_str(c->fd, "<handshake/>");
    size_t start = net_must_read_until(c->fd, &c->in, at, "<smproto ");
    size_t end = net_must_read_until(c->fd, &c->in, start, "/>") + 2;
    char tag[256], acked[32];
    assert_true(end - start < sizeof tag);
    memcpy(tag, (const char *)buf_data(&c->in) + start, end - start);
    tag[end - start] = 0;
    attr(tag, "instance", h->instance, sizeof h->instance);
    attr(tag, "acked", acked, sizeof acked);
    h->acked = strtoull(acked, NULL, 10);
    buf_consume(&c->in, end);
}

static void sm_answer(smconn *c, unsigned long long received)
{
    char text[128];
    snprintf(text, sizeof text, "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' received='%llu'/>",
             received);
    net_must_write_str(c->fd, text);
}

/* The next frame but the front's ACKs, which are noted (valid until the next call); false at
 * EOF. */
static bool sm_next(smconn *c, smproto_frame *f)
{
    for (;;) {
        buf_consume(&c->in, c->pending);
        c->pending = 0;
        size_t used;
        smproto_frame_status st = smproto_frame_next((const uint8_t *)buf_data(&c->in),
                                                     buf_len(&c->in), f, &used);
        assert_int_not_equal(st, SMPROTO_FRAME_BAD);
        if (st == SMPROTO_FRAME_OK) {
            c->pending = used;
            c->counted += smproto_counted(f->type);
            if (f->type != SMPROTO_ACK)
                return true;
            uint64_t n;
            assert_true(smproto_get_ack(f, &n));
            assert_true(n >= c->front_acked);   /* cumulative */
            c->front_acked = n;
            continue;
        }
        char *p = buf_reserve(&c->in, 65536);
        ssize_t r = recv(c->fd, p, 65536, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return false;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            fail_msg("no frame from the front in %d s", TIMEOUT_S);
        if (r < 0)
            fail_msg("waiting for a frame: %s", strerror(errno));
        buf_commit(&c->in, (size_t)r);
    }
}

static void sm_frame(smconn *c, smproto_frame *f)
{
    if (!sm_next(c, f))
        fail_msg("the front closed the link");
}

static void sm_send(smconn *c, buf *b)
{
    net_must_write(c->fd, buf_data(b), buf_len(b));
    buf_consume(b, buf_len(b));
}

static void sm_ack(smconn *c, uint64_t n)
{
    buf b = BUF_INIT;
    smproto_put_ack(&b, n);
    sm_send(c, &b);
    buf_free(&b);
}

/* The front must close the link (a protocol error on our side). */
static void sm_expect_close(smconn *c)
{
    smproto_frame f;
    while (sm_next(c, &f))
        if (f.type != SMPROTO_PONG)
            fail_msg("a %s frame before the front closed", smproto_type_name(f.type));
    close(c->fd);
    buf_free(&c->in);
}

/* The SM drops the link: what it wrote is read by the front before the end of the stream. */
static void sm_drop(smconn *c)
{
    shutdown(c->fd, SHUT_WR);
    smproto_frame f;
    while (sm_next(c, &f))
        ;
    close(c->fd);
    buf_free(&c->in);
}

/* The empty RESYNC the link ends a resync with. */
static void sm_expect_resync_end(smconn *c)
{
    smproto_frame f;
    sm_frame(c, &f);
    assert_int_equal(f.type, SMPROTO_RESYNC);
    assert_int_equal(f.len, 0);
}

/* The n in id='rN' of a REGISTER frame, or -1. */
static int reg_index(const smproto_frame *f)
{
    const char *host, *iq;
    if (f->type != SMPROTO_REGISTER || !smproto_get_register(f, &host, &iq))
        return -1;
    const char *p = strstr(iq, "id='r");
    return p ? atoi(p + 5) : -1;
}

static void sm_expect_register(smconn *c, int n, uint64_t *sid)
{
    smproto_frame f;
    sm_frame(c, &f);
    if (reg_index(&f) != n)
        fail_msg("expected REGISTER r%d, got %s (r%d)", n, smproto_type_name(f.type), reg_index(&f));
    if (sid)
        *sid = f.sid;
}

/* ---- clients --------------------------------------------------------------------------------- */

#define CLIENT_STREAM "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
                      "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

static int client_open(int port)
{
    int fd = net_must_connect(port);
    net_set_timeout(fd, TIMEOUT_S);
    net_must_write_str(fd, CLIENT_STREAM);
    return fd;
}

/* XEP-0077 questions before authentication: each a REGISTER frame (counted). */
static void client_registers(int fd, int from, int to, size_t pad)
{
    buf b = BUF_INIT;
    for (int i = from; i < to; i++) {
        buf_appendf(&b, "<iq type='get' id='r%d'><query xmlns='jabber:iq:register'>", i);
        for (size_t k = 0; k < pad; k++)
            buf_append(&b, "x", 1);
        buf_appendf(&b, "</query></iq>");
    }
    net_must_write(fd, buf_data(&b), buf_len(&b));
    buf_free(&b);
}

static void b64_append(buf *out, const void *data, size_t len)
{
    char *p = buf_reserve(out, 4 * ((len + 2) / 3) + 1);
    buf_commit(out, (size_t)EVP_EncodeBlock((unsigned char *)p, data, (int)len));
}

static const uint8_t salt[] = "custody-test-salt";

static smproto_creds creds(void)
{
    smproto_creds c;
    assert_int_equal(scram_derive(SCRAM_SHA1, PASSWORD, salt, sizeof salt, 4096, &c.sha1), 0);
    assert_int_equal(scram_derive(SCRAM_SHA256, PASSWORD, salt, sizeof salt, 4096, &c.sha256), 0);
    return c;
}

#define CLIENT_FIRST_BARE(user) "n=" user ",r=clientnonce0123"

/* SCRAM-SHA-1's first message: the front asks the SM for the user's credentials. */
static void client_auth(int fd, buf *in, const char *user)
{
    net_must_read_until(fd, in, 0, "</stream:features>");
    buf_consume(in, buf_len(in));
    char first[128];
    snprintf(first, sizeof first, "n,,n=%s,r=clientnonce0123", user);
    buf b = BUF_INIT;
    buf_appendf(&b, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>");
    b64_append(&b, first, strlen(first));
    buf_appendf(&b, "</auth>");
    net_must_write(fd, buf_data(&b), buf_len(&b));
    buf_free(&b);
}

/* The rest of the login after AUTH_ANSWER: the challenge answered with the proof, success, the
 * stream restarted, the resource bound (the SM's BOUND, answered by the caller's sm). */
static void client_prove(int fd, buf *in, const char *user)
{
    size_t end = net_must_read_until(fd, in, 0, "</challenge>") + strlen("</challenge>");
    const char *d = buf_data(in);
    const char *text = strstr(d, "<challenge");
    text = strchr(text, '>') + 1;
    size_t tlen = (size_t)(d + end - strlen("</challenge>") - text);
    char server_first[512];
    int n = EVP_DecodeBlock((unsigned char *)server_first, (const unsigned char *)text, (int)tlen);
    assert_true(n > 0);
    for (size_t i = tlen; i > 0 && text[i - 1] == '='; i--)
        n--;
    server_first[n] = 0;
    buf_consume(in, end);
    char nonce[256];
    assert_int_equal(strncmp(server_first, "r=clientnonce0123", 17), 0);
    snprintf(nonce, sizeof nonce, "%.*s", (int)strcspn(server_first + 2, ","), server_first + 2);
    uint8_t salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored[SCRAM_MAX_KEY],
        sig[SCRAM_MAX_KEY], proof[SCRAM_MAX_KEY];
    size_t klen = scram_key_len(SCRAM_SHA1);
    scram_salted_password(SCRAM_SHA1, PASSWORD, strlen(PASSWORD), salt, sizeof salt, 4096, salted);
    scram_hmac(SCRAM_SHA1, salted, klen, "Client Key", 10, client_key);
    scram_digest(SCRAM_SHA1, client_key, klen, stored);
    buf final = BUF_INIT, auth = BUF_INIT, out = BUF_INIT;
    buf_appendf(&final, "c=biws,r=%s", nonce);
    buf_appendf(&auth, "n=%s,r=clientnonce0123,%s,%.*s", user, server_first, (int)buf_len(&final),
                buf_data(&final));
    scram_hmac(SCRAM_SHA1, stored, klen, buf_data(&auth), buf_len(&auth), sig);
    for (size_t i = 0; i < klen; i++)
        proof[i] = client_key[i] ^ sig[i];
    buf_append(&final, ",p=", 3);
    b64_append(&final, proof, klen);
    buf_appendf(&out, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
    b64_append(&out, buf_data(&final), buf_len(&final));
    buf_appendf(&out, "</response>");
    net_must_write(fd, buf_data(&out), buf_len(&out));
    buf_free(&final);
    buf_free(&auth);
    buf_free(&out);
    buf_consume(in, net_must_read_until(fd, in, 0, "</success>") + strlen("</success>"));
    net_must_write_str(fd, CLIENT_STREAM);
    buf_consume(in, net_must_read_until(fd, in, 0, "</stream:features>") +
                        strlen("</stream:features>"));
    net_must_write_str(fd, "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:"
                           "xmpp-bind'><resource>desk</resource></bind></iq>");
}

/* alice logs in (SCRAM-SHA-1) and binds as alice@localhost/desk, the SM's answers played on c
 * (with a STATE record for her session, if state is not NULL); her connection in *fd, what it
 * received after the bind result in in. Returns her session id. */
static uint64_t alice_logs_in(smconn *c, int port, int *fd, buf *in, const char *state,
                              size_t state_len)
{
    smproto_frame fr;
    buf b = BUF_INIT;
    *fd = client_open(port);
    client_auth(*fd, in, "alice");
    sm_frame(c, &fr);
    assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
    uint64_t alice = fr.sid;
    smproto_creds cr = creds();
    smproto_put_auth_answer(&b, alice, SMPROTO_AUTH_OK, &cr);
    sm_send(c, &b);
    client_prove(*fd, in, "alice");
    sm_frame(c, &fr);
    assert_int_equal(fr.type, SMPROTO_BIND);
    smproto_put_bound(&b, alice, SMPROTO_BOUND_OK, "alice@localhost/desk");
    if (state)
        smproto_put_state(&b, alice, (const uint8_t *)state, state_len);
    sm_send(c, &b);
    buf_consume(in, net_must_read_until(*fd, in, 0, "</iq>") + strlen("</iq>"));
    buf_free(&b);
    return alice;
}

/* ---- the tests ------------------------------------------------------------------------------- */

/* <sm><standby>: an attempt that fails moves the link to the next SM at once, which gets the resync
 * and what the first SM had not acknowledged; a link that was up is tried again on its own SM
 * first, even with the other one listening. */
static void test_standby_moves_and_stays(void **state)
{
    int a_port, a_lfd = net_must_listen(&a_port);
    int b_port, b_lfd = net_must_listen(&b_port);
    static front f;
    front_start_threads(&f, a_port, 4u << 20, b_port, 1);
    smconn c;
    hello h;
    link_front_stats st;

    /* On the first SM: two registration questions it never acknowledges. */
    sm_accept(a_lfd, &c, &h);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);
    int cl = client_open(f.port);
    client_registers(cl, 0, 2, 0);
    sm_expect_register(&c, 0, NULL);
    sm_expect_register(&c, 1, NULL);
    link_front_get_stats(f.link, &st);
    assert_int_equal(st.sm, 0);
    /* It drops the link, then cuts the front's next attempt short, as an SM going away does. */
    sm_drop(&c);
    struct pollfd a = {.fd = a_lfd, .events = POLLIN};
    assert_int_equal(poll(&a, 1, TIMEOUT_S * 1000), 1);
    close(accept4(a_lfd, NULL, NULL, SOCK_CLOEXEC));
    /* The standby: another SM process, which knows no instance. */
    sm_accept(b_lfd, &c, &h);
    assert_int_equal(h.acked, 0);
    sm_answer(&c, h.acked);
    sm_expect_resync_end(&c);
    sm_expect_register(&c, 0, NULL);
    sm_expect_register(&c, 1, NULL);
    link_front_get_stats(f.link, &st);
    assert_int_equal(st.sm, 1);
    assert_int_equal(st.switches, 1);
    /* The standby drops the link: the front comes back to it, not to the first SM. */
    sm_drop(&c);
    sm_accept(b_lfd, &c, &h);
    assert_int_equal(poll(&a, 1, 0), 0);
    sm_answer(&c, h.acked);
    sm_expect_resync_end(&c);
    sm_expect_register(&c, 0, NULL);
    link_front_get_stats(f.link, &st);
    assert_int_equal(st.sm, 1);
    assert_int_equal(st.switches, 1);
    assert_int_equal(st.connects, 3);
    close(cl);
    front_stop(&f);
    sm_drop(&c);
    close(a_lfd);
    close(b_lfd);
}

static bool lower_hex(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= SMPROTO_INSTANCE_MAX && strspn(s, "0123456789abcdef") == n;
}

static void test_resend_after_link_loss(void **state)
{
    int sm_port, lfd = net_must_listen(&sm_port);
    static front f;     /* not on the stack: the front's threads outlive a failed assertion */
    front_start(&f, sm_port, 4u << 20);
    smconn c;
    hello h;
    smproto_frame fr;

    /* Link 1: a fresh instance, nothing acknowledged yet. */
    sm_accept(lfd, &c, &h);
    assert_true(lower_hex(h.instance));
    assert_int_equal(h.acked, 0);
    char instance[64];
    snprintf(instance, sizeof instance, "%s", h.instance);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);
    int cl = client_open(f.port);
    client_registers(cl, 0, 20, 0);
    uint64_t sid = 0;
    for (int i = 0; i < 20; i++)
        sm_expect_register(&c, i, &sid);
    /* The SM takes custody of the first 5, answers 3 (counted) and pings (not counted). */
    buf b = BUF_INIT;
    for (int i = 0; i < 3; i++) {
        char xml[64];
        int n = snprintf(xml, sizeof xml, "<iq type='result' id='r%d'/>", i);
        smproto_put(&b, SMPROTO_STANZA, sid, xml, (size_t)n);
    }
    smproto_put_ping(&b, SMPROTO_PING, 9);
    smproto_put_ack(&b, 5);
    sm_send(&c, &b);
    /* The front acknowledges the three it took, and not the PING: once it answered a later
     * PING, it had read them. */
    uint64_t token = 9, v;
    for (;;) {
        sm_frame(&c, &fr);
        assert_int_equal(fr.type, SMPROTO_PONG);
        assert_true(smproto_get_ping(&fr, &v));
        assert_int_equal(v, token);
        if (c.front_acked == 3 || token == 12)
            break;
        smproto_put_ping(&b, SMPROTO_PING, ++token);
        sm_send(&c, &b);
    }
    assert_int_equal(c.front_acked, 3);
    buf in = BUF_INIT;
    size_t at = net_must_read_until(cl, &in, 0, "id='r0'");
    at = net_must_read_until(cl, &in, at, "id='r1'");
    net_must_read_until(cl, &in, at, "id='r2'");
    sm_drop(&c);
    client_registers(cl, 20, 21, 0);    /* while the link is down, or after: after the rest */

    /* Link 2: the same instance; the SM says it received up to 12. */
    sm_accept(lfd, &c, &h);
    assert_string_equal(h.instance, instance);
    assert_int_equal(h.acked, 5);
    sm_answer(&c, 12);
    sm_expect_resync_end(&c);
    for (int i = 12; i <= 20; i++)
        sm_expect_register(&c, i, NULL);
    /* Those are numbered 13..21 now: an ACK of all of them is fine, one more is not. */
    smproto_put_ack(&b, 21);
    smproto_put_ping(&b, SMPROTO_PING, 10);
    sm_send(&c, &b);
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_PONG);
    sm_ack(&c, 22);
    sm_expect_close(&c);
    client_registers(cl, 21, 22, 0);

    /* received= below what the SM acknowledged, or beyond what the front sent: refused. */
    sm_accept(lfd, &c, &h);
    assert_string_equal(h.instance, instance);
    assert_int_equal(h.acked, 21);
    sm_answer(&c, 20);
    sm_expect_close(&c);
    sm_accept(lfd, &c, &h);
    assert_int_equal(h.acked, 21);
    sm_answer(&c, 22);      /* r21 is held, not sent: the front sent 21 */
    sm_expect_close(&c);

    /* Everything was acknowledged: nothing is sent again, only what waited. */
    sm_accept(lfd, &c, &h);
    assert_string_equal(h.instance, instance);
    assert_int_equal(h.acked, 21);
    sm_answer(&c, 21);
    sm_expect_resync_end(&c);
    sm_expect_register(&c, 21, NULL);
    client_registers(cl, 22, 23, 0);
    sm_expect_register(&c, 22, NULL);

    link_front_stats st;
    link_front_get_stats(f.link, &st);
    assert_int_equal(st.resent, 8);     /* r12..r19 */
    assert_int_equal(st.connects, 3);
    close(cl);
    buf_free(&in);
    buf_free(&b);
    front_stop(&f);
    sm_drop(&c);

    /* Another front process: another instance, nothing acknowledged. */
    front_start(&f, sm_port, 4u << 20);
    sm_accept(lfd, &c, &h);
    assert_true(lower_hex(h.instance));
    assert_string_not_equal(h.instance, instance);
    assert_int_equal(h.acked, 0);
    front_stop(&f);
    sm_drop(&c);
    close(lfd);
}

static void test_login_asked_again_once(void **state)
{
    int sm_port, lfd = net_must_listen(&sm_port);
    static front f;     /* not on the stack: the front's threads outlive a failed assertion */
    front_start(&f, sm_port, 4u << 20);
    smconn c;
    hello h;
    smproto_frame fr;
    sm_accept(lfd, &c, &h);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);
    int a = client_open(f.port);
    buf in = BUF_INIT;
    client_auth(a, &in, "alice");
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
    uint64_t sid = fr.sid;
    sm_drop(&c);                        /* never answered nor acknowledged */
    int m = client_open(f.port);        /* a marker: after everything the front sends again */
    client_registers(m, 0, 1, 0);

    sm_accept(lfd, &c, &h);
    assert_int_equal(h.acked, 0);
    sm_answer(&c, 0);
    /* Asked again in the IO thread's resync, and only there. */
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
    assert_int_equal(fr.sid, sid);
    const char *host, *user;
    assert_true(smproto_get_auth_query(&fr, &host, &user));
    assert_string_equal(host, "localhost");
    assert_string_equal(user, "alice");
    sm_expect_resync_end(&c);
    sm_expect_register(&c, 0, NULL);
    /* The answer on the new link moves the login on. */
    buf b = BUF_INIT;
    smproto_creds cr = creds();
    smproto_put_auth_answer(&b, sid, SMPROTO_AUTH_OK, &cr);
    sm_send(&c, &b);
    net_must_read_until(a, &in, 0, "</challenge>");
    close(a);
    close(m);
    buf_free(&in);
    buf_free(&b);
    front_stop(&f);
    sm_drop(&c);
    close(lfd);
}

/* Two IO threads. On a new link the frames of the resync are numbered from where the SM said it
 * received ours, and so, after them, are the frames the old link sent and the SM never received.
 * An acknowledgement of the first IO thread's resync that comes before the second's resync must
 * not be taken for one of those old frames: they would be dropped, never sent again (a message
 * lost across an SM restart, as test_faults_link found). <sm><hold> of one byte holds the second
 * IO thread's resync until that acknowledgement. */
static void test_old_frames_survive_resync_acks(void **state)
{
    int sm_port, lfd = net_must_listen(&sm_port);
    static front f;     /* not on the stack: the front's threads outlive a failed assertion */
    front_start_threads(&f, sm_port, 1, 0, 2);
    smconn c;
    hello h;
    smproto_frame fr;
    sm_accept(lfd, &c, &h);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);
    /* A login waiting for its answer on the first IO thread (its resync asks again); those that
     * land on the second are answered (no such user: a challenge as for anyone), so that nothing
     * waits there. */
    int a = -1, others[64], nothers = 0;
    buf in = BUF_INIT, b = BUF_INIT;
    while (a < 0 && nothers < 64) {
        int fd = client_open(f.port);
        buf_consume(&in, buf_len(&in));
        client_auth(fd, &in, "alice");
        sm_frame(&c, &fr);
        assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
        sm_ack(&c, c.counted);
        if (smproto_sid_shard(fr.sid) == 0) {
            a = fd;
            break;
        }
        smproto_put_auth_answer(&b, fr.sid, SMPROTO_AUTH_NO_USER, NULL);
        sm_send(&c, &b);
        net_must_read_until(fd, &in, 0, "</challenge>");
        others[nothers++] = fd;
    }
    assert_true(a >= 0);
    /* A question the SM takes and never acknowledges. */
    int m = client_open(f.port);
    client_registers(m, 0, 1, 0);
    sm_expect_register(&c, 0, NULL);
    uint64_t acked = c.counted - 1;
    sm_drop(&c);

    sm_accept(lfd, &c, &h);
    assert_int_equal(h.acked, acked);
    sm_answer(&c, acked);
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
    sm_ack(&c, acked + 1);
    sm_expect_resync_end(&c);
    sm_expect_register(&c, 0, NULL);
    close(a);
    close(m);
    for (int i = 0; i < nothers; i++)
        close(others[i]);
    buf_free(&in);
    buf_free(&b);
    front_stop(&f);
    sm_drop(&c);
    close(lfd);
}

/* The STATE record the SM gives alice's session: the front keeps it without reading it, with a NUL
 * inside to show it is bytes, not a string. */
#define ALICE_STATE "\6roster\1\1\10blocking\1\0"

/* Reads the front's resync on a new link: the RESYNC with alice's entry, bob's login asked again,
 * the end. */
static void expect_resync_of_alice(smconn *c, uint64_t alice, uint64_t bob)
{
    smproto_frame fr;
    sm_frame(c, &fr);
    assert_int_equal(fr.type, SMPROTO_RESYNC);
    smproto_resync_reader rd;
    smproto_resync_entry e;
    smproto_resync_read(&fr, &rd);
    assert_int_equal(smproto_resync_next(&rd, &e), 1);
    assert_int_equal(e.sid, alice);
    assert_string_equal(e.full_jid, "alice@localhost/desk");
    assert_int_equal(e.state_len, sizeof(ALICE_STATE) - 1);
    assert_memory_equal(e.state, ALICE_STATE, e.state_len);
    assert_non_null(strstr(e.presence, "<show>away</show>"));
    assert_non_null(strstr(e.presence, "from='alice@localhost/desk'"));
    assert_int_equal(smproto_resync_next(&rd, &e), 0);
    sm_frame(c, &fr);
    assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
    assert_int_equal(fr.sid, bob);
    sm_expect_resync_end(c);
}

static void test_resync_entries_not_sent_again(void **state)
{
    int sm_port, lfd = net_must_listen(&sm_port);
    static front f;     /* not on the stack: the front's threads outlive a failed assertion */
    front_start(&f, sm_port, 4u << 20);
    smconn c;
    hello h;
    smproto_frame fr;
    sm_accept(lfd, &c, &h);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);

    /* alice logs in and binds; the SM gives her session flags; she says she is away. */
    int a;
    buf in = BUF_INIT, b = BUF_INIT;
    uint64_t alice = alice_logs_in(&c, f.port, &a, &in, ALICE_STATE, sizeof(ALICE_STATE) - 1);
    net_must_write_str(a, "<presence><show>away</show></presence>");
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_STANZA);
    /* bob starts to log in; the SM acknowledges all but his question, and the link goes. */
    int bo = client_open(f.port);
    buf in_bob = BUF_INIT;
    client_auth(bo, &in_bob, "bob");
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_AUTH_QUERY);
    uint64_t bob = fr.sid;
    uint64_t acked = c.counted - 1;
    sm_ack(&c, acked);
    sm_drop(&c);

    /* Link 2: the resync; the SM acknowledges none of it and the link goes again. */
    sm_accept(lfd, &c, &h);
    assert_int_equal(h.acked, acked);
    sm_answer(&c, acked);
    expect_resync_of_alice(&c, alice, bob);
    sm_drop(&c);
    int m = client_open(f.port);
    client_registers(m, 0, 1, 0);

    /* Link 3: a new resync, and the one of link 2 is not sent again after it. */
    sm_accept(lfd, &c, &h);
    assert_int_equal(h.acked, acked);
    sm_answer(&c, acked);
    expect_resync_of_alice(&c, alice, bob);
    sm_frame(&c, &fr);
    if (fr.type != SMPROTO_REGISTER)
        fail_msg("after the resync: %s%s", smproto_type_name(fr.type),
                 fr.type == SMPROTO_RESYNC ? " (the previous link's resync, sent again)" : "");
    assert_int_equal(reg_index(&fr), 0);
    close(a);
    close(bo);
    close(m);
    buf_free(&in);
    buf_free(&in_bob);
    buf_free(&b);
    front_stop(&f);
    sm_drop(&c);
    close(lfd);
}

/* An SM that acknowledges and sends nothing counted back (its users' messages go elsewhere): the
 * front, stopped at <sm><hold> bytes in flight, must go on when the ACK comes. Each question
 * is bigger than the hold, so the front waits for an ACK after each. The wait for each is
 * bounded by the test's socket timeout (20 s), well under the front's 30 s keepalive, which would
 * otherwise be the first thing to wake it. */
static void test_ack_alone_lets_the_front_go_on(void **state)
{
    int sm_port, lfd = net_must_listen(&sm_port);
    static front f;     /* not on the stack: the front's threads outlive a failed assertion */
    front_start(&f, sm_port, 1024);
    smconn c;
    hello h;
    sm_accept(lfd, &c, &h);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);
    int cl = client_open(f.port);
    for (int i = 0; i < 5; i++) {
        client_registers(cl, i, i + 1, 2048);
        sm_expect_register(&c, i, NULL);
        /* The front has a question in the ring while it waits for this ACK (when the IO thread
         * is quick enough: otherwise the ACK comes first, and the test proves less). */
        client_registers(cl, 100 + i, 101 + i, 2048);
        usleep(20000);
        sm_ack(&c, c.counted);
        sm_expect_register(&c, 100 + i, NULL);
        sm_ack(&c, c.counted);
    }
    close(cl);
    front_stop(&f);
    sm_drop(&c);
    close(lfd);
}

/* Whether fd has something to read within ms. */
static bool readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void sm_stanza(smconn *c, uint64_t sid, const char *xml)
{
    buf b = BUF_INIT;
    assert_true(smproto_put(&b, SMPROTO_STANZA, sid, xml, strlen(xml)));
    sm_send(c, &b);
    buf_free(&b);
}

#define CSI_PRES_1 "<presence from='bob@localhost/r'><show>away</show></presence>"
#define CSI_STATE "<message from='bob@localhost/r' type='chat' id='cs'><composing " \
                  "xmlns='http://jabber.org/protocol/chatstates'/></message>"
#define CSI_PRES_2 "<presence from='bob@localhost/r'><status>latest</status></presence>"
#define CSI_BODY "<message from='bob@localhost/r' type='chat' id='m1'><body>hi</body></message>"
#define CSI_RECEIPT "<message from='bob@localhost/r' type='chat' id='rc'><received " \
                    "xmlns='urn:xmpp:receipts' id='m1'/></message>"

static void test_csi_hold_is_custody(void **state)
{
    int sm_port, lfd = net_must_listen(&sm_port);
    static front f;     /* not on the stack: the front's threads outlive a failed assertion */
    front_start(&f, sm_port, 4u << 20);
    smconn c;
    hello h;
    smproto_frame fr;
    sm_accept(lfd, &c, &h);
    sm_answer(&c, 0);
    sm_expect_resync_end(&c);
    int a;
    buf in = BUF_INIT;
    uint64_t alice = alice_logs_in(&c, f.port, &a, &in, NULL, 0);
    /* Inactive; the presence after it shows the front has read the nonza. */
    net_must_write_str(a, "<inactive xmlns='urn:xmpp:csi:0'/><presence/>");
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_STANZA);

    sm_stanza(&c, alice, CSI_PRES_1);
    sm_stanza(&c, alice, CSI_STATE);
    sm_stanza(&c, alice, CSI_PRES_2);
    assert_false(readable_within(a, 300));
    sm_stanza(&c, alice, CSI_BODY);
    net_must_read_until(a, &in, 0, "id='m1'><body>hi</body></message>");
    const char *got = buf_data(&in);
    size_t n = buf_len(&in);   /* (not NUL-terminated) */
    const char *st = memmem(got, n, CSI_STATE, strlen(CSI_STATE)),
               *p2 = memmem(got, n, CSI_PRES_2, strlen(CSI_PRES_2)),
               *body = memmem(got, n, CSI_BODY, strlen(CSI_BODY));
    if (!st || !p2 || !body || !(st < p2 && p2 < body) || memmem(got, n, "<show>away</show>", 17))
        fail_msg("not the held stanzas in order, then the body:\n%.*s", (int)buf_len(&in), got);
    buf_consume(&in, buf_len(&in));

    /* Held when the connection dies: back to the SM as it was sent, then the END. */
    sm_stanza(&c, alice, CSI_RECEIPT);
    assert_false(readable_within(a, 300));
    close(a);
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_UNDELIVERED);
    assert_int_equal(fr.sid, alice);
    assert_int_equal(fr.len, strlen(CSI_RECEIPT));
    assert_memory_equal(fr.payload, CSI_RECEIPT, fr.len);
    sm_frame(&c, &fr);
    assert_int_equal(fr.type, SMPROTO_END);
    assert_int_equal(fr.sid, alice);

    iothread_stats stats;
    iothread_get_stats(f.io, &stats);
    assert_int_equal(stats.csi_held, 4);
    assert_int_equal(stats.csi_superseded, 1);
    assert_int_equal(stats.csi_flushes, 1);
    assert_int_equal(stats.csi_flushed_bytes, strlen(CSI_STATE) + strlen(CSI_PRES_2));
    assert_int_equal(stats.csi_wakeups_saved, 3);
    buf_free(&in);
    front_stop(&f);
    sm_drop(&c);
    close(lfd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(getenv("TEST_LOG") ? LL_DEBUG : LL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_after_link_loss),
        cmocka_unit_test(test_login_asked_again_once),
        cmocka_unit_test(test_old_frames_survive_resync_acks),
        cmocka_unit_test(test_resync_entries_not_sent_again),
        cmocka_unit_test(test_ack_alone_lets_the_front_go_on),
        cmocka_unit_test(test_csi_hold_is_custody),
        cmocka_unit_test(test_standby_moves_and_stays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
