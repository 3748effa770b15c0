/* shard/ip_limit.c — shared per-address counters (see ip_limit.h). */
#include "shard/ip_limit.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"

struct ip_limit {
    uint32_t mask;
    uint64_t key[2];
    _Atomic uint64_t *slots;  /* window start (seconds) << 32 | count */
};

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
static bool slot_of(const ip_limit *l, const struct sockaddr_storage *addr, uint32_t *slot)
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
        return false;
    }
    *slot = (uint32_t)mix(mix(a ^ l->key[0]) ^ l->key[1]) & l->mask;
    return true;
}

/* Whether a window that started at start (seconds) is still open at now. */
static bool window_open(uint32_t start, uint32_t now, unsigned interval_s)
{
    return (uint32_t)(now - start) < (interval_s ? interval_s : 1);
}

uint32_t ip_limit_hit(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                      unsigned interval_s)
{
    uint32_t slot;
    if (!slot_of(l, addr, &slot))
        return 0;
    uint32_t now = (uint32_t)(now_ms / 1000);
    _Atomic uint64_t *p = &l->slots[slot];
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed), next;
    do {
        uint32_t start = (uint32_t)(old >> 32), count = (uint32_t)old;
        if (!count || !window_open(start, now, interval_s)) {
            start = now;    /* a window opens with the first event it counts */
            count = 0;
        }
        if (count < UINT32_MAX)
            count++;
        next = (uint64_t)start << 32 | count;
    } while (!atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return (uint32_t)next;
}

uint32_t ip_limit_peek(ip_limit *l, const struct sockaddr_storage *addr, uint64_t now_ms,
                       unsigned interval_s)
{
    uint32_t slot;
    if (!slot_of(l, addr, &slot))
        return 0;
    uint64_t v = atomic_load_explicit(&l->slots[slot], memory_order_relaxed);
    return window_open((uint32_t)(v >> 32), (uint32_t)(now_ms / 1000), interval_s) ? (uint32_t)v
                                                                                    : 0;
}
