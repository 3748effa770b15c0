/* shard/websocket.h — a client's WebSocket (RFC 6455) carrying an XMPP stream (RFC 7395), without
 * sockets: the opening handshake's answer, the client's frames read by wslay (masking, fragments,
 * control frames, sizes and protocol errors are the library's), each text message turned into
 * stream bytes by shard/xmpp_framing.h, and our own frames written.
 *
 * Frames to the client are single unmasked text frames, one per top-level element (RFC 7395
 * §3.3.3), written by websocket_text_header() ahead of the element's bytes so that a stanza from
 * the SM goes out without a copy. Control frames (pong, close) come from wslay.
 *
 * Thread rules: a websocket belongs to its connection's IO thread.
 */
#ifndef JABSHARD_SHARD_WEBSOCKET_H
#define JABSHARD_SHARD_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/http_request.h"

#define WEBSOCKET_HEADER_MAX 10

/* The opening handshake (RFC 6455 §4.2): a GET with Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version 13 and a 16-byte Sec-WebSocket-Key, asking for the xmpp subprotocol.
 * Returns 101 with the answer's headers (through the blank line) in out, or the status to refuse
 * with (400, 426 for another version: its headers say which). */
int websocket_accept(const http_request *req, buf *out);

typedef struct websocket websocket;

/* max_message: the largest message (reassembled) a client may send; more closes with 1009. */
websocket *websocket_new(size_t max_message);
void websocket_free(websocket *w);

/* What websocket_feed saw (bits). */
enum {
    WEBSOCKET_CLOSED = 1,      /* the close handshake ended, or a protocol error: close once out
                                * is written */
    WEBSOCKET_BAD_OPEN = 2,    /* an <open/> or <close/> to refuse: websocket_condition() */
};

/* The client's bytes: the stream bytes of its messages are appended to stream, wslay's answers
 * (pongs, its close frame) to out. */
unsigned websocket_feed(websocket *w, const void *data, size_t len, buf *stream, buf *out);
/* After WEBSOCKET_BAD_OPEN: the stream error condition (RFC 6120 §4.9.3). */
const char *websocket_condition(const websocket *w);

/* The header of a text frame of len bytes; returns its length (at most WEBSOCKET_HEADER_MAX). */
size_t websocket_text_header(uint8_t *hdr, size_t len);
/* Our close frame (status code, RFC 6455 §7.4) to out; nothing when one was sent already. */
void websocket_close(websocket *w, uint16_t code, buf *out);
/* A ping to out (the idle check: a browser answers pings without bothering the page). */
void websocket_ping(websocket *w, buf *out);

#endif
