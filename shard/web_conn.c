/* shard/web_conn.c — the front's web listener's requests, routed (web_conn.h). */
#include "shard/web_conn.h"

#include <stdlib.h>
#include <string.h>

#include "core/http_request.h"
#include "core/mem.h"
#include "shard/websocket.h"

#define HOST_META_PATH "/.well-known/host-meta"
#define REL_WEBSOCKET "urn:xmpp:alt-connections:websocket"

struct web_conn {
    const front_config *cfg;
    http_reader *reader;
    bool tls, secure;
    buf answer;                /* the answer to the request being read, written at its end */
    bool upgrade;              /* it is a WebSocket's 101 */
    bool close_after;
    bool refused;              /* it is an error: written at once, then the connection closes */
};

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
    free(w);
}

bool web_conn_busy(const web_conn *w) { return http_reader_busy(w->reader); }

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
    buf url = BUF_INIT, body = BUF_INIT;
    ws_url(w, q, &url);
    if (json)
        buf_appendf(&body, "{\"links\":[{\"rel\":\"%s\",\"href\":\"%.*s\"}]}\n", REL_WEBSOCKET,
                    (int)buf_len(&url), buf_data(&url));
    else
        buf_appendf(&body, "<?xml version='1.0' encoding='utf-8'?>\n"
                    "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
                    "  <Link rel='%s' href='%.*s'/>\n</XRD>\n", REL_WEBSOCKET,
                    (int)buf_len(&url), buf_data(&url));
    head(w, 200, json ? "application/json" : "application/xrd+xml", buf_len(&body),
         "Access-Control-Allow-Origin: *\r\nCache-Control: max-age=3600\r\n");
    if (q->method != HTTP_M_HEAD)
        buf_append(&w->answer, buf_data(&body), buf_len(&body));
    buf_free(&url);
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
        simple(w, status, status == 426 ? "WebSocket version 13 only"
                          : "a WebSocket upgrade with the xmpp subprotocol is expected here",
               buf_len(&extra) ? buf_data(&extra) : NULL);
    }
    buf_free(&extra);
}

static void preflight(web_conn *w)
{
    head(w, 204, NULL, 0, "Access-Control-Allow-Origin: *\r\n"
         "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
         "Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 86400\r\n");
}

/* Decides the answer at the head (an error answer closes the connection: simple()). */
static void route(web_conn *w, const http_request *q)
{
    w->close_after = !q->keep_alive;
    bool get = q->method == HTTP_M_GET || q->method == HTTP_M_HEAD;
    bool body = q->chunked || q->content_length > 0;
    const char *path = q->path;
    if (body)
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
            if (w->refused) {
                buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
                buf_free(&w->answer);
                return WEB_ACT_CLOSE;
            }
            break;
        case HTTP_READ_DONE: {
            buf_append(out, buf_data(&w->answer), buf_len(&w->answer));
            buf_free(&w->answer);
            http_reader_next(w->reader);
            if (w->upgrade)
                return WEB_ACT_UPGRADE;
            if (w->close_after)
                return WEB_ACT_CLOSE;
            break;
        }
        case HTTP_READ_BODY:
        case HTTP_READ_MORE:
            break;
        }
    }
    return 0;
}
