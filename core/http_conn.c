/* core/http_conn.c — an HTTP/1.1 connection's requests, parsed by http-parser (http_conn.h). */
#include "core/http_conn.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct http_conn {
    http_parser parser;
    http_parser_settings settings;
    http_handler handler;
    void *ctx;
    size_t head_bytes;          /* of the request being read */
    char path[HTTP_PATH_MAX + 1];
    size_t path_len;
    int refuse;                 /* an error status decided while parsing, or 0 */
    bool complete;              /* the request is read */
    bool closed;                /* an answer said Connection: close: nothing more is read */
};

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void respond(http_conn *c, buf *out, int status, const char *type, const buf *body,
                    bool head)
{
    size_t len = body ? buf_len(body) : 0;
    buf_appendf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                reason(status), type ? type : "text/plain; charset=utf-8", len);
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
    buf_appendf(&body, "%d %s\n", status, reason(status));
    respond(c, out, status, NULL, &body, false);
    buf_free(&body);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    if (c->path_len + len > HTTP_PATH_MAX)
        return 1;
    memcpy(c->path + c->path_len, at, len);
    c->path_len += len;
    c->path[c->path_len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = p->data;
    if (p->method != HTTP_GET && p->method != HTTP_HEAD)
        c->refuse = 405;
    else if (((p->flags & F_CONTENTLENGTH) && p->content_length > 0) ||
             p->uses_transfer_encoding)
        c->refuse = 413;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = p->data;
    c->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static void next_request(http_conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->head_bytes = 0;
    c->path_len = 0;
    c->path[0] = '\0';
    c->refuse = 0;
    c->complete = false;
}

http_conn *http_conn_new(http_handler handler, void *ctx)
{
    http_conn *c = mem_zalloc(sizeof *c);
    c->handler = handler;
    c->ctx = ctx;
    http_parser_settings_init(&c->settings);
    c->settings.on_url = on_url;
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_message_complete = on_message_complete;
    next_request(c);
    return c;
}

void http_conn_free(http_conn *c)
{
    free(c);
}

static void answer(http_conn *c, buf *out)
{
    if (c->refuse) {
        refuse(c, out, c->refuse);
        return;
    }
    c->closed = !http_should_keep_alive(&c->parser);
    char *q = strchr(c->path, '?');
    if (q)
        *q = '\0';
    http_request req = {.path = c->path};
    http_response resp = {0};
    c->handler(c->ctx, &req, &resp);
    respond(c, out, resp.status ? resp.status : 200, resp.content_type, &resp.body,
            c->parser.method == HTTP_HEAD);
    buf_free(&resp.body);
}

bool http_conn_feed(http_conn *c, const void *data, size_t len, buf *out)
{
    const char *p = data;
    while (len && !c->closed) {
        size_t used = http_parser_execute(&c->parser, &c->settings, p, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        c->head_bytes += used;
        if (c->complete) {
            answer(c, out);
            next_request(c);
        } else if (e == HPE_CB_url) {
            refuse(c, out, 414);
        } else if (e != HPE_OK) {
            refuse(c, out, 400);
        } else if (c->head_bytes > HTTP_HEAD_MAX) {
            refuse(c, out, 431);
        } else if (used < len) {
            refuse(c, out, 400);    /* the parser stopped without saying why */
        }
        p += used;
        len -= used;
    }
    if (!c->closed && c->head_bytes > HTTP_HEAD_MAX)
        refuse(c, out, 431);
    return !c->closed;
}
