/* shard/web_conn.c — the front's web listener's requests, routed (web_conn.h). */
#include "shard/web_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/http_request.h"
#include "core/mem.h"
#include "shard/upload_files.h"
#include "shard/websocket.h"

#define HOST_META_PATH "/.well-known/host-meta"
#define REL_WEBSOCKET "urn:xmpp:alt-connections:websocket"
#define REL_BOSH "urn:xmpp:alt-connections:xbosh"

struct web_conn {
    const front_config *cfg;
    http_reader *reader;
    bool tls, secure;
    buf answer;                /* the answer to the request being read, written at its end */
    bool upgrade;              /* it is a WebSocket's 101 */
    bool close_after;
    bool refused;              /* it is an error: written at once, then the connection closes */
    upload_put *put;           /* the PUT being read */
    upload_get *get;           /* the file being sent (web_conn_pull) */
    bool bosh_reading;         /* the request is a BOSH POST: its body goes to bosh_body */
    bool bosh_waiting;         /* read, and handed over: its answer is awaited */
    buf bosh_body;
};

/* A BOSH request body may hold a stanza of the largest size, with room for the <body/> around
 * it and the escaping a client's library adds. */
#define BOSH_BODY_SLACK 8192

#define CORS_ANY "Access-Control-Allow-Origin: *\r\n"

web_conn *web_conn_new(const front_config *cfg, bool tls, bool secure)
{
    web_conn *w = mem_zalloc(sizeof *w);
    w->cfg = cfg;
    w->reader = http_reader_new();
    w->tls = tls;
    w->secure = secure;
    return w;
}

void web_conn_free(web_conn *w)
{
    if (!w)
        return;
    http_reader_free(w->reader);
    buf_free(&w->answer);
    upload_put_abort(w->put);
    upload_get_free(w->get);
    buf_free(&w->bosh_body);
    free(w);
}

bool web_conn_transferring(const web_conn *w)
{
    return w->put || w->get || w->bosh_reading || w->bosh_waiting;
}

bool web_conn_uploading(const web_conn *w) { return w->put != NULL; }

bool web_conn_busy(const web_conn *w)
{
    return http_reader_busy(w->reader) || w->get || w->bosh_waiting;
}

/* The head of an answer with a body of len bytes (the body follows). */
static void head(web_conn *w, int status, const char *type, size_t len, const char *extra)
{
    http_status_line(&w->answer, status);
    if (type)
        buf_appendf(&w->answer, "Content-Type: %s\r\n", type);
    buf_appendf(&w->answer, "Content-Length: %zu\r\n%s%s\r\n", len, extra ? extra : "",
                w->close_after ? "Connection: close\r\n" : "");
}

static void simple(web_conn *w, int status, const char *text, const char *extra)
{
    if (status >= 400)
        w->close_after = w->refused = true;
    buf body = BUF_INIT;
    buf_appendf(&body, "%d %s%s%s\n", status, http_reason(status), text ? ": " : "",
                text ? text : "");
    head(w, status, "text/plain; charset=utf-8", buf_len(&body), extra);
    buf_append(&w->answer, buf_data(&body), buf_len(&body));
    buf_free(&body);
}

/* Whether s may stand in a URL's authority as the client named us (no quoting needed in XML,
 * JSON or a header). */
static bool plain_authority(const char *s)
{
    if (!*s || strlen(s) > 255)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == ':' || *s == '[' || *s == ']'))
            return false;
    return true;
}

/* "https://host:port" as clients reach us: <public_url>, or this request's scheme and Host. */
static void base_url(const web_conn *w, const http_request *q, buf *out)
{
    const front_http *h = &w->cfg->http;
    if (h->public_url) {
        size_t n = strlen(h->public_url);
        while (n && h->public_url[n - 1] == '/')
            n--;
        buf_append(out, h->public_url, n);
        return;
    }
    const char *host = http_request_header(q, "host");
    buf_appendf(out, "%s://", w->tls ? "https" : "http");
    if (host && plain_authority(host))
        buf_appendf(out, "%s", host);
    else
        buf_appendf(out, "%s:%d", w->cfg->hosts[0], w->tls ? h->tls_port : h->port);
}

