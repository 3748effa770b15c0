/* tests/bench/loadgen/lg_conn.c — a simulated user's connection and its XMPP client stream (see
 * lg_conn.h).
 *
 * Input: the socket (or TLS) is read until it would block, into one scratch buffer shared by all
 * connections (one thread), and fed to the connection's parser; stanza callbacks drive the login.
 * Nothing may end a connection from inside a callback (the parser would be freed under itself),
 * so an end, a stream restart and a switch to TLS found there are noted in after_feed, the parser
 * is stopped, and conn_feed carries them out when xmlstream_feed returns.
 *
 * Output: everything is appended to tx and written at once as far as the socket takes it; the
 * rest waits for writability (EVLOOP_WRITE is asked for only then: level-triggered epoll). TLS may
 * want to read in order to write, or the reverse; every event therefore tries both.
 *
 * Stream management (--sm): after the bind, <enable/> (the login ends at <enabled/>); after SASL on
 * a reconnection, <resume/> instead of the bind when there is a session to resume, and a fresh
 * bind when the server answers <failed/>. lg_sm.c writes and reads the nonzas; this file counts
 * the stanzas that go out (conn_send_stanza) and come in (on_stanza) while it is on. */
#include "tests/bench/loadgen/lg_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/tls.h"
#include "tests/bench/loadgen/lg_fed.h"
#include "core/xml_write.h"
#include "tests/bench/loadgen/lg_pep.h"
#include "tests/bench/loadgen/lg_stats.h"
#include "tests/bench/loadgen/lg_tls.h"

#define NS_CLIENT "jabber:client"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_PING "urn:xmpp:ping"

#define LG_BIND_ID "lg-bind"
#define LG_SESSION_ID "lg-session"

enum { STAGE_PRE_TLS, STAGE_PRE_AUTH, STAGE_POST_AUTH };
enum { AFTER_NONE, AFTER_RESTART, AFTER_TLS, AFTER_END };

static void conn_on_io(evloop *loop, evloop_io *io, unsigned events, void *arg);
static void conn_on_deadline(timer *t, void *arg);
static void conn_on_keepalive(timer *t, void *arg);
static void on_header(void *ctx, const xml_node *root, const char *content_ns);
static void on_stanza(void *ctx, xml_node *stanza, xml_arena *arena);

static const xmlstream_handlers conn_handlers = {.header = on_header, .stanza = on_stanza};

void lg_conn_init(lg_conn *c, lg_env *env, uint32_t index)
{
    *c = (lg_conn){.env = env, .index = index, .fd = -1};
    timer_init(&c->deadline, conn_on_deadline, c);
    timer_init(&c->keepalive, conn_on_keepalive, c);
}

void lg_conn_user(const lg_conn *c, char *out, size_t cap)
{
    if (lg_options_format(c->env->opt->user_format, c->env->opt->first + c->index, out, cap) < 0)
        snprintf(out, cap, "?");
}

static void conn_password(const lg_conn *c, char *out, size_t cap)
{
    if (lg_options_format(c->env->opt->password_format, c->env->opt->first + c->index, out, cap) < 0)
        snprintf(out, cap, "?");
}

/* Releases everything and goes DOWN; returns how the connection ended, judged by where it was. */
static lg_conn_end conn_teardown(lg_conn *c)
{
    lg_conn_end how = c->state == LG_CONN_UP        ? LG_END_DROPPED
                      : c->state == LG_CONN_CLOSING ? LG_END_LOGGED_OUT
                                                    : LG_END_FAILED;
    if (c->fd >= 0) {
        evloop_io_set(c->env->loop, &c->io, 0);
        if (c->ssl)
            SSL_free(c->ssl);
        close(c->fd);
    }
    c->ssl = NULL;
    c->fd = -1;
    if (c->xs)
        xmlstream_free(c->xs);
    c->xs = NULL;
    buf_free(&c->tx);
    lg_sasl_clear(&c->sasl);
    evloop_timer_cancel(c->env->loop, &c->deadline);
    evloop_timer_cancel(c->env->loop, &c->keepalive);
    lg_sm_detach(&c->sm);
    lg_ws_free(&c->ws);
    c->state = LG_CONN_DOWN;
    c->after_feed = AFTER_NONE;
    c->write_blocked = false;
    return how;
}

