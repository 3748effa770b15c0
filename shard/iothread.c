/* shard/iothread.c — IO threads, their listeners and client connections (see iothread.h; the web
 * listener's connections are shard/io_web.c's, the structures shard/io_conn.h). */
#include "shard/iothread.h"
#include "shard/io_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/tcp_listen.h"
#include "core/xml_write.h"
#include "core/xmlmem.h"
#include "shard/c2s_stream.h"
#include "shard/csi.h"
#include "shard/dup_filter.h"
#include "shard/front_log.h"
#include "shard/tcp_acked.h"
#include "smproto/frame.h"

static void conn_linger(conn *c);
static void conn_read(conn *c);
static void conn_update(conn *c);
static void limits_now(iothread *t);

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* A counter only its own thread writes (the metrics thread reads it): a plain load and store,
 * no locked instruction on the stanza path. */
static void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

const char *const iothread_mech_names[IOTHREAD_MECHS] = {
    "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "other"};
const char *const iothread_auth_reasons[IOTHREAD_AUTH_REASONS] = {"wrong-password",
                                                                  "unknown-user", "other"};

static unsigned index_of(const char *const names[], unsigned n, const char *name)
{
    for (unsigned i = 0; name && i + 1 < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return n - 1;
}

/* ---- the link side --------------------------------------------------------------------------- */

static bool env_congested(void *arg)
{
    return link_front_congested(arg);
}

/* The connection of a session id on this thread, or NULL when it is gone. */
conn *conn_of(iothread *t, uint64_t sid)
{
    uint32_t slot = smproto_sid_slot(sid);
    conn *c = slot < t->nslots ? t->slots[slot] : NULL;
    return c && c->sid == sid && !c->dead ? c : NULL;
}

/* c2s_env.register_verdict: register_per_conn for every client, then the address's
 * register_burst bucket unless it is trusted. */
static c2s_register_verdict env_register_verdict(void *arg, uint64_t sid, unsigned nth)
{
    iothread *t = arg;
    conn *c = conn_of(t, sid);
    if (!c)
        return C2S_REGISTER_OK;   /* cannot happen: the stream calls from its connection */
    const front_limits *lim = t->lim;
    uint64_t now = evloop_now(t->loop);
    if (lim->register_per_conn && nth > lim->register_per_conn) {
        front_log_refused(t->sh->log_ips, &c->addr, now, "register", "register_per_conn");
        return C2S_REGISTER_CAP;
    }
    if (!c->trusted && t->sh->reg_ips && lim->register_burst &&
        !ip_limit_take(t->sh->reg_ips, &c->addr, now, &t->reg_rate)) {
        front_log_refused(t->sh->log_ips, &c->addr, now, "register", "register_burst");
        return C2S_REGISTER_RATE;
    }
    return C2S_REGISTER_OK;
}

static void queue_msg(iothread *t, link_msg *m)
{
    t->pushed = true;
    if (!t->over && link_front_io_push(t->sh->link, t->index, m))
        return;
    m->next = NULL;
    *t->over_tail = m;
    t->over_tail = &m->next;
}

/* What this iteration produced for the SM goes as one message. */
static void flush_tx(iothread *t)
{
    if (!buf_len(&t->tx))
        return;
    size_t len = buf_len(&t->tx);
    outq_block *blk = outq_block_from_buf(&t->tx);
    link_msg *m = link_msg_new(LINK_MSG_FRAMES, blk, 0, len);
    m->epoch = t->link_epoch;
    queue_msg(t, m);
}

static void retry_over(iothread *t)
{
    while (t->over) {
        /* Once pushed, the message is the link thread's: read next before. */
        link_msg *m = t->over, *next = m->next;
        if (!link_front_io_push(t->sh->link, t->index, m))
            break;
        t->over = next;
    }
    if (!t->over)
        t->over_tail = &t->over;
}

static void set_paused(iothread *t, bool paused)
{
    if (t->paused == paused)
        return;
    t->paused = paused;
    if (paused) {
        bump(&t->st_pauses);
        return;
    }
    /* Resume every connection that stopped reading meanwhile. */
    for (uint32_t i = 0; i < t->nslots; i++)
        if (t->slots[i] && !t->slots[i]->dead)
            conn_read(t->slots[i]);
}

/* ---- output ---------------------------------------------------------------------------------- */

void mark_dirty(conn *c)
{
    if (c->dirty || c->dead)
        return;
    c->dirty = true;
    c->next_dirty = c->t->dirty;
    c->t->dirty = c;
}

/* Moves what the stream produced to the client's queue and the link batch, and acts on it. */

/* ---- XEP-0198's timed requests ----------------------------------------------------------------
 * A stream asks for an acknowledgement (<r/>) by itself once <smacks><request_stanzas> are
 * unacknowledged. Fewer wait here, from when the stream said one was due: a stanza written after
 * half of <request_wait> carries the <r/> with it (no write of its own); otherwise the thread's
 * tick, every half <request_wait>, asks those that waited <request_wait> (at most one and a half
 * in all): one tick per thread for every connection, not a timer each, and only while some
 * connection waits. */

static uint64_t ack_tick_ms(const iothread *t)
{
    return (uint64_t)t->cfg->smacks.request_wait * 500;
}

static void ack_unlist(conn *c)
{
    iothread *t = c->t;
    if (!c->ack_listed)
        return;
    if (c->ack_prev)
        c->ack_prev->ack_next = c->ack_next;
    else
        t->ack_due = c->ack_next;
    if (c->ack_next)
        c->ack_next->ack_prev = c->ack_prev;
    else
        t->ack_tail = c->ack_prev;
    c->ack_listed = false;
    c->ack_prev = c->ack_next = NULL;
}

/* After any call into the stream: a request that became due is listed, from now (so the list is
 * in order of ack_since); one that is no longer due (the stream asked by itself, or everything was
 * acknowledged) leaves it. */
static void conn_watch_ack(conn *c)
{
    iothread *t = c->t;
    bool due = !c->dead && c->stream && c2s_stream_ack_due(c->stream);
    if (!due || c->ack_listed) {
        if (!due)
            ack_unlist(c);
        return;
    }
    c->ack_listed = true;
    c->ack_since = evloop_now(t->loop);
    c->ack_next = NULL;
    c->ack_prev = t->ack_tail;
    if (t->ack_tail)
        t->ack_tail->ack_next = c;
    else
        t->ack_due = c;
    t->ack_tail = c;
    if (!timer_pending(&t->ack_tick))
        evloop_timer_after(t->loop, &t->ack_tick, ack_tick_ms(t));
}

static void on_ack_tick(timer *tm, void *arg)
{
    iothread *t = arg;
    uint64_t now = evloop_now(t->loop), wait = (uint64_t)t->cfg->smacks.request_wait * 1000;
    while (t->ack_due && now - t->ack_due->ack_since >= wait) {
        conn *c = t->ack_due;
        ack_unlist(c);
        if (c->closing)
            continue;
        c2s_stream_request_ack(c->stream);
        conn_take(c, 0);
    }
    if (t->ack_due)
        evloop_timer_after(t->loop, &t->ack_tick, ack_tick_ms(t));
}

/* Queues a stanza frame's payload for the client; on a bound session it is remembered until
 * wholly written. Stream management counts it (an <r/> it asks for waits in the stream's output
 * for the next conn_take; a stream it closes is closed there too). */
static void conn_deliver(conn *c, outq_block *blk, size_t off, size_t len)
{
    if (c->bosh) {
        bosh_push_stanza(c, blk, off, len);
        c2s_stream_delivered(c->stream);
        conn_take(c, 0);
        return;
    }
    if (c2s_stream_jid(c->stream)) {
        if (c->nstanzas == c->stanzas_cap) {
            if (c->stanzas_head > 0) {
                memmove(c->stanzas, c->stanzas + c->stanzas_head,
                        (c->nstanzas - c->stanzas_head) * sizeof *c->stanzas);
                c->nstanzas -= c->stanzas_head;
                c->stanzas_head = 0;
            } else {
                c->stanzas_cap = c->stanzas_cap ? c->stanzas_cap * 2 : 8;
                c->stanzas = mem_realloc(c->stanzas, c->stanzas_cap * sizeof *c->stanzas);
            }
        }
        c->stanzas[c->nstanzas++] = (conn_stanza){ outq_block_ref(blk), off, len,
                                                   c->written + outq_bytes(&c->q), len };
    }
    size_t before = outq_bytes(&c->q);
    if (c->ws)
        ws_push_stanza(c, blk, off, len);
    else
        outq_push_block(&c->q, blk, off, len);
    if (c2s_stream_jid(c->stream))
        c->stanzas[c->nstanzas - 1].wire = outq_bytes(&c->q) - before;
    mark_dirty(c);
    c2s_stream_delivered(c->stream);
    /* Asked with this write (no write of its own) once the oldest has waited a tick's worth. */
    if (c->ack_listed && evloop_now(c->t->loop) - c->ack_since >= ack_tick_ms(c->t))
        c2s_stream_request_ack(c->stream);
    conn_watch_ack(c);
}

static void csi_deliver(void *arg, outq_block *blk, size_t len)
{
    conn_deliver(arg, blk, 0, len);
    outq_block_unref(blk);
}

/* Writes what CSI held (in order) ahead of what is queued next; mode: shard/csi.h. */
static void conn_csi_flush(conn *c, csi_take_mode mode)
{
    if (!c->csi || !csi_count(c->csi))
        return;
    evloop_timer_cancel(c->t->loop, &c->csi_timer);
    csi_take(c->csi, mode, csi_deliver, c);
}

/* A stanza from the SM for the client: held while the client is inactive and it can wait, else
 * queued after whatever was held. The hold sits before the queue: a held stanza is not sent. */
static void conn_offer(conn *c, outq_block *blk, size_t off, size_t len)
{
    if (c->csi) {
        switch (csi_offer(c->csi, outq_block_data(blk) + off, len)) {
        case CSI_HELD_FIRST:
            /* (Still pending when the one held was superseded: the first one's bound stays.) */
            if (!timer_pending(&c->csi_timer))
                evloop_timer_after(c->t->loop, &c->csi_timer,
                                   (uint64_t)c->t->cfg->csi.max_hold * 1000);
            return;
        case CSI_HELD:
            return;
        case CSI_DELIVER:
            conn_csi_flush(c, CSI_BEFORE);
            break;
        }
    }
    conn_deliver(c, blk, off, len);
}

/* The client's CSI state changed, or it sent a stanza: it is awake, so what was held goes now,
 * ahead of the replies the stream just made (they answer what it sent after waking). */
static void conn_csi_update(conn *c, unsigned acts)
{
    if ((acts & (C2S_ACT_CSI_ACTIVE | C2S_ACT_CLIENT_STANZA)) && !c->closing)
        conn_csi_flush(c, CSI_ALONE);
    if (!(acts & (C2S_ACT_CSI_ACTIVE | C2S_ACT_CSI_INACTIVE)))
        return;
    bool inactive = c2s_stream_csi_inactive(c->stream);
    if (inactive && !c->csi)
        c->csi = csi_new(&c->t->cfg->csi, &c->t->st_csi);
    if (c->csi)
        csi_set_inactive(c->csi, inactive);
}

static void csi_undeliver(void *arg, outq_block *blk, size_t len)
{
    conn *c = arg;
    smproto_put_undelivered(&c->t->tx, c->sid, outq_block_data(blk), len);
    outq_block_unref(blk);
}

/* Forgets the remembered stanzas that are wholly written, or all of them; the array goes with
 * the last (an idle connection keeps none). */
static void conn_forget_stanzas(conn *c, bool everything)
{
    while (c->stanzas_head < c->nstanzas) {
        conn_stanza *x = &c->stanzas[c->stanzas_head];
        if (!everything && x->start + x->wire > c->written)
            return;
        outq_block_unref(x->blk);
        c->stanzas_head++;
    }
    free(c->stanzas);
    c->stanzas = NULL;
    c->stanzas_head = c->nstanzas = c->stanzas_cap = 0;
}

/* Sends back to the SM (UNDELIVERED), in order, every remembered stanza no byte of which can have
 * reached the client and that starts at least keep unwritten bytes into q, and forgets them: they
 * are the queue's tail. The connection is ending; its END follows. A stanza partly written was
 * seen and stays the client's. Returns how many unwritten bytes of q precede the first one sent
 * back (where q may be cut), or SIZE_MAX when none was. */
static size_t conn_undeliver(conn *c, size_t keep)
{
    /* A TLS record in progress may already carry the first unwritten bytes. */
    uint64_t from = c->written + (c->tls_retry ? 1 : 0);
    if (keep > from - c->written)
        from = c->written + keep;
    uint32_t first = c->stanzas_head;
    while (first < c->nstanzas && c->stanzas[first].start < from)
        first++;
    size_t cut = first < c->nstanzas ? (size_t)(c->stanzas[first].start - c->written) : SIZE_MAX;
    for (uint32_t i = first; i < c->nstanzas; i++) {
        conn_stanza *x = &c->stanzas[i];
        smproto_put_undelivered(&c->t->tx, c->sid, outq_block_data(x->blk) + x->off, x->len);
        outq_block_unref(x->blk);
    }
    c->nstanzas = first;
    if (c->stanzas_head == c->nstanzas)
        conn_forget_stanzas(c, true);
    return cut;
}

static void submit_verify(conn *c)
{
    verify_job *job = mem_zalloc(sizeof *job);
    if (!c2s_stream_verify_job(c->stream, &job->password, &job->hash, &job->creds)) {
        verify_job_free(job);
        return;
    }
    job->owner = c->t;
    job->sid = c->sid;
    verify_pool_submit(c->t->sh->verify, job);
}

static void start_tls(conn *c);

/* An authentication attempt ended: a success, or a wrong password. Once the client's address has
 * used its ip_auth_failures bucket, every outcome (success too, so its timing tells nothing)
 * reaches the client auth_delay late: the connection neither reads nor writes meanwhile. A
 * guesser gets one answer per delay and connection, and new connections are bounded by
 * conn_rate. */
static void auth_outcome(conn *c, bool failed)
{
    iothread *t = c->t;
    const front_limits *lim = t->lim;
    if (!t->sh->auth_ips || !lim->ip_auth_failures || !lim->auth_delay || c->held || c->trusted)
        return;
    uint64_t now = evloop_now(t->loop);
    bool over = failed ? !ip_limit_take(t->sh->auth_ips, &c->addr, now, &t->auth_rate)
                       : ip_limit_empty(t->sh->auth_ips, &c->addr, now, &t->auth_rate);
    if (!over)
        return;
    bump(&t->st_delayed);
    c->held = true;
    evloop_timer_after(t->loop, &c->hold_timer, lim->auth_delay);
}

static void auth_failed(conn *c)
{
    const c2s_auth_failure *f = c2s_stream_auth_failure(c->stream);
    bump(&c->t->st_auth_failed[index_of(iothread_mech_names, IOTHREAD_MECHS, f->mech)]
                             [index_of(iothread_auth_reasons, IOTHREAD_AUTH_REASONS, f->reason)]);
    front_log_auth_failed(c->t->sh->log_ips, &c->addr, evloop_now(c->t->loop), f->mech, f->reason,
                          f->user);
    if (f->guess)
        auth_outcome(c, true);
}

/* Cuts a client whose queue outgrew the limits. The stanzas that start past output_queue go back
 * to the SM rather than wait behind the stream error; what starts within it stays, to be written
 * in the close grace (a client that reads then gets it, so even a burst past the bound, such as
 * the offline messages at a login, makes progress). Front-generated bytes among those cut go with
 * them. */
static void conn_cut_output(conn *c, const char *reason)
{
    iothread *t = c->t;
    bump(&t->st_overflows);
    front_log_output_cut(&c->addr, reason, outq_bytes(&c->q));
    size_t cut = conn_undeliver(c, t->lim->output_queue);
    if (cut != SIZE_MAX)
        outq_truncate(&c->q, cut);
    conn_take(c, c2s_stream_error(c->stream, "policy-violation", "output queue full"));
}

/* How far the client has read: the bytes its TCP acknowledged (shard/tcp_acked.h), or, where the
 * kernel cannot say, the bytes written to the socket. */
static uint64_t conn_progress(const conn *c)
{
    uint64_t acked;
    return tcp_bytes_acked(c->fd, &acked) ? acked : c->written;
}

/* The output-queue policy judges progress, not size alone: over output_queue a client must take
 * some of its output in every output_timeout seconds (on_drain_check), and nobody may pass
 * output_max. A client that reads, only slower than a burst arrives, is served; one that does not
 * read at all is cut, so memory stays bounded by output_max a connection. */
static void watch_output(conn *c)
{
    const front_limits *lim = c->t->lim;
    size_t queued = outq_bytes(&c->q);
    if (c->closing || queued <= lim->output_queue)
        return;
    if (queued > lim->output_max) {
        conn_cut_output(c, "output_max");
    } else if (!timer_pending(&c->drain_timer)) {
        c->drain_mark = conn_progress(c);
        evloop_timer_after(c->t->loop, &c->drain_timer, (uint64_t)lim->output_timeout * 1000);
    }
}

void conn_close_after_write(conn *c)
{
    if (!c->closing)
        evloop_timer_after(c->t->loop, &c->close_timer,
                           IO_CLOSE_GRACE_MS + (c->held ? c->t->lim->auth_delay : 0));
    c->closing = true;
    mark_dirty(c);
}

void conn_take(conn *c, unsigned acts)
{
    iothread *t = c->t;
    buf *out = c2s_stream_out(c->stream);
    /* A stream that closed itself outside a call that returns actions (a delivery past stream
     * management's bound) is closed all the same. */
    if (c2s_stream_closed(c->stream) && c2s_stream_jid(c->stream) && !c->closing)
        acts |= C2S_ACT_CLOSE;
    if (acts & (C2S_ACT_CSI_ACTIVE | C2S_ACT_CSI_INACTIVE | C2S_ACT_CLIENT_STANZA))
        conn_csi_update(c, acts);
    if (buf_len(out)) {
        if (c->ws) {
            buf_consume(out, framing_out(buf_data(out), buf_len(out), ws_emit, c));
        } else if (c->bosh) {
            bosh_take_output(c, out);
        } else {
            outq_push_bytes(&c->q, buf_data(out), buf_len(out));
            buf_consume(out, buf_len(out));
        }
        mark_dirty(c);
    }
    if (acts & C2S_ACT_CLIENT_STANZA)
        t->n_stanzas_in++;
    if (acts & C2S_ACT_AUTHED) {
        evloop_timer_cancel(t->loop, &c->auth_timer);
        bump(&t->st_logins);
        bump(&t->st_authed_now);
        c->counted_authed = true;
        auth_outcome(c, false);
    }
    if (acts & C2S_ACT_AUTH_FAILED)
        auth_failed(c);
    if (acts & C2S_ACT_VERIFY)
        submit_verify(c);
    if (acts & C2S_ACT_STARTTLS)
        c->starttls_flush = true;
    if (acts & C2S_ACT_CLOSE)
        conn_close_after_write(c);
    watch_output(c);
    conn_watch_ack(c);
}

static ssize_t tls_writer(void *ctx, const struct iovec *iov, int iovcnt)
{
    conn *c = ctx;
    size_t n = 0;
    tls_status st = tls_write(c->ssl, iov[0].iov_base, iov[0].iov_len, &n);
    c->tls_retry = st == TLS_WANT_READ || st == TLS_WANT_WRITE;
    switch (st) {
    case TLS_OK:
        return (ssize_t)n;
    case TLS_WANT_READ:
        c->write_wants_read = true;
        errno = EAGAIN;
        return -1;
    case TLS_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    default:
        errno = EPIPE;
        return -1;
    }
}

/* Writes what the socket takes, keeping count of it. */
static outq_status conn_write(conn *c)
{
    c->write_wants_read = false;
    size_t queued = outq_bytes(&c->q);
    outq_status st = c->ssl ? outq_flush(&c->q, tls_writer, c, 1) : outq_flush_socket(&c->q, c->fd);
    c->written += queued - outq_bytes(&c->q);
    c->t->n_bytes_out += queued - outq_bytes(&c->q);
    if (c->nstanzas)
        conn_forget_stanzas(c, false);
    return st;
}


static void conn_flush(conn *c)
{
    if (c->dead || c->lingering || c->handshaking || c->held || c->bosh)
        return;
    if (c->web)
        web_pump(c);
    if (c->dead)
        return;
    outq_status st = conn_write(c);
    if (st == OUTQ_ERROR) {
        conn_kill(c);
        return;
    }
    /* The socket took it all: more of a file, queued to be written before the loop sleeps, or
     * sent (plain) until the socket is full; a file sent out goes on below like any answer. */
    if (st == OUTQ_EMPTY && c->web && web_conn_sending(c->web)) {
        web_pump(c);
        if (c->dead)
            return;
        if (!outq_empty(&c->q) || web_conn_sending(c->web)) {
            conn_update(c);
            return;
        }
    }
    if (st == OUTQ_EMPTY) {
        if (c->starttls_flush) {
            c->starttls_flush = false;
            start_tls(c);
            return;
        }
        if (c->closing) {
            conn_linger(c);
            return;
        }
    }
    conn_update(c);
}

/* ---- input ----------------------------------------------------------------------------------- */

/* A web connection reads its next request once the last is answered and its answers were
 * taken: a client that pipelines small requests for large answers and reads none holds at most
 * output_queue bytes. */
static bool web_can_read(const conn *c)
{
    return !web_conn_sending(c->web) && !web_conn_bosh_waiting(c->web) &&
           outq_bytes(&c->q) <= c->t->lim->output_queue;
}

static bool can_read(const conn *c)
{
    return !c->dead && !c->closing && !c->handshaking && !c->starttls_flush && !c->rate_wait &&
           !c->held && !c->t->paused &&
           (c->web ? web_can_read(c) : c->stream && c2s_stream_wants_input(c->stream));
}

static void conn_update(conn *c)
{
    if (c->dead || c->lingering || c->fd < 0)
        return;
    unsigned want;
    if (c->handshaking) {
        want = c->hs_want;
    } else {
        want = can_read(c) || c->write_wants_read ? EVLOOP_READ : 0;
        /* A dirty connection is written before the loop sleeps; writability is only worth
         * watching once a write could not finish. */
        if ((!outq_empty(&c->q) || c->file_wait) && !c->held && !c->dirty)
            want |= EVLOOP_WRITE;
    }
    if (want != evloop_io_interest(&c->io) && evloop_io_set(c->t->loop, &c->io, want) != 0)
        conn_kill(c);
}

/* The max_bps token bucket: bps_burst bytes deep (at least a stanza of the largest size, so a
 * paste never waits), refilled at max_bps. */
static bool take_tokens(conn *c, size_t *want)
{
    const front_limits *lim = c->t->lim;
    if (!lim->max_bps)
        return true;
    uint64_t now = evloop_now(c->t->loop);
    c->tokens += (int64_t)((now - c->refilled) * lim->max_bps / 1000);
    c->refilled = now;
    if (c->tokens > (int64_t)lim->bps_burst)
        c->tokens = (int64_t)lim->bps_burst;
    if (c->tokens <= 0) {
        /* Wait until a useful amount (a tenth of a second's worth, at least) is back. */
        uint64_t delay = (uint64_t)(-c->tokens) * 1000 / lim->max_bps + 100;
        c->rate_wait = true;
        evloop_timer_after(c->t->loop, &c->bps_timer, delay);
        if (!c->rate_logged) {
            c->rate_logged = true;
            front_log_bps_paused(&c->addr);
        }
        return false;
    }
    if (*want > (size_t)c->tokens)
        *want = (size_t)c->tokens;
    return true;
}

static void conn_gone(conn *c)
{
    conn_kill(c);
}

/* Everything is written: the connection half-closes and reads what the client still sends,
 * dropping it, until it closes or IO_LINGER_MS pass. */
static void conn_linger(conn *c)
{
    if (c->lingering)
        return;
    if (c->ssl)
        tls_shutdown(c->ssl);
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_kill(c);
        return;
    }
    c->lingering = true;
    evloop_timer_after(c->t->loop, &c->close_timer, IO_LINGER_MS);
    if (evloop_io_set(c->t->loop, &c->io, EVLOOP_READ) != 0)
        conn_kill(c);
}

/* Reads and drops what a lingering connection's client sends; closes at its end. */
static void conn_drain_lingering(conn *c)
{
    char *scratch = c->t->rbuf;
    for (int rounds = 0; rounds < 4; rounds++) {
        ssize_t r = read(c->fd, scratch, sizeof c->t->rbuf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            conn_kill(c);
            return;
        }
    }
}

/* Bytes the client sent, to whatever the connection speaks now. */
static void conn_input(conn *c, const char *data, size_t n)
{
    if (c->web)
        web_input(c, data, n);
    else if (c->ws)
        ws_input(c, data, n);
    else
        conn_take(c, c2s_stream_feed(c->stream, data, n));
}

static void conn_read(conn *c)
{
    iothread *t = c->t;
    size_t budget = IO_READ_BUDGET;
    while (budget && can_read(c)) {
        size_t want = sizeof t->rbuf < budget ? sizeof t->rbuf : budget, n = 0;
        /* An upload's body is bounded by the size its slot was signed for, not paced. */
        if (!(c->web && web_conn_uploading(c->web)) && !take_tokens(c, &want))
            break;
        if (c->ssl) {
            tls_status st = tls_read(c->ssl, t->rbuf, want, &n);
            if (st == TLS_WANT_READ)
                break;
            if (st == TLS_WANT_WRITE) {
                mark_dirty(c);
                break;
            }
            if (st != TLS_OK) {
                if (st == TLS_FAILED) {
                    tls_error e;
                    tls_last_error(&e);
                    log_debug("c2s %s: TLS: %s", c->peer, e.text);
                }
                conn_gone(c);
                return;
            }
        } else {
            ssize_t r = read(c->fd, t->rbuf, want);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (r <= 0) {
                conn_gone(c);
                return;
            }
            n = (size_t)r;
        }
        c->last_rx = evloop_now(t->loop);
        c->pinged = false;
        if (c->shrunk) {
            c->shrunk = false;
            evloop_timer_after(t->loop, &c->shrink_timer, IO_SHRINK_AFTER_MS);
        }
        c->tokens -= (int64_t)n;
        budget -= n;
        t->n_bytes_in += n;
        conn_input(c, t->rbuf, n);
        /* A short read emptied the socket: asking again would only fetch EAGAIN (level-triggered
         * epoll reports whatever arrives later). */
        if (!c->ssl && n < want)
            break;
    }
    if (!budget && !c->dead && c->ssl && SSL_has_pending(c->ssl) && !c->backlogged) {
        c->backlogged = true;
        c->next_backlog = t->backlog;
        t->backlog = c;
    }
    conn_update(c);
}

/* A stream that may read again (an answer came): TLS may hold decrypted bytes epoll cannot see. */
static void conn_resume(conn *c)
{
    if (c->ssl && !c->handshaking && SSL_has_pending(c->ssl))
        conn_read(c);
    else
        conn_update(c);
}

static void tls_step(conn *c)
{
    tls_status st = tls_handshake(c->ssl);
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE) {
        c->hs_want = st == TLS_WANT_READ ? EVLOOP_READ : EVLOOP_WRITE;
        conn_update(c);
        return;
    }
    if (st != TLS_OK) {
        tls_error e;
        tls_last_error(&e);
        log_debug("c2s %s: TLS handshake failed: %s", c->peer, e.text);
        conn_kill(c);
        return;
    }
    c->handshaking = false;
    uint8_t exporter[32];
    bool has = tls_exporter(c->ssl, exporter) == 0;
    if (c->web) {
        /* HTTPS: requests follow */
    } else if (!c->stream) {
        c->stream = c2s_stream_new(&c->t->env, c->sid, true, has ? exporter : NULL);
    } else {
        conn_take(c, c2s_stream_tls_started(c->stream, has ? exporter : NULL));
    }
    conn_read(c);
}

