/* shard/smacks.h — XEP-0198 stream management, the front's half: one stream's counters and the
 * record of what its client has not acknowledged, and the nonzas' XML. The stream
 * (shard/c2s_stream.c) drives it; the SM's half (sm/mod_smacks.c) keeps the stanzas themselves
 * (docs/smproto.md §6).
 *
 * Counting: after <enable/> (or a resumption), every stanza the client sends is counted in, and
 * those the front answers itself (never framed for the SM) also as local; every stanza written to
 * the client is counted out, as kept (the SM sent it after it enabled the session, so it keeps a
 * copy until acknowledged) or not (the front made it, or the SM sent it before the enable reached
 * it). The client's <a h/> acknowledges the oldest ones; how many of those were kept is what the
 * SM may let go of. Counters are 64 bits; the wire's h is their low 32 bits (§4: h wraps).
 *
 * Thread rules: the stream's IO thread.
 */
#ifndef JABSHARD_SHARD_SMACKS_H
#define JABSHARD_SHARD_SMACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "smproto/smacks_msg.h"

#define NS_SM "urn:xmpp:sm:3"
/* Stanzas written to a client and not acknowledged that one stream may have before it is closed
 * with <policy-violation/> (the SM's own bound, <smacks><queue_max>, ends the session sooner). */
#define SMACKS_UNACKED_MAX 65536
/* The client's acknowledgements reach the SM in batches: every this many of the SM's stanzas,
 * and before the stream ends (what the SM keeps meanwhile is bounded by it). */
#define SMACKS_ACK_BATCH 16

typedef struct smacks {
    bool kept_from_now;     /* the SM's enable (or resume) came: its stanzas are kept */
    bool resume;            /* what <enable/> asked for (asked again after a reconnect) */
    uint32_t max;
    bool r_pending;         /* our <r/> is unanswered */
    uint64_t in_count, in_local;
    uint64_t out_count;     /* written to the client */
    uint64_t acked;         /* acknowledged by the client */
    uint64_t sm_acked;      /* kept stanzas acknowledged, in the SM's numbering */
    uint64_t sm_acked_told; /* what the SM was last told of it */
    uint64_t *ring;         /* one bit per unacknowledged stanza, oldest first: kept or not */
    size_t ring_bits;       /* capacity, a power of two */
    uint64_t ring_head;     /* index of the oldest (its count is acked) */
} smacks;

smacks *smacks_new(void);
void smacks_free(smacks *sm);

/* A stanza from the client was handled; local: by the front itself. */
void smacks_in(smacks *sm, bool local);
/* A stanza was written to the client; kept: from the SM (it keeps a copy once kept_from_now).
 * false when the client has SMACKS_UNACKED_MAX unacknowledged (the stream must close). */
bool smacks_out(smacks *sm, bool from_sm);
/* Whether to ask the client for an acknowledgement now: no <r/> is pending (one at a time) and
 * at least every stanzas are unacknowledged (1: after every stanza). When true, the <r/> is
 * taken as sent. */
bool smacks_want_r(smacks *sm, unsigned every);
/* Whether some stanza is unacknowledged and no <r/> pending: a later request is due (the stream's
 * time bound, shard/c2s_stream.h), or smacks_ask_now. */
bool smacks_ask_later(const smacks *sm);
/* Asks now if smacks_ask_later (the <r/> is taken as sent); false when there is nothing to ask. */
bool smacks_ask_now(smacks *sm);

/* The client's <a h/>. false when h acknowledges more than was sent (handled-count-too-high);
 * otherwise true, with the SM's message (ACK) in *msg when SMACKS_ACK_BATCH of the SM's stanzas
 * were acknowledged since the SM was last told (msg->kind 0 when not). */
bool smacks_client_ack(smacks *sm, uint32_t h, smacks_msg *msg);

/* The SM's number for the next of its stanzas that it keeps (0: it keeps none yet). */
uint64_t smacks_kept_next(const smacks *sm);

/* After the link to the SM came back: what the SM must know to go on (SYNC): the SM's stanzas
 * received and acknowledged, the client's stanzas counted. */
void smacks_sync(smacks *sm, smacks_msg *msg);

/* An ACK for what the client acknowledged and the SM was not told yet (the stream is ending);
 * false when there is nothing to tell. */
bool smacks_ack_unreported(smacks *sm, smacks_msg *msg);

/* After a resumption: counting goes on from the SM's figures. */
void smacks_resumed(smacks *sm, uint64_t in_h, uint64_t client_h, uint64_t sm_acked);

/* h attribute (decimal, 0 to 2^32-1, no sign or spaces); false when malformed or absent. */
bool smacks_parse_h(const char *text, uint32_t *h);

/* Nonzas for the client. */
void smacks_put_r(buf *out);
void smacks_put_a(buf *out, uint64_t h);
void smacks_put_enabled(buf *out, const char *id, uint32_t max);
void smacks_put_failed(buf *out, smacks_condition c, bool has_h, uint32_t h);
void smacks_put_resumed(buf *out, uint64_t h, const char *previd);
/* The stream error's extra element for an h that is too high (XEP-0198 §4). */
void smacks_put_too_high(buf *out, uint32_t h, uint64_t sent);

#endif