static void conn_end(lg_conn *c, const char *why)
{
    lg_conn_end how = conn_teardown(c);
    c->env->hooks.ended(c->env->hooks_ctx, c, how, why);
}

/* Ends c now, or, inside the parser, as soon as it returns. */
static void conn_fail(lg_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(lg_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    if (c->in_feed) {
        c->after_feed = AFTER_END;
        xmlstream_stop(c->xs);
        return;
    }
    conn_end(c, c->why);
}

void lg_conn_abort(lg_conn *c)
{
    conn_teardown(c);
    lg_sm_clear(&c->sm);
}

void lg_conn_cut(lg_conn *c)
{
    if (c->fd < 0)
        return;
    struct linger rst = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
    conn_fail(c, "cut (test hook)");
}

static void conn_interest(lg_conn *c, unsigned interest)
{
    if (evloop_io_interest(&c->io) != interest && evloop_io_set(c->env->loop, &c->io, interest) != 0)
        conn_fail(c, "epoll: %s", strerror(errno));
}

/* Writes tx as far as the transport takes it. */
static void conn_flush(lg_conn *c)
{
    while (buf_len(&c->tx)) {
        size_t n = 0;
        if (c->ssl) {
            tls_status st = tls_write(c->ssl, buf_data(&c->tx), buf_len(&c->tx), &n);
            if (st == TLS_WANT_WRITE) {
                c->write_blocked = true;
                break;
            }
            if (st == TLS_WANT_READ)
                break;   /* read interest is always on: the next read event flushes again */
            if (st != TLS_OK) {
                tls_error e;
                tls_last_error(&e);
                conn_fail(c, "TLS write: %s", e.text);
                return;
            }
        } else {
            ssize_t r = send(c->fd, buf_data(&c->tx), buf_len(&c->tx), MSG_NOSIGNAL);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                c->write_blocked = true;
                break;
            }
            if (r <= 0) {
                conn_fail(c, "write: %s", r < 0 ? strerror(errno) : "nothing written");
                return;
            }
            n = (size_t)r;
        }
        buf_consume(&c->tx, n);
    }
    if (!buf_len(&c->tx)) {
        c->write_blocked = false;
        buf_free(&c->tx);   /* idle connections hold no output buffer */
    }
    if (c->state > LG_CONN_TLS)
        conn_interest(c, EVLOOP_READ | (c->write_blocked ? EVLOOP_WRITE : 0));
}

void lg_conn_send(lg_conn *c, const char *data, size_t len)
{
    if (c->ws.open)
        lg_ws_send(data, len, &c->tx);   /* each element a frame (lg_ws.h) */
    else
        buf_append(&c->tx, data, len);
    if (!c->write_blocked)
        conn_flush(c);
}

static void conn_send_str(lg_conn *c, const char *s)
{
    lg_conn_send(c, s, strlen(s));
}

static void conn_send_buf(lg_conn *c, buf *b)
{
    if (buf_len(b))
        lg_conn_send(c, buf_data(b), buf_len(b));
    buf_free(b);
}

void lg_conn_send_stanza(lg_conn *c, const char *data, size_t len, bool message)
{
    /* Queued before it is written: a write that fails leaves it to be sent again on resume. */
    bool request = lg_sm_sent(&c->sm, data, len, message, c->env->opt->sm_ack_every);
    lg_conn_send(c, data, len);
    if (request && c->state != LG_CONN_DOWN)
        conn_send_str(c, LG_SM_REQUEST);
}