static void start_tls(conn *c)
{
    c->ssl = tls_server_ssl_new(c->t->sh->tls, c->fd);
    if (!c->ssl) {
        conn_kill(c);
        return;
    }
    c->handshaking = true;
    tls_step(c);
}

static void on_conn_event(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    conn *c = arg;
    if (c->handshaking) {
        tls_step(c);
        return;
    }
    if (c->lingering) {
        conn_drain_lingering(c);
        return;
    }
    if (events & EVLOOP_WRITE || (c->write_wants_read && (events & EVLOOP_READ)))
        conn_flush(c);
    if (!c->dead && (events & EVLOOP_READ)) {
        if (can_read(c))
            conn_read(c);
        else
            conn_update(c);
    }
}

/* ---- timers ---------------------------------------------------------------------------------- */

static void on_auth_timeout(timer *tm, void *arg)
{
    conn *c = arg;
    if (c->dead || c->closing)
        return;
    /* A request's head must come within the time; a body on a slow link or a BOSH wait may
     * take longer (each bounded by its own rules). */
    if (c->web && web_conn_transferring(c->web)) {
        evloop_timer_after(c->t->loop, &c->auth_timer, (uint64_t)c->t->lim->auth_timeout * 1000);
        return;
    }
    if (!c->stream) {
        conn_kill(c);
        return;
    }
    conn_take(c, c2s_stream_error(c->stream, "connection-timeout", "authentication took too long"));
}

