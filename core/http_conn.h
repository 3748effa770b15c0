/* core/http_conn.h — one HTTP/1.1 connection's requests as a socket-free state machine
 * (core/http_request.h reads them): bytes in, answers out. core/http_server.c gives it sockets;
 * fuzz/fuzz_http_conn.c and the unit tests feed it bytes.
 *
 * GET and HEAD only, within bounds: a request head of at most HTTP_HEAD_MAX bytes (431), a path
 * of at most HTTP_PATH_MAX (414), no body (413); an unparsable request is 400, another method
 * 405 (with Allow). Each error answer closes the connection; requests are answered in order,
 * keep-alive as the client asks.
 *
 * Thread rules: a connection belongs to one thread.
 */
#ifndef JABSHARD_CORE_HTTP_CONN_H
#define JABSHARD_CORE_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/http_request.h"

/* The handler's answer: status (200 when left at 0), content type, body. */
typedef struct http_response {
    int status;
    const char *content_type;
    buf body;
} http_response;

typedef void (*http_handler)(void *ctx, const http_request *req, http_response *resp);

typedef struct http_conn http_conn;

http_conn *http_conn_new(http_handler handler, void *ctx);
void http_conn_free(http_conn *c);
/* Feeds bytes the client sent; every answer they complete is appended to out. Returns false when
 * the connection is to be closed once out is written (an error, or Connection: close). */
bool http_conn_feed(http_conn *c, const void *data, size_t len, buf *out);

#endif
