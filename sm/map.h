/* sm/map.h — the session manager's hash tables: byte-string keys to pointers.
 *
 * Keys (bare JIDs, link and session ids) come from clients, so buckets are chosen with SipHash-2-4
 * under a per-table random key: nobody can aim many keys at one bucket. Chaining; the table doubles
 * when it holds more entries than buckets.
 *
 * Thread rules: a map belongs to one thread (the routing thread).
 */
#ifndef JABSHARD_SM_MAP_H
#define JABSHARD_SM_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_map_entry sm_map_entry;
typedef struct sm_map {
    sm_map_entry **slots;   /* private */
    size_t nslots, count;
    uint64_t k0, k1;
} sm_map;

void sm_map_init(sm_map *m);
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
