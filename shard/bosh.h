/* shard/bosh.h — one BOSH session (XEP-0124, with XEP-0206's XMPP binding) as a state machine
 * without sockets: request bodies in, stream bytes for the client's c2s stream (shard/c2s_stream.h)
 * out; the c2s stream's output (cut into items by shard/xmpp_framing.h's framing_out) in, HTTP
 * answers out, each for the request it belongs to.
 *
 * The connection layer owns the HTTP connections, their timers and the c2s stream. For each POST
 * to the BOSH path it reads the body (at most body_max bytes, else 413), asks bosh_body_sid() which
 * session it is for, and calls bosh_new() (no sid) or that session's bosh_request() (an unknown sid
 * is answered with bosh_unknown_sid()). Stream bytes go to the c2s stream; its output, through
 * framing_out, to bosh_output(). After every call into a session the caller pops bosh_next_answer()
 * until it returns false and writes each answer on the connection of its request; it calls
 * bosh_tick() then too and again at the time it returned (then pops again). A request is either answered at once (an
 * answer ready after the call) or held until output comes, its wait passes, a later request
 * pushes it out (no more than hold are held), or the session ends.
 *
 * Request ids (rid, §14): the window is the `requests` rids after the highest rid received in
 * order; a request ahead of a gap waits, its body kept, until the gap fills (its payloads then go
 * to the stream in rid order); a rid received again replaces the connection of one still held
 * (the old one is answered <body type='error'/>, §14.3), or is answered with the same bytes as
 * before when it was answered (the last `requests` answers are kept, not those to pause requests
 * or errors; one rid at most BOSH_REPEATS_MAX times, then policy-violation: a small request
 * must not bring back a large answer on and on); any other rid ends the session with
 * item-not-found. Overactivity (§11): more
 * unanswered requests than `requests` (one more for a pause or terminate), or, with hold 0 (a
 * polling session, §12), two empty requests less than `polling` seconds apart the first of which
 * was answered empty, end the session with policy-violation. Acknowledgements (§9, 'ack') and key
 * sequences (§15) are not implemented: no 'ack' is offered; a client's is ignored.
 *
 * Terminal errors are <body type='terminate' condition='…'/> with HTTP 200; a client that gave no
 * 'ver' at creation (a legacy client, §17.1) gets HTTP 400, 403 or 404 instead for bad-request,
 * policy-violation and item-not-found.
 *
 * Bounds: a body of at most body_max bytes (bigger ones are bad-request), elements nested at most
 * BOSH_DEPTH_MAX deep in it, no DTD, entity declaration, comment or processing instruction, UTF-8
 * only (a body's tree takes at most 40 bytes per byte while it is read, core/xml.h); at most
 * requests + 1 unanswered requests (requests <= BOSH_REQUESTS_MAX), each keeping at
 * most its body; `requests` answers kept for repeats, each at most queue_max plus its <body/>
 * tag; output waiting for a request at most queue_max bytes (more ends the session with
 * policy-violation); wait <= wait_max, hold <= hold_max and < requests, pause <= maxpause; the
 * session ends after inactivity seconds (or the pause asked for) without a request, and a request
 * waiting for a gap in the rids more than wait seconds ends it with item-not-found.
 *
 * Thread rules: a session belongs to one IO thread; the limits are copied.
 */
#ifndef JABSHARD_SHARD_BOSH_H
#define JABSHARD_SHARD_BOSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define BOSH_NS "http://jabber.org/protocol/httpbind"
#define BOSH_XMPP_NS "urn:xmpp:xbosh"
#define BOSH_VERSION "1.11"
#define BOSH_REQUESTS_MAX 16    /* the largest rid window a session may have */
#define BOSH_DEPTH_MAX 64       /* element nesting in a body, <body/> being 1 */
#define BOSH_SID_MAX 64         /* bytes of a sid (the caller's: 48 hex digits) */
#define BOSH_REPEATS_MAX 3      /* times one rid may be asked for again (then policy-violation) */

typedef struct bosh_limits {            /* from config; defaults are Prosody's unless said */
    unsigned wait_max;                  /* seconds a request may be held (60) */
    unsigned hold_max;                  /* requests held at once (1) */
    unsigned requests;                  /* the rid window the client may use: hold_max + 1 (2);
                                         * at most BOSH_REQUESTS_MAX, at least 1 */
    unsigned inactivity;                /* seconds with no request held before the session dies (60) */
    unsigned polling;                   /* shortest seconds between empty polls (5) */
    unsigned maxpause;                  /* longest pause a client may ask for, 0: none (120) */
    size_t body_max;                    /* bytes of one request body (stanza_size + 8192) */
    size_t queue_max;                   /* bytes of output waiting for a request before the
                                         * session is terminated (policy-violation) */
} bosh_limits;

