/* tests/bench/loadgen/lg_net.h — the generator's sockets: the server's addresses (--server, or
 * --host with each --port), non-blocking connects from the --sources addresses in turn, and the
 * open-file limit.
 *
 * With sources, each socket is bound to the next address with IP_BIND_ADDRESS_NO_PORT, so the
 * kernel picks the port at connect time for the whole 4-tuple: 250 source addresses give 250 times
 * the ephemeral ports one address has, and tens of thousands of connections (and the TIME_WAITs a
 * warm-up leaves) never run short.
 *
 * Thread rules: one thread; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_NET_H
#define JABSHARD_LOADGEN_LG_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tests/bench/loadgen/lg_options.h"

typedef struct lg_net {
    struct sockaddr_storage *dst;   /* the server addresses (lg_options.addrs, resolved) */
    socklen_t *dst_len;
    size_t naddrs;
    const uint32_t *sources;        /* --sources (host byte order), or NULL */
    size_t nsources, next_source;
} lg_net;

/* Resolves every address. Returns 0, or -1 after printing why to stderr. */
int lg_net_init(lg_net *net, const lg_options *o);
void lg_net_free(lg_net *net);

/* A non-blocking TCP socket connecting (TCP_NODELAY on) to address slot mod the number of
 * addresses (the caller passes its user index, plus how many times it moved on with --sm), from
 * the next source address. Returns the fd, or -1 with errno. */
int lg_net_connect(lg_net *net, uint32_t slot);

/* Raises the soft open-file limit to the hard one and returns the soft limit now in force. */
uint64_t lg_net_raise_fd_limit(void);

/* "host:port" of the address of slot, for messages. */
void lg_net_describe(const lg_net *net, uint32_t slot, char *out, size_t cap);

#endif
