/* core/xmlmem.c — regions for expat parsers and the pool of blocks behind them (see xmlmem.h).
 *
 * Every allocation starts with a 16-byte header saying where it came from (a region's block, its
 * own mapping, or malloc) and how large it is, so free and realloc need no region. Freeing a small
 * allocation does nothing: its block is reused only when the whole region is released. expat's
 * frees between a parser's creation and its end are few (a buffer or pool that grows is
 * reallocated, which at most doubles what it held), so a region stays near its live size.
 */
#include "core/xmlmem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define XMLMEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XMLMEM_ASAN 1
#endif
#endif
#ifdef XMLMEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define BLOCK_SIZE (16 * 1024)
#define BLOCKS_PER_CHUNK 64
/* Requests above this (header included) get a mapping of their own. */
#define SMALL_MAX 4096
/* Free blocks the pool keeps resident for the next parsers; the rest go back to the system. */
#define WARM_MAX 32
#define HEADER 16

enum { FROM_BLOCK = 0x786d6c31, FROM_MAP = 0x786d6c32, FROM_HEAP = 0x786d6c33 };

typedef struct header {
    size_t size;        /* the caller's size (FROM_MAP: the mapping's length) */
    uint32_t from;
    uint32_t pad;
} header;

struct xmlmem_block {
    xmlmem_block *next;
    size_t used;        /* bytes from the block's start, this header included */
};
/* Where allocations start in a block, 16-byte aligned. */
#define BLOCK_START 16

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* Free blocks. Warm ones are still resident and linked through their first bytes; cold ones were
 * given back to the system, so they are listed apart: writing a link into one would bring a page
 * of it back. */
static xmlmem_block *warm;
static xmlmem_block **cold;
static size_t nwarm, ncold, cold_cap, mapped, in_use;  /* in blocks */
static size_t large, bytes;             /* live FROM_MAP allocations; bytes allocated (atomic) */
static __thread xmlmem_region *current;

static void out_of_memory(size_t size)
{
    fprintf(stderr, "jabshard: out of memory (%zu bytes for an XML parser)\n", size);
    abort();
}

/* Room in the cold list for n more. */
static bool cold_push_room(size_t n)
{
    if (ncold + n <= cold_cap)
        return true;
    size_t cap = cold_cap ? cold_cap * 2 : 256;
    while (cap < ncold + n)
        cap *= 2;
    xmlmem_block **grown = realloc(cold, cap * sizeof *grown);
    if (!grown)
        return false;
    cold = grown;
    cold_cap = cap;
    return true;
}

/* A free block's link stays readable; the rest is closed to the sanitizer until allocated. */
static void close_body(xmlmem_block *b)
{
    POISON((char *)b + BLOCK_START, BLOCK_SIZE - BLOCK_START);
}

static xmlmem_block *block_take(void)
{
    pthread_mutex_lock(&pool_lock);
    xmlmem_block *b = warm;
    if (b) {
        warm = b->next;
        nwarm--;
    } else if (ncold) {
        b = cold[--ncold];
    } else {
        char *chunk = mmap(NULL, (size_t)BLOCK_SIZE * BLOCKS_PER_CHUNK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunk == MAP_FAILED) {
            pthread_mutex_unlock(&pool_lock);
            out_of_memory((size_t)BLOCK_SIZE * BLOCKS_PER_CHUNK);
        }
        mapped += BLOCKS_PER_CHUNK;
        /* The chunk's pages are untouched: its other blocks start cold. */
        if (!cold_push_room(BLOCKS_PER_CHUNK - 1)) {
            pthread_mutex_unlock(&pool_lock);
            out_of_memory(BLOCKS_PER_CHUNK * sizeof *cold);
        }
        for (int i = BLOCKS_PER_CHUNK - 1; i > 0; i--) {
            xmlmem_block *spare = (xmlmem_block *)(chunk + (size_t)i * BLOCK_SIZE);
            POISON(spare, BLOCK_SIZE);
            cold[ncold++] = spare;
        }
        b = (xmlmem_block *)chunk;
        close_body(b);
    }
    in_use++;
    pthread_mutex_unlock(&pool_lock);
    UNPOISON(b, BLOCK_START);
    b->next = NULL;
    b->used = BLOCK_START;
    return b;
}

static void block_give(xmlmem_block *b)
{
    close_body(b);
    pthread_mutex_lock(&pool_lock);
    in_use--;
    b->next = warm;
    warm = b;
    nwarm++;
    pthread_mutex_unlock(&pool_lock);
}

