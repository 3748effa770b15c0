/* core/http_request.c — HTTP/1.1 requests read by http-parser, one event at a time
 * (http_request.h). */
#include "core/http_request.h"

#include <ctype.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"

struct http_reader {
    http_parser parser;
    http_parser_settings settings;
    buf head;                  /* the target, then header names and values, each NUL-ended */
    size_t url_len;
    size_t head_bytes;         /* of the head being read */
    size_t offs[2 * HTTP_HEADERS_MAX];  /* where each name and value starts in head */
    unsigned nheaders;
    enum { P_URL, P_FIELD, P_VALUE } piece_kind;  /* what the head's last bytes were */
    bool started;              /* a request has begun */
    bool head_done;
    int status;                /* an error decided in a callback, or 0 */
    http_read_event event;     /* what the pause in a callback means */
    const char *piece;
    size_t piece_len;
    http_request req;
};

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

void http_status_line(buf *out, int status)
{
    buf_appendf(out, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
}

const char *http_request_header(const http_request *r, const char *lname)
{
    for (unsigned i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, lname) == 0)
            return r->headers[i].value;
    return NULL;
}

bool http_request_header_has(const http_request *r, const char *lname, const char *token)
{
    size_t tlen = strlen(token);
    for (unsigned i = 0; i < r->nheaders; i++) {
        if (strcmp(r->headers[i].name, lname) != 0)
            continue;
        const char *p = r->headers[i].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *end = p;
            while (*end && *end != ',')
                end++;
            const char *last = end;
            while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
                last--;
            if ((size_t)(last - p) == tlen && strncasecmp(p, token, tlen) == 0)
                return true;
            p = end;
        }
    }
    return false;
}

static http_reader *reader_of(http_parser *p) { return p->data; }

static int on_message_begin(http_parser *p)
{
    reader_of(p)->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_reader *r = reader_of(p);
    if (r->url_len + len > HTTP_PATH_MAX) {
        r->status = 414;
        return 1;
    }
    buf_append(&r->head, at, len);
    r->url_len += len;
    return 0;
}

/* Ends the string in progress (the target, a name or a value) and starts the next. */
static bool start_piece(http_reader *r, bool value)
{
    if (!value && r->nheaders == HTTP_HEADERS_MAX) {
        r->status = 431;
        return false;
    }
    buf_append(&r->head, "", 1);
    r->offs[2 * r->nheaders + (value ? 1 : 0)] = buf_len(&r->head);
    if (value)
        r->nheaders++;
    r->piece_kind = value ? P_VALUE : P_FIELD;
    return true;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_reader *r = reader_of(p);
    if (r->piece_kind != P_FIELD && !start_piece(r, false))
        return 1;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)at[i]);
        buf_append(&r->head, &c, 1);
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_reader *r = reader_of(p);
    if (r->piece_kind != P_VALUE && !start_piece(r, true))
        return 1;
    buf_append(&r->head, at, len);
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static http_method_id method_id(unsigned m)
{
    switch (m) {
    case HTTP_GET: return HTTP_M_GET;
    case HTTP_HEAD: return HTTP_M_HEAD;
    case HTTP_POST: return HTTP_M_POST;
    case HTTP_PUT: return HTTP_M_PUT;
    case HTTP_OPTIONS: return HTTP_M_OPTIONS;
    default: return HTTP_M_OTHER;
    }
}

static int on_headers_complete(http_parser *p)
{
    http_reader *r = reader_of(p);
    buf_append(&r->head, "", 1);
    char *base = buf_data(&r->head);
    http_request *q = &r->req;
    memset(q, 0, sizeof *q);
    q->method = method_id(p->method);
    q->method_name = http_method_str(p->method);
    char *path = base;
    char *query = strchr(path, '?');
    if (query)
        *query++ = '\0';
    char *hash = strchr(query ? query : path, '#');
    if (hash)
        *hash = '\0';
    q->path = path;
    q->query = query ? query : "";
    for (unsigned i = 0; i < r->nheaders; i++) {
        q->headers[i].name = base + r->offs[2 * i];
        q->headers[i].value = trim(base + r->offs[2 * i + 1]);
    }
    q->nheaders = r->nheaders;
    q->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    q->content_length = q->has_length ? p->content_length : 0;
    q->chunked = (p->flags & F_CHUNKED) != 0;
    q->keep_alive = http_should_keep_alive(p) != 0;
    q->upgrade = p->upgrade != 0;
    r->head_done = true;
    r->event = HTTP_READ_HEAD;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_reader *r = reader_of(p);
    r->event = HTTP_READ_BODY;
    r->piece = at;
    r->piece_len = len;
    http_parser_pause(p, 1);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_reader *r = reader_of(p);
    r->event = HTTP_READ_DONE;
    http_parser_pause(p, 1);
    return 0;
}

void http_reader_next(http_reader *r)
{
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    buf_free(&r->head);
    r->url_len = r->head_bytes = 0;
    r->nheaders = 0;
    r->piece_kind = P_URL;
    r->started = r->head_done = false;
    r->status = 0;
}

http_reader *http_reader_new(void)
{
    http_reader *r = mem_zalloc(sizeof *r);
    http_parser_settings_init(&r->settings);
    r->settings.on_message_begin = on_message_begin;
    r->settings.on_url = on_url;
    r->settings.on_header_field = on_header_field;
    r->settings.on_header_value = on_header_value;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_message_complete = on_message_complete;
    http_reader_next(r);
    return r;
}

void http_reader_free(http_reader *r)
{
    if (!r)
        return;
    buf_free(&r->head);
    free(r);
}

const http_request *http_reader_request(const http_reader *r) { return &r->req; }

int http_reader_status(const http_reader *r) { return r->status; }

bool http_reader_busy(const http_reader *r) { return r->started; }

http_read_event http_reader_feed(http_reader *r, const char *data, size_t len, size_t *used,
                                 const char **piece, size_t *piece_len)
{
    *used = 0;
    if (r->status)
        return HTTP_READ_ERROR;
    if (!len)
        return HTTP_READ_MORE;
    bool in_head = !r->head_done;
    r->event = HTTP_READ_MORE;
    size_t n = http_parser_execute(&r->parser, &r->settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    *used = n;
    if (in_head) {
        r->head_bytes += n;
        if (r->head_bytes > HTTP_HEAD_MAX && !r->status)
            r->status = 431;
    }
    if (r->status)
        return HTTP_READ_ERROR;
    if (e == HPE_PAUSED) {
        http_parser_pause(&r->parser, 0);
        if (r->event == HTTP_READ_BODY) {
            *piece = r->piece;
            *piece_len = r->piece_len;
        }
        return r->event;
    }
    if (e != HPE_OK || n < len) {
        r->status = 400;
        return HTTP_READ_ERROR;
    }
    return HTTP_READ_MORE;
}
