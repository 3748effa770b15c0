/* shard/ip_limit.c — shared per-address token buckets (see ip_limit.h). */
#include "shard/ip_limit.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"

struct ip_limit {
    uint32_t mask;
    uint64_t key[2];
    _Atomic uint64_t *slots;  /* when the bucket is full again, in microseconds; 0: never used */
};

ip_rate ip_rate_per(unsigned count, unsigned interval_s, uint32_t burst)
{
    uint64_t period = (uint64_t)interval_s * 1000000 / (count ? count : 1);
    return (ip_rate){.period_us = period ? period : 1, .burst = burst ? burst : 1};
}

ip_limit *ip_limit_new(uint32_t slots)
{
    uint32_t n = 1;
    while (n < slots)
        n <<= 1;
    ip_limit *l = mem_zalloc(sizeof *l);
    l->mask = n - 1;
    random_bytes(l->key, sizeof l->key);
    l->slots = mem_array(n, sizeof *l->slots);
    for (uint32_t i = 0; i < n; i++)
        atomic_init(&l->slots[i], 0);
    return l;
}

void ip_limit_free(ip_limit *l)
{
    if (!l)
        return;
    free((void *)l->slots);
    free(l);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The slot of addr's address (IPv4, or an IPv6 /64; an IPv4-mapped IPv6 address as IPv4). */
static _Atomic uint64_t *slot_of(const ip_limit *l, const struct sockaddr_storage *addr)
{
    uint64_t a;
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)addr;
        a = s4->sin_addr.s_addr;
    } else if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            uint32_t v4;
            memcpy(&v4, s6->sin6_addr.s6_addr + 12, 4);
            a = v4;
        } else {
            memcpy(&a, s6->sin6_addr.s6_addr, 8);
            a = mix(a) | 1ull << 63;   /* keep /64 prefixes apart from IPv4 values */
        }
    } else {
        return NULL;
    }
    return &l->slots[(uint32_t)mix(mix(a ^ l->key[0]) ^ l->key[1]) & l->mask];
}

/* With the bucket full again at full_us, one more token taken at now_us makes it full at the
 * returned time; the take is allowed when that is at most burst periods ahead of now. */
static uint64_t after_take(uint64_t full_us, uint64_t now_us, const ip_rate *r)
{
    return (full_us > now_us ? full_us : now_us) + r->period_us;
}

static bool within_burst(uint64_t full_us, uint64_t now_us, const ip_rate *r)
{
    return full_us - now_us <= r->period_us * r->burst;
}

bool ip_limit_take(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                   const ip_rate *rate)
{
    _Atomic uint64_t *p = slot_of(l, addr);
    if (!p)
        return true;
    uint64_t now = now_ms * 1000;
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed), next;
    do {
        next = after_take(old, now, rate);
        if (!within_burst(next, now, rate))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

bool ip_limit_empty(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                    const ip_rate *rate)
{
    _Atomic uint64_t *p = slot_of(l, addr);
    if (!p)
        return false;
    uint64_t now = now_ms * 1000;
    return !within_burst(after_take(atomic_load_explicit(p, memory_order_relaxed), now, rate), now,
                         rate);
}
