/* shard/tcp_acked.h — how many bytes the peer of a TCP socket has acknowledged since the
 * connection began (Linux's TCP_INFO, tcpi_bytes_acked, since 4.1): the output-queue policy's
 * measure of a client's progress. What the front writes is no such measure: the kernel's send
 * buffer (up to tcp_wmem's 4 MiB) takes writes long after the client stopped reading, and once
 * full it asks for more only when a third of it has drained, which a slow reader may take longer
 * than output_timeout to do.
 *
 * Thread rules: any thread, on a socket it owns.
 */
#ifndef JABSHARD_SHARD_TCP_ACKED_H
#define JABSHARD_SHARD_TCP_ACKED_H

#include <stdbool.h>
#include <stdint.h>

/* Returns false when the kernel cannot tell (not TCP, or older than 4.1). */
bool tcp_bytes_acked(int fd, uint64_t *acked);

#endif
