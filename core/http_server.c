/* core/http_server.c — the small HTTP/1.1 server (http_server.h): one listener, connections
 * parsed with http-parser, one request at a time per connection (a pipelined next request waits
 * in the input until the answer is written). */
#include "core/http_server.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define PATH_MAX_BYTES 2048

typedef struct conn conn;

struct http_server {
    evloop *loop;
    int fd;
    evloop_io io;
    http_handler handler;
    void *ctx;
    conn *conns;
    unsigned nconns;
    http_parser_settings settings;
};

struct conn {
    http_server *srv;
    conn *next, **prev;
    int fd;
    evloop_io io;
    timer idle;
    http_parser parser;
    size_t head_bytes;      /* of the request being read */
    char path[PATH_MAX_BYTES + 1];
    size_t path_len;
    int refuse;             /* an error status decided while parsing, or 0 */
    bool complete;          /* the request is read: answering it */
    bool close_after;
    buf in;                 /* bytes received and not parsed yet (the next request) */
    buf out;
};

static void conn_close(conn *c)
{
    http_server *srv = c->srv;
    evloop_timer_cancel(srv->loop, &c->idle);
    evloop_io_set(srv->loop, &c->io, 0);
    close(c->fd);
    *c->prev = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

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
    default: return "Error";
    }
}

/* The response into c->out; head only for HEAD. */
static void respond(conn *c, int status, const char *type, const buf *body)
{
    bool head = c->parser.method == HTTP_HEAD && !c->refuse;
    size_t len = body ? buf_len(body) : 0;
    buf_appendf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                reason(status), type ? type : "text/plain; charset=utf-8", len);
    if (status == 405)
        buf_appendf(&c->out, "Allow: GET, HEAD\r\n");
    buf_appendf(&c->out, "Cache-Control: no-store\r\n%s\r\n",
                c->close_after ? "Connection: close\r\n" : "");
    if (body && !head)
        buf_append(&c->out, buf_data(body), len);
}

static void refuse(conn *c, int status)
{
    c->refuse = status;
    c->close_after = true;
    char text[64];
    buf b = BUF_INIT;
    snprintf(text, sizeof text, "%d %s\n", status, reason(status));
    buf_append(&b, text, strlen(text));
    respond(c, status, NULL, &b);
    buf_free(&b);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->path_len + len > PATH_MAX_BYTES)
        return 1;
    memcpy(c->path + c->path_len, at, len);
    c->path_len += len;
    c->path[c->path_len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    if (p->method != HTTP_GET && p->method != HTTP_HEAD)
        c->refuse = 405;
    else if (((p->flags & F_CONTENTLENGTH) && p->content_length > 0) ||
             p->uses_transfer_encoding)
        c->refuse = 413;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static void answer(conn *c)
{
    if (c->refuse) {
        refuse(c, c->refuse);
        return;
    }
    c->close_after = !http_should_keep_alive(&c->parser);
    char *q = strchr(c->path, '?');
    if (q)
        *q = '\0';
    http_request req = {.path = c->path};
    http_response resp = {0};
    c->srv->handler(c->srv->ctx, &req, &resp);
    respond(c, resp.status ? resp.status : 200, resp.content_type, &resp.body);
    buf_free(&resp.body);
}

static void next_request(conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->head_bytes = 0;
    c->path_len = 0;
    c->path[0] = '\0';
    c->refuse = 0;
    c->complete = false;
}

static void feed(conn *c);

/* Writes what waits; then closes, or goes on with the next request. */
static void flush(conn *c)
{
    while (buf_len(&c->out)) {
        ssize_t n = send(c->fd, buf_data(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            evloop_io_set(c->srv->loop, &c->io, EVLOOP_WRITE);
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    if (c->close_after) {
        conn_close(c);
        return;
    }
    next_request(c);
    evloop_io_set(c->srv->loop, &c->io, EVLOOP_READ);
    if (buf_len(&c->in))
        feed(c);
}

/* Parses what is in c->in, up to the end of one request. */
static void feed(conn *c)
{
    size_t len = buf_len(&c->in);
    size_t used = http_parser_execute(&c->parser, &c->srv->settings, buf_data(&c->in), len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (!c->complete) {
        c->head_bytes += used;
        buf_consume(&c->in, used);
        if (e == HPE_CB_url)
            refuse(c, 414);
        else if (e != HPE_OK)
            refuse(c, 400);
        else if (c->head_bytes > HTTP_SERVER_HEAD_MAX)
            refuse(c, 431);
        if (c->refuse) {
            flush(c);
        }
        return;
    }
    buf_consume(&c->in, used);
    answer(c);
    flush(c);
}

static void on_idle(timer *t, void *arg)
{
    conn_close(arg);
}

static void on_conn(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    conn *c = arg;
    evloop_timer_after(loop, &c->idle, HTTP_SERVER_IDLE_MS);
    if (events & EVLOOP_WRITE) {
        flush(c);
        return;
    }
    char data[4096];
    ssize_t n = recv(c->fd, data, sizeof data, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    if (c->complete || buf_len(&c->out)) {
        /* Answering: the next request waits, within bounds. */
        if (buf_len(&c->in) + (size_t)n > HTTP_SERVER_HEAD_MAX)
            conn_close(c);
        else
            buf_append(&c->in, data, (size_t)n);
        return;
    }
    buf_append(&c->in, data, (size_t)n);
    feed(c);
}

static void on_accept(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    http_server *srv = arg;
    for (;;) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (srv->nconns >= HTTP_SERVER_CONNS) {
            close(fd);
            continue;
        }
        conn *c = mem_zalloc(sizeof *c);
        c->srv = srv;
        c->fd = fd;
        next_request(c);
        c->next = srv->conns;
        c->prev = &srv->conns;
        if (srv->conns)
            srv->conns->prev = &c->next;
        srv->conns = c;
        srv->nconns++;
        timer_init(&c->idle, on_idle, c);
        evloop_timer_after(loop, &c->idle, HTTP_SERVER_IDLE_MS);
        evloop_io_init(&c->io, fd, on_conn, c);
        evloop_io_set(loop, &c->io, EVLOOP_READ);
    }
}

http_server *http_server_new(evloop *loop, const char *ip, int port, http_handler handler,
                             void *ctx, char *err, size_t errlen)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(ip && *ip ? ip : NULL, service, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "%s: %s", ip && *ip ? ip : "*", gai_strerror(gai));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", ip && *ip ? ip : "*", port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    http_server *srv = mem_zalloc(sizeof *srv);
    srv->loop = loop;
    srv->fd = fd;
    srv->handler = handler;
    srv->ctx = ctx;
    http_parser_settings_init(&srv->settings);
    srv->settings.on_url = on_url;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_message_complete = on_message_complete;
    evloop_io_init(&srv->io, fd, on_accept, srv);
    evloop_io_set(loop, &srv->io, EVLOOP_READ);
    return srv;
}

void http_server_free(http_server *srv)
{
    if (!srv)
        return;
    while (srv->conns)
        conn_close(srv->conns);
    evloop_io_set(srv->loop, &srv->io, 0);
    close(srv->fd);
    free(srv);
}