static void conn_send_header(lg_conn *c)
{
    buf b = BUF_INIT;
    if (c->env->opt->transport == LG_TRANSPORT_WEBSOCKET) {
        /* The upgrade first; once it is done (conn_on_ws), <open/> instead of the header. */
        if (c->ws.open)
            lg_ws_open(lg_fed_domain(c->env->opt, c->index), &b);
        else
            lg_ws_request(&c->ws, lg_fed_domain(c->env->opt, c->index),
                          c->env->opt->addrs[lg_fed_slot(c->env->opt, c->index, c->hop) %
                                             c->env->opt->naddrs].port,
                          c->env->opt->ws_path, &b);
        c->state = LG_CONN_FEATURES;
        buf_append(&c->tx, buf_data(&b), buf_len(&b));
        buf_free(&b);
        if (!c->write_blocked)
            conn_flush(c);
        return;
    }
    xml_stream_attrs attrs = {.content_ns = NS_CLIENT,
                              .to = lg_fed_domain(c->env->opt, c->index), .version = "1.0"};
    xml_write_stream_open(&b, &attrs);
    c->state = LG_CONN_FEATURES;   /* before sending: a failed write ends the connection */
    lg_conn_send(c, buf_data(&b), buf_len(&b));
    buf_free(&b);
}

static void conn_start_tls(lg_conn *c)
{
    c->ssl = lg_tls_client_new(c->env->tls, c->fd, lg_fed_domain(c->env->opt, c->index));
    if (!c->ssl) {
        conn_fail(c, "TLS: cannot allocate a connection");
        return;
    }
    c->state = LG_CONN_TLS;
}

/* Moves the handshake on; on completion the stream starts over TLS. */
static void conn_handshake(lg_conn *c)
{
    tls_status st = tls_handshake(c->ssl);
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        conn_interest(c, st == TLS_WANT_READ ? EVLOOP_READ : EVLOOP_WRITE);
        return;
    }
    if (st != TLS_OK) {
        tls_error e;
        tls_last_error(&e);
        conn_fail(c, "TLS handshake: %s", e.text);
        return;
    }
    c->stage = STAGE_PRE_AUTH;
    conn_interest(c, EVLOOP_READ);
    if (c->state != LG_CONN_DOWN)
        conn_send_header(c);
}

void lg_conn_start(lg_conn *c, bool warmup)
{
    const lg_options *o = c->env->opt;
    c->warmup = warmup;
    c->session_needed = false;
    c->resumed = false;
    if (o->sm && c->was_up)
        c->hop++;   /* a reconnection: the next server address */
    c->start_ns = lg_now_ns();
    c->stage = o->tls == LG_TLS_STARTTLS ? STAGE_PRE_TLS : STAGE_PRE_AUTH;
    c->state = LG_CONN_CONNECTING;
    evloop_timer_after(c->env->loop, &c->deadline, (uint64_t)o->timeout_s * 1000);
    c->fd = lg_net_connect(c->env->net, lg_fed_slot(c->env->opt, c->index, c->hop));
    if (c->fd < 0) {
        conn_fail(c, "connect: %s", strerror(errno));
        return;
    }
    c->xs = xmlstream_new(&conn_handlers, c, NULL);
    evloop_io_init(&c->io, c->fd, conn_on_io, c);
    conn_interest(c, EVLOOP_WRITE);
}

/* The connect finished (writability): either it failed, or the stream (or TLS) begins. */
static void conn_connected(lg_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        char where[80];
        lg_net_describe(c->env->net, lg_fed_slot(c->env->opt, c->index, c->hop), where,
                        sizeof(where));
        conn_fail(c, "connect to %s: %s", where, strerror(err));
        return;
    }
    if (c->env->opt->tls == LG_TLS_DIRECT) {
        conn_start_tls(c);
        if (c->state == LG_CONN_TLS)
            conn_handshake(c);
        return;
    }
    conn_interest(c, EVLOOP_READ);
    conn_send_header(c);
}

void lg_conn_shrink(lg_conn *c)
{
    if (c->xs && !c->in_feed)
        xmlstream_shrink(c->xs);
}

/* ---- input ----------------------------------------------------------------------------------- */

