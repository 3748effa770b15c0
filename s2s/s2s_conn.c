/* s2s/s2s_conn.c — the connections of a jabshard-s2s box (see s2s_server.h): sockets, TLS
 * (STARTTLS and XEP-0368's direct TLS), reading under a byte rate, writing under a bound, idle
 * timeouts and whitespace keepalives, and the glue between a stream (s2s_stream.c) and the rest:
 * outgoing streams report to their route, incoming ones send stanzas to the SM and dialback
 * checks to the route of the domain they concern. */
#include "s2s/s2s_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/tls.h"

#define READ_CHUNK 16384
#define TICK_MS 1000

struct s2s_conn {
    s2s_server *srv;
    s2s_conn *next, *prev;
    uint64_t id;
    s2s_direction dir;
    evloop_io io;
    int fd;
    SSL *ssl;
    bool connecting;          /* outgoing TCP connect in progress */
    bool handshaking;         /* TLS handshake in progress */
    bool tls_after_flush;     /* STARTTLS: the plain output must go before the handshake */
    bool direct_tls;
    bool paused;              /* by the SM link or the byte rate */
    bool closed;
    bool authed_in;           /* incoming: counted for its remote domain */
    s2s_stream *st;
    s2s_route *route;          /* outgoing: the route it serves */
    s2s_route *bidi_route;     /* incoming, XEP-0288: the route that may send on it */
    char peer[64];
    char domain[S2S_DOMAIN_MAX + 1];   /* incoming: the first remote domain authenticated */
    timer tick;
    uint64_t last_in, last_out;
    double tokens;
    uint64_t tokens_at;
};

static void conn_io(evloop *loop, evloop_io *io, unsigned events, void *arg);
static void write_out_once(s2s_conn *c);
static const s2s_stream_ops out_ops, in_ops;

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void set_interest(s2s_conn *c)
{
    if (c->closed)
        return;
    unsigned want = 0;
    if (c->connecting) {
        want = EVLOOP_WRITE;
    } else if (c->handshaking) {
        want = evloop_io_interest(&c->io) ? evloop_io_interest(&c->io) : EVLOOP_READ;
    } else {
        if (!c->paused)
            want |= EVLOOP_READ;
        if (buf_len(s2s_stream_out(c->st)))
            want |= EVLOOP_WRITE;
    }
    if (want != evloop_io_interest(&c->io))
        evloop_io_set(c->srv->loop, &c->io, want);
}

static void tick(timer *t, void *arg);

static s2s_conn *conn_new(s2s_server *srv, int fd, s2s_direction dir, bool direct_tls,
                          const char *peer)
{
    s2s_conn *c = mem_zalloc(sizeof *c);
    c->srv = srv;
    c->id = ++srv->next_conn_id;
    c->dir = dir;
    c->fd = fd;
    c->direct_tls = direct_tls;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->last_in = c->last_out = evloop_now(srv->loop);
    c->tokens = (double)srv->cfg->limits.bps_burst;
    c->tokens_at = c->last_in;
    evloop_io_init(&c->io, fd, conn_io, c);
    timer_init(&c->tick, tick, c);
    evloop_timer_after(srv->loop, &c->tick, TICK_MS);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    return c;
}

static void conn_free(s2s_conn *c)
{
    s2s_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s2s_stream_free(c->st);
    free(c);
}

/* Deferred free: a connection closed from inside its own callbacks is freed from the loop. */
static void reap(timer *t, void *arg)
{
    (void)t;
    conn_free(arg);
}

