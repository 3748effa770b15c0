/* tests/bench/loadgen/lg_sm.h — one connection's XEP-0198 (stream management, urn:xmpp:sm:3)
 * client, with no socket in it: the two counters, the queue of sent stanzas the server has not
 * acknowledged, the resumption id, the nonzas (enable, resume, r, a) written into a buffer and the
 * server's read off its elements; plus the figures every connection adds to (lg_sm_stats).
 * lg_conn.c sends what these write and says when a stanza goes out or comes in.
 *
 * Counters are 32-bit and wrap (XEP-0198 §4): h_in counts the stanzas received since <enabled/>,
 * h_out those sent since <enable/>; acked is the server's last <a h/>. h_out - acked (mod 2^32) is
 * always the number of queued stanzas. A stanza is <message/>, <presence/> or <iq/>; nonzas (r, a,
 * enable, ...) are never counted.
 *
 * Life of a state: enable_sent (a new session: counters from 0; stanzas a dead session left
 * unacknowledged stay queued and count as the first stanzas of the new one, to be sent again),
 * enabled (the id, when the server allows resumption), then sent/handled/ack while up. When the
 * connection drops, the state stays as it is (detached): a resume sends h_in and the id, and
 * resumed(h) leaves in the queue exactly what must be sent again.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_SM_H
#define JABSHARD_LOADGEN_LG_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/xml.h"
#include "tests/bench/loadgen/lg_stats.h"

#define LG_SM_NS "urn:xmpp:sm:3"
/* An ack request: after messages (lg_sm_sent), and instead of a whitespace keepalive, as
 * Conversations does. */
#define LG_SM_REQUEST "<r xmlns='" LG_SM_NS "'/>"

typedef enum { LG_SM_PENDING_NONE, LG_SM_PENDING_ENABLE, LG_SM_PENDING_RESUME } lg_sm_pending;

typedef struct lg_sm {
    bool active;          /* counting on the current stream (<enable/> sent or resumed) */
    uint8_t pending;      /* lg_sm_pending: what a <failed/> would answer */
    char *id;             /* resumption id from <enabled resume='true'/>; NULL: none */
    uint32_t h_in;        /* stanzas received and handled since <enabled/> */
    uint32_t h_out;       /* stanzas sent since <enable/> (acked + queued) */
    uint32_t acked;       /* the last h the server acknowledged */
    uint32_t since_r;     /* message stanzas sent since our last <r/> */
    buf queue;            /* the unacknowledged stanzas' bytes, oldest first */
    uint32_t *lens;       /* their lengths: lens[head .. head + count) */
    size_t head, count, cap;
} lg_sm;

/* What all connections' stream management came to (lg_report_sm prints it). */
typedef struct lg_sm_stats {
    uint64_t enabled;        /* <enabled/> received */
    uint64_t unsupported;    /* logins whose stream features offered no urn:xmpp:sm:3 */
    uint64_t enable_failed;  /* <failed/> in answer to <enable/> */
    uint64_t resumed;        /* <resumed/> received */
    uint64_t resume_failed;  /* <failed/> in answer to <resume/>: a fresh bind followed */
    uint64_t resent;         /* stanzas sent again after <resumed/> or on a fresh session */
    uint64_t bad_acks;       /* an <a h/> or <resumed h/> acknowledging more than was sent */
    uint64_t requests;       /* the server's <r/>, each answered with <a h/> */
    uint64_t last_resumed_ns;
    lg_samples resume_latency;   /* connect start to <resumed/>, per resumption */
} lg_sm_stats;

void lg_sm_init(lg_sm *s);
/* Frees everything: no session, nothing queued. */
void lg_sm_clear(lg_sm *s);

/* <enable/> was sent: a new session, counters at 0 but for what is still queued (from a session
 * that could not be resumed), which counts as sent in the new one. Returns how many are queued:
 * the caller sends them again, right after the <enable/>. */
size_t lg_sm_enable_sent(lg_sm *s);
/* <enabled/>: id is the resumption id, or NULL when the server will not resume this session. */
void lg_sm_enabled(lg_sm *s, const char *id);
/* The connection is gone; what is queued and the id stay for a resume. */
static inline void lg_sm_detach(lg_sm *s) { s->active = false; }
/* A <failed/> to <resume/>: the id is dropped, the queue kept for the next session. */
void lg_sm_forget(lg_sm *s);

/* A stanza was sent while active: counted and queued. Returns true when it is a message and the
 * ack policy (one <r/> every ack_every messages; 0: never) says to request an ack now. */
bool lg_sm_sent(lg_sm *s, const char *data, size_t len, bool message, unsigned ack_every);
/* A stanza was received while active; returns h_in after it. */
static inline uint32_t lg_sm_handled(lg_sm *s) { return ++s->h_in; }

/* <a h/> or the h of <resumed/> or <failed/>: drops the stanzas it acknowledges (counting with
 * wrap-around). Returns how many it dropped, or -1 (nothing changed) when h acknowledges more
 * than was sent. */
int64_t lg_sm_ack(lg_sm *s, uint32_t h);
/* <resumed h/>: acknowledges h and makes the stream active again. Returns as lg_sm_ack; the queue
 * then holds exactly the stanzas to send again (lg_sm_queued). */
int64_t lg_sm_resumed(lg_sm *s, uint32_t h);

/* The queued stanzas' bytes, oldest first, as one run. */
static inline const char *lg_sm_queued(const lg_sm *s) { return buf_data(&s->queue); }
static inline size_t lg_sm_queued_len(const lg_sm *s) { return buf_len(&s->queue); }
static inline size_t lg_sm_queued_count(const lg_sm *s) { return s->count; }

/* Parses an h attribute (a decimal 32-bit value); false when it is absent or malformed. */
bool lg_sm_parse_h(const char *text, uint32_t *h);

void lg_sm_stats_free(lg_sm_stats *st);

/* ---- the protocol ---------------------------------------------------------------------------- */

/* Appends <enable resume='true'/> and, after it, the stanzas still queued from a session that
 * could not be resumed (now the first of the new one; counted in st->resent). */
void lg_sm_enable(lg_sm *s, lg_sm_stats *st, buf *out);
/* Appends <resume previd h/>; s->id must be set. */
void lg_sm_resume(lg_sm *s, buf *out);

typedef enum {
    LG_SM_NOT_OURS,       /* not in urn:xmpp:sm:3: a stanza or another nonza */
    LG_SM_HANDLED,        /* r (answered in out) or a (applied) */
    LG_SM_BAD,            /* an <a/> or <resumed/> with a missing h or one acknowledging more than
                             was sent, or an element out of place (counted in st->bad_acks) */
    LG_SM_ENABLED,        /* <enabled/>: counted; the id kept when resumption is allowed */
    LG_SM_ENABLE_FAILED,  /* <failed/> to <enable/>: stream management is off, nothing queued */
    LG_SM_RESUMED,        /* <resumed h/>: the unacknowledged stanzas are in out, then an <r/>
                             (a bad h is counted in st->bad_acks, and everything queued resent) */
    LG_SM_RESUME_FAILED,  /* <failed/> to <resume/>: its h applied, the id dropped; bind anew */
} lg_sm_event;

/* Reads one element from the server; appends to out what must be sent in answer. */
lg_sm_event lg_sm_input(lg_sm *s, const xml_node *el, lg_sm_stats *st, buf *out);

#endif
