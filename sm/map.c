/* sm/map.c — keyed hash tables for the session manager (see map.h). */
#include "sm/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"

struct sm_map_entry {
    sm_map_entry *next;
    uint64_t hash;
    void *val;
    size_t len;
    unsigned char key[];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                \
    do {                                                                                        \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                               \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                  \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                  \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                               \
    } while (0)

uint64_t sm_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | p[i + (size_t)j];
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; j < (len & 7); j++)
        b |= (uint64_t)p[whole + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

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
    sm_map_entry **pp = find(m, sm_siphash(m->k0, m->k1, key, len), key, len);
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
    uint64_t h = sm_siphash(m->k0, m->k1, key, len);
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
    sm_map_entry **pp = find(m, sm_siphash(m->k0, m->k1, key, len), key, len);
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