void s2s_conn_close(s2s_conn *c, const char *why)
{
    if (c->closed)
        return;
    s2s_server *srv = c->srv;
    /* One last try at the output (a stream error, </stream:stream>); its result does not
     * matter. */
    if (!c->connecting && !c->handshaking && !c->tls_after_flush)
        write_out_once(c);
    c->closed = true;
    evloop_io_set(srv->loop, &c->io, 0);
    evloop_timer_cancel(srv->loop, &c->tick);
    if (c->ssl) {
        if (!c->handshaking)
            tls_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    if (c->dir == S2S_INCOMING)
        srv->nconns_in--;
    log_info("s2s %s %s (%s): closed: %s", c->dir == S2S_OUTGOING ? "out" : "in",
             c->dir == S2S_OUTGOING ? s2s_stream_peer(c->st) : (c->domain[0] ? c->domain : "?"),
             c->peer, why);
    if (c->route) {
        s2s_route *r = c->route;
        c->route = NULL;
        s2s_route_conn_closed(r, s2s_stream_authed(c->st), why);
    }
    if (c->bidi_route) {
        s2s_route *r = c->bidi_route;
        c->bidi_route = NULL;
        s2s_route_bidi_closed(r);
    }
    evloop_timer_cancel(srv->loop, &c->tick);
    timer_init(&c->tick, reap, c);
    evloop_timer_after(srv->loop, &c->tick, 0);
}

/* ---- output ---------------------------------------------------------------------------------- */

static void start_handshake(s2s_conn *c);

/* One write of what the stream holds: the bytes written, 0 when the socket is full, -1 on error. */
static ssize_t write_some(s2s_conn *c)
{
    buf *o = s2s_stream_out(c->st);
    if (c->ssl) {
        size_t n = 0;
        tls_status rc = tls_write(c->ssl, buf_data(o), buf_len(o), &n);
        if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE)
            return 0;
        return rc == TLS_OK ? (ssize_t)n : -1;
    }
    ssize_t w = write(c->fd, buf_data(o), buf_len(o));
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return w > 0 ? w : -1;
}

static void write_out_once(s2s_conn *c)
{
    if (buf_len(s2s_stream_out(c->st)))
        (void)write_some(c);
}

static void write_out(s2s_conn *c)
{
    buf *o = s2s_stream_out(c->st);
    while (buf_len(o) && !c->closed) {
        ssize_t n = write_some(c);
        if (n == 0)
            break;
        if (n < 0) {
            s2s_conn_close(c, c->ssl ? "TLS write failed" : "write failed");
            return;
        }
        buf_consume(o, (size_t)n);
        c->last_out = evloop_now(c->srv->loop);
    }
    if (!buf_len(o))
        buf_compact(o);
    if (c->tls_after_flush && !buf_len(o)) {
        c->tls_after_flush = false;
        start_handshake(c);
        return;
    }
    set_interest(c);
}

void s2s_conn_flush(s2s_conn *c)
{
    if (c->closed || c->connecting || c->handshaking || c->tls_after_flush)
        return;
    write_out(c);
    if (!c->closed && s2s_stream_closed(c->st))
        s2s_conn_close(c, s2s_stream_why(c->st));
}

size_t s2s_conn_pending(const s2s_conn *c) { return buf_len(s2s_stream_out(c->st)); }

void s2s_conns_flush_pending(s2s_server *srv)
{
    /* A write that fails closes its connection, whose route may start another: new ones go to
     * the head of the list, closed ones stay in it until their reap. */
    for (s2s_conn *c = srv->conns; c; c = c->next)
        if (!c->closed && buf_len(s2s_stream_out(c->st)))
            s2s_conn_flush(c);
}

/* ---- TLS ------------------------------------------------------------------------------------- */

static void start_handshake(s2s_conn *c)
{
    s2s_server *srv = c->srv;
    c->ssl = c->dir == S2S_INCOMING ? s2s_tls_accept_ssl(srv->tls, c->fd)
                                    : s2s_tls_connect_ssl(srv->tls, c->fd, s2s_stream_peer(c->st));
    if (!c->ssl) {
        s2s_conn_close(c, "no memory for TLS");
        return;
    }
    c->handshaking = true;
    evloop_io_set(srv->loop, &c->io, EVLOOP_READ | EVLOOP_WRITE);
}