/* The WebSocket URL: the base with ws(s) for http(s). */
static void ws_url(const web_conn *w, const http_request *q, buf *out)
{
    buf base = BUF_INIT;
    base_url(w, q, &base);
    const char *b = buf_data(&base);
    size_t skip = strncmp(b, "https", 5) == 0 ? 5 : 4;
    buf_appendf(out, "%s%.*s%s", skip == 5 ? "wss" : "ws", (int)(buf_len(&base) - skip), b + skip,
                w->cfg->http.ws_path);
    buf_free(&base);
}

static void host_meta(web_conn *w, const http_request *q, bool json)
{
    buf url = BUF_INIT, bosh = BUF_INIT, body = BUF_INIT;
    ws_url(w, q, &url);
    const char *bosh_path = w->cfg->http.bosh.path;
    if (bosh_path && bosh_path[0]) {
        base_url(w, q, &bosh);
        buf_appendf(&bosh, "%s", bosh_path);
    }
    const struct {
        const char *rel;
        const buf *href;
    } links[] = {{REL_WEBSOCKET, &url}, {REL_BOSH, &bosh}};
    buf_appendf(&body, json ? "{\"links\":[" : "<?xml version='1.0' encoding='utf-8'?>\n"
                "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n");
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (!buf_len(links[i].href))
            continue;
        buf_appendf(&body, json ? "%s{\"rel\":\"%s\",\"href\":\"%.*s\"}"
                                : "%s  <Link rel='%s' href='%.*s'/>\n",
                    json && i ? "," : "", links[i].rel, (int)buf_len(links[i].href),
                    buf_data(links[i].href));
    }
    buf_appendf(&body, json ? "]}\n" : "</XRD>\n");
    head(w, 200, json ? "application/json" : "application/xrd+xml", buf_len(&body),
         "Access-Control-Allow-Origin: *\r\nCache-Control: max-age=3600\r\n");
    if (q->method != HTTP_M_HEAD)
        buf_append(&w->answer, buf_data(&body), buf_len(&body));
    buf_free(&url);
    buf_free(&bosh);
    buf_free(&body);
}

static bool origin_allowed(const web_conn *w, const http_request *q)
{
    const front_http *h = &w->cfg->http;
    const char *origin = http_request_header(q, "origin");
    if (!origin || !h->norigins)
        return true;
    for (size_t i = 0; i < h->norigins; i++)
        if (strcmp(h->origins[i], origin) == 0)
            return true;
    return false;
}

static void websocket_request(web_conn *w, const http_request *q)
{
    if (!origin_allowed(w, q)) {
        simple(w, 403, "this origin may not open XMPP sessions here", NULL);
        return;
    }
    if (!w->secure && w->cfg->starttls_required) {
        simple(w, 403, "XMPP over WebSocket needs TLS here: use wss://", NULL);
        return;
    }
    buf extra = BUF_INIT;
    int status = websocket_accept(q, &extra);
    if (status == 101) {
        http_status_line(&w->answer, 101);
        buf_append(&w->answer, buf_data(&extra), buf_len(&extra));
        w->upgrade = true;
    } else {
        buf_append(&extra, "", 1);
        simple(w, status, status == 426 ? "WebSocket version 13 only"
                          : "a WebSocket upgrade with the xmpp subprotocol is expected here",
               buf_data(&extra));
    }
    buf_free(&extra);
}

static void preflight(web_conn *w)
{
    head(w, 204, NULL, 0, CORS_ANY
         "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, OPTIONS\r\n"
         "Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 86400\r\n");
}

/* The target below <upload><path>/, or NULL when path is not there. */
static const char *upload_target(const web_conn *w, const char *path)
{
    const front_upload *u = &w->cfg->http.upload;
    size_t n = u->on ? strlen(u->path) : 0;
    return n && strncmp(path, u->path, n) == 0 && path[n] == '/' ? path + n + 1 : NULL;
}