const char *lg_conn_condition(const xml_node *el, const char *ns)
{
    for (xml_node *ch = xml_child(el, ns, NULL); ch; ch = xml_next(ch, ns, NULL))
        if (strcmp(ch->name, "text") != 0)
            return ch->name;
    return "(none)";
}

/* The <text/> of an error as " (text)" for a log line, or "". */
static const char *error_text(xml_arena *arena, const xml_node *el, const char *ns)
{
    xml_node *t = xml_child(el, ns, "text");
    const char *text = t ? xml_text(arena, t) : "";
    if (!*text)
        return "";
    size_t n = strlen(text) + 4;
    char *out = xml_arena_alloc(arena, n);
    snprintf(out, n, " (%s)", text);
    return out;
}

/* Logged in (presence: a new session) or resumed (no presence: the session kept its own). */
static void conn_up(lg_conn *c, bool presence)
{
    uint64_t latency = lg_now_ns() - c->start_ns;
    c->state = LG_CONN_UP;
    c->was_up = true;
    evloop_timer_cancel(c->env->loop, &c->deadline);
    if (c->env->opt->keepalive_s)
        evloop_timer_after(c->env->loop, &c->keepalive, (uint64_t)c->env->opt->keepalive_s * 1000);
    if (presence && c->env->opt->pep) {
        buf b = BUF_INIT;
        lg_pep_presence(&b);
        lg_conn_send_stanza(c, buf_data(&b), buf_len(&b), false);
        buf_free(&b);
    } else if (presence) {
        lg_conn_send_stanza(c, "<presence/>", 11, false);
    }
    if (c->state == LG_CONN_UP)
        c->env->hooks.up(c->env->hooks_ctx, c, latency);
}

/* Bound (and the session set up): with --sm and the server offering it, enable stream
 * management first; the login ends with its answer. */
static void conn_bound(lg_conn *c)
{
    lg_sm_stats *st = c->env->sm_stats;
    if (!st || !c->sm_offered) {
        if (st)
            st->unsupported++;
        lg_sm_clear(&c->sm);
        conn_up(c, true);
        return;
    }
    buf b = BUF_INIT;
    lg_sm_enable(&c->sm, st, &b);
    c->state = LG_CONN_ENABLE;
    conn_send_buf(c, &b);
}

static void conn_send_bind(lg_conn *c)
{
    char iq[256];
    snprintf(iq, sizeof(iq),
             "<iq type='set' id='" LG_BIND_ID "'><bind xmlns='" NS_BIND "'><resource>lg%u</resource>"
             "</bind></iq>",
             c->env->opt->first + c->index);
    c->state = LG_CONN_BIND;
    conn_send_str(c, iq);
}

/* A stream management element; false when it is not one. */
static bool on_sm(lg_conn *c, const xml_node *el)
{
    lg_sm_stats *st = c->env->sm_stats;
    if (!st)
        return false;
    buf b = BUF_INIT;
    lg_sm_event ev = lg_sm_input(&c->sm, el, st, &b);
    conn_send_buf(c, &b);
    if (c->state == LG_CONN_DOWN)
        return true;
    switch (ev) {
    case LG_SM_NOT_OURS:
        return false;
    case LG_SM_ENABLED:
    case LG_SM_ENABLE_FAILED:
        if (c->state == LG_CONN_ENABLE)
            conn_up(c, true);
        break;
    case LG_SM_BAD:
        log_warn("user index %u: stream management: <%s/> out of place or acknowledging what was "
                 "not sent", c->index, el->name);
        break;
    case LG_SM_RESUMED: {
        uint64_t now = lg_now_ns();
        lg_samples_add(&st->resume_latency, now - c->start_ns);
        st->last_resumed_ns = now;
        c->resumed = true;
        conn_up(c, false);
        break;
    }
    case LG_SM_RESUME_FAILED:
        conn_send_bind(c);
        break;
    default:
        break;
    }
    return true;
}

