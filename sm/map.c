/* sm/map.c — keyed hash tables for the session manager (see map.h). */
#include "sm/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"
#include "core/siphash.h"

struct sm_map_entry {
    sm_map_entry *next;
    uint64_t hash;
    void *val;
    size_t len;
    unsigned char key[];
};

void sm_map_init(sm_map *m)
{
    memset(m, 0, sizeof(*m));
    m->k0 = random_u64();
    m->k1 = random_u64();
}

void sm_map_free(sm_map *m)
{
    for (size_t i = 0; i < m->nslots; i++)
        for (sm_map_entry *e = m->slots[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(m->slots);
    m->slots = NULL;
    m->nslots = m->count = 0;
}

static sm_map_entry **find(const sm_map *m, uint64_t h, const void *key, size_t len)
{
    if (!m->nslots)
        return NULL;
    sm_map_entry **pp = &m->slots[h & (m->nslots - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
            return pp;
    return pp;
}

void *sm_map_get(const sm_map *m, const void *key, size_t len)
{
    sm_map_entry **pp = find(m, siphash24(m->k0, m->k1, key, len), key, len);
    return pp && *pp ? (*pp)->val : NULL;
}

static void grow(sm_map *m)
{
    size_t n = m->nslots ? m->nslots * 2 : 64;
    sm_map_entry **slots = mem_array(n, sizeof(*slots));
    for (size_t i = 0; i < m->nslots; i++)
        for (sm_map_entry *e = m->slots[i], *next; e; e = next) {
            next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

void sm_map_put(sm_map *m, const void *key, size_t len, void *val)
{
    uint64_t h = siphash24(m->k0, m->k1, key, len);
    if (m->count >= m->nslots)
        grow(m);
    sm_map_entry **pp = find(m, h, key, len);
    if (*pp) {
        (*pp)->val = val;
        return;
    }
    sm_map_entry *e = mem_alloc(sizeof(*e) + len);
    e->next = NULL;
    e->hash = h;
    e->val = val;
    e->len = len;
    memcpy(e->key, key, len);
    *pp = e;
    m->count++;
}

void *sm_map_del(sm_map *m, const void *key, size_t len)
{
    sm_map_entry **pp = find(m, siphash24(m->k0, m->k1, key, len), key, len);
    if (!pp || !*pp)
        return NULL;
    sm_map_entry *e = *pp;
    void *val = e->val;
    *pp = e->next;
    free(e);
    m->count--;
    return val;
}

void sm_map_each(const sm_map *m, void (*fn)(void *val, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->nslots; i++)
        for (sm_map_entry *e = m->slots[i]; e; e = e->next)
            fn(e->val, ctx);
}

void **sm_map_values(const sm_map *m)
{
    if (!m->count)
        return NULL;
    void **v = mem_array(m->count, sizeof(void *));
    size_t n = 0;
    for (size_t i = 0; i < m->nslots; i++)
        for (sm_map_entry *e = m->slots[i]; e; e = e->next)
            v[n++] = e->val;
    return v;
}