static void upload_request(web_conn *w, const http_request *q, const char *rel)
{
    const front_upload *cfg = &w->cfg->http.upload;
    if (q->method == HTTP_M_PUT) {
        const char *why = NULL;
        int status = upload_put_begin(cfg, rel, q, (int64_t)time(NULL), &w->put, &why);
        if (status)
            simple(w, status, why, CORS_ANY);
        return;
    }
    if (q->method != HTTP_M_GET && q->method != HTTP_M_HEAD) {
        simple(w, 405, NULL, CORS_ANY "Allow: GET, HEAD, PUT, OPTIONS\r\n");
        return;
    }
    buf headers = BUF_INIT;
    buf_append(&headers, CORS_ANY, sizeof CORS_ANY - 1);
    int status = upload_get_begin(cfg, rel, http_request_header(q, "range"),
                                  q->method == HTTP_M_HEAD, &headers, &w->get);
    if (status >= 400) {
        buf_append(&headers, "", 1);
        simple(w, status, NULL, buf_data(&headers));
    } else {
        http_status_line(&w->answer, status);
        buf_append(&w->answer, buf_data(&headers), buf_len(&headers));
        buf_appendf(&w->answer, "%s\r\n", w->close_after ? "Connection: close\r\n" : "");
    }
    buf_free(&headers);
}

/* The PUT's body is all here: stored, or refused. */
static void upload_done(web_conn *w)
{
    const char *why = NULL;
    int status = upload_put_finish(w->put, &why);
    w->put = NULL;
    if (status == 201)
        head(w, 201, NULL, 0, CORS_ANY);
    else
        simple(w, status, why, CORS_ANY);
}

long web_conn_pull(web_conn *w, buf *out, size_t max)
{
    if (!w->get)
        return 0;
    ssize_t n = upload_get_read(w->get, out, max);
    if (n <= 0) {
        upload_get_free(w->get);
        w->get = NULL;
    }
    return n;
}

long web_conn_send_file(web_conn *w, int sock, size_t max)
{
    if (!w->get)
        return 0;
    ssize_t n = upload_get_send(w->get, sock, max);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        int saved = errno;
        upload_get_free(w->get);
        w->get = NULL;
        errno = saved;
    }
    return n;
}

bool web_conn_sending(const web_conn *w) { return w->get != NULL; }

static size_t bosh_body_max(const web_conn *w)
{
    return w->cfg->limits.stanza_size + BOSH_BODY_SLACK;
}

static void bosh_request(web_conn *w, const http_request *q)
{
    if (q->method != HTTP_M_POST) {
        const char *page = "jabshard: this is a BOSH endpoint (XEP-0206): POST to it\n";
        if (q->method != HTTP_M_GET && q->method != HTTP_M_HEAD) {
            simple(w, 405, NULL, CORS_ANY "Allow: GET, HEAD, POST, OPTIONS\r\n");
            return;
        }
        head(w, 200, "text/plain; charset=utf-8", strlen(page), CORS_ANY);
        if (q->method == HTTP_M_GET)
            buf_append(&w->answer, page, strlen(page));
        return;
    }
    if (q->content_length > bosh_body_max(w)) {
        simple(w, 413, "a BOSH body larger than this server takes", CORS_ANY);
        return;
    }
    if (!w->secure && w->cfg->starttls_required) {
        simple(w, 403, "XMPP over BOSH needs TLS here: use https://", CORS_ANY);
        return;
    }
    w->bosh_reading = true;
}

const char *web_conn_bosh_body(const web_conn *w, size_t *len)
{
    *len = buf_len(&w->bosh_body);
    return buf_data(&w->bosh_body) ? buf_data(&w->bosh_body) : "";
}

bool web_conn_bosh_waiting(const web_conn *w) { return w->bosh_waiting; }

void web_conn_bosh_answer(web_conn *w, int status, const char *body, size_t len, buf *out)
{
    w->bosh_waiting = false;
    buf_free(&w->bosh_body);
    head(w, status, "text/xml; charset=utf-8", len, CORS_ANY "Cache-Control: no-store\r\n");
    buf_append(&w->answer, body, len);
    buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
    buf_free(&w->answer);
}

bool web_conn_closing(const web_conn *w) { return w->close_after; }