static void on_idle(timer *tm, void *arg)
{
    conn *c = arg;
    iothread *t = c->t;
    uint64_t idle = (uint64_t)t->lim->idle_timeout * 1000;
    uint64_t now = evloop_now(t->loop);
    if (c->dead || c->closing)
        return;
    if (now - c->last_rx < idle) {
        evloop_timer_after(t->loop, &c->idle_timer, idle - (now - c->last_rx));
        return;
    }
    if (!c->stream) {
        conn_kill(c);
        return;
    }
    if (!c->pinged) {
        c->pinged = true;
        if (!c->handshaking) {
            /* The ping wakes the client's radio anyway: what CSI held goes with it. */
            if (!c2s_stream_closed(c->stream))
                conn_csi_flush(c, CSI_BEFORE);
            if (c->ws) {
                ws_ping(c);
            } else {
                outq_push_bytes(&c->q, " ", 1);
            }
            mark_dirty(c);
        }
        evloop_timer_after(t->loop, &c->idle_timer, idle);
        return;
    }
    conn_take(c, c2s_stream_error(c->stream, "connection-timeout", "no traffic"));
}

static void on_bps(timer *tm, void *arg)
{
    conn *c = arg;
    c->rate_wait = false;
    if (!c->dead)
        conn_read(c);
}

