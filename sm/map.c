/* sm/map.c — keyed hash tables for the session manager (see map.h): linear probing with
 * backward-shift deletion in the current table, and the incremental move out of the table it
 * grew from (whose emptied slots stay as tombstones until it is freed, so its probe chains hold). */
#include "sm/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"
#include "core/siphash.h"

/* Old slots moved into the grown table by each put and delete: the move is over long before the
 * new table (twice the size) could fill. */
#define MAP_MOVE_STEP 32
#define MAP_FIRST_CAP 16

struct sm_map_slot {
    uint64_t hash;
    void *val;            /* NULL: empty; TOMB: an entry that left the old table */
    unsigned char *key;   /* a plain map's copy: a size_t length, then the bytes */
};

static const char tomb_marker;
#define TOMB ((void *)&tomb_marker)

static void init(sm_map *m, sm_map_match_fn match)
{
    memset(m, 0, sizeof(*m));
    m->match = match;
    m->k0 = random_u64();
    m->k1 = random_u64();
}

void sm_map_init(sm_map *m) { init(m, NULL); }
void sm_map_init_keyed(sm_map *m, sm_map_match_fn match) { init(m, match); }

static bool live(const sm_map_slot *sl) { return sl->val && sl->val != TOMB; }

static void free_keys(sm_map_slot *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (live(&t[i]))
            free(t[i].key);
}

void sm_map_free(sm_map *m)
{
    if (m->slots)
        free_keys(m->slots, m->cap);
    if (m->old)
        free_keys(m->old, m->old_cap);
    free(m->slots);
    free(m->old);
    *m = (sm_map){.match = m->match, .k0 = m->k0, .k1 = m->k1};
}

static bool slot_has(const sm_map *m, const sm_map_slot *sl, uint64_t h, const void *key,
                     size_t len)
{
    if (sl->hash != h || sl->val == TOMB)
        return false;
    if (m->match)
        return m->match(sl->val, key, len);
    size_t klen;
    memcpy(&klen, sl->key, sizeof(klen));
    return klen == len && memcmp(sl->key + sizeof(klen), key, len) == 0;
}

/* key's slot in table t of n slots, or NULL. Every table keeps an empty slot. */
static sm_map_slot *lookup(const sm_map *m, sm_map_slot *t, size_t n, uint64_t h,
                           const void *key, size_t len)
{
    if (!t)
        return NULL;
    for (size_t i = h & (n - 1);; i = (i + 1) & (n - 1)) {
        if (!t[i].val)
            return NULL;
        if (slot_has(m, &t[i], h, key, len))
            return &t[i];
    }
}

void *sm_map_get(const sm_map *m, const void *key, size_t len)
{
    if (!m->count)
        return NULL;
    uint64_t h = siphash24(m->k0, m->k1, key, len);
    sm_map_slot *sl = lookup(m, m->slots, m->cap, h, key, len);
    if (!sl)
        sl = lookup(m, m->old, m->old_cap, h, key, len);
    return sl ? sl->val : NULL;
}

/* Into the current table, which has room and does not hold the key. */
static void place(sm_map *m, uint64_t h, void *val, unsigned char *key)
{
    size_t i = h & (m->cap - 1);
    while (m->slots[i].val)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (sm_map_slot){h, val, key};
    m->used++;
}

static void move_some(sm_map *m, size_t steps)
{
    for (; m->old && steps; steps--) {
        sm_map_slot *sl = &m->old[m->moved++];
        if (live(sl)) {
            place(m, sl->hash, sl->val, sl->key);
            sl->val = TOMB;
        }
        if (m->moved == m->old_cap) {
            free(m->old);
            m->old = NULL;
            m->old_cap = m->moved = 0;
        }
    }
}

static void grow(sm_map *m)
{
    if (m->old)
        move_some(m, m->old_cap);   /* not reached with MAP_MOVE_STEP: a safeguard */
    m->old = m->slots;
    m->old_cap = m->cap;
    m->moved = 0;
    m->cap = m->cap ? m->cap * 2 : MAP_FIRST_CAP;
    m->slots = mem_array(m->cap, sizeof(*m->slots));
    m->used = 0;
    if (!m->old)
        m->old_cap = 0;
}

/* Empties slot i of the current table, shifting back the entries of its probe chain. */
static void unplace(sm_map *m, size_t i)
{
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->slots[j].val; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* The entry at j may move to i when its home is not in (i, j], cyclically. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (sm_map_slot){0};
    m->used--;
}

void sm_map_put(sm_map *m, const void *key, size_t len, void *val)
{
    uint64_t h = siphash24(m->k0, m->k1, key, len);
    sm_map_slot *sl = lookup(m, m->slots, m->cap, h, key, len);
    if (sl) {
        sl->val = val;
        return;
    }
    unsigned char *copy = NULL;
    sl = lookup(m, m->old, m->old_cap, h, key, len);
    if (sl) {   /* it moves over now, with its new value */
        copy = sl->key;
        sl->val = TOMB;
    } else {
        if (!m->match) {
            copy = mem_alloc(sizeof(len) + len);
            memcpy(copy, &len, sizeof(len));
            memcpy(copy + sizeof(len), key, len);
        }
        m->count++;
    }
    if ((m->used + 1) * 4 > m->cap * 3)
        grow(m);
    place(m, h, val, copy);
    move_some(m, MAP_MOVE_STEP);
}

void *sm_map_del(sm_map *m, const void *key, size_t len)
{
    if (!m->count)
        return NULL;
    uint64_t h = siphash24(m->k0, m->k1, key, len);
    void *val;
    sm_map_slot *sl = lookup(m, m->slots, m->cap, h, key, len);
    if (sl) {
        val = sl->val;
        free(sl->key);
        unplace(m, (size_t)(sl - m->slots));
    } else if ((sl = lookup(m, m->old, m->old_cap, h, key, len))) {
        val = sl->val;
        free(sl->key);
        sl->val = TOMB;
    } else {
        return NULL;
    }
    m->count--;
    move_some(m, MAP_MOVE_STEP);
    return val;
}

static void each_in(const sm_map_slot *t, size_t n, void (*fn)(void *val, void *ctx), void *ctx)
{
    for (size_t i = 0; i < n; i++)
        if (live(&t[i]))
            fn(t[i].val, ctx);
}

void sm_map_each(const sm_map *m, void (*fn)(void *val, void *ctx), void *ctx)
{
    if (m->slots)
        each_in(m->slots, m->cap, fn, ctx);
    if (m->old)
        each_in(m->old, m->old_cap, fn, ctx);
}

struct collect {
    void **v;
    size_t n;
};

static void collect_one(void *val, void *ctx)
{
    struct collect *c = ctx;
    c->v[c->n++] = val;
}

void **sm_map_values(const sm_map *m)
{
    if (!m->count)
        return NULL;
    struct collect c = {mem_array(m->count, sizeof(void *)), 0};
    sm_map_each(m, collect_one, &c);
    return c.v;
}
