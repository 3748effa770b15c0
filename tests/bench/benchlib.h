/* tests/bench/benchlib.h — what the program benchmarks (bench_sm, bench_front) share: clocks, the
 * programs' directory, free loopback ports, paths, starting and stopping a program by PID, its CPU
 * time and resident memory, reading a stream opening, percentiles. Sockets and scratch
 * directories come from the test support library (tests/support/net.h, tmp.h). Errors that leave
 * a benchmark nothing to measure end the program. */
#ifndef JABSHARD_TESTS_BENCH_BENCHLIB_H
#define JABSHARD_TESTS_BENCH_BENCHLIB_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

uint64_t bench_now_ns(void);

double bench_now_s(void);

void bench_sleep_ms(unsigned ms);

/* Where jabshard-sm and jabshard-c2s are: argv[1], else $JABSHARD_BIN, else ../bin next to this
 * program (build/<variant>/bench/../bin). */
void bench_bin_dir(int argc, char **argv, char out[PATH_MAX]);

/* A TCP port on 127.0.0.1 that nobody listens on right now (the kernel's choice); none ends the
 * program. */
int bench_free_port(void);

/* out = dir/name; a path too long for out ends the program. */
void bench_path(char *out, size_t size, const char *dir, const char *name);

/* Copies a program's log to stderr (after a failure). */
void bench_dump_file(const char *path);

/* Starts path with args (NULL-terminated, args[0] the program name), its stdout and stderr going
 * to log_path. Returns the PID. */
pid_t bench_spawn(const char *path, char *const args[], const char *log_path);

/* Whether pid has exited (it is reaped then), or is no child of ours any more. */
int bench_exited(pid_t pid);

/* SIGTERM, up to grace_ms for it to exit, then SIGKILL. Only a child not yet reaped is signalled,
 * so a PID the system has given to another process since is never touched. */
void bench_stop(pid_t pid, unsigned grace_ms);

/* Waits until 127.0.0.1:port accepts connections; 0, or -1 after timeout_ms or when pid exited. */
int bench_wait_port(int port, pid_t pid, unsigned timeout_ms);

/* CPU time (user + system) pid has used so far, in seconds; -1 when it cannot be read. */
double bench_cpu_s(pid_t pid);

/* The CPU time of one of its threads (tid pid: its main thread), from schedstat (ns, where the
 * process's figure is in clock ticks); -1 when it cannot be read. */
double bench_thread_cpu_s(pid_t pid, pid_t tid);

/* VmRSS of pid in KiB, or -1. */
long bench_rss_kib(pid_t pid);

/* Reads fd (blocking, for a stream opening) into rx until needle appears at or after offset from.
 * Returns its offset, or -1 at end of stream, on an error, a <stream:error/> or after timeout_ms. */
long bench_read_until(int fd, buf *rx, size_t from, const char *needle, unsigned timeout_ms);

/* The front's opening of an smproto link on connected fd (docs/smproto.md §1, as
 * shard/link_front.c does it): the XEP-0114 stream to service, the handshake digest of secret, then
 * <smproto version instance acked/>. Reads blocking (nothing else happens meanwhile) into rx, and
 * leaves in rx whatever followed the SM's <smproto/> (its first frames). Returns the SM's
 * received count, or -1 with *why set when the SM refused, closed, answered something else or took
 * longer than 10 s. */
long long bench_link_open(int fd, buf *rx, const char *service, const char *secret,
                          const char *instance, unsigned long long acked, const char **why);

/* The p-th percentile (0..100) of v[0..n), sorted in place. */
uint64_t bench_percentile(uint64_t *v, size_t n, double p);

#endif
