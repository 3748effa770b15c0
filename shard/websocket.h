/* shard/websocket.h — a client's WebSocket (RFC 6455) carrying an XMPP stream (RFC 7395), without
 * sockets: the opening handshake's answer, the client's frames decoded (masking, fragments,
 * control frames interleaved, sizes, UTF-8, the close handshake), each text message turned into
 * stream bytes by shard/xmpp_framing.h, and our own frames written.
 *
 * The decoder is our own, not a library's: an idle WebSocket must cost what an idle TCP client
 * does (wslay, tried first, kept an 8.6 KiB context per connection for its whole life, doubling a
 * web client's memory). Between frames it holds a few dozen bytes; a message being assembled is
 * the only buffer, given back when it is complete. Every protocol error closes with RFC 6455's
 * code: 1002 (an unmasked frame, reserved bits or opcodes, a non-minimal length, a control frame
 * fragmented or over 125 bytes, a continuation out of place), 1003 (a binary message: RFC 7395
 * §3.2), 1007 (text that is not UTF-8), 1009 (a message over max_message).
 *
 * Frames to the client are single unmasked text frames, one per top-level element (RFC 7395
 * §3.3.3), written by websocket_text_header() ahead of the element's bytes so that a stanza from
 * the SM goes out without a copy.
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
    WEBSOCKET_CLOSED = 1,      /* the client's close came (answered), or a protocol error (our
                                * close sent): close once out is written */
    WEBSOCKET_BAD_OPEN = 2,    /* an <open/> or <close/> to refuse: websocket_condition() */
};

/* The client's bytes: the stream bytes of its messages are appended to stream, our answers
 * (pongs, a close frame) to out. Nothing is read after a close. */
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
