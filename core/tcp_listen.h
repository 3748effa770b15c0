/* core/tcp_listen.h — a listening TCP socket for one of our ports (a front's client ports, the SM's
 * link port, jabshard-s2s's federation ports, the HTTP endpoints): the address resolved (NULL or
 * "": every address), a non-blocking socket with SO_REUSEADDR (a restarted program binds again at
 * once) and, when several threads each listen on the port, SO_REUSEPORT (the kernel spreads the
 * connections over them), bound, listening.
 *
 * The address is resolved with getaddrinfo, which blocks: it runs at a program's start or reload,
 * for a configured address or a name the local resolver answers.
 *
 * Thread rules: none.
 */
#ifndef JABSHARD_CORE_TCP_LISTEN_H
#define JABSHARD_CORE_TCP_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

/* The listening socket on ip:port (the first address ip resolves to), or -1 with "cannot listen on
 * IP port PORT: why" in err. */
int tcp_listen(const char *ip, int port, int backlog, bool reuseport, char *err, size_t errlen);

#endif
