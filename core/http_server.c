/* core/http_server.c — the small HTTP/1.1 server (http_server.h): a listener, and per connection
 * its http_conn, its output, an idle timer. */
#include "core/http_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/tcp_listen.h"

typedef struct conn conn;

struct http_server {
    evloop *loop;
    int fd;
    evloop_io io;
    http_handler handler;
    void *ctx;
    conn *conns;
    unsigned nconns;
};

struct conn {
    http_server *srv;
    conn *next, **prev;
    int fd;
    evloop_io io;
    timer idle;
    http_conn *http;
    bool closing;           /* close once out is written */
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
    http_conn_free(c->http);
    buf_free(&c->out);
    free(c);
}

/* Writes what the socket takes; then reads again, or closes. false when c is gone. */
static bool flush(conn *c)
{
    while (buf_len(&c->out)) {
        ssize_t n = send(c->fd, buf_data(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_close(c);
            return false;
        }
        buf_consume(&c->out, (size_t)n);
    }
    if (!buf_len(&c->out) && c->closing) {
        conn_close(c);
        return false;
    }
    unsigned want = buf_len(&c->out) ? EVLOOP_WRITE : 0;
    if (!c->closing && buf_len(&c->out) <= HTTP_SERVER_OUT_MAX)
        want |= EVLOOP_READ;
    evloop_io_set(c->srv->loop, &c->io, want);
    return true;
}

static void on_idle(timer *t, void *arg)
{
    conn_close(arg);
}

static void on_conn(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    conn *c = arg;
    evloop_timer_after(loop, &c->idle, HTTP_SERVER_IDLE_MS);
    if ((events & EVLOOP_READ) && !c->closing) {
        char data[4096];
        ssize_t n = recv(c->fd, data, sizeof data, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        if (!http_conn_feed(c->http, data, (size_t)n, &c->out))
            c->closing = true;
    }
    flush(c);
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
        c->http = http_conn_new(srv->handler, srv->ctx);
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
    int fd = tcp_listen(ip, port, 16, false, err, errlen);
    if (fd < 0)
        return NULL;
    http_server *srv = mem_zalloc(sizeof *srv);
    srv->loop = loop;
    srv->fd = fd;
    srv->handler = handler;
    srv->ctx = ctx;
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