static void handshake_step(s2s_conn *c)
{
    tls_status rc = tls_handshake(c->ssl);
    if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        evloop_io_set(c->srv->loop, &c->io, rc == TLS_WANT_READ ? EVLOOP_READ : EVLOOP_WRITE);
        return;
    }
    c->handshaking = false;
    if (rc != TLS_OK) {
        tls_error e;
        tls_last_error(&e);
        s2s_stream_tls_done(c->st, false);
        s2s_conn_close(c, e.text[0] ? e.text : "TLS handshake failed");
        return;
    }
    if (c->direct_tls && !s2s_stream_is_tls(c->st))
        s2s_stream_direct_tls(c->st);
    else
        s2s_stream_tls_done(c->st, true);
    s2s_conn_flush(c);
}

/* ---- input ----------------------------------------------------------------------------------- */

/* The byte rate: a token bucket of bps_burst bytes refilled at max_bps. */
static bool rate_allows(s2s_conn *c)
{
    const s2s_limits *l = &c->srv->cfg->limits;
    uint64_t now = evloop_now(c->srv->loop);
    c->tokens += (double)(now - c->tokens_at) * (double)l->max_bps / 1000.0;
    if (c->tokens > (double)l->bps_burst)
        c->tokens = (double)l->bps_burst;
    c->tokens_at = now;
    return c->tokens > 0;
}

static bool must_pause(s2s_conn *c)
{
    return (c->dir == S2S_INCOMING && !s2s_link_open(c->srv->link)) || !rate_allows(c);
}

static void read_in(s2s_conn *c)
{
    char chunk[READ_CHUNK];
    for (int rounds = 0; rounds < 16 && !c->closed && !c->handshaking; rounds++) {
        if (must_pause(c)) {
            c->paused = true;
            break;
        }
        size_t n = 0;
        if (c->ssl) {
            tls_status rc = tls_read(c->ssl, chunk, sizeof chunk, &n);
            if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE)
                break;
            if (rc == TLS_CLOSED) {
                s2s_conn_close(c, "the peer closed TLS");
                return;
            }
            if (rc != TLS_OK) {
                tls_error e;
                tls_last_error(&e);
                s2s_conn_close(c, e.text);
                return;
            }
        } else {
            ssize_t r = read(c->fd, chunk, sizeof chunk);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (r <= 0) {
                s2s_conn_close(c, r < 0 ? strerror(errno) : "the peer closed the connection");
                return;
            }
            n = (size_t)r;
        }
        c->tokens -= (double)n;
        c->last_in = evloop_now(c->srv->loop);
        s2s_stream_status st = s2s_stream_feed(c->st, chunk, n);
        if (st == S2S_STREAM_TLS) {
            c->tls_after_flush = true;
            write_out(c);
            return;
        }
        if (st == S2S_STREAM_CLOSED) {
            write_out(c);
            s2s_conn_close(c, s2s_stream_why(c->st));
            return;
        }
    }
    s2s_conn_flush(c);
}

static void connected(s2s_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    c->connecting = false;
    if (err) {
        s2s_conn_close(c, strerror(err));
        return;
    }
    if (c->direct_tls)
        start_handshake(c);
    else
        s2s_conn_flush(c);
}

static void conn_io(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    (void)loop;
    (void)io;
    s2s_conn *c = arg;
    if (c->closed)
        return;
    if (c->connecting) {
        connected(c);
        return;
    }
    if (c->handshaking) {
        handshake_step(c);
        return;
    }
    if (events & EVLOOP_WRITE)
        write_out(c);
    if (!c->closed && (events & EVLOOP_READ))
        read_in(c);
}

/* Once a second: idle timeout, keepalives, and reading again after a pause. */
static void tick(timer *t, void *arg)
{
    s2s_conn *c = arg;
    s2s_server *srv = c->srv;
    const s2s_limits *l = &srv->cfg->limits;
    uint64_t now = evloop_now(srv->loop);
    if (now - c->last_in > (uint64_t)l->idle_timeout * 1000 &&
        now - c->last_out > (uint64_t)l->idle_timeout * 1000) {
        s2s_stream_close(c->st, NULL, NULL);
        s2s_conn_flush(c);
        s2s_conn_close(c, "idle");
        return;
    }
    if (c->dir == S2S_OUTGOING && s2s_stream_authed(c->st) &&
        now - c->last_out > (uint64_t)l->keepalive * 1000) {
        s2s_stream_keepalive(c->st);
        s2s_conn_flush(c);
    }
    if (c->paused && !must_pause(c)) {
        c->paused = false;
        read_in(c);
    }
    if (!c->closed)
        evloop_timer_after(srv->loop, t, TICK_MS);
}

