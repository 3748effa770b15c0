/* shard/ip_nets.h — a list of IP networks written as CIDR ("10.0.0.0/8", "2001:db8::/32", or an
 * address alone for one host), and whether a client's address is in one of them: the front's
 * <limits><trusted> networks, whose clients the per-address limits do not count.
 *
 * An IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 client) matches the IPv4
 * networks, never the IPv6 ones, so one list works whichever way the front listens.
 *
 * Thread rules: built by the main thread while the configuration is read; read-only after, so
 * any thread may match against it.
 */
#ifndef JABSHARD_SHARD_IP_NETS_H
#define JABSHARD_SHARD_IP_NETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ip_net {
    int family;                /* AF_INET or AF_INET6 */
    uint8_t addr[16];          /* the network's address, host bits cleared (4 bytes for IPv4) */
    unsigned prefix;           /* 0..32 or 0..128 */
} ip_net;

typedef struct ip_nets {
    ip_net *nets;
    size_t n;
} ip_nets;

#define IP_NETS_INIT { NULL, 0 }

/* Parses text ("192.0.2.0/24", "::1", "2001:db8::/48"). Returns false, with why set to a static
 * reason, for anything else: a bad address, a prefix out of range or with leading zeros or
 * signs, host bits set below the prefix ("10.0.0.1/8": a typo for a host or a network, and
 * either reading would be a guess). */
bool ip_net_parse(const char *text, ip_net *out, const char **why);
void ip_nets_add(ip_nets *l, const ip_net *net);
void ip_nets_free(ip_nets *l);

/* Whether addr (AF_INET or AF_INET6; anything else is in no network) is in one of l's networks. */
bool ip_nets_contain(const ip_nets *l, const struct sockaddr_storage *addr);

#endif
