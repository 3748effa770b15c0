/* core/http_server.h — a small HTTP/1.1 server on an event loop, for answers a program computes
 * (the metrics endpoints): sockets around core/http_conn.h's requests (GET and HEAD, strict
 * bounds, clear errors, keep-alive).
 *
 * Bounds: HTTP_SERVER_CONNS connections at once (one past them is closed at once), an answer
 * that waits to be written stops reading the connection past HTTP_SERVER_OUT_MAX bytes, and a
 * connection quiet for HTTP_SERVER_IDLE_MS is closed.
 *
 * Thread rules: everything on the loop's thread.
 */
#ifndef JABSHARD_CORE_HTTP_SERVER_H
#define JABSHARD_CORE_HTTP_SERVER_H

#include <stddef.h>

#include "core/evloop.h"
#include "core/http_conn.h"

#define HTTP_SERVER_CONNS 16
#define HTTP_SERVER_OUT_MAX (1024 * 1024)
#define HTTP_SERVER_IDLE_MS 10000

typedef struct http_server http_server;

/* Listens on ip (NULL or "": every address) and port; NULL with the reason in err. */
http_server *http_server_new(evloop *loop, const char *ip, int port, http_handler handler,
                             void *ctx, char *err, size_t errlen);
void http_server_free(http_server *srv);

#endif
