/* shard/dup_filter.h — what an IO thread delivered lately, so that what a restarted SM routes
 * again is not delivered twice.
 *
 * When the SM dies, the frames the fronts had sent it and it had not acknowledged are sent again
 * to the new SM (docs/smproto.md §3), which routes them again: a stanza the old SM had delivered
 * just before it died reaches its recipient a second time, byte for byte the same (the SM's
 * serialization of the same stanza to the same session). The IO thread remembers a keyed digest
 * of (session, stanza) for each of its last deliveries; when its link to the SM comes back, what
 * it remembers becomes the previous link's (dup_filter_new_link), and for a while it drops a
 * stanza whose digest was delivered under the previous link (dup_filter_seen_before). What the
 * same link delivers twice (a presence sent again, the same text twice) is never dropped.
 *
 * Two generations of open-addressing tables of DUP_FILTER_SLOTS digests each, filled to half:
 * when the current one is half full the older one is cleared and becomes current, so the filter
 * remembers between DUP_FILTER_SLOTS / 2 and DUP_FILTER_SLOTS deliveries, in 2 x 64 KiB, and as
 * much again of the previous link's.
 *
 * Thread rules: one IO thread's.
 */
#ifndef JABSHARD_SHARD_DUP_FILTER_H
#define JABSHARD_SHARD_DUP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DUP_FILTER_SLOTS 8192

typedef struct dup_filter {
    uint64_t k0, k1;
    uint64_t slot[2][DUP_FILTER_SLOTS];
    size_t used[2];
    int cur;
    uint64_t before[2][DUP_FILTER_SLOTS];   /* the previous link's deliveries */
} dup_filter;

void dup_filter_init(dup_filter *f);
/* The digest of a stanza (len bytes) delivered to session sid. */
uint64_t dup_filter_digest(const dup_filter *f, uint64_t sid, const void *stanza, size_t len);
void dup_filter_add(dup_filter *f, uint64_t digest);
/* The link to the SM came back: what was delivered so far was under the previous link. */
void dup_filter_new_link(dup_filter *f);
/* Whether digest was delivered under the previous link. */
bool dup_filter_seen_before(const dup_filter *f, uint64_t digest);

#endif