static void on_close_timeout(timer *tm, void *arg)
{
    conn_kill(arg);
}

static void on_trim(timer *tm, void *arg)
{
    xmlmem_trim();
}

static void schedule_trim(iothread *t)
{
    if (!timer_pending(&t->trim_timer))
        evloop_timer_after(t->loop, &t->trim_timer, IO_TRIM_AFTER_MS);
}

/* Armed when input starts after a quiet spell, and pushed forward lazily (never on each read). */
static void on_shrink(timer *tm, void *arg)
{
    conn *c = arg;
    iothread *t = c->t;
    uint64_t now = evloop_now(t->loop);
    if (c->dead)
        return;
    if (now - c->last_rx < IO_SHRINK_AFTER_MS) {
        evloop_timer_after(t->loop, &c->shrink_timer, IO_SHRINK_AFTER_MS - (now - c->last_rx));
        return;
    }
    c->shrunk = true;
    if (c->stream && !c->handshaking)
        c2s_stream_shrink(c->stream);
    schedule_trim(t);
    if (outq_empty(&c->q))
        outq_free(&c->q);
}

/* CSI's max_hold passed since the first stanza held. */
static void on_csi_hold(timer *tm, void *arg)
{
    conn *c = arg;
    if (!c->dead && !c->closing && c->stream && !c2s_stream_closed(c->stream))
        conn_csi_flush(c, CSI_ALONE);
}

