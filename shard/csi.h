/* shard/csi.h — XEP-0352 client state indication at the front: what an inactive client's
 * connection holds back, and when it lets it go.
 *
 * While a client says it is inactive (<inactive xmlns='urn:xmpp:csi:0'/>), stanzas from the SM
 * that can wait are held here instead of being written: presence updates (only the latest from
 * each sender: a newer one supersedes the held one, which is dropped), and messages that carry
 * nothing a person waits for (chat states, receipts and markers, headlines, PEP notifications).
 * Everything else is urgent: any iq (the client asked, or must answer), a message with a body or
 * subject, an encrypted one (OMEMO, OpenPGP, XEP-0380), a conference invitation, a Jingle message
 * (XEP-0353: a call), a carbon of the user's own sent message, errors and subscription requests;
 * this follows Prosody 0.12's mod_csi_simple. An urgent stanza is written after everything held,
 * in the order they came. The connection also lets everything go when the client sends
 * <active/> or any stanza (it is awake), when it sends the idle whitespace ping anyway, and at the
 * bounds: a stanza that would take the hold past max_stanzas or max_bytes, and max_hold seconds
 * after the first stanza held.
 *
 * Held stanzas are in the front's custody (docs/smproto.md §3) exactly as queued ones are: when
 * the connection ends, the caller hands every one back to the SM (UNDELIVERED), after the queue's
 * unwritten stanzas, since everything held came after them. Only a superseded presence is
 * dropped: presence is never stored.
 *
 * Each held stanza is a copy in a block of its own: the SM's frames arrive in blocks holding a
 * whole read from the link, which a reference would keep for as long as the hold lasts.
 *
 * Thread rules: a csi belongs to its connection's IO thread. csi_stats are written by that
 * thread and may be read from any (relaxed atomics).
 */
#ifndef JABSHARD_SHARD_CSI_H
#define JABSHARD_SHARD_CSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/outq.h"
#include "shard/front_config.h"

#define CSI_NS "urn:xmpp:csi:0"

typedef enum {
    CSI_URGENT,    /* write it now (after what is held) */
    CSI_LATER,     /* may wait while the client is inactive */
    CSI_PRESENCE,  /* a presence update (available or unavailable): may wait, and a later one
                    * from the same 'from' supersedes it */
} csi_kind;

/* Classifies a stanza as the SM writes it for a client (core/xml_write.c with jabber:client as
 * the default namespace: values quoted with ', text and values escaped, no whitespace added).
 * For CSI_PRESENCE, *key and *keylen are its 'from' attribute as written (a pointer into xml;
 * keylen 0 when it has none). Any bytes are safe; anything not in that form is CSI_URGENT. */
csi_kind csi_classify(const char *xml, size_t len, const char **key, size_t *keylen);

/* What the front's IO threads count (iothread_stats shows them). */
typedef struct csi_stats {
    _Atomic uint64_t held;             /* stanzas held */
    _Atomic uint64_t superseded;       /* held presences dropped for a newer one */
    _Atomic uint64_t superseded_bytes; /* their bytes: never written */
    _Atomic uint64_t flushes;          /* times the held stanzas were let go */
    _Atomic uint64_t flushed_bytes;    /* bytes held, then written */
    _Atomic uint64_t wakeups_saved;    /* writes to the client that did not happen: a superseded
                                        * presence is never written, and held stanzas go out
                                        * together (with the stanza that ended the hold, if any) */
} csi_stats;

typedef struct csi csi;

/* limits: the front's <csi> (front_config.h); both must outlive the csi. */
csi *csi_new(const front_csi *limits, csi_stats *stats);
/* Drops whatever is held: take it first (csi_flush) when it must go somewhere. */
void csi_free(csi *h);

void csi_set_inactive(csi *h, bool inactive);
bool csi_inactive(const csi *h);
/* Stanzas held now. */
size_t csi_count(const csi *h);

typedef enum {
    CSI_DELIVER,      /* write it now: first let go of what is held (csi_flush, CSI_BEFORE) */
    CSI_HELD,         /* held (copied; the caller's bytes are not kept) */
    CSI_HELD_FIRST,   /* held, and nothing else was: arm the max_hold timer */
} csi_verdict;

/* A stanza for the client (payload of a STANZA frame). While active, always CSI_DELIVER. */
csi_verdict csi_offer(csi *h, const char *xml, size_t len);

typedef enum {
    CSI_BEFORE,   /* a flush, ahead of a stanza written now (the one write carries both) */
    CSI_ALONE,    /* a flush on its own (<active/>, a bound, the timer) */
    CSI_RETURN,   /* not a flush: the connection ends and they go back to the SM */
} csi_take_mode;

/* Hands every held stanza to fn, oldest first, with a block reference that fn owns, then holds
 * nothing. Counted in the stats as mode says. */
void csi_take(csi *h, csi_take_mode mode, void (*fn)(void *arg, outq_block *blk, size_t len),
              void *arg);

#endif
