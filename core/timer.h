/* core/timer.h — millisecond timers that stay cheap with hundreds of thousands pending.
 *
 * A timer is embedded in its owner's struct (a connection's idle timeout, a pre-auth deadline), so
 * arming one never allocates. A timer_heap orders the pending timers; core/evloop keeps one per loop
 * and sleeps until its earliest deadline. Deadlines are absolute milliseconds on the monotonic clock
 * (timer_now_ms()).
 *
 * Costs (n pending): schedule O(log n); rescheduling a pending timer to a later deadline, which is
 * what an idle timeout does on every read, O(1) (the timer keeps its place and is re-sorted only
 * if its old deadline comes up); to an earlier deadline O(log n); cancel O(log n).
 *
 * Order: timers fire in deadline order; timers with equal deadlines fire in the order of their last
 * timer_schedule call.
 *
 * Thread rules: a heap and its timers belong to one thread; nothing here is shared.
 */
#ifndef JABSHARD_CORE_TIMER_H
#define JABSHARD_CORE_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct timer timer;
typedef void (*timer_fn)(timer *t, void *arg);

/* Fields are private to core/timer.c; read them through the functions below. */
struct timer {
    uint64_t when;      /* deadline (ms) */
    uint64_t seq;       /* stamp of the last timer_schedule: orders equal deadlines */
    uint64_t heap_seq;  /* stamp the heap is sorted by; differs from seq while rescheduled lazily */
    timer_fn fn;
    void *arg;
    uint32_t slot;      /* heap index + 1; 0 when not pending */
};

typedef struct timer_heap {
    struct timer_slot *slots;  /* private: a 4-ary min-heap of (sort key, timer) */
    uint32_t count, cap;
    uint64_t seq;              /* last scheduling stamp handed out */
    bool expiring;             /* inside timer_heap_expire, whose `now` is expire_now */
    uint64_t expire_now;
} timer_heap;

/* Current monotonic time in milliseconds. */
uint64_t timer_now_ms(void);

/* Prepares a timer (not pending). fn(t, arg) runs when it fires; it may schedule t again. */
void timer_init(timer *t, timer_fn fn, void *arg);
static inline bool timer_pending(const timer *t) { return t->slot != 0; }
/* Deadline of a pending timer. */
static inline uint64_t timer_when(const timer *t) { return t->when; }

void timer_heap_init(timer_heap *h);
/* Frees the heap's memory. Pending timers are simply forgotten (they are not touched, so their
 * owners may already be gone). */
void timer_heap_destroy(timer_heap *h);
static inline size_t timer_heap_count(const timer_heap *h) { return h->count; }

/* Arms t to fire at `when`, or moves it there if it is already pending. */
void timer_schedule(timer_heap *h, timer *t, uint64_t when);
/* Disarms t; does nothing if it is not pending. */
void timer_cancel(timer_heap *h, timer *t);

/* The earliest deadline among pending timers; false when none is pending. */
bool timer_heap_next(timer_heap *h, uint64_t *when);

/* Fires, in order, every timer due at `now` (deadline <= now) that was scheduled before this call.
 * A timer (re)scheduled by a callback during the call for a time before `now` gets `now` as its
 * deadline and, like any timer scheduled during the call, waits for the next call; so a callback
 * that re-arms itself for "now" neither loops forever nor holds back the other due timers. A fired
 * timer is no longer pending when its callback runs. Returns the number of callbacks run. */
size_t timer_heap_expire(timer_heap *h, uint64_t now);

#endif
