/* core/signals.h — how the programs receive signals: SIGTERM, SIGINT and SIGHUP are blocked in
 * every thread and read from one signalfd by the thread that owns shutdown and reloads; SIGPIPE
 * is ignored (a peer that vanished is an error from write, not a dead process). */
#ifndef JABSHARD_CORE_SIGNALS_H
#define JABSHARD_CORE_SIGNALS_H

/* Call before any thread starts, so that every thread inherits the mask. flags: signalfd(2)'s
 * (SFD_NONBLOCK for an event loop). Returns the signalfd, or -1 with errno. */
int signals_take(int flags);

#endif
