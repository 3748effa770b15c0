/* tests/bench/loadgen/lg_ws.c — XMPP over WebSocket for the load generator (see lg_ws.h).
 *
 * Masks: RFC 6455 asks for unpredictable masks so that a client's bytes cannot be chosen to look
 * like something else to an intermediary. A load generator talks to the server under test on
 * loopback; one getrandom(2) per frame would be a system call per message for nothing, so the
 * masks come from a xorshift generator seeded once from the kernel. */
#include "tests/bench/loadgen/lg_ws.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/random.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* The longest 101 response accepted (status line and headers). */
#define WS_MAX_RESPONSE 8192

void lg_ws_free(lg_ws *ws)
{
    buf_free(&ws->in);
    buf_free(&ws->msg);
    *ws = (lg_ws){0};
}

static uint32_t next_mask(void)
{
    static __thread uint64_t s;
    if (!s)
        s = random_u64() | 1;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (uint32_t)(s >> 16);
}

void lg_ws_accept(const char *key, char out[29])
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char both[128];
    int n = snprintf(both, sizeof(both), "%.60s%s", key, WS_GUID);
    SHA1((const unsigned char *)both, (size_t)n, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest));
}

void lg_ws_request(lg_ws *ws, const char *host, unsigned port, const char *path, buf *out)
{
    unsigned char raw[16];
    random_bytes(raw, sizeof(raw));
    EVP_EncodeBlock((unsigned char *)ws->key, raw, sizeof(raw));
    buf_appendf(out,
                "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
                path, host, port, ws->key);
}

void lg_ws_frame(buf *out, unsigned opcode, const char *data, size_t len, uint32_t mask)
{
    char *h = buf_reserve(out, 14 + len);
    size_t n = 0;
    h[n++] = (char)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        h[n++] = (char)(0x80 | len);
    } else if (len <= 0xffff) {
        h[n++] = (char)(0x80 | 126);
        h[n++] = (char)(len >> 8);
        h[n++] = (char)len;
    } else {
        h[n++] = (char)(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8)
            h[n++] = (char)((uint64_t)len >> shift);
    }
    uint8_t m[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
                    (uint8_t)mask};
    memcpy(h + n, m, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        h[n + i] = (char)((uint8_t)data[i] ^ m[i & 3]);
    buf_commit(out, n + len);
}

void lg_ws_open(const char *domain, buf *out)
{
    char open[512];
    int n = snprintf(open, sizeof(open),
                     "<open xmlns='" LG_WS_NS_FRAMING "' to='%s' version='1.0'/>", domain);
    lg_ws_frame(out, LG_WS_OP_TEXT, open, (size_t)n < sizeof(open) ? (size_t)n : sizeof(open) - 1,
                next_mask());
}

/* The index of the first '>' (or, with at_space, whitespace) outside quoted attribute values in
 * p[i..len), or len. */
static size_t tag_scan(const char *p, size_t i, size_t len, bool at_space)
{
    char quote = 0;
    for (; i < len; i++) {
        char ch = p[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (ch == '>' || (at_space && isspace((unsigned char)ch))) {
            return i;
        }
    }
    return len;
}

size_t lg_ws_element_len(const char *data, size_t len)
{
    size_t i = 0;
    if (len && data[0] != '<') {   /* text (whitespace between elements): up to the next tag */
        while (i < len && data[i] != '<')
            i++;
        return i;
    }
    int depth = 0;
    while (i < len) {
        if (data[i] != '<') {
            i++;
            continue;
        }
        bool end_tag = i + 1 < len && data[i + 1] == '/';
        size_t j = tag_scan(data, i + 1, len, false);
        if (j >= len)
            return len;
        if (end_tag)
            depth--;
        else if (data[j - 1] != '/')
            depth++;
        i = j + 1;
        if (depth <= 0)
            return i;
    }
    return len;
}

static bool all_space(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)p[i]))
            return false;
    return true;
}

size_t lg_ws_xmlns_at(const char *el, size_t len)
{
    if (len < 2 || el[0] != '<' || el[1] == '/')
        return 0;
    size_t name = 1 + strcspn(el + 1, " \t\r\n/>");
    for (size_t i = name; i < len; i++) {   /* from one blank outside quotes to the next */
        i = tag_scan(el, i, len, true);
        if (i >= len)
            return 0;
        if (el[i] == '>')
            return name;
        if (i + 6 < len && memcmp(el + i + 1, "xmlns", 5) == 0 &&
            (el[i + 6] == '=' || isspace((unsigned char)el[i + 6])))
            return 0;
    }
    return 0;
}

/* One element as a text frame, qualified with jabber:client when it relied on the stream's
 * default namespace (RFC 7395 §3.3.1: every message is a document of its own). */
