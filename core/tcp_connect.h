/* core/tcp_connect.h — the start of an outgoing TCP connection for a long-lived link (the
 * jabshard-s2s box's link to the SM, one SM's link to a peer SM): resolve, a non-blocking socket
 * with TCP_NODELAY, connect. The caller watches the socket for writability and reads SO_ERROR
 * (tcp_connect_result) to learn how it ended.
 *
 * The name is resolved with getaddrinfo, which blocks: configured hosts are addresses or names
 * the local resolver answers at once (the caller's loop waits for it otherwise).
 *
 * Thread rules: none.
 */
#ifndef JABSHARD_CORE_TCP_CONNECT_H
#define JABSHARD_CORE_TCP_CONNECT_H

#include <stddef.h>

/* A socket connecting to host:port (the first address it resolves to), or -1 with the reason in
 * err. */
int tcp_connect_start(const char *host, int port, char *err, size_t errlen);
/* 0 once the socket's connect succeeded, else its errno (call when it is writable). */
int tcp_connect_result(int fd);

#endif
