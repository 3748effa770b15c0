/* core/http_request.h — HTTP/1.1 requests read from a connection's bytes, one event at a time
 * (the http-parser library parses them), and the head of an answer. Socket-free: the metrics
 * endpoints (core/http_conn.h) and the front's web listener (shard/web_conn.h) read their
 * requests with it; fuzz/fuzz_http_conn.c and fuzz/fuzz_web_conn.c feed it hostile bytes.
 *
 * Bounds: a request head of at most HTTP_HEAD_MAX bytes (431), a target of at most HTTP_PATH_MAX
 * (414), at most HTTP_HEADERS_MAX header lines (431). Bodies are not held: each piece is handed
 * to the caller as it arrives (chunked or with a Content-Length); what a body may be is the
 * caller's to decide at the head.
 *
 * Thread rules: a reader belongs to one thread.
 */
#ifndef JABSHARD_CORE_HTTP_REQUEST_H
#define JABSHARD_CORE_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define HTTP_HEAD_MAX 8192
#define HTTP_PATH_MAX 2048
#define HTTP_HEADERS_MAX 64

typedef enum {
    HTTP_M_GET, HTTP_M_HEAD, HTTP_M_POST, HTTP_M_PUT, HTTP_M_OPTIONS, HTTP_M_OTHER,
} http_method_id;

/* A request's head; every string is NUL-terminated and lives until the next request. */
typedef struct http_request {
    http_method_id method;
    const char *method_name;
    const char *path;          /* the target up to '?', still percent-encoded */
    const char *query;         /* after '?', or "" */
    bool has_length;           /* Content-Length was given: content_length */
    uint64_t content_length;
    bool chunked;              /* Transfer-Encoding: chunked */
    bool keep_alive;           /* HTTP/1.1 without Connection: close, or 1.0 with keep-alive */
    bool upgrade;              /* Connection: upgrade with an Upgrade header */
    unsigned nheaders;
    struct {
        const char *name;      /* lowercased */
        const char *value;     /* surrounding whitespace removed */
    } headers[HTTP_HEADERS_MAX];
} http_request;

/* The first header of that (lowercase) name, or NULL. */
const char *http_request_header(const http_request *r, const char *lname);
/* Whether the comma-separated header lname lists token (case-insensitive). */
bool http_request_header_has(const http_request *r, const char *lname, const char *token);

typedef enum {
    HTTP_READ_MORE,            /* everything was consumed; nothing else happened */
    HTTP_READ_HEAD,            /* a head is complete: http_reader_request() */
    HTTP_READ_BODY,            /* a piece of the body: *piece, *piece_len (inside data) */
    HTTP_READ_DONE,            /* the request is complete; http_reader_next() before the next */
    HTTP_READ_ERROR,           /* http_reader_status() says what to answer; read nothing more */
} http_read_event;

typedef struct http_reader http_reader;

http_reader *http_reader_new(void);
void http_reader_free(http_reader *r);
/* Reads data up to the next event; *used says how much it consumed. A head's last byte is read
 * with the event after HEAD. After DONE of an upgrade request the rest of the connection's bytes
 * belong to the new protocol (when the caller takes it: then it feeds the reader no more). */
http_read_event http_reader_feed(http_reader *r, const char *data, size_t len, size_t *used,
                                 const char **piece, size_t *piece_len);
const http_request *http_reader_request(const http_reader *r);
int http_reader_status(const http_reader *r);
/* Ready for the next request on the connection (keeps no memory of the last). */
void http_reader_next(http_reader *r);
/* Whether a request is partly read (a head or body in progress). */
bool http_reader_busy(const http_reader *r);

/* The reason phrase of a status. */
const char *http_reason(int status);
/* "HTTP/1.1 <status> <reason>\r\n" */
void http_status_line(buf *out, int status);

#endif
