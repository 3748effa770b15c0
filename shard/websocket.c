/* shard/websocket.c — a client's WebSocket carrying an XMPP stream (websocket.h). */
#include "shard/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "core/mem.h"
#include "shard/xmpp_framing.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct websocket {
    wslay_event_context_ptr ctx;
    /* During websocket_feed: the input not yet given to wslay, and where its output goes. */
    const uint8_t *in;
    size_t in_len;
    buf *stream, *out;
    unsigned seen;
    const char *condition;
};

int websocket_accept(const http_request *req, buf *out)
{
    const char *key = http_request_header(req, "sec-websocket-key");
    const char *version = http_request_header(req, "sec-websocket-version");
    if (req->method != HTTP_M_GET || !http_request_header_has(req, "upgrade", "websocket") ||
        !http_request_header_has(req, "connection", "upgrade") || !key)
        return 400;
    if (!version || strcmp(version, "13") != 0) {
        buf_appendf(out, "Sec-WebSocket-Version: 13\r\n");
        return 426;
    }
    unsigned char raw[32];
    size_t klen = strlen(key);
    if (klen != 24 || EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
        return 400;     /* 16 bytes, base64 (two '=' of padding: 18 decoded with them) */
    if (!http_request_header_has(req, "sec-websocket-protocol", "xmpp"))
        return 400;
    char keyed[24 + sizeof WS_GUID];
    memcpy(keyed, key, 24);
    memcpy(keyed + 24, WS_GUID, sizeof WS_GUID);
    unsigned char digest[SHA_DIGEST_LENGTH];
    EVP_Digest(keyed, 24 + sizeof WS_GUID - 1, digest, NULL, EVP_sha1(), NULL);
    char accept[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    buf_appendf(out, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                "Sec-WebSocket-Protocol: xmpp\r\n\r\n", accept);
    return 101;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *data, size_t len, int flags,
                       void *user)
{
    websocket *w = user;
    if (!w->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < w->in_len ? len : w->in_len;
    memcpy(data, w->in, n);
    w->in += n;
    w->in_len -= n;
    return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    websocket *w = user;
    if (!w->out) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    buf_append(w->out, data, len);
    return (ssize_t)len;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                       void *user)
{
    websocket *w = user;
    if (w->seen & WEBSOCKET_BAD_OPEN)
        return;
    if (m->opcode == WSLAY_BINARY_FRAME) {
        /* RFC 7395 §3.2: XMPP goes in text frames only. */
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
        return;
    }
    if (m->opcode != WSLAY_TEXT_FRAME)
        return;         /* pings are answered by wslay, pongs need nothing, close: see feed */
    switch (framing_in((const char *)m->msg, m->msg_length, w->stream)) {
    case FRAMING_IN_BAD_NAMESPACE:
        w->seen |= WEBSOCKET_BAD_OPEN;
        w->condition = "invalid-namespace";
        break;
    case FRAMING_IN_NOT_WELL_FORMED:
        w->seen |= WEBSOCKET_BAD_OPEN;
        w->condition = "not-well-formed";
        break;
    default:
        break;
    }
}

websocket *websocket_new(size_t max_message)
{
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .on_msg_recv_callback = on_message,
    };
    websocket *w = mem_zalloc(sizeof *w);
    if (wslay_event_context_server_init(&w->ctx, &callbacks, w) != 0) {
        free(w);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(w->ctx, max_message);
    return w;
}

void websocket_free(websocket *w)
{
    if (!w)
        return;
    wslay_event_context_free(w->ctx);
    free(w);
}

/* Writes what wslay queued (its answers, our close) to out. */
static void flush(websocket *w, buf *out)
{
    w->out = out;
    wslay_event_send(w->ctx);
    w->out = NULL;
}

unsigned websocket_feed(websocket *w, const void *data, size_t len, buf *stream, buf *out)
{
    w->in = data;
    w->in_len = len;
    w->stream = stream;
    w->seen &= ~(unsigned)WEBSOCKET_BAD_OPEN;
    int r = wslay_event_recv(w->ctx);
    w->in = NULL;
    w->in_len = 0;
    w->stream = NULL;
    flush(w, out);
    unsigned seen = w->seen;
    if (r != 0 || wslay_event_get_close_received(w->ctx) || !wslay_event_want_read(w->ctx) ||
        wslay_event_get_close_sent(w->ctx))
        seen |= WEBSOCKET_CLOSED;
    return seen;
}

const char *websocket_condition(const websocket *w) { return w->condition; }

size_t websocket_text_header(uint8_t *hdr, size_t len)
{
    hdr[0] = 0x81;      /* FIN, text */
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

void websocket_close(websocket *w, uint16_t code, buf *out)
{
    if (!wslay_event_get_close_sent(w->ctx))
        wslay_event_queue_close(w->ctx, code, NULL, 0);
    flush(w, out);
}

void websocket_ping(websocket *w, buf *out)
{
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
    wslay_event_queue_msg(w->ctx, &ping);
    flush(w, out);
}
