/* shard/websocket.c — a client's WebSocket carrying an XMPP stream: the handshake, our RFC 6455
 * decoder, our frames (websocket.h). */
#include "shard/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "core/utf8.h"
#include "shard/xmpp_framing.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

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

struct websocket {
    size_t max_message;
    uint8_t hdr[14];           /* the frame header being read */
    unsigned hdr_len, hdr_need;
    bool in_payload;
    uint64_t left;             /* payload bytes of the frame still to read */
    unsigned mask_at;          /* index into the masking key of the next byte */
    uint8_t opcode;
    bool fin;
    bool in_message;           /* a fragmented data message is under way */
    uint8_t msg_opcode;
    buf msg;                   /* the data message being assembled */
    uint8_t ctl[125];          /* a control frame's payload */
    size_t ctl_len;
    bool close_sent, closed;
    unsigned seen;             /* WEBSOCKET_* of the current feed */
    const char *condition;
};

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

websocket *websocket_new(size_t max_message)
{
    websocket *w = mem_zalloc(sizeof *w);
    w->max_message = max_message;
    w->hdr_need = 2;
    return w;
}

void websocket_free(websocket *w)
{
    if (!w)
        return;
    buf_free(&w->msg);
    free(w);
}

static void put_frame(buf *out, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t hdr[WEBSOCKET_HEADER_MAX];
    size_t n = websocket_text_header(hdr, len);
    hdr[0] = (uint8_t)(0x80 | opcode);
    buf_append(out, hdr, n);
    buf_append(out, payload, len);
}

void websocket_close(websocket *w, uint16_t code, buf *out)
{
    if (w->close_sent)
        return;
    w->close_sent = true;
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    put_frame(out, OP_CLOSE, payload, sizeof payload);
}

void websocket_ping(websocket *w, buf *out)
{
    if (!w->close_sent)
        put_frame(out, OP_PING, NULL, 0);
}

/* A protocol error: our close with its code, and nothing more is read. */
static void fail(websocket *w, uint16_t code, buf *out)
{
    websocket_close(w, code, out);
    w->closed = true;
    w->seen |= WEBSOCKET_CLOSED;
}

/* RFC 6455 §7.4: the codes a peer may send. */
static bool close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

