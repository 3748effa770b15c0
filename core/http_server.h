/* core/http_server.h — a small HTTP/1.1 server on an event loop, for answers a program computes
 * (the metrics endpoint): GET and HEAD only, requests parsed by the http-parser library (Debian's
 * libhttp-parser) within strict bounds, keep-alive, clear errors.
 *
 * Bounds: HTTP_SERVER_CONNS connections at once (a new one past them is closed at once), a
 * request head of at most HTTP_SERVER_HEAD_MAX bytes (431), no request body (413), a request
 * completed within HTTP_SERVER_IDLE_MS of the connection's last activity (closed otherwise).
 * Errors: 400 (unparsable), 405 (a method but GET or HEAD, with Allow), 413, 431; the handler
 * answers 200, 404 or what it likes.
 *
 * Thread rules: everything on the loop's thread.
 */
#ifndef JABSHARD_CORE_HTTP_SERVER_H
#define JABSHARD_CORE_HTTP_SERVER_H

#include <stddef.h>

#include "core/buf.h"
#include "core/evloop.h"

#define HTTP_SERVER_CONNS 16
#define HTTP_SERVER_HEAD_MAX 8192
#define HTTP_SERVER_IDLE_MS 10000

typedef struct http_server http_server;

/* A request's target path (without the query), NUL-terminated. */
typedef struct http_request {
    const char *path;
} http_request;

/* The handler's answer: status (200 when left at 0), content type, body. */
typedef struct http_response {
    int status;
    const char *content_type;
    buf body;
} http_response;

typedef void (*http_handler)(void *ctx, const http_request *req, http_response *resp);

/* Listens on ip (NULL or "": every address) and port; NULL with the reason in err. */
http_server *http_server_new(evloop *loop, const char *ip, int port, http_handler handler,
                             void *ctx, char *err, size_t errlen);
void http_server_free(http_server *srv);

#endif
