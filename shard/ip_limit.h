/* shard/ip_limit.h — per client address counts of one kind of event over windows, shared by
 * all IO threads: the front keeps one table for new connections (limits/conn_rate) and one for
 * failed authentications (limits/ip_auth_failures).
 *
 * Shared rather than per IO thread because SO_REUSEPORT spreads one address's connections over
 * every thread by the whole 4-tuple: per-thread tables would let a client open threads times the
 * limit. The table is a fixed array of 64-bit atomics (window start in seconds in the high half,
 * count in the low half), updated with compare-and-swap, so it never locks and never allocates after
 * creation. An address maps to a slot through a hash keyed with CSPRNG bytes; two addresses that
 * share a slot share a count (they can only be limited early, never late), and the key keeps an
 * outsider from choosing a victim's slot. IPv6 addresses count per /64, the unit one subscriber
 * gets. A window opens with the first event it counts and lasts interval seconds, so a burst
 * is measured from its own start, never cut in two by a boundary of the clock.
 *
 * Thread rules: new and free on the main thread; hit and peek from any thread.
 */
#ifndef JABSHARD_SHARD_IP_LIMIT_H
#define JABSHARD_SHARD_IP_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct ip_limit ip_limit;

/* slots: rounded up to a power of two. */
ip_limit *ip_limit_new(uint32_t slots);
void ip_limit_free(ip_limit *l);

/* Counts one event for addr's address at now_ms (any monotonic clock) in a window of interval_s
 * seconds from the window's first event; returns the window's count including this event. Addresses of other families count
 * nothing and return 0. */
uint32_t ip_limit_hit(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                      unsigned interval_s);
/* The count in the address's open window (0 when it has none), without counting. */
uint32_t ip_limit_peek(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                       unsigned interval_s);

#endif