void xmlmem_trim(void)
{
    for (;;) {
        pthread_mutex_lock(&pool_lock);
        xmlmem_block *b = nwarm > WARM_MAX ? warm : NULL;
        if (b) {
            warm = b->next;
            nwarm--;
        }
        pthread_mutex_unlock(&pool_lock);
        if (!b)
            return;
        /* Outside the lock: the system call (and the TLB flush it brings) is the slow part. */
        madvise(b, BLOCK_SIZE, MADV_DONTNEED);
        POISON(b, BLOCK_SIZE);
        pthread_mutex_lock(&pool_lock);
        bool listed = cold_push_room(1);
        if (listed)
            cold[ncold++] = b;
        pthread_mutex_unlock(&pool_lock);
        if (!listed)
            out_of_memory(sizeof *cold);
    }
}

static void *finish(header *h, size_t size, uint32_t from)
{
    h->size = size;
    h->from = from;
    h->pad = 0;
    return (char *)h + HEADER;
}

static void *alloc_small(xmlmem_region *r, size_t size)
{
    size_t need = (HEADER + size + 15) & ~(size_t)15;
    if (!r->blocks || r->blocks->used + need > BLOCK_SIZE) {
        xmlmem_block *b = block_take();
        b->next = r->blocks;
        r->blocks = b;
    }
    header *h = (header *)((char *)r->blocks + r->blocks->used);
    r->blocks->used += need;
    __atomic_add_fetch(&bytes, need, __ATOMIC_RELAXED);
    UNPOISON(h, HEADER + size);
    return finish(h, size, FROM_BLOCK);
}

static void *alloc_map(size_t size)
{
    size_t len = (HEADER + size + 4095) & ~(size_t)4095;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        out_of_memory(size);
    __atomic_add_fetch(&large, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&bytes, len, __ATOMIC_RELAXED);
    return finish(p, len, FROM_MAP);
}

static void *xm_malloc(size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    if (!current) {
        header *h = malloc(HEADER + size);
        return h ? finish(h, size, FROM_HEAP) : NULL;
    }
    return HEADER + size > SMALL_MAX ? alloc_map(size) : alloc_small(current, size);
}

static header *header_of(void *p)
{
    return (header *)((char *)p - HEADER);
}

static void xm_free(void *p)
{
    if (!p)
        return;
    header *h = header_of(p);
    switch (h->from) {
    case FROM_HEAP:
        free(h);
        break;
    case FROM_MAP:
        __atomic_sub_fetch(&large, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&bytes, h->size, __ATOMIC_RELAXED);
        munmap(h, h->size);
        break;
    case FROM_BLOCK:
        POISON(p, h->size);   /* reused only with its region */
        break;
    default:
        abort();              /* not ours: memory is corrupt */
    }
}

static void *xm_realloc(void *p, size_t size)
{
    if (!p)
        return xm_malloc(size);
    header *h = header_of(p);
    if (h->from == FROM_HEAP) {
        if (size > SIZE_MAX / 2)
            return NULL;
        header *n = realloc(h, HEADER + size);
        return n ? finish(n, size, FROM_HEAP) : NULL;
    }
    if (h->from == FROM_MAP && HEADER + size > SMALL_MAX) {
        size_t len = (HEADER + size + 4095) & ~(size_t)4095;
        size_t old_len = h->size;
        void *n = mremap(h, old_len, len, MREMAP_MAYMOVE);
        if (n == MAP_FAILED)
            return NULL;
        __atomic_add_fetch(&bytes, len - old_len, __ATOMIC_RELAXED);
        return finish(n, len, FROM_MAP);
    }
    size_t old = h->from == FROM_MAP ? h->size - HEADER : h->size;
    void *n = xm_malloc(size);
    if (n) {
        memcpy(n, p, old < size ? old : size);
        xm_free(p);
    }
    return n;
}

const XML_Memory_Handling_Suite xmlmem_suite = {xm_malloc, xm_realloc, xm_free};

xmlmem_region *xmlmem_enter(xmlmem_region *r)
{
    xmlmem_region *previous = current;
    current = r;
    return previous;
}

void xmlmem_leave(xmlmem_region *previous)
{
    current = previous;
}

void xmlmem_release(xmlmem_region *r)
{
    while (r->blocks) {
        xmlmem_block *b = r->blocks;
        r->blocks = b->next;
        __atomic_sub_fetch(&bytes, b->used - BLOCK_START, __ATOMIC_RELAXED);
        block_give(b);
    }
}

void xmlmem_get_stats(xmlmem_stats *out)
{
    pthread_mutex_lock(&pool_lock);
    out->blocks_mapped = mapped;
    out->blocks_in_use = in_use;
    out->blocks_warm = nwarm;
    pthread_mutex_unlock(&pool_lock);
    out->large_in_use = __atomic_load_n(&large, __ATOMIC_RELAXED);
    out->bytes_in_use = __atomic_load_n(&bytes, __ATOMIC_RELAXED);
}
