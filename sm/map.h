/* sm/map.h — the session manager's hash tables: byte-string keys to pointers.
 *
 * Keys (bare JIDs, link and session ids) come from clients, so slots are chosen with SipHash-2-4
 * under a per-table random key: nobody can aim many keys at one slot. Open addressing (linear
 * probing) with each slot holding the key's hash and the value: a lookup reads one slot line and
 * the value, which its caller reads anyway, instead of walking a chain of separate allocations.
 *
 * Two kinds: a plain map keeps a copy of each key; a keyed map (sm_map_init_keyed) stores nothing
 * but the slot, and asks its match function whether a value has a given key (the session and
 * account tables, whose values hold their JIDs). A keyed map's value must not change its key while
 * it is in the map: remove it first.
 *
 * Growing never stops the thread for the whole table: a table past three quarters full gets one
 * twice its size and the entries move over a few slots at a time with each later put and delete
 * (both tables are searched meanwhile), so the millionth session's login costs what the first's
 * did.
 *
 * Thread rules: a map belongs to one thread (the routing thread).
 */
#ifndef JABSHARD_SM_MAP_H
#define JABSHARD_SM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sm_map_slot sm_map_slot;
/* Whether val's key is the len bytes at key. */
typedef bool (*sm_map_match_fn)(const void *val, const void *key, size_t len);

typedef struct sm_map {
    sm_map_slot *slots;      /* private: cap slots, a power of two (or NULL) */
    sm_map_slot *old;        /* private: the table being moved from while growing, or NULL */
    size_t cap, old_cap, moved;  /* moved: old slots [0, moved) are moved over */
    size_t count;            /* entries in both tables */
    size_t used;             /* slots of the current table not empty (entries and tombstones) */
    sm_map_match_fn match;   /* NULL: the map keeps copies of its keys */
    uint64_t k0, k1;
} sm_map;

void sm_map_init(sm_map *m);
void sm_map_init_keyed(sm_map *m, sm_map_match_fn match);
/* Frees the table (not the values). */
void sm_map_free(sm_map *m);
void *sm_map_get(const sm_map *m, const void *key, size_t len);
/* Sets key to val (val not NULL), replacing any previous value. */
void sm_map_put(sm_map *m, const void *key, size_t len, void *val);
/* Removes key; returns its value or NULL. */
void *sm_map_del(sm_map *m, const void *key, size_t len);
static inline size_t sm_map_count(const sm_map *m) { return m->count; }
/* Calls fn for every value; fn must not change the map. */
void sm_map_each(const sm_map *m, void (*fn)(void *val, void *ctx), void *ctx);
/* Every value, in a malloc'd array of sm_map_count entries (safe to change the map while walking
 * it); NULL when empty. */
void **sm_map_values(const sm_map *m);

#endif
