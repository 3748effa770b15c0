/* core/evloop.h — the event loop: one per thread, over epoll.
 *
 * Each of the front's IO threads runs one loop owning thousands of client sockets; the SM's routing
 * thread runs one too. A loop dispatches fd readiness, fires timers (core/timer.h) and can be woken
 * from any other thread (evloop_wake), which is how rings between threads signal new work.
 *
 * Readiness is level-triggered. Backpressure is then a matter of interest: a connection whose
 * inbound ring is full drops EVLOOP_READ and gets no more read callbacks, however much the client
 * sends, until it asks for EVLOOP_READ again; nothing needs to remember that readiness was
 * "consumed", as edge-triggered epoll would require (an edge-triggered handler must read until
 * EAGAIN or track the missed edge itself, which fights with pausing reads).
 *
 * One iteration: the before-sleep hook; wait (until the earliest timer, a ready fd, or a wake);
 * the on-wake hook if a wake arrived; fd callbacks; due timers.
 *
 * Thread rules: everything here is for the loop's own thread, except evloop_wake, which any thread
 * may call. An evloop_io and a loop's timers are touched only by the loop's thread.
 */
#ifndef JABSHARD_CORE_EVLOOP_H
#define JABSHARD_CORE_EVLOOP_H

#include <stdint.h>

#include "core/timer.h"

typedef struct evloop evloop;
typedef struct evloop_io evloop_io;

enum {
    EVLOOP_READ = 1,
    EVLOOP_WRITE = 2,
};

/* events is the subset of the interest that is ready. An error or hang-up on the fd is reported as
 * every interest bit, so the handler's own read or write meets the error. */
typedef void (*evloop_io_fn)(evloop *loop, evloop_io *io, unsigned events, void *arg);
typedef void (*evloop_hook_fn)(evloop *loop, void *arg);

/* Embedded in the owner's struct (a connection, a listener). Fields are private to core/evloop.c. */
struct evloop_io {
    int fd;
    unsigned interest;   /* EVLOOP_READ | EVLOOP_WRITE registered; 0 = not in the epoll set */
    evloop_io_fn fn;
    void *arg;
};

/* Returns NULL with errno when the kernel refuses an epoll instance or an eventfd. */
evloop *evloop_create(void);
/* Frees the loop. Registered fds are neither closed nor touched; pending timers are forgotten. */
void evloop_destroy(evloop *loop);

/* Runs iterations until evloop_stop; the iteration in which stop was called completes first. */
void evloop_run(evloop *loop);
void evloop_stop(evloop *loop);

/* The loop's clock (ms, timer_now_ms's time base), read once per iteration after waiting. */
uint64_t evloop_now(const evloop *loop);

void evloop_io_init(evloop_io *io, int fd, evloop_io_fn fn, void *arg);
/* Sets the interest (EVLOOP_READ | EVLOOP_WRITE). 0 takes the fd out of the epoll set, and must be
 * done before the fd is closed or io is freed; any event for io still pending in the current
 * iteration is then dropped, so the callback never runs for a freed io. Callbacks never report bits
 * outside the current interest, even for events collected before it changed.
 * Returns 0, or -1 with errno from epoll_ctl: when adding or changing interest, it is then left as
 * it was; when setting 0, io is forgotten anyway (the fd was closed too early). */
int evloop_io_set(evloop *loop, evloop_io *io, unsigned interest);
static inline unsigned evloop_io_interest(const evloop_io *io) { return io->interest; }

/* Arms (or moves) t to fire delay_ms after evloop_now(loop). t was set up with timer_init. */
void evloop_timer_after(evloop *loop, timer *t, uint64_t delay_ms);
void evloop_timer_cancel(evloop *loop, timer *t);

/* Hooks, set before evloop_run (one each; NULL removes). on_wake runs on the loop's thread after
 * one or more evloop_wake calls, and sees everything the waking threads wrote before calling
 * evloop_wake. before_sleep runs at the start of every iteration, before the loop may block: the
 * place to flush batched writes. */
void evloop_on_wake(evloop *loop, evloop_hook_fn fn, void *arg);
void evloop_before_sleep(evloop *loop, evloop_hook_fn fn, void *arg);

/* Any thread, any time while the loop exists: makes the loop run its on_wake hook soon. Wakes are
 * coalesced: until the loop takes them, further calls cost one atomic exchange, and the eventfd is
 * written only when the loop is asleep or about to be. */
void evloop_wake(evloop *loop);

#endif
