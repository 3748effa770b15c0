/* core/xml_ns.h — sets of namespace URIs: each distinct URI once, found by pointer or by content.
 *
 * Two users. An arena (core/xml.h) keeps one so that equal URIs in its trees share one string: a
 * stanza that names a long URI on every element then holds it once, and its memory stays
 * proportional to its input. The serializer (core/xml_write.c) keeps one per call to count, per
 * URI, where it would have to declare it.
 *
 * Every URI added gets an index: 0, 1, 2... in order of addition. The first XML_NS_INLINE live
 * in the set itself and are searched one by one (most stanzas name fewer URIs, and cost no
 * allocation). Past that the keys move to the heap and a crit-bit tree indexes them by content:
 * a lookup or an addition costs O(length of the URI) whatever the number of URIs and whatever
 * their content; there is no hash that chosen URIs could make collide.
 *
 * A set stores pointers, not copies: the strings must outlive it. URIs hold no NUL byte (XML
 * cannot carry one), which is what lets a key be compared past its end as if padded with NULs.
 *
 * Thread rules: a set belongs to one thread.
 */
#ifndef JABSHARD_CORE_XML_NS_H
#define JABSHARD_CORE_XML_NS_H

#include <stddef.h>
#include <stdint.h>

#define XML_NS_INLINE 8
#define XML_NS_NONE UINT32_MAX

typedef struct xml_ns_key {
    const char *uri; /* NUL-terminated at len */
    size_t len;
} xml_ns_key;

typedef struct xml_ns_crit xml_ns_crit;

/* Zeroed memory is not a valid set: use xml_ns_set_init. The fields are private. */
typedef struct xml_ns_set {
    xml_ns_key *heap;  /* the keys once there are more than XML_NS_INLINE; NULL before */
    xml_ns_crit *crit; /* the crit-bit index over heap: a node per key but the first */
    uint32_t count, cap, ncrit, crit_root;
    uint32_t last;     /* the index found or added last: tried first */
    xml_ns_key inline_keys[XML_NS_INLINE];
} xml_ns_set;

void xml_ns_set_init(xml_ns_set *s);
void xml_ns_set_free(xml_ns_set *s);

static inline uint32_t xml_ns_set_count(const xml_ns_set *s) { return s->count; }
static inline const xml_ns_key *xml_ns_set_key(const xml_ns_set *s, uint32_t index)
{
    return s->heap ? &s->heap[index] : &s->inline_keys[index];
}

/* The index of the URI of len bytes at uri (which need not end there), or XML_NS_NONE. */
uint32_t xml_ns_set_find(xml_ns_set *s, const char *uri, size_t len);
/* The same for a NUL-terminated URI: a pointer already in the set is found without reading it. */
uint32_t xml_ns_set_find_str(xml_ns_set *s, const char *uri);
/* Adds a URI the set does not hold (look it up first) and returns its index; uri[len] must be
 * NUL, and the string outlive the set. */
uint32_t xml_ns_set_add(xml_ns_set *s, const char *uri, size_t len);

/* Heap bytes the set holds (nothing while it has XML_NS_INLINE URIs or fewer). */
size_t xml_ns_set_heap_bytes(const xml_ns_set *s);

#endif
