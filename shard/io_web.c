/* shard/io_web.c — what the IO threads do differently for the web listener's connections
 * (shard/io_conn.h): HTTP requests through shard/web_conn.h, the upgrade to a WebSocket whose
 * messages carry a client stream (shard/websocket.h, shard/xmpp_framing.h), and files sent in
 * pieces while the client takes them. */
#include <errno.h>
#include <string.h>

#include "shard/io_conn.h"

/* A stanza from the SM as one WebSocket message: its xmlns declared (RFC 7395 §3.3.3), the
 * payload itself queued without a copy. */
void ws_push_stanza(conn *c, outq_block *blk, size_t off, size_t len)
{
    const char *el = outq_block_data(blk) + off;
    size_t at = framing_xmlns_at(el, len);
    size_t extra = at ? sizeof FRAMING_CLIENT_XMLNS - 1 : 0;
    uint8_t hdr[WEBSOCKET_HEADER_MAX];
    outq_push_bytes(&c->q, hdr, websocket_text_header(hdr, len + extra));
    if (!at) {
        outq_push_block(&c->q, blk, off, len);
        return;
    }
    outq_push_block(&c->q, blk, off, at);
    outq_push_bytes(&c->q, FRAMING_CLIENT_XMLNS, extra);
    outq_push_block(&c->q, blk, off + at, len - at);
}


/* An element of the stream's own output as a WebSocket message; the stream's end closes the
 * WebSocket too (RFC 7395 §3.6). */
void ws_emit(void *ctx, framing_out_kind kind, const char *data, size_t len)
{
    conn *c = ctx;
    uint8_t hdr[WEBSOCKET_HEADER_MAX];
    outq_push_bytes(&c->q, hdr, websocket_text_header(hdr, len));
    outq_push_bytes(&c->q, data, len);
    if (kind == FRAMING_OUT_CLOSE) {
        buf *b = &c->t->scratch;
        websocket_close(c->ws, 1000, b);
        outq_push_bytes(&c->q, buf_data(b), buf_len(b));
        buf_truncate(b, 0);
    }
}


/* The upgrade is answered: the connection is a client stream inside a WebSocket from now on. */
static void start_websocket(conn *c)
{
    iothread *t = c->t;
    web_conn_free(c->web);
    c->web = NULL;
    c->ws = websocket_new(t->cfg->http.max_message);
    atomic_fetch_add_explicit(&t->st_ws_opened, 1, memory_order_relaxed);
    uint8_t exporter[32];
    bool has = c->ssl && tls_exporter(c->ssl, exporter) == 0;
    c->stream = c2s_stream_new(&t->web_env, c->sid, c->web_secure, has ? exporter : NULL);
    evloop_timer_after(t->loop, &c->auth_timer, (uint64_t)t->lim->auth_timeout * 1000);
}

/* A WebSocket's bytes: its messages go to the stream, whose answers are written before what
 * the decoder answered (our close frame must follow our <close/>). */
void ws_input(conn *c, const char *data, size_t n)
{
    buf *in = &c->t->scratch;
    buf ctl = BUF_INIT;
    unsigned seen = websocket_feed(c->ws, data, n, in, &ctl);
    if (buf_len(in)) {
        unsigned acts = c2s_stream_feed(c->stream, buf_data(in), buf_len(in));
        buf_truncate(in, 0);
        conn_take(c, acts);
    }
    if (seen & WEBSOCKET_BAD_OPEN)
        conn_take(c, c2s_stream_error(c->stream, websocket_condition(c->ws), NULL));
    if (buf_len(&ctl)) {
        outq_push_bytes(&c->q, buf_data(&ctl), buf_len(&ctl));
        mark_dirty(c);
    }
    buf_free(&ctl);
    if ((seen & WEBSOCKET_CLOSED) && !c->closing)
        conn_take(c, C2S_ACT_CLOSE);
}


/* A plain connection's file goes from the page cache to the socket (sendfile), once what was
 * queued before it is written, until the socket is full or the file is sent. */
static void send_file(conn *c)
{
    c->file_wait = false;
    while (c->web && web_conn_sending(c->web) && outq_empty(&c->q)) {
        long n = web_conn_send_file(c->web, c->fd, IO_WEB_QUEUED);
        if (n < 0 && errno == EAGAIN) {
            c->file_wait = true;
            return;
        }
        if (n < 0) {
            conn_kill(c);
            return;
        }
        c->written += (uint64_t)n;
        c->t->n_bytes_out += (uint64_t)n;
    }
}

/* A web connection whose body goes out gets more of it while its queue is short (through TLS:
 * read into the queue), or straight from the file (plain); when it is all out the connection
 * closes or reads its next request (what came meanwhile first). */
void web_pump(conn *c)
{
    iothread *t = c->t;
    if (!c->ssl) {
        send_file(c);
        if (c->dead)
            return;
    }
    while (c->ssl && c->web && web_conn_sending(c->web) && outq_bytes(&c->q) < IO_WEB_QUEUED) {
        long n = web_conn_pull(c->web, &t->scratch, IO_WEB_PIECE);
        if (buf_len(&t->scratch)) {
            outq_push_bytes(&c->q, buf_data(&t->scratch), buf_len(&t->scratch));
            buf_truncate(&t->scratch, 0);
            mark_dirty(c);
        }
        if (n < 0) {
            conn_kill(c);
            return;
        }
    }
    if (c->web && !web_conn_sending(c->web))
        web_next(c);
}

void web_next(conn *c)
{
    if (c->dead || c->closing || !c->web || web_conn_busy(c->web))
        return;
    if (web_conn_closing(c->web)) {
        conn_close_after_write(c);
        return;
    }
    if (buf_len(&c->web_rest)) {
        buf rest = c->web_rest;
        buf_init(&c->web_rest);
        web_input(c, buf_data(&rest), buf_len(&rest));
        buf_free(&rest);
    } else {
        /* Between requests, a keep-alive connection may wait auth_timeout for the next. */
        evloop_timer_after(c->t->loop, &c->auth_timer, (uint64_t)c->t->lim->auth_timeout * 1000);
    }
}

void web_input(conn *c, const char *data, size_t n)
{
    iothread *t = c->t;
    size_t used;
    unsigned acts = web_conn_feed(c->web, data, n, &used, &t->scratch);
    if (buf_len(&t->scratch)) {
        outq_push_bytes(&c->q, buf_data(&t->scratch), buf_len(&t->scratch));
        buf_truncate(&t->scratch, 0);
        mark_dirty(c);
    }
    if (acts & WEB_ACT_UPGRADE) {
        start_websocket(c);
        if (used < n)
            ws_input(c, data + used, n - used);
    } else if (acts & WEB_ACT_BODY) {
        buf_append(&c->web_rest, data + used, n - used);
        web_pump(c);
    } else if (acts & WEB_ACT_BOSH) {
        buf_append(&c->web_rest, data + used, n - used);
        bosh_input(c);
    } else if (acts & WEB_ACT_CLOSE) {
        conn_close_after_write(c);
    } else if (!web_conn_busy(c->web)) {
        /* Between requests, a keep-alive connection may wait auth_timeout for the next. */
        evloop_timer_after(t->loop, &c->auth_timer, (uint64_t)t->lim->auth_timeout * 1000);
    }
}


void ws_ping(conn *c)
{
    buf *b = &c->t->scratch;
    websocket_ping(c->ws, b);
    outq_push_bytes(&c->q, buf_data(b), buf_len(b));
    buf_truncate(b, 0);
}
