/* shard/io_bosh.c — BOSH sessions (XEP-0124/0206) on the IO threads, and the mail between them.
 *
 * A session is a connection without a socket (shard/io_conn.h: fd -1, bosh set) in a slot of the
 * thread that took its creation request, with a client stream like any other (the SM routes to
 * it by its sid). Its requests come on web connections, on any thread (SO_REUSEPORT spreads a
 * browser's connections): the BOSH sid a client is given starts with the session's connection
 * sid, which names the owning thread, then 128 random bits; a request is handed to the owner
 * (directly, or as mail), the answer back to the thread whose connection holds the request.
 * Stanzas from the SM to a session are not remembered for an UNDELIVERED as a socket's are: once
 * given to the session they are its (stream management's copies at the SM still count). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "shard/io_conn.h"

static void on_bosh_tick(timer *tm, void *arg);

static bosh_limits limits_of(const iothread *t)
{
    const front_bosh *fb = &t->cfg->http.bosh;
    bosh_limits lim;
    bosh_limits_default(&lim, t->lim->stanza_size);
    lim.wait_max = fb->wait_max;
    lim.hold_max = fb->hold_max;
    lim.requests = fb->hold_max + 1;
    lim.inactivity = fb->inactivity;
    lim.polling = fb->polling;
    lim.maxpause = fb->maxpause;
    return lim;
}

/* ---- answers, to the connection that holds the request ---- */

/* The answer is written on web connection w (of this thread), which then goes on. */
static void answer_local(iothread *t, uint64_t req, int status, const char *body, size_t len)
{
    conn *w = conn_of(t, req);
    if (!w || !w->web || !web_conn_bosh_waiting(w->web))
        return;     /* it closed meanwhile */
    buf *out = &t->scratch;
    web_conn_bosh_answer(w->web, status, body, len, out);
    outq_push_bytes(&w->q, buf_data(out), buf_len(out));
    buf_truncate(out, 0);
    w->bosh_session = 0;
    mark_dirty(w);
    web_next(w);
}

static void answer(iothread *t, uint64_t req, int status, const char *body, size_t len)
{
    unsigned owner = smproto_sid_shard(req);
    if (owner == t->index || !t->sh->threads || owner >= t->sh->nthreads) {
        answer_local(t, req, status, body, len);
        return;
    }
    io_mail *m = mem_zalloc(sizeof *m);
    m->kind = IO_MAIL_BOSH_ANSWER;
    m->req = req;
    m->status = status;
    buf_append(&m->body, body, len);
    io_mail_post(t->sh->threads[owner], m);
}

/* Every answer the session made, each to the connection that holds its request. */
static void send_answers(conn *c)
{
    uint64_t req;
    int status;
    buf body = BUF_INIT;
    while (bosh_next_answer(c->bosh, &req, &status, &body))
        answer(c->t, req, status, buf_data(&body) ? buf_data(&body) : "", buf_len(&body));
    buf_free(&body);
}

/* The session's time, then every answer it made; once it is over, the connection goes. */
static void drain(conn *c)
{
    iothread *t = c->t;
    uint64_t now = evloop_now(t->loop);
    uint64_t next = bosh_tick(c->bosh, now);
    send_answers(c);
    if (bosh_ended(c->bosh) && c->stream)
        c2s_stream_gone(c->stream);
    if (bosh_finished(c->bosh)) {
        conn_kill(c);
        return;
    }
    if (next != UINT64_MAX)
        evloop_timer_after(t->loop, &c->bosh_timer, next > now ? next - now : 0);
}

static void on_bosh_tick(timer *tm, void *arg)
{
    conn *c = arg;
    if (c->dead || !c->bosh)
        return;
    drain(c);
}

/* Stream bytes from a request go to the session's stream. */
static void feed_stream(conn *c, buf *stream)
{
    if (!buf_len(stream) || !c->stream || bosh_ended(c->bosh))
        return;
    unsigned acts = c2s_stream_feed(c->stream, buf_data(stream), buf_len(stream));
    buf_truncate(stream, 0);
    conn_take(c, acts);
}

/* ---- requests ---- */

