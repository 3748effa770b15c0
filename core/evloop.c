/* core/evloop.c — the epoll loop behind core/evloop.h: dispatch, the timer heap, and the
 * cross-thread wake-up.
 *
 * Wake-up protocol. Two flags, both accessed with sequentially consistent atomics:
 *   wake_pending  set by wakers (exchange to 1), taken by the loop (exchange to 0);
 *   sleeping      1 while the loop is in, or about to enter, epoll_wait; written only by the loop.
 *
 *   waker: publish data; if exchange(pending, 1) == 0: if load(sleeping): write(eventfd)
 *   loop:  store(sleeping, 1); if load(pending): timeout = 0; epoll_wait; store(sleeping, 0);
 *          if exchange(pending, 0): on_wake()
 *
 * No wake is lost:
 *  - A waker that finds pending already 1 does nothing more: an earlier waker set it, and the loop
 *    has not taken it yet (taking it writes 0, and the waker's exchange read 1, so it comes before
 *    the take in pending's modification order). The loop's next take therefore reads the value this
 *    waker's release-exchange wrote, or a later one in the same chain of read-modify-writes, which
 *    makes the waker's data visible to the on_wake that follows.
 *  - A waker that sets pending from 0 to 1 either sees sleeping == 1 and writes the eventfd, which
 *    makes the next (or current) epoll_wait return; or sees sleeping == 0. All four accesses are
 *    seq_cst, so they fall in one total order: the waker's exchange comes before its load of
 *    sleeping, which read 0, so it comes before the loop's next store(sleeping, 1), which comes
 *    before the loop's load of pending. That load therefore sees 1 (only the loop clears it), and
 *    the loop does not block: it takes the wake in that iteration. This is the store/load pair
 *    (Dekker) that needs seq_cst on both sides; release/acquire alone would let each side miss the
 *    other's store.
 * Coalescing: while pending is 1, wakes cost one exchange on a cache line the loop touches only
 * when it takes them; while the loop is busy (sleeping == 0), no eventfd write at all. The eventfd
 * is drained by its own read callback; a write that lands after the loop took the wake costs one
 * spurious, empty iteration.
 *
 * Freed fds inside one batch. epoll_wait returns a batch; a callback may remove (and free) another
 * io whose event is later in the same batch. evloop_io_set(…, 0) clears such events' pointers in
 * the batch (as libuv does), so dispatch skips them.
 */
#include "core/evloop.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define EVLOOP_BATCH 256

struct evloop {
    /* Shared with waking threads: see the top of this file. efd is fixed after creation. */
    atomic_int wake_pending;
    atomic_int sleeping;
    int efd;
    /* Keep the fields wakers write off the loop's own hot cache lines. */
    char pad[64];

    /* Everything below: the loop's thread only. */
    int epfd;
    bool stop;
    uint64_t now;
    timer_heap timers;
    evloop_io wake_io;
    evloop_hook_fn on_wake, before_sleep;
    void *on_wake_arg, *before_sleep_arg;
    /* The batch being dispatched: events [batch_next, batch_n) are still to come. */
    int batch_next, batch_n;
    struct epoll_event events[EVLOOP_BATCH];
};

static void evloop_drain_wake(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    uint64_t count;
    /* Non-blocking: EAGAIN just means another iteration already drained it. */
    while (read(io->fd, &count, sizeof count) < 0 && errno == EINTR)
        ;
}

evloop *evloop_create(void)
{
    evloop *loop = mem_zalloc(sizeof *loop);
    atomic_init(&loop->wake_pending, 0);
    atomic_init(&loop->sleeping, 0);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    timer_heap_init(&loop->timers);
    loop->now = timer_now_ms();
    evloop_io_init(&loop->wake_io, loop->efd, evloop_drain_wake, NULL);
    if (loop->epfd < 0 || loop->efd < 0 || evloop_io_set(loop, &loop->wake_io, EVLOOP_READ) < 0) {
        int saved = errno;
        if (loop->epfd >= 0)
            close(loop->epfd);
        if (loop->efd >= 0)
            close(loop->efd);
        free(loop);
        errno = saved;
        return NULL;
    }
    return loop;
}

void evloop_destroy(evloop *loop)
{
    if (!loop)
        return;
    close(loop->efd);
    close(loop->epfd);
    timer_heap_destroy(&loop->timers);
    free(loop);
}

void evloop_stop(evloop *loop)
{
    loop->stop = true;
}

uint64_t evloop_now(const evloop *loop)
{
    return loop->now;
}

void evloop_io_init(evloop_io *io, int fd, evloop_io_fn fn, void *arg)
{
    *io = (evloop_io){ .fd = fd, .interest = 0, .fn = fn, .arg = arg };
}

