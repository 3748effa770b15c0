/* s2s/resolve.h — asynchronous DNS for federation (libunbound on the s2s event loop): where to
 * connect for a remote XMPP domain (RFC 6120 §3.2 SRV lookup merged with XEP-0368's direct TLS
 * service), the addresses of a host, and the pure pieces behind them (SRV rdata parsing, the
 * RFC 2782 ordering, the merge of the two services' answers), which are unit-tested and fuzzed.
 *
 * How it runs: one ub_ctx per resolver, in libunbound's threaded asynchronous mode
 * (ub_ctx_async(ctx, 1)). libunbound then resolves in one background thread of its own and hands
 * answers back through a pipe, ub_fd(), which is registered on the loop for EVLOOP_READ; when it is
 * readable, ub_process() runs the answers' callbacks on the loop's thread. Every callback here is
 * therefore called on the loop's thread, from the loop, never from inside the call that started
 * the query. (libunbound's other mode, ub_ctx_async(ctx, 0), does NOT resolve in the calling
 * thread: it fork()s a background process, which would inherit every socket of the server.)
 *
 * Lifetimes: a query is freed right after its callback returns. s2s_resolve_cancel is for a query
 * whose callback has not been called yet; called on a query from inside that query's own callback
 * it does nothing. s2s_resolver_free must not be called from inside a callback.
 *
 * Thread rules: a resolver and its queries belong to the loop's thread.
 */
#ifndef JABSHARD_S2S_RESOLVE_H
#define JABSHARD_S2S_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/evloop.h"

#define S2S_TARGETS_MAX 32        /* targets kept from an SRV lookup, best first */
#define S2S_ADDRS_MAX 16          /* addresses kept from an address lookup */
#define S2S_SRV_COLLECT_MAX 128   /* SRV records considered per lookup, before ordering */
#define S2S_DEFAULT_PORT 5269     /* RFC 6120 §3.2.2's fallback port */
#define S2S_RESOLVE_TIMEOUT_MS 30000

typedef struct s2s_resolver s2s_resolver;
typedef struct s2s_query s2s_query;

/* host: a validated host name in ASCII, without trailing dot. */
typedef struct s2s_target {
    char host[256];
    uint16_t port;
    bool direct_tls;   /* from _xmpps-server: TLS from the first byte (XEP-0368) */
} s2s_target;

enum {
    S2S_RESOLVE_OK = 0,
    S2S_RESOLVE_NO_SERVICE = 1,   /* SRV target "." (RFC 2782): the domain offers no federation */
    S2S_RESOLVE_FAILED = 2,       /* server failure, timeout, refused, bogus, invalid name */
    S2S_RESOLVE_NOT_FOUND = 3,    /* address lookup: no AAAA and no A records */
};

/* resolv_conf: the nameservers to forward to (NULL: /etc/resolv.conf); read at the first query,
 * and not at all when s2s_resolver_forward was called. hosts_file: names answered locally (NULL:
 * /etc/hosts; read now). Returns NULL with err filled when a file cannot be read or libunbound
 * refuses its setup. */
s2s_resolver *s2s_resolver_new(evloop *loop, const char *resolv_conf, const char *hosts_file,
                               char *err, size_t errlen);
/* Cancels pending queries without calling their callbacks, then frees. Not from a callback. */
void s2s_resolver_free(s2s_resolver *r);
/* Adds a nameserver to forward to, "ADDR" or "ADDR@PORT" (IPv4 or IPv6), used instead of
 * resolv.conf's (the <dns><forward> option; the tests' own unbound). Only before the first query.
 * Returns 0, or -1 (an address libunbound refuses, or queries have started; the reason is
 * logged). */
int s2s_resolver_forward(s2s_resolver *r, const char *addr_at_port);
/* How long a query may take before it is answered S2S_RESOLVE_FAILED (S2S_RESOLVE_TIMEOUT_MS by
 * default; libunbound's own retries can otherwise last minutes). Applies to later queries. */
void s2s_resolver_set_timeout(s2s_resolver *r, uint64_t ms);

typedef void (*s2s_srv_fn)(void *arg, int status, const s2s_target *targets, size_t n);

