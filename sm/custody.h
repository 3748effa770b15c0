/* sm/custody.h — who owns a stanza between the fronts and the SM (docs/smproto.md §3).
 *
 * Every counted frame a front sends is numbered (1, 2, ... in the front's numbering, which goes on
 * across its reconnections). Processing it yields a ticket; the ticket is held by everything the
 * frame caused that is not finished yet: frames sent to a front that has not acknowledged them,
 * storage requests not answered, work deferred until a user is loaded. When a frame's ticket and
 * every ticket before it are released, the SM acknowledges up to it (ACK): only then may the front
 * forget it. So a stanza is always owned by someone who will deliver it, store it, or answer it
 * with an error, even when the SM is killed in the middle (the front sends again what was not
 * acknowledged) — at the price of a duplicate where the SM had finished and died before its ACK.
 *
 * The other way, each counted frame the SM sends on a link is numbered from 1 per link; the front
 * acknowledges what it has taken (ACK). What a link had not acknowledged when it went down is
 * handed back to the owner (stanzas: undeliverable, docs/smproto.md §2 UNDELIVERED) with the
 * ticket it was sent under.
 *
 * Thread rules: the SM's routing thread only.
 */
#ifndef JABSHARD_SM_CUSTODY_H
#define JABSHARD_SM_CUSTODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smproto/frame.h"

typedef struct custody_link custody_link;

/* A frame in custody: (its link, its number). link NULL: no ticket (a component's stanza, or work
 * the SM started itself). Copy it freely; each copy that holds must release. */
typedef struct custody_ticket {
    custody_link *link;
    uint64_t seq;
} custody_ticket;

/* A front link whose next inbound frame is numbered first_in + 1. */
custody_link *custody_link_new(uint64_t first_in);

/* A counted frame arrived: its ticket, held once (by the caller, who releases it when the frame
 * has been processed). */
custody_ticket custody_in(custody_link *cl);
/* The number of the last counted frame that arrived. */
uint64_t custody_received(const custody_link *cl);
/* Frames sent to the front and not acknowledged yet; frames received whose work is not finished
 * (the metrics endpoint). */
uint64_t custody_unacked(const custody_link *cl);
uint64_t custody_unfinished(const custody_link *cl);
void custody_hold(custody_ticket t);
void custody_release(custody_ticket t);

/* A counted frame went out on cl under origin (which it holds until cl acknowledges it). For a
 * STANZA, xml is kept so that it can be handed back if the link goes down first. */
void custody_sent(custody_link *cl, custody_ticket origin, smproto_type type, uint64_t sid,
                  const char *xml, size_t len);
/* The front acknowledged the first n frames the SM sent on cl. Returns false when n is beyond what
 * was sent or below an earlier acknowledgement (a protocol error). */
bool custody_acked(custody_link *cl, uint64_t n);
/* The SM's acknowledgement is due: everything up to *n is finished and the front has not been told.
 * Marks it told. */
bool custody_ack_due(custody_link *cl, uint64_t *n);

/* The link is gone: each STANZA it had not acknowledged goes to back(ctx, origin, sid, xml, len)
 * in the order sent (origin is held during the call and released after), then cl is retired: it
 * is freed once no ticket of it is held any more. */
typedef void (*custody_back_fn)(void *ctx, custody_ticket origin, uint64_t sid, const char *xml,
                                size_t len);
void custody_link_down(custody_link *cl, custody_back_fn back, void *ctx);

/* Counters for logs and tests. */
typedef struct custody_stats {
    uint64_t received, done;        /* inbound: counted frames, and how many are finished */
    uint64_t sent, acked;           /* outbound */
} custody_stats;
void custody_get_stats(const custody_link *cl, custody_stats *out);

#endif
