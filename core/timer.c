/* core/timer.c — the timer heap behind core/timer.h.
 *
 * A 4-ary min-heap rather than a binary one: half the depth, and the four children of a node sit
 * next to each other (64 bytes), so a sift-down touches one or two cache lines per level. A hashed
 * timing wheel would make every operation O(1), but it needs cascading between levels to keep
 * exact order, and the operation that dominates here (pushing an idle timeout later on every read)
 * is already O(1) with lazy rescheduling:
 *
 *   Each heap slot carries its own sort key (a deadline). When a pending timer is moved later, only
 *   the timer's own `when`/`seq` change; its slot keeps the old, earlier key, which is still a lower
 *   bound of the true deadline, so the heap stays a valid min-heap over lower bounds. A slot whose
 *   timer disagrees with it (seq != heap_seq) is "stale"; when a stale slot reaches the top it is
 *   re-keyed and sifted down (fix_top). Anything that looks at the top (next, expire) fixes it first,
 *   so the earliest deadline reported to the event loop is always exact, and a timer fires only from
 *   a fresh top slot: every other slot's key, and so its true deadline, is at least as large.
 *
 * Ties are broken by heap_seq, the stamp that was current when the slot got its key, so equal
 * deadlines fire in scheduling order. heap_seq lives in the timer rather than in the slot to keep
 * slots at 16 bytes; it only changes together with the slot's key, which keeps the heap invariant
 * intact under the tie-break.
 */
#include "core/timer.h"

#include <stdlib.h>
#include <time.h>

#include "core/mem.h"

struct timer_slot {
    uint64_t key;   /* deadline this slot is sorted by (<= t->when) */
    timer *t;
};

#define TIMER_ARITY 4
#define TIMER_MIN_CAP 64

uint64_t timer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void timer_init(timer *t, timer_fn fn, void *arg)
{
    *t = (timer){ .fn = fn, .arg = arg };
}

void timer_heap_init(timer_heap *h)
{
    *h = (timer_heap){ 0 };
}

void timer_heap_destroy(timer_heap *h)
{
    free(h->slots);
    *h = (timer_heap){ 0 };
}

static inline bool slot_before(const struct timer_slot *a, const struct timer_slot *b)
{
    return a->key < b->key || (a->key == b->key && a->t->heap_seq < b->t->heap_seq);
}

static inline void slot_put(timer_heap *h, uint32_t i, struct timer_slot s)
{
    h->slots[i] = s;
    s.t->slot = i + 1;
}

static void sift_up(timer_heap *h, uint32_t i)
{
    struct timer_slot s = h->slots[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / TIMER_ARITY;
        if (!slot_before(&s, &h->slots[parent]))
            break;
        slot_put(h, i, h->slots[parent]);
        i = parent;
    }
    slot_put(h, i, s);
}

static void sift_down(timer_heap *h, uint32_t i)
{
    struct timer_slot s = h->slots[i];
    for (;;) {
        uint64_t first = (uint64_t)i * TIMER_ARITY + 1;
        if (first >= h->count)
            break;
        uint32_t end = first + TIMER_ARITY < h->count ? (uint32_t)first + TIMER_ARITY : h->count;
        uint32_t best = (uint32_t)first;
        for (uint32_t c = best + 1; c < end; c++)
            if (slot_before(&h->slots[c], &h->slots[best]))
                best = c;
        if (!slot_before(&h->slots[best], &s))
            break;
        slot_put(h, i, h->slots[best]);
        i = best;
    }
    slot_put(h, i, s);
}

static void heap_resize(timer_heap *h, uint32_t cap)
{
    h->slots = mem_realloc(h->slots, (size_t)cap * sizeof *h->slots);
    h->cap = cap;
}

/* Removes the slot at index i, keeping the heap valid. */
static void heap_remove(timer_heap *h, uint32_t i)
{
    h->slots[i].t->slot = 0;
    uint32_t last = --h->count;
    if (i != last) {
        slot_put(h, i, h->slots[last]);
        if (i > 0 && slot_before(&h->slots[i], &h->slots[(i - 1) / TIMER_ARITY]))
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    /* Give memory back after a burst (a mass disconnect), with hysteresis against flapping. */
    if (h->cap > TIMER_MIN_CAP && h->count < h->cap / 4)
        heap_resize(h, h->cap / 2);
}

/* Re-keys stale top slots until the top is fresh (or the heap is empty). */
static void fix_top(timer_heap *h)
{
    while (h->count > 0) {
        timer *t = h->slots[0].t;
        if (t->seq == t->heap_seq)
            return;
        h->slots[0].key = t->when;
        t->heap_seq = t->seq;
        sift_down(h, 0);
    }
}

void timer_schedule(timer_heap *h, timer *t, uint64_t when)
{
    /* From a callback inside timer_heap_expire: sort after every timer this pass may still fire
     * (see there). */
    if (h->expiring && when < h->expire_now)
        when = h->expire_now;
    t->when = when;
    t->seq = ++h->seq;
    if (t->slot == 0) {
        if (h->count == h->cap) {
            if (h->cap > UINT32_MAX / 2)
                abort();
            heap_resize(h, h->cap ? h->cap * 2 : TIMER_MIN_CAP);
        }
        t->heap_seq = t->seq;
        h->slots[h->count] = (struct timer_slot){ .key = when, .t = t };
        sift_up(h, h->count++);
        return;
    }
    uint32_t i = t->slot - 1;
    if (when < h->slots[i].key) {
        h->slots[i].key = when;
        t->heap_seq = t->seq;
        sift_up(h, i);
    }
    /* Otherwise the lazy case: the slot keeps its earlier key (see the top of this file). */
}

void timer_cancel(timer_heap *h, timer *t)
{
    if (t->slot != 0)
        heap_remove(h, t->slot - 1);
}

bool timer_heap_next(timer_heap *h, uint64_t *when)
{
    fix_top(h);
    if (h->count == 0)
        return false;
    *when = h->slots[0].key;
    return true;
}

/* Timers scheduled during the pass have stamps above `limit` and deadlines of at least `now`
 * (timer_schedule clamps them), so they sort after every due timer that was pending when the pass
 * began: meeting one at the top means those are all done, and stopping there starves nobody. */
size_t timer_heap_expire(timer_heap *h, uint64_t now)
{
    uint64_t limit = h->seq;
    size_t fired = 0;
    bool was_expiring = h->expiring;
    uint64_t was_now = h->expire_now;
    h->expiring = true;
    h->expire_now = now;
    for (;;) {
        fix_top(h);
        if (h->count == 0)
            break;
        timer *t = h->slots[0].t;
        if (h->slots[0].key > now || t->seq > limit)
            break;
        heap_remove(h, 0);
        t->fn(t, t->arg);
        fired++;
    }
    h->expiring = was_expiring;
    h->expire_now = was_now;
    return fired;
}