static void send_element(const char *el, size_t n, buf *out)
{
    static const char xmlns[] = " xmlns='jabber:client'";
    size_t at = lg_ws_xmlns_at(el, n);
    if (!at) {
        lg_ws_frame(out, LG_WS_OP_TEXT, el, n, next_mask());
        return;
    }
    static __thread buf scratch;
    buf_append(&scratch, el, at);
    buf_append(&scratch, xmlns, sizeof(xmlns) - 1);
    buf_append(&scratch, el + at, n - at);
    lg_ws_frame(out, LG_WS_OP_TEXT, buf_data(&scratch), buf_len(&scratch), next_mask());
    buf_consume(&scratch, buf_len(&scratch));
}

void lg_ws_send(const char *data, size_t len, buf *out)
{
    static const char close[] = "<close xmlns='" LG_WS_NS_FRAMING "'/>";
    if (all_space(data, len)) {   /* a whitespace keepalive */
        lg_ws_frame(out, LG_WS_OP_PING, NULL, 0, next_mask());
        return;
    }
    while (len) {
        size_t n = lg_ws_element_len(data, len);
        if (!all_space(data, n)) {
            if (n == sizeof(LG_WS_STREAM_CLOSE) - 1 && memcmp(data, LG_WS_STREAM_CLOSE, n) == 0)
                lg_ws_frame(out, LG_WS_OP_TEXT, close, sizeof(close) - 1, next_mask());
            else
                send_element(data, n, out);
        }
        data += n;
        len -= n;
    }
}

int lg_ws_parse_header(const uint8_t *d, size_t len, lg_ws_header *h)
{
    if (len < 2)
        return 0;
    if (d[0] & 0x70)
        return -1;
    *h = (lg_ws_header){.fin = d[0] & 0x80, .opcode = d[0] & 0x0f, .masked = d[1] & 0x80};
    uint64_t plen = d[1] & 0x7f;
    size_t n = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)d[2] << 8 | d[3];
        n = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | d[2 + i];
        n = 10;
    }
    if (h->masked) {
        if (len < n + 4)
            return 0;
        h->mask = (uint32_t)d[n] << 24 | (uint32_t)d[n + 1] << 16 | (uint32_t)d[n + 2] << 8 |
                  d[n + 3];
        n += 4;
    }
    h->payload_len = plen;
    h->header_len = n;
    return 1;
}

static bool ws_fail(lg_ws_sink sink, void *ctx, const char *why)
{
    sink(ctx, LG_WS_ERROR, why, strlen(why));
    return false;
}

/* The value of header name in the response head (NUL-ended lines after the status line), with
 * its surrounding blanks cut, copied into out; false when it is absent. */
static bool header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
            continue;
        const char *v = line + nlen + 1, *end = strstr(v, "\r\n");
        if (!end)
            end = v + strlen(v);
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        snprintf(out, cap, "%.*s", (int)(end - v), v);
        return true;
    }
    return false;
}

static bool has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len == n && strncasecmp(p, token, n) == 0)
            return true;
        p += len;
    }
    return false;
}

/* Checks the response head (NUL-ended); NULL when it is a good 101, else why not. */
static const char *check_response(const lg_ws *ws, const char *head, char *why, size_t cap)
{
    char v[256], want[29];
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        snprintf(why, cap, "upgrade refused: %.*s", (int)strcspn(head, "\r\n"), head);
        return why;
    }
    if (!header_value(head, "Upgrade", v, sizeof(v)) || strcasecmp(v, "websocket") != 0)
        return "101 without Upgrade: websocket";
    if (!header_value(head, "Connection", v, sizeof(v)) || !has_token(v, "upgrade"))
        return "101 without Connection: Upgrade";
    lg_ws_accept(ws->key, want);
    if (!header_value(head, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, want) != 0)
        return "101 with a wrong or no Sec-WebSocket-Accept";
    if (!header_value(head, "Sec-WebSocket-Protocol", v, sizeof(v)) || strcmp(v, "xmpp") != 0)
        return "101 without Sec-WebSocket-Protocol: xmpp";
    return NULL;
}

/* A whole text message: classified and reported. */
static bool on_message(lg_ws *ws, const char *p, size_t len, lg_ws_sink sink, void *ctx)
{
    size_t skip = 0;
    while (skip < len && isspace((unsigned char)p[skip]))
        skip++;
    if (len - skip > 5 && memcmp(p + skip, "<?xml", 5) == 0) {   /* a declaration: not ours */
        const char *end = memmem(p + skip, len - skip, "?>", 2);
        skip = end ? (size_t)(end - p) + 2 : len;
        while (skip < len && isspace((unsigned char)p[skip]))
            skip++;
    }
    const char *el = p + skip;
    size_t n = len - skip;
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "<close" : "<open";
        size_t nl = strlen(name);
        if (n > nl && memcmp(el, name, nl) == 0 &&
            (isspace((unsigned char)el[nl]) || el[nl] == '/' || el[nl] == '>')) {
            if (i == 0)
                return sink(ctx, LG_WS_OPEN, el, n);
            if (ws->closed)
                return true;
            ws->closed = true;
            return sink(ctx, LG_WS_CLOSE, el, n);
        }
    }
    if (!n)
        return true;   /* nothing but whitespace */
    return sink(ctx, LG_WS_ELEMENT, el, n);
}

