/* core/xml_ns.c — the namespace URI set: a short array searched in place, then a crit-bit tree.
 *
 * The crit-bit tree (D. J. Bernstein's, as in A. Langley's write-up) has one internal node per
 * key but the first; a node names the first bit, counted from the first byte and its high bit,
 * where the keys below it differ. A walk reads the sought key at those positions only, then
 * compares it once with the key it ends at. Each node also names one key of its subtree (leaf):
 * all keys below a node agree on every byte before its critical one, so a sought key that ends
 * before that byte differs from all of them at the same place, and the walk can stop there. That
 * bounds every walk by the length of the sought key, not by the depth of the tree.
 */
#include "core/xml_ns.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define CRIT_NODE 0x80000000u

struct xml_ns_crit {
    size_t byte;       /* position of the critical byte */
    uint32_t child[2]; /* CRIT_NODE | a node, or a key */
    uint32_t leaf;     /* a key below this node */
    uint8_t otherbits; /* every bit but the critical one */
};

/* Only the counts: the inline keys are written before they are read. */
void xml_ns_set_init(xml_ns_set *s)
{
    s->heap = NULL;
    s->crit = NULL;
    s->count = s->cap = s->ncrit = s->crit_root = 0;
    s->last = XML_NS_NONE;
}

void xml_ns_set_free(xml_ns_set *s)
{
    if (!s->heap)
        return;
    free(s->heap);
    free(s->crit);
    xml_ns_set_init(s);
}

size_t xml_ns_set_heap_bytes(const xml_ns_set *s)
{
    return s->heap ? s->cap * (sizeof(*s->heap) + sizeof(*s->crit)) : 0;
}

static unsigned byte_at(const char *uri, size_t len, size_t i)
{
    return i < len ? (unsigned char)uri[i] : 0;
}

/* 1 when the key's byte has the node's critical bit set. */
static unsigned direction(const xml_ns_crit *q, const char *uri, size_t len)
{
    return (1 + (q->otherbits | byte_at(uri, len, q->byte))) >> 8;
}

static bool same(const xml_ns_key *k, const char *uri, size_t len)
{
    return k->len == len && (k->uri == uri || memcmp(k->uri, uri, len) == 0);
}

/* The key where a walk for uri ends: uri itself if present, otherwise a key that differs from
 * uri first where every key of the reached subtree does. The tree is not empty. */
static uint32_t crit_walk(const xml_ns_set *s, const char *uri, size_t len)
{
    uint32_t p = s->crit_root;
    while (p & CRIT_NODE) {
        const xml_ns_crit *q = &s->crit[p & ~CRIT_NODE];
        if (q->byte > len)
            return q->leaf;
        p = q->child[direction(q, uri, len)];
    }
    return p;
}

/* Indexes key k, which differs from every key indexed so far (room for its node is there). */
static void crit_insert(xml_ns_set *s, uint32_t k)
{
    const char *uri = s->heap[k].uri;
    size_t len = s->heap[k].len;
    if (k == 0) {
        s->crit_root = 0;
        return;
    }
    const xml_ns_key *best = &s->heap[crit_walk(s, uri, len)];
    size_t pos = 0, end = len > best->len ? len : best->len;
    while (pos <= end && byte_at(uri, len, pos) == byte_at(best->uri, best->len, pos))
        pos++;
    if (pos > end)
        abort(); /* the same URI (the caller did not look first), or one with a NUL inside */
    unsigned diff = byte_at(uri, len, pos) ^ byte_at(best->uri, best->len, pos);
    diff |= diff >> 1;
    diff |= diff >> 2;
    diff |= diff >> 4;
    uint8_t otherbits = (uint8_t)((diff & ~(diff >> 1)) ^ 0xff);

    /* Down to where the new node belongs: above the first node that tests a later bit. */
    uint32_t *where = &s->crit_root;
    while (*where & CRIT_NODE) {
        xml_ns_crit *q = &s->crit[*where & ~CRIT_NODE];
        if (q->byte > pos || (q->byte == pos && q->otherbits > otherbits))
            break;
        where = &q->child[direction(q, uri, len)];
    }
    xml_ns_crit *n = &s->crit[s->ncrit];
    n->byte = pos;
    n->otherbits = otherbits;
    n->leaf = k;
    unsigned dir = direction(n, uri, len);
    n->child[dir] = k;
    n->child[1 - dir] = *where;
    *where = s->ncrit++ | CRIT_NODE;
}

uint32_t xml_ns_set_find(xml_ns_set *s, const char *uri, size_t len)
{
    if (s->last != XML_NS_NONE && same(xml_ns_set_key(s, s->last), uri, len))
        return s->last;
    uint32_t found = XML_NS_NONE;
    if (!s->heap) {
        for (uint32_t i = 0; i < s->count && found == XML_NS_NONE; i++)
            if (same(&s->inline_keys[i], uri, len))
                found = i;
    } else {
        uint32_t k = crit_walk(s, uri, len);
        if (same(&s->heap[k], uri, len))
            found = k;
    }
    if (found != XML_NS_NONE)
        s->last = found;
    return found;
}

uint32_t xml_ns_set_find_str(xml_ns_set *s, const char *uri)
{
    if (s->last != XML_NS_NONE && xml_ns_set_key(s, s->last)->uri == uri)
        return s->last;
    if (!s->heap)
        for (uint32_t i = 0; i < s->count; i++)
            if (s->inline_keys[i].uri == uri)
                return s->last = i;
    return xml_ns_set_find(s, uri, strlen(uri));
}

/* Moves the keys to the heap and indexes them: the set outgrew its inline array. */
static void spill(xml_ns_set *s)
{
    s->cap = 2 * XML_NS_INLINE;
    s->heap = mem_array(s->cap, sizeof(*s->heap));
    s->crit = mem_array(s->cap, sizeof(*s->crit));
    memcpy(s->heap, s->inline_keys, s->count * sizeof(*s->heap));
    for (uint32_t i = 0; i < s->count; i++)
        crit_insert(s, i);
}

uint32_t xml_ns_set_add(xml_ns_set *s, const char *uri, size_t len)
{
    uint32_t k = s->count;
    if (!s->heap && k < XML_NS_INLINE) {
        s->inline_keys[k] = (xml_ns_key){uri, len};
        s->count++;
        return s->last = k;
    }
    if (!s->heap)
        spill(s);
    if (k == s->cap) {
        if (s->cap > UINT32_MAX / 4)
            abort();
        s->cap *= 2;
        s->heap = mem_realloc(s->heap, s->cap * sizeof(*s->heap));
        s->crit = mem_realloc(s->crit, s->cap * sizeof(*s->crit));
    }
    s->heap[k] = (xml_ns_key){uri, len};
    s->count++;
    crit_insert(s, k);
    return s->last = k;
}
