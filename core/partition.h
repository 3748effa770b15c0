/* core/partition.h — which of several session managers owns a user (docs/scaling.md, "Past one
 * SM"): a fixed table of PARTITION_SLOTS slots, a user's slot taken from SipHash-2-4 of its bare
 * JID as the SM stores it (the canonical form core/jid gives: nodeprep'd node, nameprep'd domain),
 * and the slots split into equal ranges over the SMs, in their order.
 *
 * Unlike the SM's hash tables (sm/map.c, a random key per table), the key here is FIXED: every SM
 * and every front must compute the same slot for a user, across restarts. It is not a secret
 * (a peer that chooses many JIDs of one slot only loads one SM, which its account quota bounds);
 * a deployment may configure its own (sm.xml <partitions key='...'>) but must then give the same
 * one to every SM and front.
 *
 * Thread rules: none; plain functions of their arguments.
 */
#ifndef JABSHARD_CORE_PARTITION_H
#define JABSHARD_CORE_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jid.h"

#define PARTITION_SLOTS 4096u      /* 12 bits of the hash */
#define PARTITION_MAX_SMS 64       /* SMs a table may split the slots over */

typedef struct partition_key {
    uint64_t k0, k1;
} partition_key;

/* The built-in key (the ASCII of "jabshard-partn01"). */
extern const partition_key partition_default_key;

/* key from 32 hex digits (k0 then k1, big-endian); false, key unchanged, on anything else. */
bool partition_key_parse(const char *hex, partition_key *key);

/* The slot of the bare JID text bare[0..len), which must already be canonical (jid_full of a
 * parsed jid's bare part): 0 .. PARTITION_SLOTS - 1. */
unsigned partition_slot_of(const partition_key *key, const char *bare, size_t len);
/* The slot of j's bare part (its resource, if any, is ignored). */
unsigned partition_slot(const partition_key *key, const jid *j);

/* The SM (0 .. nsms - 1) owning slot when the slots are split into nsms equal ranges, in order:
 * SM i owns slots [i * SLOTS / nsms, (i + 1) * SLOTS / nsms). */
int partition_owner(unsigned slot, int nsms);

#endif