/* Decides the answer at the head (an error answer closes the connection: simple()). */
static void route(web_conn *w, const http_request *q)
{
    w->close_after = !q->keep_alive;
    bool get = q->method == HTTP_M_GET || q->method == HTTP_M_HEAD;
    bool body = q->chunked || q->content_length > 0;
    const char *path = q->path;
    const char *rel = upload_target(w, path);
    const char *bosh_path = w->cfg->http.bosh.path;
    bool bosh = bosh_path && bosh_path[0] && strcmp(path, bosh_path) == 0;
    if (rel && q->method != HTTP_M_OPTIONS && (!body || q->method == HTTP_M_PUT))
        upload_request(w, q, rel);
    else if (bosh && q->method != HTTP_M_OPTIONS && (!body || q->method == HTTP_M_POST))
        bosh_request(w, q);
    else if (body)
        simple(w, 413, "no body is taken here", NULL);
    else if (q->method == HTTP_M_OPTIONS)
        preflight(w);
    else if (strcmp(path, w->cfg->http.ws_path) == 0)
        websocket_request(w, q);
    else if (strcmp(path, HOST_META_PATH) == 0 || strcmp(path, HOST_META_PATH ".json") == 0)
        get ? host_meta(w, q, strcmp(path, HOST_META_PATH) != 0)
            : simple(w, 405, NULL, "Allow: GET, HEAD, OPTIONS\r\n");
    else
        simple(w, 404, NULL, NULL);
}

unsigned web_conn_feed(web_conn *w, const void *data, size_t len, size_t *used, buf *out)
{
    const char *p = data;
    *used = 0;
    if (w->get)
        return WEB_ACT_BODY;
    if (w->bosh_waiting)
        return WEB_ACT_BOSH;
    while (*used < len) {
        size_t n;
        const char *piece;
        size_t piece_len;
        http_read_event ev = http_reader_feed(w->reader, p + *used, len - *used, &n, &piece,
                                              &piece_len);
        *used += n;
        switch (ev) {
        case HTTP_READ_ERROR:
            buf_free(&w->answer);
            w->close_after = true;
            simple(w, http_reader_status(w->reader), NULL, NULL);
            buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
            buf_free(&w->answer);
            return WEB_ACT_CLOSE;
        case HTTP_READ_HEAD:
            route(w, http_reader_request(w->reader));
            if (w->put && http_request_header_has(http_reader_request(w->reader), "expect",
                                                  "100-continue"))
                buf_appendf(out, "HTTP/1.1 100 Continue\r\n\r\n");
            if (w->refused) {
                buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
                buf_free(&w->answer);
                return WEB_ACT_CLOSE;
            }
            break;
        case HTTP_READ_DONE: {
            if (w->bosh_reading) {
                w->bosh_reading = false;
                w->bosh_waiting = true;
                http_reader_next(w->reader);
                return WEB_ACT_BOSH;
            }
            if (w->put)
                upload_done(w);
            buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
            buf_free(&w->answer);
            http_reader_next(w->reader);
            if (w->upgrade)
                return WEB_ACT_UPGRADE;
            if (w->get)
                return WEB_ACT_BODY;
            if (w->close_after || w->refused)
                return WEB_ACT_CLOSE;
            break;
        }
        case HTTP_READ_BODY: {
            if (w->bosh_reading) {
                if (buf_len(&w->bosh_body) + piece_len > bosh_body_max(w)) {
                    w->bosh_reading = false;
                    simple(w, 413, "a BOSH body larger than this server takes", CORS_ANY);
                    buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
                    buf_free(&w->answer);
                    return WEB_ACT_CLOSE;
                }
                buf_append(&w->bosh_body, piece, piece_len);
                break;
            }
            int status = w->put ? upload_put_write(w->put, piece, piece_len) : 0;
            if (status) {
                upload_put_abort(w->put);
                w->put = NULL;
                simple(w, status, status == 413 ? "the body is longer than its slot" : NULL,
                       CORS_ANY);
                buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
                buf_free(&w->answer);
                return WEB_ACT_CLOSE;
            }
            break;
        }
        case HTTP_READ_MORE:
            break;
        }
    }
    return 0;
}