static void on_features(lg_conn *c, const xml_node *f, xml_arena *arena)
{
    const lg_options *o = c->env->opt;
    const xml_node *starttls = xml_child(f, NS_TLS, "starttls");
    if (c->stage == STAGE_PRE_TLS) {
        if (!starttls) {
            conn_fail(c, "the server offers no STARTTLS");
            return;
        }
        c->state = LG_CONN_STARTTLS;
        conn_send_str(c, "<starttls xmlns='" NS_TLS "'/>");
        return;
    }
    if (c->stage == STAGE_PRE_AUTH) {
        const char *want = lg_sasl_mech_name(o->mech);
        const xml_node *mechs = xml_child(f, NS_SASL, "mechanisms");
        bool offered = false;
        for (xml_node *m = mechs ? xml_child(mechs, NS_SASL, "mechanism") : NULL; m && !offered;
             m = xml_next(m, NS_SASL, "mechanism")) {
            const char *name = xml_text(arena, m);
            name += strspn(name, " \t\r\n");
            size_t len = strcspn(name, " \t\r\n");
            offered = len == strlen(want) && memcmp(name, want, len) == 0;
        }
        if (!offered) {
            conn_fail(c, "the server does not offer %s%s", want,
                      starttls && xml_child(starttls, NS_TLS, "required") ? " (it requires STARTTLS)"
                                                                          : "");
            return;
        }
        char user[256], password[256];
        lg_conn_user(c, user, sizeof(user));
        conn_password(c, password, sizeof(password));
        buf b = BUF_INIT;
        buf_appendf(&b, "<auth xmlns='" NS_SASL "' mechanism='%s'>", want);
        size_t before = buf_len(&b);
        lg_sasl_start(&c->sasl, o->mech, user, password, NULL, &b);
        if (buf_len(&b) == before)
            buf_append(&b, "=", 1);
        buf_append(&b, "</auth>", 7);
        c->state = LG_CONN_AUTH;
        lg_conn_send(c, buf_data(&b), buf_len(&b));
        buf_free(&b);
        return;
    }
    c->sm_offered = xml_child(f, LG_SM_NS, "sm") != NULL;
    if (c->warmup) {
        c->state = LG_CONN_CLOSING;
        evloop_timer_after(c->env->loop, &c->deadline, (uint64_t)o->timeout_s * 1000);
        conn_send_str(c, "</stream:stream>");
        return;
    }
    if (!xml_child(f, NS_BIND, "bind")) {
        conn_fail(c, "the server offers no resource binding");
        return;
    }
    const xml_node *session = xml_child(f, NS_SESSION, "session");
    c->session_needed = session && !xml_child(session, NS_SESSION, "optional");
    if (c->sm.id && c->env->sm_stats) {
        if (c->sm_offered) {
            buf b = BUF_INIT;
            lg_sm_resume(&c->sm, &b);
            c->state = LG_CONN_RESUME;
            conn_send_buf(c, &b);
            return;
        }
        c->env->sm_stats->resume_failed++;   /* the server no longer offers it */
        lg_sm_forget(&c->sm);
    }
    conn_send_bind(c);
}

static void on_sasl(lg_conn *c, const xml_node *el, xml_arena *arena)
{
    const char *why = NULL;
    if (xml_is(el, NS_SASL, "challenge")) {
        char password[256];
        conn_password(c, password, sizeof(password));
        buf b = BUF_INIT;
        static const char open[] = "<response xmlns='" NS_SASL "'>";
        buf_append(&b, open, sizeof(open) - 1);
        if (lg_sasl_challenge(&c->sasl, c->env->scram, c->index, password, xml_text(arena, el), &b,
                              &why) != 0) {
            buf_free(&b);
            conn_fail(c, "SASL %s: %s", lg_sasl_mech_name(c->sasl.mech), why);
            return;
        }
        buf_append(&b, "</response>", 11);
        lg_conn_send(c, buf_data(&b), buf_len(&b));
        buf_free(&b);
    } else if (xml_is(el, NS_SASL, "success")) {
        if (lg_sasl_success(&c->sasl, xml_text(arena, el), &why) != 0) {
            conn_fail(c, "SASL %s: %s", lg_sasl_mech_name(c->sasl.mech), why);
            return;
        }
        lg_sasl_clear(&c->sasl);
        c->stage = STAGE_POST_AUTH;
        c->after_feed = AFTER_RESTART;
        xmlstream_stop(c->xs);
    } else if (xml_is(el, NS_SASL, "failure")) {
        conn_fail(c, "SASL failure <%s/>%s", lg_conn_condition(el, NS_SASL),
                  error_text(arena, el, NS_SASL));
    } else {
        conn_fail(c, "unexpected <%s/> during SASL", el->name);
    }
}

