/* tests/bench/loadgen/lg_ws.h — XMPP over WebSocket (RFC 7395) for the load generator's
 * connections (--transport websocket): the HTTP upgrade (RFC 6455 §4: a random Sec-WebSocket-Key,
 * `Sec-WebSocket-Protocol: xmpp`, the 101 and its Sec-WebSocket-Accept checked), masked client
 * frames, and the server's unmasked frames read back into messages.
 *
 * lg_conn.c keeps its one XMPP state machine and its one stream parser: this module translates
 * between the two framings at the edges.
 *   - out: whatever the connection writes once the upgrade is done goes through lg_ws_send, which
 *     cuts it into its top-level elements and sends each as one masked text frame (RFC 7395 §3.3:
 *     one element per message; a buffer of several stanzas, as a XEP-0198 resume writes, becomes
 *     several frames), stanzas qualified with xmlns='jabber:client' (§3.3.1: each message is an
 *     XML document of its own, with no stream header to inherit the namespace from). The end of
 *     the stream, `</stream:stream>`, becomes `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`,
 *     and a whitespace keepalive a WebSocket ping (RFC 7395 §3.7 has no whitespace keepalives). The stream header is
 *     lg_ws_open's `<open/>` instead.
 *   - in: lg_ws_input reads the 101, then frames; it reports each whole message as an event:
 *     the server's `<open/>` (the connection feeds its parser LG_WS_STREAM_HEADER, a stream header
 *     of its own making, so the parser sees a stream as over TCP), each other element (fed as it
 *     is), and `<close/>` or a WebSocket close (fed as `</stream:stream>`). Pings are answered
 *     with pongs (the LG_WS_WRITE event: bytes to write as they are).
 *
 * The pure pieces (the accept key, a frame, the element splitter, a frame header) are exposed for
 * tests/unit/test_loadgen_ws.c.
 *
 * Thread rules: one thread; nothing here is shared (the masks' generator is per thread). */
#ifndef JABSHARD_LOADGEN_LG_WS_H
#define JABSHARD_LOADGEN_LG_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define LG_WS_NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
/* What the parser is fed when the server's <open/> arrives. */
#define LG_WS_STREAM_HEADER                                                                      \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "      \
    "version='1.0'>"
#define LG_WS_STREAM_CLOSE "</stream:stream>"
/* The largest message (all its fragments) accepted from a server. */
#define LG_WS_MAX_MESSAGE (16u << 20)

enum { LG_WS_OP_CONT = 0, LG_WS_OP_TEXT = 1, LG_WS_OP_BINARY = 2, LG_WS_OP_CLOSE = 8,
       LG_WS_OP_PING = 9, LG_WS_OP_PONG = 10 };

typedef enum {
    LG_WS_UPGRADED,   /* the 101 came and was right: the stream may begin (send <open/>) */
    LG_WS_OPEN,       /* the server's <open/> */
    LG_WS_ELEMENT,    /* any other element: data, len */
    LG_WS_CLOSE,      /* <close/> or a WebSocket close frame (reported once) */
    LG_WS_WRITE,      /* bytes to write as they are (a pong) */
    LG_WS_ERROR,      /* the upgrade was refused or the framing is broken: data is why (NUL-ended) */
} lg_ws_event;

/* Returns false when the connection ended (or must not be read further): lg_ws_input then
 * returns at once, touching nothing of ws (which the connection may have freed). */
typedef bool (*lg_ws_sink)(void *ctx, lg_ws_event ev, const char *data, size_t len);

typedef struct lg_ws {
    bool open;         /* the upgrade is done: output is framed */
    bool closed;       /* LG_WS_CLOSE was reported */
    uint8_t msg_op;    /* the opcode of the message being assembled from fragments */
    char key[25];      /* the Sec-WebSocket-Key sent (base64 of 16 random bytes) */
    buf in;            /* input not yet a whole frame (before the 101: the response so far) */
    buf msg;           /* fragments of a message not yet whole */
} lg_ws;

/* Forgets everything (after a connection's end; ws may be reused for the next). */
void lg_ws_free(lg_ws *ws);

/* Appends the upgrade request for GET path on host:port to out, with a fresh key kept in ws. */
void lg_ws_request(lg_ws *ws, const char *host, unsigned port, const char *path, buf *out);
/* Appends <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='domain' version='1.0'/> as a
 * frame. */
void lg_ws_open(const char *domain, buf *out);
/* Appends data as frames (see above). */
void lg_ws_send(const char *data, size_t len, buf *out);
/* Reads input: see lg_ws_event. Returns false when a sink call returned false. */
bool lg_ws_input(lg_ws *ws, const char *data, size_t len, lg_ws_sink sink, void *ctx);

/* ---- the pieces, for tests ---- */

/* The Sec-WebSocket-Accept for key (RFC 6455 §4.2.2): 28 characters and a NUL. */
void lg_ws_accept(const char *key, char out[29]);
/* Appends one final client frame of opcode with payload data, masked with mask (big-endian: the
 * first mask byte is its top byte). */
void lg_ws_frame(buf *out, unsigned opcode, const char *data, size_t len, uint32_t mask);
/* The length of the top-level element (or end tag, or whitespace run) starting data[0]: the
 * prefix up to its closing '>', or len when it does not end within data. */
size_t lg_ws_element_len(const char *data, size_t len);
/* Where " xmlns='jabber:client'" goes in element el (just after its name), or 0 when its start
 * tag declares a default namespace of its own (or el is no start tag). */
size_t lg_ws_xmlns_at(const char *el, size_t len);

/* A frame header read from the start of data. */
typedef struct lg_ws_header {
    bool fin, masked;
    unsigned opcode;
    uint64_t payload_len;
    uint32_t mask;
    size_t header_len;  /* bytes before the payload */
} lg_ws_header;
/* 1 with h filled, 0 when data holds less than the whole header, -1 for a reserved bit set. */
int lg_ws_parse_header(const uint8_t *data, size_t len, lg_ws_header *h);

#endif