static void refuse(iothread *t, uint64_t req, int (*make)(buf *))
{
    buf body = BUF_INIT;
    int status = make(&body);
    answer(t, req, status, buf_data(&body) ? buf_data(&body) : "", buf_len(&body));
    buf_free(&body);
}

/* The sid a client gets: its session's connection sid, then 128 random bits (hex). */
#define SID_LEN (16 + 32)
static void make_sid(const conn *c, char out[SID_LEN + 1])
{
    uint8_t r[16];
    random_bytes(r, sizeof r);
    int n = snprintf(out, SID_LEN + 1, "%016" PRIx64, c->sid);
    for (size_t i = 0; i < sizeof r && n >= 0; i++)
        n += snprintf(out + n, SID_LEN + 1 - (size_t)n, "%02x", r[i]);
}

static void create(iothread *t, conn *w, const char *body, size_t len)
{
    if (!t->nfree || t->shutting_down) {
        static const char busy[] = "<body xmlns='" BOSH_NS "' type='terminate' "
                                   "condition='remote-connection-failed'/>";
        answer(t, w->sid, 200, busy, sizeof busy - 1);
        return;
    }
    conn *c = conn_new(t, -1, &w->addr, w->trusted);
    timer_init(&c->bosh_timer, on_bosh_tick, c);
    c->web_secure = w->web_secure;
    char sid[SID_LEN + 1];
    make_sid(c, sid);
    bosh_limits lim = limits_of(t);
    buf stream = BUF_INIT, refusal = BUF_INIT;
    int status = 200;
    c->bosh = bosh_new(&lim, sid, w->sid, body, len, evloop_now(t->loop), &stream, &status,
                       &refusal);
    if (!c->bosh) {
        answer(t, w->sid, status, buf_data(&refusal) ? buf_data(&refusal) : "",
               buf_len(&refusal));
        buf_free(&refusal);
        buf_free(&stream);
        conn_kill(c);
        return;
    }
    w->bosh_session = c->sid;
    atomic_fetch_add_explicit(&t->st_bosh_opened, 1, memory_order_relaxed);
    log_debug("c2s %s: BOSH session %s (session %016llx)", w->peer, sid,
              (unsigned long long)c->sid);
    c->stream = c2s_stream_new(&t->web_env, c->sid, c->web_secure, NULL);
    feed_stream(c, &stream);
    buf_free(&stream);
    if (!c->dead)
        drain(c);
}

/* A request for session `session` (a connection sid of this thread). */
static void deliver(iothread *t, uint64_t session, const char *sid, uint64_t req, const char *body,
                    size_t len)
{
    conn *c = conn_of(t, session);
    if (!c || !c->bosh || strcmp(bosh_sid(c->bosh), sid) != 0) {
        refuse(t, req, bosh_unknown_sid);
        return;
    }
    buf stream = BUF_INIT;
    bosh_request(c->bosh, req, body, len, evloop_now(t->loop), &stream);
    feed_stream(c, &stream);
    buf_free(&stream);
    if (!c->dead)
        drain(c);
}