/* The answer to our bind or session iq. */
static void on_login_iq(lg_conn *c, const xml_node *iq, xml_arena *arena)
{
    const char *want = c->state == LG_CONN_BIND ? LG_BIND_ID : LG_SESSION_ID;
    const char *id = xml_attr_get(iq, "id"), *type = xml_attr_get(iq, "type");
    if (!xml_is(iq, NS_CLIENT, "iq") || !id || strcmp(id, want) != 0)
        return;   /* anything else before we are up is not ours to answer */
    if (!type || strcmp(type, "result") != 0) {
        const xml_node *err = xml_child(iq, NULL, "error");
        conn_fail(c, "%s refused: <%s/>", c->state == LG_CONN_BIND ? "bind" : "session",
                  err ? lg_conn_condition(err, NS_STANZAS) : "(no error)");
        return;
    }
    if (c->state == LG_CONN_BIND && c->session_needed) {
        c->state = LG_CONN_SESSION;
        conn_send_str(c, "<iq type='set' id='" LG_SESSION_ID "'><session xmlns='" NS_SESSION
                         "'/></iq>");
        return;
    }
    conn_bound(c);
}

/* An iq get or set from the server while up: a ping gets its pong, with --pep a disco#info get
 * our caps' answer (lg_pep.h), anything else an error, as a well-behaved client does (RFC 6120
 * §8.2.3). */
static void on_server_iq(lg_conn *c, const xml_node *iq)
{
    const char *type = xml_attr_get(iq, "type"), *id = xml_attr_get(iq, "id");
    const char *from = xml_attr_get(iq, "from");
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) || !id)
        return;
    buf b = BUF_INIT;
    if (c->env->opt->pep && lg_pep_disco_answer(iq, &b)) {
        lg_conn_send_stanza(c, buf_data(&b), buf_len(&b), false);
        buf_free(&b);
        return;
    }
    bool ping = xml_child(iq, NS_PING, "ping") != NULL;
    buf_appendf(&b, "<iq type='%s' id='", ping ? "result" : "error");
    xml_write_attr_value(&b, id, strlen(id));
    buf_append(&b, "'", 1);
    if (from) {
        buf_append(&b, " to='", 5);
        xml_write_attr_value(&b, from, strlen(from));
        buf_append(&b, "'", 1);
    }
    if (ping)
        buf_append(&b, "/>", 2);
    else
        buf_appendf(&b, "><error type='cancel'><service-unavailable xmlns='" NS_STANZAS
                        "'/></error></iq>");
    lg_conn_send_stanza(c, buf_data(&b), buf_len(&b), false);
    buf_free(&b);
}

/* An iq result or error: the answer to a request of the rounds (--pep's publishes). */
static bool is_iq_answer(const xml_node *el)
{
    const char *type = xml_attr_get(el, "type");
    return xml_is(el, NS_CLIENT, "iq") && type &&
           (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
}

static bool is_stanza(const xml_node *el)
{
    return xml_is(el, NS_CLIENT, "message") || xml_is(el, NS_CLIENT, "presence") ||
           xml_is(el, NS_CLIENT, "iq");
}

static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    lg_conn *c = ctx;
    if (strcmp(content_ns, NS_CLIENT) != 0)
        conn_fail(c, "the server's stream is not jabber:client but \"%s\"", content_ns);
}

