/* sm/strset.h — a set of strings with constant-time add, remove and membership: the full JIDs a
 * session has sent directed presence to (RFC 6121 §4.6), which a client grows by one for every
 * room it joins and which the SM consults on every presence that session sends.
 *
 * NULL is the empty set and costs nothing: the table (a SipHash-keyed sm_map, so a client cannot
 * aim its entries at one bucket) is made by the first add and freed with the last remove.
 *
 * Thread rules: a set belongs to one thread (the routing thread).
 */
#ifndef JABSHARD_SM_STRSET_H
#define JABSHARD_SM_STRSET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sm_strset sm_strset;

/* Adds s (copied); false when it was already there. */
bool sm_strset_add(sm_strset **set, const char *s);
/* Removes s; false when it was not there. */
bool sm_strset_remove(sm_strset **set, const char *s);
bool sm_strset_has(const sm_strset *set, const char *s);
size_t sm_strset_count(const sm_strset *set);
/* The members, in no particular order, in a malloc'd array of sm_strset_count entries that stays
 * valid until the set next changes; NULL when empty. */
const char **sm_strset_members(const sm_strset *set);
void sm_strset_free(sm_strset **set);

#endif