static void message_done(websocket *w, buf *stream, buf *out)
{
    const char *data = buf_data(&w->msg) ? buf_data(&w->msg) : "";
    size_t len = buf_len(&w->msg);
    if (w->msg_opcode == OP_BINARY) {
        fail(w, 1003, out);     /* RFC 7395 §3.2: XMPP goes in text frames only */
    } else if (utf8_scan(data, len) < 0) {
        fail(w, 1007, out);
    } else if (!(w->seen & WEBSOCKET_BAD_OPEN)) {
        switch (framing_in(data, len, stream)) {
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
    /* An idle WebSocket keeps no buffer. */
    buf_free(&w->msg);
    w->in_message = false;
}

static void control_done(websocket *w, buf *out)
{
    switch (w->opcode) {
    case OP_PING:
        if (!w->close_sent)
            put_frame(out, OP_PONG, w->ctl, w->ctl_len);
        break;
    case OP_CLOSE: {
        unsigned code = 1000;
        if (w->ctl_len == 1) {
            fail(w, 1002, out);
            return;
        }
        if (w->ctl_len >= 2) {
            code = (unsigned)w->ctl[0] << 8 | w->ctl[1];
            if (!close_code_valid(code)) {
                fail(w, 1002, out);
                return;
            }
            if (utf8_scan(w->ctl + 2, w->ctl_len - 2) < 0) {
                fail(w, 1007, out);
                return;
            }
        }
        /* The client ended: our close answers it (with its code), unless ours went first. */
        websocket_close(w, w->ctl_len ? (uint16_t)code : 1000, out);
        w->closed = true;
        w->seen |= WEBSOCKET_CLOSED;
        break;
    }
    default:
        break;          /* a pong: nothing to do */
    }
}

/* The header is complete: checks it; false after a failure. */
static bool header_done(websocket *w, buf *out)
{
    uint8_t b0 = w->hdr[0], b1 = w->hdr[1];
    w->fin = b0 & 0x80;
    w->opcode = b0 & 0x0f;
    uint64_t len = b1 & 0x7f;
    const uint8_t *ext = w->hdr + 2;
    if (len == 126) {
        len = (uint64_t)ext[0] << 8 | ext[1];
        if (len < 126) {
            fail(w, 1002, out);     /* not the minimal length encoding (§5.2) */
            return false;
        }
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | ext[i];
        if (len < 65536 || len >> 63) {
            fail(w, 1002, out);
            return false;
        }
    }
    bool control = w->opcode & 0x8;
    bool known = w->opcode <= OP_BINARY || (w->opcode >= OP_CLOSE && w->opcode <= OP_PONG);
    if ((b0 & 0x70) || !known || (control && (!w->fin || len > 125)) ||
        (w->opcode == OP_CONT && !w->in_message) ||
        ((w->opcode == OP_TEXT || w->opcode == OP_BINARY) && w->in_message)) {
        fail(w, 1002, out);
        return false;
    }
    if (!control) {
        if (w->opcode != OP_CONT) {
            w->in_message = true;
            w->msg_opcode = w->opcode;
        }
        if (buf_len(&w->msg) > w->max_message || len > w->max_message - buf_len(&w->msg)) {
            fail(w, 1009, out);
            return false;
        }
    }
    w->left = len;
    w->mask_at = 0;
    w->ctl_len = 0;
    w->in_payload = true;
    return true;
}

/* The frame's payload is all read. */
static void frame_done(websocket *w, buf *stream, buf *out)
{
    w->in_payload = false;
    w->hdr_len = 0;
    w->hdr_need = 2;
    if (w->opcode & 0x8)
        control_done(w, out);
    else if (w->fin)
        message_done(w, stream, out);
}

unsigned websocket_feed(websocket *w, const void *data, size_t len, buf *stream, buf *out)
{
    const uint8_t *p = data;
    w->seen &= ~(unsigned)WEBSOCKET_BAD_OPEN;
    while (len && !w->closed) {
        if (!w->in_payload) {
            w->hdr[w->hdr_len++] = *p++;
            len--;
            if (w->hdr_len == 2) {
                /* Client frames are masked (§5.3): an unmasked one ends the connection. */
                if (!(w->hdr[1] & 0x80)) {
                    fail(w, 1002, out);
                    break;
                }
                unsigned n = w->hdr[1] & 0x7f;
                w->hdr_need = 2 + (n == 126 ? 2 : n == 127 ? 8 : 0) + 4;
            }
            if (w->hdr_len == w->hdr_need && header_done(w, out) && !w->left)
                frame_done(w, stream, out);
            continue;
        }
        size_t n = len < w->left ? len : (size_t)w->left;
        const uint8_t *key = w->hdr + w->hdr_need - 4;
        uint8_t *dst;
        if (w->opcode & 0x8) {
            dst = w->ctl + w->ctl_len;
            w->ctl_len += n;
        } else {
            dst = (uint8_t *)buf_reserve(&w->msg, n);
            buf_commit(&w->msg, n);
        }
        for (size_t i = 0; i < n; i++)
            dst[i] = p[i] ^ key[(w->mask_at + i) & 3];
        w->mask_at = (unsigned)((w->mask_at + n) & 3);
        p += n;
        len -= n;
        w->left -= n;
        if (!w->left)
            frame_done(w, stream, out);
    }
    unsigned seen = w->seen;
    if (w->closed)
        seen |= WEBSOCKET_CLOSED;
    w->seen &= ~(unsigned)WEBSOCKET_BAD_OPEN;
    return seen;
}

const char *websocket_condition(const websocket *w) { return w->condition; }