/* Prosody's values; body_max stanza_size + 8192, queue_max 16 stanzas of stanza_size. */
void bosh_limits_default(bosh_limits *lim, size_t stanza_size);

typedef struct bosh bosh;

/* Routing, before a session is known: the sid of a request body, copied NUL-terminated into sid
 * (BOSH_SID_MAX + 1 bytes); "" for a session-creation request. Reads only the <body/> start tag.
 * Returns false when the bytes are not a BOSH <body/> (answer with bosh_refusal). */
bool bosh_body_sid(const char *body, size_t len, char *sid);
/* The answer to a body that is not BOSH at all (400, an empty HTTP body) and to an unknown sid
 * (200, <body type='terminate' condition='item-not-found'/>): returns the status, body to out. */
int bosh_refusal(buf *out);
int bosh_unknown_sid(buf *out);

/* A session-creation request (a <body/> without sid, with rid and to; xml:lang, ver, wait, hold,
 * xmpp:version read; content, route, from, ack ignored). Returns NULL when it is refused, with the
 * HTTP answer in *status and answer (a <body type='terminate' condition='…'/>, 200; or 400 and an
 * empty answer when it is not a BOSH body at all). Else the session, holding request req_id, with
 * the stream header for the c2s stream appended to stream (as framing_in does for <open/>). Its
 * answer, carrying the session's attributes and what the c2s stream wrote after its header
 * (<stream:features/>), comes out of bosh_next_answer once that output was given to bosh_output.
 * sid: the caller's (random, 128 bits as hex from core/random.h; at most BOSH_SID_MAX bytes),
 * copied. lim is copied. */
bosh *bosh_new(const bosh_limits *lim, const char *sid, uint64_t req_id, const char *body,
               size_t len, uint64_t now_ms, buf *stream, int *status, buf *answer);
void bosh_free(bosh *b);
/* The session's sid, as given to bosh_new. */
const char *bosh_sid(const bosh *b);

/* What bosh_request saw (bits); 0: an ordinary request. */
enum {
    BOSH_REQ_STREAM = 1,       /* bytes were appended to stream */
    BOSH_REQ_ENDED = 2,        /* the session is over (bosh_ended) */
    BOSH_REQ_REFUSED = 4,      /* the request was refused: an error answer is ready */
};

/* A later request's body, for this session (the caller matched its sid). Its payloads (each child
 * element, serialized with its namespaces: in the stream's default namespace jabber:client when it
 * was in jabber:client or, as many clients send them, in the body's), a new stream header for
 * xmpp:restart='true' (the body's payloads are then ignored, XEP-0206 §5), the closing tag for
 * type='terminate' (after its payloads) are appended to stream, in rid order. req_id: the caller's
 * name for the request (its HTTP connection), opaque. */
unsigned bosh_request(bosh *b, uint64_t req_id, const char *body, size_t len, uint64_t now_ms,
                      buf *stream);

/* One item of the c2s stream's output, as framing_out cut it (kind: a framing_out_kind; el its
 * bytes, namespaces declared). The stream header (<open/>) gives the creation answer its from,
 * authid and xmpp:version (after a restart it is dropped: the features that follow go out in an
 * ordinary answer); elements wait for the oldest held request (several in one <body/>); the
 * closing tag ends the session: the next answer is a terminate (remote-stream-error with a
 * <stream:error/> before it; host-unknown, host-gone and system-shutdown keep their names).
 * Output after the session ended is dropped. */
void bosh_output(bosh *b, int framing_out_kind, const char *el, size_t len, uint64_t now_ms);

/* The next answer ready to write: its request, HTTP status and complete HTTP body (the caller
 * writes the head: Content-Type text/xml; charset=utf-8, CORS). body is cleared first. */
bool bosh_next_answer(bosh *b, uint64_t *req_id, int *status, buf *body);

/* Time: answers held requests whose wait passed (an empty <body/>), ends a session inactive too
 * long (silently, §10) or whose rids stayed broken. Returns when it must be called next (absolute
 * ms; UINT64_MAX: never). */
uint64_t bosh_tick(bosh *b, uint64_t now_ms);

/* The session is over (terminated either way): the c2s stream must end (END to the SM); nothing
 * more goes to it, its output is dropped. */
bool bosh_ended(const bosh *b);
/* Ended, and nothing more will be answered: free it once the answers popped are written. (An
 * ended session whose terminate waits for a request to carry it is not finished until one comes
 * or the inactivity period passes.) */
bool bosh_finished(const bosh *b);

/* A request's HTTP connection closed: its answer, when made, is only kept for a repeat. */
void bosh_request_gone(bosh *b, uint64_t req_id);

#endif
