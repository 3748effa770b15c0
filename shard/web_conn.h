/* shard/web_conn.h — one connection to the front's web listener (<http> in jadc2s.xml), without
 * sockets: HTTP/1.1 requests (read by core/http_request.h) routed to what the front serves on
 * the web: the WebSocket endpoint (RFC 7395; after the upgrade the connection is a client
 * session: shard/websocket.h, shard/c2s_stream.h), the connection discovery files (XEP-0156:
 * /.well-known/host-meta and host-meta.json), BOSH's POSTs (XEP-0124/0206: each body is handed
 * to the session it names, shard/bosh.h, whose answer may come much later), HTTP File Upload's
 * PUTs and GETs under <upload><path> (shard/upload_files.h), CORS preflights; anything else is
 * 404.
 *
 * Requests are answered in order, one at a time; an error answer closes the connection. Bounds:
 * core/http_request.h's on heads; no body is taken where none is expected (413).
 *
 * Thread rules: a web_conn belongs to its connection's IO thread; the config is read-only.
 */
#ifndef JABSHARD_SHARD_WEB_CONN_H
#define JABSHARD_SHARD_WEB_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "shard/front_config.h"

/* What the connection must do after a call (bits). */
enum {
    WEB_ACT_CLOSE = 1,         /* write out, then close */
    WEB_ACT_UPGRADE = 2,       /* write out; from the byte after *used on, the connection is a
                                * WebSocket carrying a client stream */
    WEB_ACT_BODY = 4,          /* write out, then web_conn_pull() the answer's body; what is
                                * after *used waits until it is all pulled */
    WEB_ACT_BOSH = 8,          /* a BOSH request is read (web_conn_bosh_body()); what is after
                                * *used waits for its answer (web_conn_bosh_answer()) */
};

typedef struct web_conn web_conn;

/* tls: the connection came in on the HTTPS port; secure: it is encrypted end to end as far as
 * we can tell (TLS, or a plain connection from <http><secure_from>). */
web_conn *web_conn_new(const front_config *cfg, bool tls, bool secure);
void web_conn_free(web_conn *w);

/* Bytes from the client; answers go to out. *used: how much was read (all, unless an action
 * stopped reading). */
unsigned web_conn_feed(web_conn *w, const void *data, size_t len, size_t *used, buf *out);

/* Appends up to max more bytes of the answer's body to out: returns how many, 0 when it is
 * complete (then the connection closes if web_conn_closing() says so, else goes on with the next
 * request), -1 when it cannot go on (close the connection). */
long web_conn_pull(web_conn *w, buf *out, size_t max);
/* The same, sent straight from the file to the plain socket sock (upload_get_send) instead of
 * appended: returns how many bytes, 0 when complete, -1 with errno EAGAIN when the socket is
 * full (wait for writability), -1 otherwise when it cannot go on (close the connection). */
long web_conn_send_file(web_conn *w, int sock, size_t max);
bool web_conn_sending(const web_conn *w);
bool web_conn_closing(const web_conn *w);

/* After WEB_ACT_BOSH: the request's body (valid until the answer). */
const char *web_conn_bosh_body(const web_conn *w, size_t *len);
/* The answer to it (a complete body; status as BOSH gives it); the head and body go to out. */
void web_conn_bosh_answer(web_conn *w, int status, const char *body, size_t len, buf *out);
bool web_conn_bosh_waiting(const web_conn *w);

/* Whether a body is being received or sent, or an answer awaited: the connection may take
 * longer than a request's head would (an upload on a slow link, a BOSH wait). */
bool web_conn_transferring(const web_conn *w);
/* Whether a PUT's body is being read (not paced as a client's stanzas are: its size was
 * signed). */
bool web_conn_uploading(const web_conn *w);

/* Whether a request is partly read, or its answer is not all written (the connection is not
 * idle between requests). */
bool web_conn_busy(const web_conn *w);

#endif