static void on_stanza(void *ctx, xml_node *el, xml_arena *arena)
{
    lg_conn *c = ctx;
    if (xml_is(el, XML_NS_STREAMS, "error")) {
        conn_fail(c, "stream error <%s/>%s", lg_conn_condition(el, XML_NS_STREAM_ERRORS),
                  error_text(arena, el, XML_NS_STREAM_ERRORS));
    } else if (c->after_feed != AFTER_NONE) {
        /* The parser stops after this element; nothing more is ours to act on. */
    } else {
        switch (c->state) {
        case LG_CONN_FEATURES:
            if (xml_is(el, XML_NS_STREAMS, "features"))
                on_features(c, el, arena);
            else
                conn_fail(c, "<%s/> instead of stream features", el->name);
            break;
        case LG_CONN_STARTTLS:
            if (xml_is(el, NS_TLS, "proceed")) {
                c->after_feed = AFTER_TLS;
                xmlstream_stop(c->xs);
            } else {
                conn_fail(c, "STARTTLS refused: <%s/>", el->name);
            }
            break;
        case LG_CONN_AUTH:
            on_sasl(c, el, arena);
            break;
        case LG_CONN_BIND:
        case LG_CONN_SESSION:
            on_login_iq(c, el, arena);
            break;
        case LG_CONN_ENABLE:
        case LG_CONN_RESUME:
            on_sm(c, el);   /* a stanza before the answer is not counted by either side */
            break;
        case LG_CONN_UP:
            if (on_sm(c, el))
                break;
            if (c->sm.active && is_stanza(el))
                lg_sm_handled(&c->sm);
            if (xml_is(el, NS_CLIENT, "message") || is_iq_answer(el) ||
                (c->env->opt->muc && xml_is(el, NS_CLIENT, "presence")))
                c->env->hooks.message(c->env->hooks_ctx, c, el, arena);
            else if (xml_is(el, NS_CLIENT, "iq"))
                on_server_iq(c, el);
            break;   /* presence without --muc: nothing to do */
        default:
            break;
        }
    }
    xml_arena_free(arena);
}

/* Feeds input to the parser and carries out what the callbacks decided. Returns false when the
 * connection ended or switched to TLS (the rest of the input is then discarded: it came before
 * the handshake and must not be trusted). */
static bool conn_feed(lg_conn *c, const char *p, size_t len)
{
    while (len) {
        size_t used = 0;
        c->in_feed = true;
        xmlstream_status st = xmlstream_feed(c->xs, p, len, &used);
        c->in_feed = false;
        p += used;
        len -= used;
        if (st == XMLSTREAM_OK)
            return true;
        if (st == XMLSTREAM_CLOSED) {
            conn_end(c, c->state == LG_CONN_CLOSING ? "logged out"
                                                    : "the server closed the stream");
            return false;
        }
        if (st == XMLSTREAM_FAILED) {
            const xmlstream_error *e = xmlstream_get_error(c->xs);
            conn_fail(c, "the server's XML: <%s/> %s", xmlstream_condition_name(e->condition),
                      e->text);
            return false;
        }
        uint8_t after = c->after_feed;
        c->after_feed = AFTER_NONE;
        xmlstream_reset(c->xs);
        if (after == AFTER_END) {
            conn_end(c, c->why);
            return false;
        }
        if (after == AFTER_TLS) {
            conn_start_tls(c);
            if (c->state == LG_CONN_TLS)
                conn_handshake(c);
            return false;
        }
        conn_send_header(c);   /* AFTER_RESTART, after SASL success */
        if (c->state == LG_CONN_DOWN)
            return false;
    }
    return true;
}

/* --transport websocket: what lg_ws_input found; false when the connection ended. */
static bool conn_on_ws(void *ctx, lg_ws_event ev, const char *data, size_t len)
{
    lg_conn *c = ctx;
    switch (ev) {
    case LG_WS_UPGRADED:
        conn_send_header(c);   /* now <open/> */
        break;
    case LG_WS_WRITE:
        buf_append(&c->tx, data, len);
        if (!c->write_blocked)
            conn_flush(c);
        break;
    case LG_WS_OPEN:
        return conn_feed(c, LG_WS_STREAM_HEADER, sizeof(LG_WS_STREAM_HEADER) - 1);
    case LG_WS_ELEMENT:
        return conn_feed(c, data, len);
    case LG_WS_CLOSE:
        return conn_feed(c, LG_WS_STREAM_CLOSE, sizeof(LG_WS_STREAM_CLOSE) - 1);
    case LG_WS_ERROR:
        conn_fail(c, "WebSocket: %s", data);
        return false;
    }
    return c->state != LG_CONN_DOWN;
}