static void on_hold_end(timer *tm, void *arg)
{
    conn *c = arg;
    c->held = false;
    if (c->dead)
        return;
    mark_dirty(c);
    conn_resume(c);
}

/* Every output_timeout seconds while the queue is over output_queue: a client that read nothing
 * since the last look is cut (watch_output). */
static void on_drain_check(timer *tm, void *arg)
{
    conn *c = arg;
    const front_limits *lim = c->t->lim;
    if (c->dead || c->closing || outq_bytes(&c->q) <= lim->output_queue)
        return;
    uint64_t progress = conn_progress(c);
    if (progress == c->drain_mark) {
        conn_cut_output(c, "output_timeout");
        return;
    }
    c->drain_mark = progress;
    evloop_timer_after(c->t->loop, &c->drain_timer, (uint64_t)lim->output_timeout * 1000);
}

/* ---- connections ----------------------------------------------------------------------------- */

void conn_kill(conn *c)
{
    if (c->dead)
        return;
    iothread *t = c->t;
    c->dead = true;
    if (c->fd >= 0)
        evloop_io_set(t->loop, &c->io, 0);
    if (c->bosh || c->web)
        bosh_conn_killed(c);
    evloop_timer_cancel(t->loop, &c->auth_timer);
    evloop_timer_cancel(t->loop, &c->idle_timer);
    evloop_timer_cancel(t->loop, &c->bps_timer);
    evloop_timer_cancel(t->loop, &c->close_timer);
    evloop_timer_cancel(t->loop, &c->shrink_timer);
    evloop_timer_cancel(t->loop, &c->hold_timer);
    evloop_timer_cancel(t->loop, &c->drain_timer);
    evloop_timer_cancel(t->loop, &c->csi_timer);
    ack_unlist(c);
    if (c->stream) {
        conn_undeliver(c, 0);
        /* Held stanzas came after every queued one: they go back after them, before the END. */
        csi_take(c->csi, CSI_RETURN, csi_undeliver, c);
        c2s_stream_gone(c->stream);
    }
    c->next_dead = t->dead;
    t->dead = c;
}

static void conn_free(conn *c)
{
    iothread *t = c->t;
    if (c->backlogged)
        for (conn **p = &t->backlog; *p; p = &(*p)->next_backlog)
            if (*p == c) {
                *p = c->next_backlog;
                break;
            }
    conn_forget_stanzas(c, true);
    csi_free(c->csi);
    c2s_stream_free(c->stream);
    web_conn_free(c->web);
    if (c->ws)
        atomic_fetch_add_explicit(&t->st_ws_closed, 1, memory_order_relaxed);
    if (c->bosh)
        atomic_fetch_add_explicit(&t->st_bosh_closed, 1, memory_order_relaxed);
    websocket_free(c->ws);
    buf_free(&c->web_rest);
    bump(&t->st_closed);
    if (c->counted_authed)
        atomic_fetch_sub_explicit(&t->st_authed_now, 1, memory_order_relaxed);
    schedule_trim(t);
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    bosh_free(c->bosh);
    outq_free(&c->q);
    t->slots[c->slot] = NULL;
    t->free_stack[t->nfree++] = c->slot;
    free(c);
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, len, "%s:%u", ip, port);
}

/* A connection refused at accept: a best-effort stream error (a single non-blocking write; on the
 * direct-TLS port nothing, as no TLS session exists yet), then close. */