/* Reads frames from data; *used is set to the bytes of whole frames. */
static bool read_frames(lg_ws *ws, const char *data, size_t len, size_t *used, lg_ws_sink sink,
                        void *ctx)
{
    size_t at = 0;
    for (;;) {
        lg_ws_header h;
        int rc = lg_ws_parse_header((const uint8_t *)data + at, len - at, &h);
        if (rc < 0)
            return ws_fail(sink, ctx, "a server frame with a reserved bit set");
        if (rc == 0)
            break;
        if (h.masked)
            return ws_fail(sink, ctx, "a masked server frame (RFC 6455 §5.1)");
        if (h.payload_len > LG_WS_MAX_MESSAGE)
            return ws_fail(sink, ctx, "a server frame over 16 MiB");
        if (len - at - h.header_len < h.payload_len)
            break;
        const char *payload = data + at + h.header_len;
        size_t plen = (size_t)h.payload_len;
        at += h.header_len + plen;
        *used = at;
        switch (h.opcode) {
        case LG_WS_OP_PING: {
            buf pong = BUF_INIT;
            lg_ws_frame(&pong, LG_WS_OP_PONG, payload, plen, next_mask());
            bool ok = sink(ctx, LG_WS_WRITE, buf_data(&pong), buf_len(&pong));
            buf_free(&pong);
            if (!ok)
                return false;
            continue;
        }
        case LG_WS_OP_PONG:
            continue;
        case LG_WS_OP_CLOSE:
            if (ws->closed)
                continue;
            ws->closed = true;
            if (!sink(ctx, LG_WS_CLOSE, payload, plen))
                return false;
            continue;
        case LG_WS_OP_TEXT:
        case LG_WS_OP_CONT:
            break;
        default:
            return ws_fail(sink, ctx, "a binary or unknown server frame");
        }
        if (h.opcode == LG_WS_OP_TEXT && buf_len(&ws->msg))
            return ws_fail(sink, ctx, "a new message inside a fragmented one");
        if (h.opcode == LG_WS_OP_CONT && !ws->msg_op)
            return ws_fail(sink, ctx, "a continuation frame outside a message");
        if (h.fin && !buf_len(&ws->msg)) {   /* the usual case: a whole message, no copy */
            if (!on_message(ws, payload, plen, sink, ctx))
                return false;
            continue;
        }
        if (buf_len(&ws->msg) + plen > LG_WS_MAX_MESSAGE)
            return ws_fail(sink, ctx, "a server message over 16 MiB");
        buf_append(&ws->msg, payload, plen);
        ws->msg_op = LG_WS_OP_TEXT;
        if (h.fin) {
            buf whole = ws->msg;
            ws->msg = (buf)BUF_INIT;
            ws->msg_op = 0;
            bool ok = on_message(ws, buf_data(&whole), buf_len(&whole), sink, ctx);
            buf_free(&whole);
            if (!ok)
                return false;
        }
    }
    return true;
}

bool lg_ws_input(lg_ws *ws, const char *data, size_t len, lg_ws_sink sink, void *ctx)
{
    if (!ws->open) {
        buf_append(&ws->in, data, len);
        const char *head = buf_data(&ws->in);
        const char *end = memmem(head, buf_len(&ws->in), "\r\n\r\n", 4);
        if (!end) {
            if (buf_len(&ws->in) > WS_MAX_RESPONSE)
                return ws_fail(sink, ctx, "an upgrade response over 8 KiB");
            return true;
        }
        size_t head_len = (size_t)(end - head) + 4;
        char text[WS_MAX_RESPONSE + 1], why[160];
        if (head_len > WS_MAX_RESPONSE)
            return ws_fail(sink, ctx, "an upgrade response over 8 KiB");
        memcpy(text, head, head_len - 2);
        text[head_len - 2] = '\0';   /* the last header's CRLF kept: header_value looks for it */
        const char *bad = check_response(ws, text, why, sizeof(why));
        if (bad)
            return ws_fail(sink, ctx, bad);
        ws->open = true;
        buf rest = ws->in;
        ws->in = (buf)BUF_INIT;
        buf_consume(&rest, head_len);
        if (!sink(ctx, LG_WS_UPGRADED, NULL, 0)) {
            buf_free(&rest);
            return false;
        }
        bool ok = !buf_len(&rest) || lg_ws_input(ws, buf_data(&rest), buf_len(&rest), sink, ctx);
        buf_free(&rest);
        return ok;
    }
    size_t used = 0;
    if (!buf_len(&ws->in)) {   /* whole frames straight from the caller's buffer */
        if (!read_frames(ws, data, len, &used, sink, ctx))
            return false;
        if (used < len)
            buf_append(&ws->in, data + used, len - used);
        return true;
    }
    /* In place: a sink that returns true leaves ws alone; after false nothing here touches it. */
    buf_append(&ws->in, data, len);
    if (!read_frames(ws, buf_data(&ws->in), buf_len(&ws->in), &used, sink, ctx))
        return false;
    buf_consume(&ws->in, used);
    if (!buf_len(&ws->in))
        buf_free(&ws->in);
    return true;
}
