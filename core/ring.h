/* core/ring.h — single-producer, single-consumer rings of pointers between two threads:
 * Concurrency Kit's ck_ring, plus what ThreadSanitizer needs to see the hand-off.
 *
 * Ownership: exactly one thread pushes (the producer) and exactly one thread pops (the
 * consumer) for the ring's whole life; a ring of size S (a power of two) holds S - 1 entries.
 * What the producer wrote before a push is visible to the consumer after the matching pop.
 *
 * ThreadSanitizer cannot see ck's ordering (its loads and stores are volatile accesses and
 * fences, whichever port is used), so under TSan the ring's own accesses are hidden from it and
 * the hand-off is declared as a release/acquire pair on the ring.
 */
#ifndef JABSHARD_CORE_RING_H
#define JABSHARD_CORE_RING_H

#include <ck_ring.h>
#include <stdbool.h>

#if defined(__SANITIZE_THREAD__)
#define RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_TSAN 1
#endif
#endif

#ifdef RING_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#endif

typedef struct ring {
    ck_ring_t ring;
    ck_ring_buffer_t *slots;
} ring;

/* size: a power of two, at least 4. */
void ring_init(ring *r, unsigned size);
void ring_destroy(ring *r);

/* Producer only. False when the ring is full (backpressure: nothing was queued). */
static inline bool ring_push(ring *r, void *entry)
{
#ifdef RING_TSAN
    __tsan_release(r);
    __tsan_ignore_thread_begin();
#endif
    bool ok = ck_ring_enqueue_spsc(&r->ring, r->slots, entry);
#ifdef RING_TSAN
    __tsan_ignore_thread_end();
#endif
    return ok;
}

/* Consumer only. NULL when the ring is empty. */
static inline void *ring_pop(ring *r)
{
    void *entry = NULL;
#ifdef RING_TSAN
    __tsan_ignore_thread_begin();
#endif
    bool ok = ck_ring_dequeue_spsc(&r->ring, r->slots, &entry);
#ifdef RING_TSAN
    __tsan_ignore_thread_end();
    if (ok)
        __tsan_acquire(r);
#endif
    return ok ? entry : NULL;
}

#endif