/* RFC 6120 §3.2 + XEP-0368 §3: queries _xmpps-server._tcp.DOMAIN and _xmpp-server._tcp.DOMAIN
 * concurrently, merges the records (the xmpps ones direct_tls), orders them as one set by priority
 * then RFC 2782 weighted random, and calls fn once with at most S2S_TARGETS_MAX targets.
 *   - neither service has records (NXDOMAIN or NODATA): one fallback target {domain, 5269, false};
 *   - a service whose only record has target "." is decidedly not offered and is dropped; when no
 *     target remains that way: S2S_RESOLVE_NO_SERVICE, n = 0;
 *   - a service that failed (SERVFAIL, timeout...) while the other gave targets: those targets;
 *     otherwise S2S_RESOLVE_FAILED, n = 0 (never the fallback: the records may exist);
 *   - records that do not parse or name an invalid host are skipped; a service with records of
 *     which none is usable counts as failed.
 * domain must be an ASCII host name (A-labels); otherwise fn gets S2S_RESOLVE_FAILED. */
s2s_query *s2s_resolve_srv(s2s_resolver *r, const char *domain, s2s_srv_fn fn, void *arg);

typedef void (*s2s_addr_fn)(void *arg, int status, const struct sockaddr_storage *addrs,
                            size_t n);

/* AAAA and A for host, concurrently: the IPv6 addresses first, then the IPv4 ones, each with port
 * set, at most S2S_ADDRS_MAX. A literal IPv4 or IPv6 address is answered as it is (from the loop,
 * like every answer). S2S_RESOLVE_NOT_FOUND when neither type has records (or host is not a valid
 * name); S2S_RESOLVE_FAILED when there is no address and a lookup failed. */
s2s_query *s2s_resolve_addr(s2s_resolver *r, const char *host, uint16_t port, s2s_addr_fn fn,
                            void *arg);

/* Cancels a query whose callback has not run: it never runs, and the query is freed. Inside that
 * query's own callback: nothing (the query is freed when the callback returns). */
void s2s_resolve_cancel(s2s_query *q);

/* ---- the pure parts, for the tests and the fuzzer ------------------------------------------- */

/* target: the host name as text, without trailing dot; "." for the root ("no service"). */
typedef struct s2s_srv_record {
    uint16_t priority, weight, port;
    bool direct_tls;
    char target[256];
} s2s_srv_record;

/* Parses one SRV RDATA (RFC 2782: priority, weight, port, then the target in DNS wire format).
 * Hostile input: every length is bounded, the name must end exactly at the end of the RDATA,
 * compression pointers and extended label types are refused, and the target must be a host name
 * (labels of 1-63 letters, digits and hyphens, not beginning or ending with a hyphen; at most 253
 * characters) or the root. direct_tls is left false. Returns 0, or -1 when invalid. */
int s2s_srv_rdata_parse(const uint8_t *data, size_t len, s2s_srv_record *out);

/* Orders n records in place: priority ascending; within a priority, RFC 2782's weighted random
 * selection (zero weights first in the running sums, so they are picked rarely but can be) with
 * rnd() returning uniform 32-bit values. O(n^2): meant for n <= S2S_SRV_COLLECT_MAX. */
void s2s_srv_order(s2s_srv_record *recs, size_t n, uint32_t (*rnd)(void));

/* One service's answer, as the merge sees it. */
typedef enum {
    S2S_SRV_ANSWER_NONE,      /* NXDOMAIN or NODATA */
    S2S_SRV_ANSWER_RECORDS,   /* rdata[0..count) */
    S2S_SRV_ANSWER_FAILED,
} s2s_srv_answer_kind;

typedef struct s2s_srv_answer {
    s2s_srv_answer_kind kind;
    const uint8_t *const *rdata;
    const size_t *len;
    size_t count;
} s2s_srv_answer;

/* The merge described at s2s_resolve_srv: from the _xmpps-server and _xmpp-server answers, fills
 * out (room for cap targets) with the ordered targets, or the fallback for domain, and returns the
 * status; *n is 0 unless S2S_RESOLVE_OK. */
int s2s_srv_merge(const s2s_srv_answer *xmpps, const s2s_srv_answer *xmpp, const char *domain,
                  uint32_t (*rnd)(void), s2s_target *out, size_t cap, size_t *n);

/* Whether name (NUL-terminated) is an ASCII host name by the rules of s2s_srv_rdata_parse. */
bool s2s_host_valid(const char *name);

#endif