void s2s_conns_pause(s2s_server *srv, bool pause)
{
    for (s2s_conn *c = srv->conns; c; c = c->next) {
        if (c->closed || c->dir != S2S_INCOMING)
            continue;
        if (pause) {
            c->paused = true;
            set_interest(c);
        } else if (c->paused && !must_pause(c)) {
            c->paused = false;
            read_in(c);
        }
    }
}

void s2s_conns_shutdown(s2s_server *srv)
{
    while (srv->conns) {
        s2s_conn *c = srv->conns;
        c->route = c->bidi_route = NULL;
        if (!c->closed) {
            s2s_stream_close(c->st, "system-shutdown", "the server is stopping");
            s2s_conn_close(c, "shutting down");
        }
        evloop_timer_cancel(srv->loop, &c->tick);   /* its reap */
        conn_free(c);
    }
}

void s2s_conns_count(const s2s_server *srv, unsigned *in, unsigned *out)
{
    *in = *out = 0;
    for (const s2s_conn *c = srv->conns; c; c = c->next)
        if (!c->closed)
            *(c->dir == S2S_INCOMING ? in : out) += 1;
}

unsigned s2s_conns_for_domain(s2s_server *srv, const char *remote)
{
    unsigned n = 0;
    for (s2s_conn *c = srv->conns; c; c = c->next)
        n += !c->closed && c->authed_in && strcasecmp(c->domain, remote) == 0;
    return n;
}

/* ---- the stream's questions ------------------------------------------------------------------ */

static bool op_is_local(void *ctx, const char *domain)
{
    s2s_conn *c = ctx;
    return s2s_config_is_local(c->srv->cfg, domain);
}

static void op_policy(void *ctx, const char *remote, s2s_policy *out)
{
    s2s_conn *c = ctx;
    s2s_config_policy(c->srv->cfg, remote, out);
}

static bool op_peer_cert_valid(void *ctx, const char *domain)
{
    s2s_conn *c = ctx;
    char why[160];
    bool ok = c->ssl && s2s_tls_peer_valid_for(c->ssl, domain, why, sizeof why);
    if (!ok && c->ssl)
        log_debug("s2s %s (%s): certificate not valid for %s: %s",
                  c->dir == S2S_OUTGOING ? "out" : "in", c->peer, domain, why);
    return ok;
}

static const char *tls_kind(const s2s_conn *c)
{
    return !c->ssl ? "no TLS" : c->direct_tls ? "direct TLS" : "STARTTLS";
}

static void count_auth(s2s_server *srv, const char *how)
{
    if (strcmp(how, "sasl") == 0)
        srv->count.auth_sasl++;
    else if (strcmp(how, "dialback") == 0)
        srv->count.auth_dialback++;
    else
        srv->count.auth_cert++;
}

static void out_authed(void *ctx, const char *local, const char *remote, const char *how)
{
    s2s_conn *c = ctx;
    count_auth(c->srv, how);
    log_info("s2s out %s -> %s (%s): authenticated by %s, %s%s", local, remote, c->peer, how,
             tls_kind(c), s2s_stream_bidi(c->st) ? ", bidirectional" : "");
    if (c->route)
        s2s_route_authed(c->route);
}

static void out_ready(void *ctx)
{
    s2s_conn *c = ctx;
    if (c->route)
        s2s_route_stream_ready(c->route);
}

static void out_verify_answer(void *ctx, const char *local, const char *remote, const char *id,
                              bool valid)
{
    s2s_conn *c = ctx;
    (void)local;
    (void)remote;
    if (c->route)
        s2s_route_verify_answer(c->route, id, valid);
}