/* Input from the transport, to the parser directly or through the WebSocket framing. */
static bool conn_input(lg_conn *c, const char *p, size_t n)
{
    if (c->env->opt->transport == LG_TRANSPORT_WEBSOCKET)
        return lg_ws_input(&c->ws, p, n, conn_on_ws, c);
    return conn_feed(c, p, n);
}

/* Reads what the transport has; false when the connection ended or changed transport. */
static bool conn_read(lg_conn *c)
{
    static char scratch[65536];
    for (;;) {
        size_t n = 0;
        if (c->ssl) {
            tls_status st = tls_read(c->ssl, scratch, sizeof(scratch), &n);
            if (st == TLS_WANT_READ)
                return true;
            if (st == TLS_WANT_WRITE) {
                c->write_blocked = true;
                conn_interest(c, EVLOOP_READ | EVLOOP_WRITE);
                return c->state != LG_CONN_DOWN;
            }
            if (st == TLS_CLOSED) {
                conn_fail(c, "%s", c->state == LG_CONN_CLOSING ? "logged out"
                                                               : "TLS closed by the server");
                return false;
            }
            if (st == TLS_FAILED) {
                tls_error e;
                tls_last_error(&e);
                conn_fail(c, "%s%s", c->state == LG_CONN_CLOSING ? "logged out; TLS read: "
                                                                 : "TLS read: ", e.text);
                return false;
            }
        } else {
            ssize_t r = read(c->fd, scratch, sizeof(scratch));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return true;
            if (r <= 0) {
                conn_fail(c, "%s", c->state == LG_CONN_CLOSING ? "logged out"
                                   : r == 0                    ? "the server closed the connection"
                                                               : strerror(errno));
                return false;
            }
            n = (size_t)r;
        }
        if (!conn_input(c, scratch, n))
            return false;
        /* Level-triggered epoll reports what is left in the socket: a short read, or TLS with no
         * record bytes buffered, saves the read(2) that would only say EAGAIN. */
        if (c->ssl ? !SSL_has_pending(c->ssl) : n < sizeof(scratch))
            return true;
    }
}

static void conn_on_io(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    lg_conn *c = arg;
    switch (c->state) {
    case LG_CONN_CONNECTING:
        conn_connected(c);
        return;
    case LG_CONN_TLS:
        conn_handshake(c);
        return;
    default:
        break;
    }
    if (events & EVLOOP_WRITE)
        c->write_blocked = false;
    conn_flush(c);
    if (c->state == LG_CONN_DOWN || !conn_read(c))
        return;
    /* Answers written from the parser's callbacks are out already; what is left waits. */
    if (buf_len(&c->tx) && !c->write_blocked)
        conn_flush(c);
}

static void conn_on_deadline(timer *t, void *arg)
{
    lg_conn *c = arg;
    if (c->state == LG_CONN_CLOSING)
        conn_fail(c, "logged out (the server did not close the stream)");
    else
        conn_fail(c, "login timed out after %u s (state %d)", c->env->opt->timeout_s, c->state);
}

static void conn_on_keepalive(timer *t, void *arg)
{
    lg_conn *c = arg;
    if (c->state != LG_CONN_UP)
        return;
    evloop_timer_after(c->env->loop, &c->keepalive, (uint64_t)c->env->opt->keepalive_s * 1000);
    if (c->sm.active)
        conn_send_str(c, LG_SM_REQUEST);   /* Conversations' keepalive with stream management */
    else if (!buf_len(&c->tx))
        lg_conn_send(c, " ", 1);
}
