/* tests/support/net.h — loopback TCP for the tests and benchmarks: a listening socket on a port the
 * kernel chose, a free port, connecting, writing all of a buffer, reading until a marker arrives
 * (with a deadline), reading what a non-blocking socket has.
 *
 * The net_* functions never fail a test themselves, so any thread may call them (cmocka's
 * assertions belong to the test's own thread): they return -1 or false with errno set, 0 when the
 * peer closed the stream. The net_must_* functions, for the test's own thread, fail the running
 * cmocka test instead, saying what went wrong; they live in net_must.c, so that a benchmark links
 * net.c without cmocka. */
#ifndef JABSHARD_TESTS_SUPPORT_NET_H
#define JABSHARD_TESTS_SUPPORT_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* How long net_must_read_until waits for its marker: a hang fails the test, a slow run does not. */
#define NET_MUST_TIMEOUT_MS 20000

/* A socket listening on 127.0.0.1 on a port the kernel chose (*port); -1 on error. */
int net_listen(int *port);

/* A port on 127.0.0.1 that nobody listened on a moment ago, or -1. */
int net_free_port(void);

/* A blocking connection to 127.0.0.1:port, or -1. */
int net_connect(int port);

/* Blocking reads and writes on fd give up after seconds (SO_RCVTIMEO, SO_SNDTIMEO; 0: never). */
void net_set_timeout(int fd, int seconds);

/* Writes all of data (interrupted writes resumed, no SIGPIPE); false on error or when the socket
 * takes nothing more (a full non-blocking socket, a send timeout). */
bool net_write_all(int fd, const void *data, size_t len);

/* Reads fd into b until text stands at or after offset from, waiting at most timeout_ms in all.
 * Returns the offset in b where text starts; -1 at end of stream (errno 0), on an error or when
 * time is up (errno ETIMEDOUT). */
long net_read_until(int fd, buf *b, size_t from, const char *text, int timeout_ms);

/* Reads what the non-blocking fd has now into out (NUL-terminated, at most cap - 1 bytes); sets
 * *eof when the peer has closed. Returns the byte count. */
size_t net_read_available(int fd, char *out, size_t cap, bool *eof);

/* ---- for the test's own thread: the same, failing the running test ---------------------------- */

int net_must_listen(int *port);
int net_must_free_port(void);
int net_must_connect(int port);
void net_must_write(int fd, const void *data, size_t len);
void net_must_write_str(int fd, const char *s);
/* Fails the test when text has not come within NET_MUST_TIMEOUT_MS. */
size_t net_must_read_until(int fd, buf *b, size_t from, const char *text);

#endif