int evloop_io_set(evloop *loop, evloop_io *io, unsigned interest)
{
    interest &= EVLOOP_READ | EVLOOP_WRITE;
    if (interest == io->interest)
        return 0;
    struct epoll_event ev = {
        .events = (interest & EVLOOP_READ ? EPOLLIN : 0u) |
                  (interest & EVLOOP_WRITE ? EPOLLOUT : 0u),
        .data.ptr = io,
    };
    if (interest == 0) {
        int rc = epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, &ev);
        /* Out of the set either way (a failed DEL means the fd was already closed): forget it,
         * including any event of this batch that is still to be dispatched. */
        io->interest = 0;
        for (int i = loop->batch_next; i < loop->batch_n; i++)
            if (loop->events[i].data.ptr == io)
                loop->events[i].data.ptr = NULL;
        return rc;
    }
    if (epoll_ctl(loop->epfd, io->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -1;
    io->interest = interest;
    return 0;
}

void evloop_timer_after(evloop *loop, timer *t, uint64_t delay_ms)
{
    uint64_t when = delay_ms > UINT64_MAX - loop->now ? UINT64_MAX : loop->now + delay_ms;
    timer_schedule(&loop->timers, t, when);
}

void evloop_timer_cancel(evloop *loop, timer *t)
{
    timer_cancel(&loop->timers, t);
}

void evloop_on_wake(evloop *loop, evloop_hook_fn fn, void *arg)
{
    loop->on_wake = fn;
    loop->on_wake_arg = arg;
}

void evloop_before_sleep(evloop *loop, evloop_hook_fn fn, void *arg)
{
    loop->before_sleep = fn;
    loop->before_sleep_arg = arg;
}

void evloop_wake(evloop *loop)
{
    if (atomic_exchange(&loop->wake_pending, 1))
        return;
    if (atomic_load(&loop->sleeping)) {
        uint64_t one = 1;
        /* EAGAIN would mean the counter is saturated: the loop is waking anyway. */
        while (write(loop->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

/* Milliseconds epoll_wait may sleep: until the earliest timer, or forever without one. */
static int evloop_timeout(evloop *loop)
{
    uint64_t next;
    if (!timer_heap_next(&loop->timers, &next))
        return -1;
    uint64_t now = timer_now_ms();
    if (next <= now)
        return 0;
    return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void evloop_dispatch(evloop *loop)
{
    while (loop->batch_next < loop->batch_n) {
        const struct epoll_event *ev = &loop->events[loop->batch_next++];
        evloop_io *io = ev->data.ptr;
        if (!io)
            continue;
        unsigned ready = 0;
        if (ev->events & EPOLLIN)
            ready |= EVLOOP_READ;
        if (ev->events & EPOLLOUT)
            ready |= EVLOOP_WRITE;
        if (ev->events & (EPOLLERR | EPOLLHUP))
            ready |= EVLOOP_READ | EVLOOP_WRITE;
        ready &= io->interest;
        if (ready)
            io->fn(loop, io, ready, io->arg);
    }
}

static void evloop_iterate(evloop *loop)
{
    if (loop->before_sleep)
        loop->before_sleep(loop, loop->before_sleep_arg);
    if (loop->stop)
        return;
    int timeout = evloop_timeout(loop);
    atomic_store(&loop->sleeping, 1);
    if (atomic_load(&loop->wake_pending))
        timeout = 0;
    int n = epoll_wait(loop->epfd, loop->events, EVLOOP_BATCH, timeout);
    atomic_store(&loop->sleeping, 0);
    if (n < 0) {
        if (errno != EINTR) {
            log_error("evloop: epoll_wait: %s", strerror(errno));
            abort();
        }
        n = 0;
    }
    loop->now = timer_now_ms();
    /* The batch is live from here: on_wake may already remove an io that has an event in it. */
    loop->batch_next = 0;
    loop->batch_n = n;
    /* The relaxed peek saves the exchange when no wake came; a wake it misses is seen by the
     * seq_cst load before the next sleep. */
    if (atomic_load_explicit(&loop->wake_pending, memory_order_relaxed) &&
        atomic_exchange(&loop->wake_pending, 0) && loop->on_wake)
        loop->on_wake(loop, loop->on_wake_arg);
    evloop_dispatch(loop);
    loop->batch_n = loop->batch_next = 0;
    timer_heap_expire(&loop->timers, loop->now);
}

void evloop_run(evloop *loop)
{
    loop->stop = false;
    while (!loop->stop)
        evloop_iterate(loop);
}
