/* core/http_conn.c — an HTTP/1.1 connection's GET and HEAD requests, read by core/http_request.h
 * (http_conn.h). */
#include "core/http_conn.h"

#include <stdlib.h>

#include "core/http_request.h"
#include "core/mem.h"

struct http_conn {
    http_reader *reader;
    http_handler handler;
    void *ctx;
    int refuse;                 /* an error status decided at the head, or 0 */
    bool closed;                /* an answer said Connection: close: nothing more is read */
};

static void respond(http_conn *c, buf *out, int status, const char *type, const buf *body,
                    bool head)
{
    size_t len = body ? buf_len(body) : 0;
    http_status_line(out, status);
    buf_appendf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                type ? type : "text/plain; charset=utf-8", len);
    if (status == 405)
        buf_appendf(out, "Allow: GET, HEAD\r\n");
    buf_appendf(out, "Cache-Control: no-store\r\n%s\r\n", c->closed ? "Connection: close\r\n" : "");
    if (body && !head)
        buf_append(out, buf_data(body), len);
}

static void refuse(http_conn *c, buf *out, int status)
{
    c->closed = true;
    buf body = BUF_INIT;
    buf_appendf(&body, "%d %s\n", status, http_reason(status));
    respond(c, out, status, NULL, &body, false);
    buf_free(&body);
}

http_conn *http_conn_new(http_handler handler, void *ctx)
{
    http_conn *c = mem_zalloc(sizeof *c);
    c->reader = http_reader_new();
    c->handler = handler;
    c->ctx = ctx;
    return c;
}

void http_conn_free(http_conn *c)
{
    if (!c)
        return;
    http_reader_free(c->reader);
    free(c);
}

static void answer(http_conn *c, buf *out)
{
    const http_request *q = http_reader_request(c->reader);
    if (c->refuse) {
        refuse(c, out, c->refuse);
        return;
    }
    c->closed = !q->keep_alive;
    http_response resp = {0};
    c->handler(c->ctx, q, &resp);
    respond(c, out, resp.status ? resp.status : 200, resp.content_type, &resp.body,
            q->method == HTTP_M_HEAD);
    buf_free(&resp.body);
}

bool http_conn_feed(http_conn *c, const void *data, size_t len, buf *out)
{
    const char *p = data;
    while (len && !c->closed) {
        size_t used;
        const char *piece;
        size_t piece_len;
        http_read_event ev = http_reader_feed(c->reader, p, len, &used, &piece, &piece_len);
        p += used;
        len -= used;
        if (ev == HTTP_READ_ERROR) {
            refuse(c, out, http_reader_status(c->reader));
        } else if (ev == HTTP_READ_HEAD) {
            const http_request *q = http_reader_request(c->reader);
            c->refuse = q->method != HTTP_M_GET && q->method != HTTP_M_HEAD ? 405
                      : q->chunked || q->content_length > 0 ? 413 : 0;
            if (c->refuse)
                refuse(c, out, c->refuse);
        } else if (ev == HTTP_READ_DONE) {
            answer(c, out);
            http_reader_next(c->reader);
            c->refuse = 0;
        }
    }
    return !c->closed;
}