static void refuse(iothread *t, int fd, const listener *l, const char *condition,
                   const char *text)
{
    if (l->web && !l->tls) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        ssize_t r = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
    } else if (!l->tls) {
        buf b = BUF_INIT;
        xml_stream_attrs a = {.content_ns = "jabber:client", .from = t->cfg->hosts[0],
                              .version = "1.0"};
        xml_write_stream_open(&b, &a);
        xml_write_stream_error(&b, condition, text);
        xml_write_stream_close(&b);
        ssize_t r = send(fd, buf_data(&b), buf_len(&b), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
        buf_free(&b);
    }
    close(fd);
}

conn *conn_new(iothread *t, int fd, const struct sockaddr_storage *ss, bool trusted)
{
    conn *c = mem_zalloc(sizeof *c);
    c->t = t;
    c->fd = fd;
    c->slot = t->free_stack[--t->nfree];
    c->sid = smproto_sid(t->index, c->slot, ++t->gen[c->slot]);
    t->slots[c->slot] = c;
    c->addr = *ss;
    c->trusted = trusted;
    format_peer(ss, c->peer, sizeof c->peer);
    evloop_io_init(&c->io, fd, on_conn_event, c);
    timer_init(&c->auth_timer, on_auth_timeout, c);
    timer_init(&c->idle_timer, on_idle, c);
    timer_init(&c->bps_timer, on_bps, c);
    timer_init(&c->close_timer, on_close_timeout, c);
    timer_init(&c->shrink_timer, on_shrink, c);
    timer_init(&c->hold_timer, on_hold_end, c);
    timer_init(&c->drain_timer, on_drain_check, c);
    timer_init(&c->csi_timer, on_csi_hold, c);
    c->last_rx = c->refilled = evloop_now(t->loop);
    c->tokens = (int64_t)t->lim->bps_burst;
    evloop_timer_after(t->loop, &c->auth_timer, (uint64_t)t->lim->auth_timeout * 1000);
    return c;
}

