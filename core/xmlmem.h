/* core/xmlmem.h — memory for expat parsers, kept apart from the process heap.
 *
 * A client's parser holds about 10 KB in some forty small allocations for as long as the client
 * is active, and is freed when the connection goes idle (xmlstream_shrink). Taken from malloc, those
 * allocations interleave with the small, long-lived state of thousands of other connections, so
 * freeing the parsers gives almost nothing back to the system: the heap stays as large as it was
 * at the login peak. Here each parser gets a region: its small allocations are carved from 16 KB
 * blocks that belong to it alone, and its large ones (a buffer grown by a big stanza) are mappings
 * of their own. When the parser is freed its blocks go back to a shared pool, where the next
 * parsers find them; xmlmem_trim returns what is left over to the system (MADV_DONTNEED), so a
 * burst of logins followed by quiet costs nothing once the pool has been trimmed.
 *
 * expat's memory functions take no context, so the region in use is a thread-local set around
 * each expat call that may allocate (xmlmem_enter / xmlmem_leave). An allocation made with no
 * region entered comes from malloc; every allocation records where it came from, so free and
 * realloc always go to the right place.
 *
 * Thread rules: a region belongs to the thread that uses its parser; the pool is shared (a mutex;
 * it is only touched when a parser starts, grows past a block, is freed, or the pool is trimmed).
 */
#ifndef JABSHARD_CORE_XMLMEM_H
#define JABSHARD_CORE_XMLMEM_H

#include <expat.h>
#include <stddef.h>

typedef struct xmlmem_block xmlmem_block;

/* One parser's memory. Zero-initialised is empty. */
typedef struct xmlmem_region {
    xmlmem_block *blocks;   /* the newest first; allocation goes on in the newest */
} xmlmem_region;

/* The functions to give XML_ParserCreate_MM. */
extern const XML_Memory_Handling_Suite xmlmem_suite;

/* Makes r the region that allocations on this thread come from; returns the one it replaces,
 * to be handed back to xmlmem_leave. */
xmlmem_region *xmlmem_enter(xmlmem_region *r);
void xmlmem_leave(xmlmem_region *previous);

/* Gives the region's blocks back to the pool (after XML_ParserFree: nothing in it is used). */
void xmlmem_release(xmlmem_region *r);

/* Gives the pool's free blocks back to the system, but for a few kept for the next parsers. Call it
 * a while after parsers were freed (a second later, say): blocks freed and taken again in the
 * meantime never pay for a system call and a page fault. Any thread. */
void xmlmem_trim(void);

/* Pool figures, for tests and benchmarks. */
typedef struct xmlmem_stats {
    size_t blocks_mapped;   /* blocks the pool has taken from the system */
    size_t blocks_in_use;   /* held by regions */
    size_t blocks_warm;     /* free and still resident */
    size_t bytes_in_use;    /* allocated in blocks (headers included) and large mappings */
    size_t large_in_use;    /* large allocations, each its own mapping */
} xmlmem_stats;
void xmlmem_get_stats(xmlmem_stats *out);

#endif
