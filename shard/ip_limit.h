/* shard/ip_limit.h — per client address token buckets, shared by all IO threads: the front keeps
 * one table per kind of event (new connections, failed authentications, account creations, and
 * the log lines that fail2ban reads), each event taking one token from its address's bucket.
 *
 * A bucket holds up to burst tokens and regains one every period_us microseconds: an address may
 * do burst things at once, then one per period. It is kept as the time at which it will be full
 * again (GCRA, the "theoretical arrival time"), one 64-bit atomic per slot updated with
 * compare-and-swap, so the table never locks and never allocates after creation.
 *
 * Shared rather than per IO thread because SO_REUSEPORT spreads one address's connections over
 * every thread by the whole 4-tuple: per-thread tables would let a client take threads times the
 * burst. An address maps to a slot through a hash keyed with CSPRNG bytes; two addresses that
 * share a slot share a bucket (they can only be limited early, never late), and the key keeps an
 * outsider from choosing a victim's slot. IPv6 addresses count per /64, the unit one subscriber
 * gets; an IPv4-mapped IPv6 address counts as its IPv4 address.
 *
 * Thread rules: new and free on the main thread; take and empty from any thread.
 */
#ifndef JABSHARD_SHARD_IP_LIMIT_H
#define JABSHARD_SHARD_IP_LIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ip_limit ip_limit;

/* A bucket's shape: burst >= 1 tokens, one regained every period_us >= 1 microseconds. */
typedef struct ip_rate {
    uint64_t period_us;
    uint32_t burst;
} ip_rate;

/* "count events per interval_s seconds" as a sustained rate (count >= 1), with burst. */
ip_rate ip_rate_per(unsigned count, unsigned interval_s, uint32_t burst);

/* slots: rounded up to a power of two. */
ip_limit *ip_limit_new(uint32_t slots);
void ip_limit_free(ip_limit *l);

/* Takes one token from addr's bucket at now_ms (any monotonic clock). Returns false, taking
 * nothing, when the bucket is empty. Addresses of other families are never limited (true). */
bool ip_limit_take(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                   const ip_rate *rate);
/* Whether addr's bucket is empty at now_ms (a take would fail), without taking. */
bool ip_limit_empty(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                    const ip_rate *rate);

#endif