static void accept_one(iothread *t, int fd, const listener *l, const struct sockaddr_storage *ss)
{
    bool tls = l->tls;
    uint64_t now = evloop_now(t->loop);
    if (!t->nfree || t->shutting_down) {
        bump(&t->st_refused);
        if (!t->shutting_down)
            front_log_refused(t->sh->log_ips, ss, now, "conn", "max_fds");
        refuse(t, fd, l, "resource-constraint", "this server is full");
        return;
    }
    const front_limits *lim = t->lim;
    bool trusted = ip_nets_contain(&lim->trusted, ss);
    if (!trusted && t->sh->conn_ips && lim->conn_rate &&
        !ip_limit_take(t->sh->conn_ips, ss, now, &t->conn_rate)) {
        bump(&t->st_refused_rate);
        front_log_refused(t->sh->log_ips, ss, now, "conn", "conn_rate");
        refuse(t, fd, l, "policy-violation", "too many connections from your address");
        return;
    }
    bump(&t->st_accepted);
    /* Each loop turn writes a connection's output in one go; Nagle would hold the next small
     * write back until the client's (delayed) ACK, tens of milliseconds. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = conn_new(t, fd, ss, trusted);
    evloop_timer_after(t->loop, &c->idle_timer, (uint64_t)lim->idle_timeout * 1000);
    evloop_timer_after(t->loop, &c->shrink_timer, IO_SHRINK_AFTER_MS);
    log_debug("c2s %s: connected%s (session %016llx)", c->peer, tls ? " (TLS)" : "",
              (unsigned long long)c->sid);
    if (l->web) {
        c->web_secure = tls || ip_nets_contain(&t->cfg->http.secure_from, ss);
        c->web = web_conn_new(t->cfg, tls, c->web_secure);
    }
    if (tls) {
        start_tls(c);
    } else {
        if (!l->web)
            c->stream = c2s_stream_new(&t->env, c->sid, false, NULL);
        conn_update(c);
    }
}

static void on_accept(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    listener *l = arg;
    limits_now(l->t);
    for (int i = 0; i < IO_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("c2s: accept: %s", strerror(errno));
            return;
        }
        accept_one(l->t, fd, l, &ss);
    }
}

/* ---- frames from the SM ---------------------------------------------------------------------- */

static void resync(iothread *t, uint64_t epoch)
{
    flush_tx(t);   /* what was sent before goes before the resync */
    t->link_epoch = epoch;
    buf b = BUF_INIT;
    size_t start = SIZE_MAX;
    for (uint32_t i = 0; i < t->nslots; i++) {
        conn *c = t->slots[i];
        smproto_resync_entry e;
        if (!c || c->dead || !c->stream || !c2s_stream_resync_entry(c->stream, &e))
            continue;
        size_t n = smproto_resync_entry_size(&e);
        if (start != SIZE_MAX && buf_len(&b) - start - SMPROTO_HEADER + n > SMPROTO_MAX_PAYLOAD) {
            smproto_resync_end(&b, start);
            start = SIZE_MAX;
        }
        if (start == SIZE_MAX)
            start = smproto_resync_begin(&b);
        smproto_resync_add(&b, &e);
    }
    if (start != SIZE_MAX)
        smproto_resync_end(&b, start);
    /* Logins and binds waiting for an answer ask again, after the sessions are known. */
    for (uint32_t i = 0; i < t->nslots; i++) {
        conn *c = t->slots[i];
        if (c && !c->dead && c->stream)
            c2s_stream_reissue(c->stream, &b);
    }
    size_t len = buf_len(&b);
    link_msg *m = link_msg_new(LINK_MSG_RESYNC, len ? outq_block_from_buf(&b) : NULL, 0, len);
    m->epoch = epoch;
    buf_free(&b);
    queue_msg(t, m);
}

static void on_link_msg(iothread *t, link_msg *m)
{
    if (m->kind == LINK_MSG_RESYNC_ASK) {
        t->dups_until = evloop_now(t->loop) + IO_DUP_WINDOW_MS;
        dup_filter_new_link(t->dups);
        resync(t, m->epoch);
        return;
    }
    const uint8_t *data = (const uint8_t *)outq_block_data(m->blk) + m->off;
    smproto_frame f;
    size_t used;
    if (smproto_frame_next(data, m->len, &f, &used) != SMPROTO_FRAME_OK)
        return;
    conn *c = conn_of(t, f.sid);
    if (!c || !c->stream) {
        /* The SM sent it before it read this session's END: it goes back (a stanza for a session
         * that never bound, the answer to REGISTER, is one the SM drops). */
        if (f.type == SMPROTO_STANZA && f.len && f.sid)
            smproto_put_undelivered(&t->tx, f.sid, f.payload, f.len);
        bump(&t->st_stale);
        return;
    }
    uint64_t digest = 0;
    if (f.type == SMPROTO_STANZA && c2s_stream_jid(c->stream) && !c2s_stream_closed(c->stream)) {
        digest = dup_filter_digest(t->dups, f.sid, f.payload, f.len);
        if (evloop_now(t->loop) < t->dups_until && dup_filter_seen_before(t->dups, digest)) {
            bump(&t->st_duplicates);
            c2s_stream_duplicate(c->stream);
            log_info("c2s: a stanza the SM sent again after its restart was already delivered to "
                     "%s: not twice", c2s_stream_jid(c->stream));
            return;
        }
    }
    bool waiting = !c2s_stream_wants_input(c->stream);
    unsigned acts = c2s_stream_frame(c->stream, &f);
    if (digest && (acts & C2S_ACT_DELIVER))
        dup_filter_add(t->dups, digest);
    if (acts & C2S_ACT_DELIVER) {
        t->n_stanzas_out++;
        conn_offer(c, m->blk, m->off + SMPROTO_HEADER, f.len);
    } else if (f.type == SMPROTO_STANZA && f.len && c2s_stream_closed(c->stream) &&
               c2s_stream_jid(c->stream)) {
        /* The session's stream is over (the SM has its END or will have it before this): the
         * stanza goes back, never to be written. */
        smproto_put_undelivered(&t->tx, f.sid, f.payload, f.len);
    }
    conn_take(c, acts);
    if (waiting && c2s_stream_wants_input(c->stream))
        conn_resume(c);
}

static void take_verified(iothread *t)
{
    pthread_mutex_lock(&t->done_lock);
    verify_job *list = t->done;
    t->done = NULL;
    pthread_mutex_unlock(&t->done_lock);
    while (list) {
        verify_job *job = list;
        list = job->next;
        conn *c = conn_of(t, job->sid);
        if (c && c->stream) {
            conn_take(c, c2s_stream_verified(c->stream, job->ok));
            conn_resume(c);
        }
        verify_job_free(job);
    }
}

void iothread_verify_done(verify_job *job)
{
    iothread *t = job->owner;
    pthread_mutex_lock(&t->done_lock);
    job->next = t->done;
    t->done = job;
    pthread_mutex_unlock(&t->done_lock);
    evloop_wake(t->loop);
}

/* ---- the loop -------------------------------------------------------------------------------- */

static void close_listener(iothread *t, listener *l)
{
    if (l->fd < 0)
        return;
    evloop_io_set(t->loop, &l->io, 0);
    close(l->fd);
    l->fd = -1;
}

static void on_shutdown_grace(timer *tm, void *arg)
{
    iothread *t = arg;
    for (uint32_t i = 0; i < t->nslots; i++)
        if (t->slots[i])
            conn_kill(t->slots[i]);
    evloop_stop(t->loop);
}

static void begin_shutdown(iothread *t)
{
    t->shutting_down = true;
    close_listener(t, &t->plain);
    close_listener(t, &t->tls);
    close_listener(t, &t->http);
    close_listener(t, &t->https);
    for (uint32_t i = 0; i < t->nslots; i++) {
        conn *c = t->slots[i];
        if (!c || c->dead)
            continue;
        if (c->stream && !c->handshaking)
            conn_take(c, c2s_stream_error(c->stream, "system-shutdown", NULL));
        else
            conn_kill(c);
    }
    evloop_timer_after(t->loop, &t->shutdown_timer, IO_SHUTDOWN_GRACE_MS);
}

static void on_wake(evloop *loop, void *arg)
{
    iothread *t = arg;
    if (atomic_load(&t->shutdown_asked) && !t->shutting_down)
        begin_shutdown(t);
    conn *backlog = t->backlog;
    t->backlog = NULL;
    while (backlog) {
        conn *c = backlog;
        backlog = c->next_backlog;
        c->backlogged = false;
        if (!c->dead)
            conn_read(c);
    }
    retry_over(t);
    take_verified(t);
    io_mail_take(t);
    link_msg *m;
    unsigned n = 0;
    while ((m = link_front_io_pop(t->sh->link, t->index))) {
        on_link_msg(t, m);
        link_msg_free(m);
        n++;
    }
    if (n)
        link_front_io_popped(t->sh->link, t->index);
}

/* The limits this thread applies, and what it derives from them (its streams read them through
 * its env). */
static void use_limits(iothread *t, const front_limits *lim)
{
    t->lim = lim;
    t->env.limits = lim;
    t->conn_rate = ip_rate_per(lim->conn_rate, lim->conn_interval, lim->conn_burst);
    t->auth_rate = ip_rate_per(lim->ip_auth_failures, lim->ip_auth_interval, lim->ip_auth_failures);
    t->reg_rate = ip_rate_per(1, lim->register_interval, lim->register_burst);
}

/* New limits published (a SIGHUP's): taken before the thread sleeps, for what comes next, and
 * before it accepts: a thread that slept through the SIGHUP wakes for the connection, which takes
 * its stanza size from the limits (a connection after a reload has the new ones). */
static void limits_now(iothread *t)
{
    const front_limits *lim = t->sh->limits ? atomic_load_explicit(t->sh->limits,
                                                                   memory_order_acquire)
                                            : NULL;
    if (lim && lim != t->lim)
        use_limits(t, lim);
}

static void publish_counts(iothread *t)
{
    if (t->n_stanzas_in)
        add(&t->st_stanzas_in, t->n_stanzas_in);
    if (t->n_stanzas_out)
        add(&t->st_stanzas_out, t->n_stanzas_out);
    if (t->n_bytes_in)
        add(&t->st_bytes_in, t->n_bytes_in);
    if (t->n_bytes_out)
        add(&t->st_bytes_out, t->n_bytes_out);
    t->n_stanzas_in = t->n_stanzas_out = t->n_bytes_in = t->n_bytes_out = 0;
}

static void before_sleep(evloop *loop, void *arg)
{
    publish_counts(arg);
    limits_now(arg);
    iothread *t = arg;
    while (t->dirty) {
        conn *c = t->dirty;
        t->dirty = c->next_dirty;
        c->dirty = false;
        conn_flush(c);
    }
    while (t->dead) {
        conn *c = t->dead;
        t->dead = c->next_dead;
        conn_free(c);
    }
    flush_tx(t);
    retry_over(t);
    if (t->pushed) {
        t->pushed = false;
        link_front_io_pushed(t->sh->link, t->index);
    }
    set_paused(t, t->over != NULL);
    /* Connections with decrypted input left: do not sleep, take them in on_wake. */
    if (t->backlog)
        evloop_wake(t->loop);
    if (t->shutting_down && !t->dirty) {
        bool any = false;
        for (uint32_t i = 0; i < t->nslots && !any; i++)
            any = t->slots[i] != NULL;
        if (!any && !t->over)
            evloop_stop(t->loop);
    }
}

iothread *iothread_new(const iothread_shared *shared, unsigned index, uint32_t slots, char *err,
                       size_t errlen)
{
    iothread *t = mem_zalloc(sizeof *t);
    t->dups = mem_alloc(sizeof *t->dups);
    dup_filter_init(t->dups);
    t->sh = shared;
    t->cfg = shared->cfg;
    t->index = index;
    t->plain.fd = t->tls.fd = t->http.fd = t->https.fd = -1;
    t->loop = evloop_create();
    if (!t->loop) {
        snprintf(err, errlen, "cannot create an event loop: %s", strerror(errno));
        free(t);
        return NULL;
    }
    t->env = (c2s_env){.cfg = t->cfg, .tls_available = shared->tls != NULL,
                       .caps = shared->link ? link_front_caps(shared->link) : NULL,
                       .link_congested = env_congested, .link_arg = shared->link,
                       .register_verdict = env_register_verdict, .limits_arg = t,
                       .frames = &t->tx};
    t->web_env = t->env;
    t->web_env.tls_available = false;
    use_limits(t, &t->cfg->limits);
    t->nslots = slots;
    t->slots = mem_array(slots, sizeof(conn *));
    t->gen = mem_array(slots, sizeof(uint32_t));
    t->free_stack = mem_array(slots, sizeof(uint32_t));
    for (uint32_t i = 0; i < slots; i++)
        t->free_stack[t->nfree++] = slots - 1 - i;
    t->over_tail = &t->over;
    pthread_mutex_init(&t->done_lock, NULL);
    pthread_mutex_init(&t->mail_lock, NULL);
    t->mail_tail = &t->mail;
    timer_init(&t->shutdown_timer, on_shutdown_grace, t);
    timer_init(&t->trim_timer, on_trim, t);
    timer_init(&t->ack_tick, on_ack_tick, t);
    const front_config *cfg = t->cfg;
    const front_http *h = &cfg->http;
    struct {
        listener *l;
        bool on, tls, web;
        const char *ip;
        int port;
    } ports[] = {
        {&t->plain, true, false, false, cfg->ip, cfg->port},
        {&t->tls, shared->tls != NULL, true, false, cfg->ip, cfg->ssl_port},
        {&t->http, h->on && h->port, false, true, h->ip, h->port},
        {&t->https, h->on && h->tls_port && shared->tls, true, true, h->ip, h->tls_port},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        if (!ports[i].on)
            continue;
        listener *l = ports[i].l;
        *l = (listener){.t = t, .tls = ports[i].tls, .web = ports[i].web,
                        .fd = tcp_listen(ports[i].ip, ports[i].port, 1024, true, err, errlen)};
        if (l->fd < 0) {
            iothread_free(t);
            return NULL;
        }
        evloop_io_init(&l->io, l->fd, on_accept, l);
        evloop_io_set(t->loop, &l->io, EVLOOP_READ);
    }
    evloop_on_wake(t->loop, on_wake, t);
    evloop_before_sleep(t->loop, before_sleep, t);
    return t;
}

evloop *iothread_loop(iothread *t) { return t->loop; }

static void *io_main(void *arg)
{
    iothread *t = arg;
    evloop_run(t->loop);
    /* END frames of the connections closed at shutdown go to the link thread, which flushes them. */
    flush_tx(t);
    retry_over(t);
    link_front_io_pushed(t->sh->link, t->index);
    return NULL;
}

int iothread_start(iothread *t)
{
    int r = pthread_create(&t->thread, NULL, io_main, t);
    if (r != 0) {
        errno = r;
        return -1;
    }
    t->started = true;
    return 0;
}

void iothread_shutdown(iothread *t)
{
    atomic_store(&t->shutdown_asked, true);
    evloop_wake(t->loop);
}

void iothread_join(iothread *t)
{
    if (t->started)
        pthread_join(t->thread, NULL);
    t->started = false;
}

void iothread_free(iothread *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->nslots; i++)
        if (t->slots[i])
            conn_kill(t->slots[i]);
    while (t->dead) {
        conn *c = t->dead;
        t->dead = c->next_dead;
        conn_free(c);
    }
    while (t->over) {
        link_msg *m = t->over;
        t->over = m->next;
        link_msg_free(m);
    }
    listener *ls[] = {&t->plain, &t->tls, &t->http, &t->https};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        if (ls[i]->fd >= 0)
            close(ls[i]->fd);
    buf_free(&t->tx);
    buf_free(&t->scratch);
    free(t->dups);
    pthread_mutex_lock(&t->done_lock);
    while (t->done) {
        verify_job *j = t->done;
        t->done = j->next;
        verify_job_free(j);
    }
    pthread_mutex_unlock(&t->done_lock);
    pthread_mutex_destroy(&t->done_lock);
    while (t->mail) {   /* for connections that are gone */
        io_mail *m = t->mail;
        t->mail = m->next;
        buf_free(&m->body);
        free(m);
    }
    pthread_mutex_destroy(&t->mail_lock);
    free(t->slots);
    free(t->gen);
    free(t->free_stack);
    evloop_destroy(t->loop);
    free(t);
}