static void in_authed(void *ctx, const char *local, const char *remote, const char *how)
{
    s2s_conn *c = ctx;
    s2s_server *srv = c->srv;
    count_auth(srv, how);
    if (!c->authed_in) {
        if (s2s_conns_for_domain(srv, remote) >= srv->cfg->limits.domain_streams) {
            log_warn("s2s in %s (%s): over <domain_streams> (%u): closed", remote, c->peer,
                     srv->cfg->limits.domain_streams);
            s2s_stream_close(c->st, "policy-violation", "too many streams from this domain");
            return;
        }
        c->authed_in = true;
        snprintf(c->domain, sizeof c->domain, "%s", remote);
        /* XEP-0288: the peer asked to be sent its stanzas on this stream too. */
        if (s2s_stream_bidi(c->st))
            c->bidi_route = s2s_route_attach_bidi(srv, local, remote, c);
    }
    log_info("s2s in %s -> %s (%s): authenticated by %s, %s%s", remote, local, c->peer, how,
             tls_kind(c), s2s_stream_bidi(c->st) ? ", bidirectional" : "");
}

static void in_verify_request(void *ctx, const char *local, const char *remote,
                              const char *stream_id, const char *key)
{
    s2s_conn *c = ctx;
    s2s_route_verify(c->srv, local, remote, c->id, stream_id, key);
}

static void in_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    s2s_conn *c = ctx;
    c->srv->count.stanzas_in++;
    s2s_link_send(c->srv->link, st, arena);
}

static const s2s_stream_ops out_ops = {
    .is_local = op_is_local, .policy = op_policy, .peer_cert_valid = op_peer_cert_valid,
    .authed = out_authed, .ready = out_ready, .db_verify_answer = out_verify_answer,
    .stanza = in_stanza,
};

static const s2s_stream_ops in_ops = {
    .is_local = op_is_local, .policy = op_policy, .peer_cert_valid = op_peer_cert_valid,
    .authed = in_authed, .db_verify_request = in_verify_request, .stanza = in_stanza,
};

/* ---- the API --------------------------------------------------------------------------------- */

void s2s_conn_accept(s2s_server *srv, int fd, bool direct_tls, const char *peer)
{
    if (srv->nconns_in >= srv->cfg->limits.max_connections) {
        log_warn("s2s in (%s): over <max_connections> (%u): refused", peer,
                 srv->cfg->limits.max_connections);
        srv->count.refused_streams++;
        close(fd);
        return;
    }
    s2s_conn *c = conn_new(srv, fd, S2S_INCOMING, direct_tls, peer);
    srv->nconns_in++;
    srv->count.conns_in++;
    c->st = s2s_stream_new(S2S_INCOMING, NULL, NULL, &srv->stream_cfg, &in_ops, c);
    if (direct_tls)
        start_handshake(c);
    else if (!s2s_link_open(srv->link))
        c->paused = true;
    set_interest(c);
}

s2s_conn *s2s_conn_connect(s2s_server *srv, s2s_route *r, int fd, bool direct_tls,
                           const char *peer)
{
    s2s_conn *c = conn_new(srv, fd, S2S_OUTGOING, direct_tls, peer);
    srv->count.conns_out++;
    c->route = r;
    c->connecting = true;
    c->st = s2s_stream_new(S2S_OUTGOING, s2s_route_local(r), s2s_route_remote(r),
                           &srv->stream_cfg, &out_ops, c);
    evloop_io_set(srv->loop, &c->io, EVLOOP_WRITE);
    return c;
}

s2s_conn *s2s_conn_find(s2s_server *srv, uint64_t id)
{
    for (s2s_conn *c = srv->conns; c; c = c->next)
        if (c->id == id && !c->closed)
            return c;
    return NULL;
}

uint64_t s2s_conn_id(const s2s_conn *c) { return c->id; }
void s2s_conn_forget_route(s2s_conn *c) { c->route = c->bidi_route = NULL; }
s2s_stream *s2s_conn_stream(s2s_conn *c) { return c->st; }
