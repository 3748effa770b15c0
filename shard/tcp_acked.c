/* shard/tcp_acked.c — a TCP peer's acknowledged bytes (see tcp_acked.h). Its own file because
 * <linux/tcp.h>, which has tcpi_bytes_acked, cannot be included beside glibc's <netinet/tcp.h>. */
#include "shard/tcp_acked.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

bool tcp_bytes_acked(int fd, uint64_t *acked)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked)
        return false;
    *acked = info.tcpi_bytes_acked;
    return true;
}