/* The session a sid names: its connection sid, or 0 when the text is not one of ours. */
static uint64_t session_of(const char *sid)
{
    if (strlen(sid) != SID_LEN)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = sid[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    return v;
}

void bosh_input(conn *w)
{
    iothread *t = w->t;
    size_t len;
    const char *body = web_conn_bosh_body(w->web, &len);
    char sid[BOSH_SID_MAX + 1];
    if (!bosh_body_sid(body, len, sid)) {
        refuse(t, w->sid, bosh_refusal);
        return;
    }
    if (!sid[0]) {
        create(t, w, body, len);
        return;
    }
    uint64_t session = session_of(sid);
    unsigned owner = smproto_sid_shard(session);
    if (!session || (owner != t->index && (!t->sh->threads || owner >= t->sh->nthreads))) {
        refuse(t, w->sid, bosh_unknown_sid);
        return;
    }
    w->bosh_session = session;
    if (owner == t->index) {
        deliver(t, session, sid, w->sid, body, len);
        return;
    }
    io_mail *m = mem_zalloc(sizeof *m);
    m->kind = IO_MAIL_BOSH_REQUEST;
    m->session = session;
    m->req = w->sid;
    buf_append(&m->body, body, len);
    io_mail_post(t->sh->threads[owner], m);
}

/* ---- the session's output ---- */

static void emit(void *ctx, framing_out_kind kind, const char *data, size_t len)
{
    conn *c = ctx;
    bosh_output(c->bosh, kind, data, len, evloop_now(c->t->loop));
}

void bosh_take_output(conn *c, buf *out)
{
    buf_consume(out, framing_out(buf_data(out), buf_len(out), emit, c));
    drain(c);
}

void bosh_push_stanza(conn *c, outq_block *blk, size_t off, size_t len)
{
    const char *el = outq_block_data(blk) + off;
    size_t at = framing_xmlns_at(el, len);
    if (!at) {
        emit(c, FRAMING_OUT_ELEMENT, el, len);
    } else {
        buf *b = &c->t->scratch;
        buf_append(b, el, at);
        buf_append(b, FRAMING_CLIENT_XMLNS, sizeof FRAMING_CLIENT_XMLNS - 1);
        buf_append(b, el + at, len - at);
        emit(c, FRAMING_OUT_ELEMENT, buf_data(b), buf_len(b));
        buf_truncate(b, 0);
    }
    drain(c);
}

void bosh_conn_killed(conn *c)
{
    iothread *t = c->t;
    if (c->bosh) {
        /* Held requests get a terminate now rather than wait out their time. */
        static const char close_msg[] = "<close xmlns='" XMPP_FRAMING_NS "'/>";
        if (!bosh_ended(c->bosh))
            bosh_output(c->bosh, FRAMING_OUT_CLOSE, close_msg, sizeof close_msg - 1,
                        evloop_now(t->loop));
        send_answers(c);
        evloop_timer_cancel(t->loop, &c->bosh_timer);
        return;
    }
    if (!c->web || !web_conn_bosh_waiting(c->web) || !c->bosh_session)
        return;
    unsigned owner = smproto_sid_shard(c->bosh_session);
    if (owner == t->index) {
        conn *s = conn_of(t, c->bosh_session);
        if (s && s->bosh)
            bosh_request_gone(s->bosh, c->sid);
    } else if (t->sh->threads && owner < t->sh->nthreads) {
        io_mail *m = mem_zalloc(sizeof *m);
        m->kind = IO_MAIL_BOSH_GONE;
        m->session = c->bosh_session;
        m->req = c->sid;
        io_mail_post(t->sh->threads[owner], m);
    }
}

/* ---- mail ---- */

void io_mail_post(iothread *to, io_mail *m)
{
    pthread_mutex_lock(&to->mail_lock);
    *to->mail_tail = m;
    to->mail_tail = &m->next;
    pthread_mutex_unlock(&to->mail_lock);
    evloop_wake(to->loop);
}

static void take_one(iothread *t, io_mail *m)
{
    switch (m->kind) {
    case IO_MAIL_BOSH_REQUEST: {
        char sid[BOSH_SID_MAX + 1];
        const char *body = buf_data(&m->body) ? buf_data(&m->body) : "";
        if (bosh_body_sid(body, buf_len(&m->body), sid))
            deliver(t, m->session, sid, m->req, body, buf_len(&m->body));
        else
            refuse(t, m->req, bosh_refusal);
        break;
    }
    case IO_MAIL_BOSH_ANSWER:
        answer_local(t, m->req, m->status, buf_data(&m->body) ? buf_data(&m->body) : "",
                     buf_len(&m->body));
        break;
    case IO_MAIL_BOSH_GONE: {
        conn *s = conn_of(t, m->session);
        if (s && s->bosh) {
            bosh_request_gone(s->bosh, m->req);
            drain(s);
        }
        break;
    }
    }
}

void io_mail_take(iothread *t)
{
    pthread_mutex_lock(&t->mail_lock);
    io_mail *m = t->mail;
    t->mail = NULL;
    t->mail_tail = &t->mail;
    pthread_mutex_unlock(&t->mail_lock);
    while (m) {
        io_mail *next = m->next;
        take_one(t, m);
        buf_free(&m->body);
        free(m);
        m = next;
    }
}
