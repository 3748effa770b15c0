/* tests/support/net_must.c — net.h's helpers for a cmocka test's own thread: each fails the
 * running test, saying what went wrong, where the net_* function would return an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "tests/support/net.h"

int net_must_listen(int *port)
{
    int fd = net_listen(port);
    if (fd < 0)
        fail_msg("listening on 127.0.0.1: %s", strerror(errno));
    return fd;
}

int net_must_free_port(void)
{
    int port = net_free_port();
    if (port < 0)
        fail_msg("finding a free port on 127.0.0.1: %s", strerror(errno));
    return port;
}

int net_must_connect(int port)
{
    int fd = net_connect(port);
    if (fd < 0)
        fail_msg("connecting to 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

void net_must_write(int fd, const void *data, size_t len)
{
    if (!net_write_all(fd, data, len))
        fail_msg("write: %s", errno ? strerror(errno) : "nothing written");
}

void net_must_write_str(int fd, const char *s)
{
    net_must_write(fd, s, strlen(s));
}

size_t net_must_read_until(int fd, buf *b, size_t from, const char *text)
{
    long at = net_read_until(fd, b, from, text, NET_MUST_TIMEOUT_MS);
    if (at < 0)
        fail_msg("waiting for '%s': %s", text, errno ? strerror(errno) : "EOF");
    return (size_t)at;
}
