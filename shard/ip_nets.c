/* shard/ip_nets.c — CIDR networks and matching (see ip_nets.h). */
#include "shard/ip_nets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* The prefix length after '/': decimal digits only, no leading zero (except "0"), at most max. */
static bool parse_prefix(const char *p, unsigned max, unsigned *out)
{
    if (!*p || (p[0] == '0' && p[1]) || strlen(p) > 3)
        return false;
    unsigned v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Whether the bits of addr (len bytes) past prefix are all zero. */
static bool host_bits_clear(const uint8_t *addr, size_t len, unsigned prefix)
{
    for (size_t i = 0; i < len; i++) {
        unsigned first = (unsigned)i * 8;
        uint8_t mask = prefix >= first + 8 ? 0 : prefix <= first ? 0xff
                                                                  : (uint8_t)(0xff >> (prefix - first));
        if (addr[i] & mask)
            return false;
    }
    return true;
}

bool ip_net_parse(const char *text, ip_net *out, const char **why)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
    if (hlen == 0 || hlen >= sizeof host) {
        *why = "not an IPv4 or IPv6 address";
        return false;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    memset(out, 0, sizeof *out);
    size_t len;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        len = 4;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        len = 16;
    } else {
        *why = "not an IPv4 or IPv6 address";
        return false;
    }
    out->prefix = (unsigned)len * 8;
    if (slash && !parse_prefix(slash + 1, (unsigned)len * 8, &out->prefix)) {
        *why = out->family == AF_INET ? "the prefix length must be 0 to 32"
                                      : "the prefix length must be 0 to 128";
        return false;
    }
    if (!host_bits_clear(out->addr, len, out->prefix)) {
        *why = "bits are set past the prefix length (write the network's first address)";
        return false;
    }
    return true;
}

void ip_nets_add(ip_nets *l, const ip_net *net)
{
    l->nets = mem_realloc(l->nets, (l->n + 1) * sizeof *l->nets);
    l->nets[l->n++] = *net;
}

void ip_nets_free(ip_nets *l)
{
    free(l->nets);
    l->nets = NULL;
    l->n = 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool ip_nets_contain(const ip_nets *l, const struct sockaddr_storage *addr)
{
    const uint8_t *bytes;
    int family;
    if (addr->ss_family == AF_INET) {
        bytes = (const uint8_t *)&((const struct sockaddr_in *)addr)->sin_addr;
        family = AF_INET;
    } else if (addr->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        bool mapped = IN6_IS_ADDR_V4MAPPED(a6);
        bytes = mapped ? a6->s6_addr + 12 : a6->s6_addr;
        family = mapped ? AF_INET : AF_INET6;
    } else {
        return false;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->nets[i].family == family && prefix_equal(bytes, l->nets[i].addr, l->nets[i].prefix))
            return true;
    return false;
}