void iothread_get_stats(const iothread *t, iothread_stats *out)
{
    out->accepted = atomic_load_explicit(&t->st_accepted, memory_order_relaxed);
    out->refused_full = atomic_load_explicit(&t->st_refused, memory_order_relaxed);
    out->refused_rate = atomic_load_explicit(&t->st_refused_rate, memory_order_relaxed);
    out->auth_delayed = atomic_load_explicit(&t->st_delayed, memory_order_relaxed);
    out->stale_frames = atomic_load_explicit(&t->st_stale, memory_order_relaxed);
    out->output_overflows = atomic_load_explicit(&t->st_overflows, memory_order_relaxed);
    out->pauses = atomic_load_explicit(&t->st_pauses, memory_order_relaxed);
    out->duplicates = atomic_load_explicit(&t->st_duplicates, memory_order_relaxed);
    out->csi_held = atomic_load_explicit(&t->st_csi.held, memory_order_relaxed);
    out->csi_superseded = atomic_load_explicit(&t->st_csi.superseded, memory_order_relaxed);
    out->csi_superseded_bytes = atomic_load_explicit(&t->st_csi.superseded_bytes,
                                                     memory_order_relaxed);
    out->csi_flushes = atomic_load_explicit(&t->st_csi.flushes, memory_order_relaxed);
    out->csi_flushed_bytes = atomic_load_explicit(&t->st_csi.flushed_bytes, memory_order_relaxed);
    out->csi_wakeups_saved = atomic_load_explicit(&t->st_csi.wakeups_saved, memory_order_relaxed);
    out->closed = atomic_load_explicit(&t->st_closed, memory_order_relaxed);
    out->authed_now = atomic_load_explicit(&t->st_authed_now, memory_order_relaxed);
    out->logins = atomic_load_explicit(&t->st_logins, memory_order_relaxed);
    out->stanzas_in = atomic_load_explicit(&t->st_stanzas_in, memory_order_relaxed);
    out->stanzas_out = atomic_load_explicit(&t->st_stanzas_out, memory_order_relaxed);
    out->bytes_in = atomic_load_explicit(&t->st_bytes_in, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&t->st_bytes_out, memory_order_relaxed);
    out->ws_opened = atomic_load_explicit(&t->st_ws_opened, memory_order_relaxed);
    out->ws_closed = atomic_load_explicit(&t->st_ws_closed, memory_order_relaxed);
    out->bosh_opened = atomic_load_explicit(&t->st_bosh_opened, memory_order_relaxed);
    out->bosh_closed = atomic_load_explicit(&t->st_bosh_closed, memory_order_relaxed);
    for (unsigned m = 0; m < IOTHREAD_MECHS; m++)
        for (unsigned r = 0; r < IOTHREAD_AUTH_REASONS; r++)
            out->auth_failed[m][r] = atomic_load_explicit(&t->st_auth_failed[m][r],
                                                          memory_order_relaxed);
}
