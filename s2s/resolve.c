/* s2s/resolve.c — libunbound on the event loop (resolve.h): the resolver and its queries, SRV
 * RDATA parsing, RFC 2782 ordering and the merge of the _xmpps-server and _xmpp-server answers.
 *
 * A query asks libunbound for two things at once (two SRV names, or AAAA and A), each a `sub`
 * with its own async id; the query answers when both are in, or when its deadline passes. A sub
 * is allocated apart from its query so that a sub libunbound refuses to cancel (ub_cancel fails)
 * can outlive the query as an orphan whose late answer is dropped: libunbound keeps the sub's
 * pointer as the callback's argument and may still use it.
 */
#include "s2s/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <unbound.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

#define HOST_TEXT_MAX 253
#define LABEL_MAX 63
#define RR_TYPE_A 1
#define RR_TYPE_SRV 33
#define RR_TYPE_AAAA 28
#define RR_CLASS_IN 1
#define RCODE_NOERROR 0
#define RCODE_NXDOMAIN 3

typedef struct sub {
    s2s_query *q;          /* NULL once orphaned */
    int async_id;
    bool pending;          /* libunbound still holds this sub as a callback argument */
    struct sub *next;      /* the resolver's orphans */
} sub;

struct s2s_query {
    s2s_resolver *r;
    s2s_query *prev, *next;        /* the resolver's queries */
    bool is_srv;
    bool delivering;               /* inside the callback: cancel does nothing */
    bool immediate;                /* answered without libunbound (literal, invalid name) */
    int immediate_status;
    s2s_srv_fn srv_fn;
    s2s_addr_fn addr_fn;
    void *arg;
    sub *subs[2];                  /* SRV: _xmpps-server, _xmpp-server; address: AAAA, A */
    int err[2];                    /* libunbound's error for each; 0 */
    struct ub_result *res[2];
    timer deadline;                /* the timeout, or a zero delay for immediate answers */
    char name[256];
    uint16_t port;
    struct sockaddr_storage literal;
};

struct s2s_resolver {
    evloop *loop;
    struct ub_ctx *ctx;
    evloop_io io;
    char *resolv_conf;             /* NULL: /etc/resolv.conf */
    bool forwarded;                /* s2s_resolver_forward was called: resolv.conf is not read */
    bool finalized;                /* the first query was made: no more configuration */
    uint64_t timeout_ms;
    s2s_query *queries;
    sub *orphans;
};

static void __attribute__((format(printf, 3, 4)))
err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t rnd32(void)
{
    uint32_t v;
    random_bytes(&v, sizeof v);
    return v;
}

/* ---- host names --------------------------------------------------------------------------- */

static bool ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static bool label_ok(const unsigned char *p, size_t n)
{
    if (n == 0 || n > LABEL_MAX || p[0] == '-' || p[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!ldh(p[i]))
            return false;
    return true;
}

bool s2s_host_valid(const char *name)
{
    size_t len = strnlen(name, HOST_TEXT_MAX + 1);
    if (len == 0 || len > HOST_TEXT_MAX)
        return false;
    const unsigned char *p = (const unsigned char *)name, *end = p + len;
    while (p <= end) {
        const unsigned char *dot = memchr(p, '.', (size_t)(end - p));
        const unsigned char *stop = dot ? dot : end;
        if (!label_ok(p, (size_t)(stop - p)))
            return false;
        p = stop + 1;
    }
    return true;
}

/* ---- SRV RDATA ------------------------------------------------------------------------------ */

int s2s_srv_rdata_parse(const uint8_t *data, size_t len, s2s_srv_record *out)
{
    memset(out, 0, sizeof(*out));
    if (!data || len < 7)
        return -1;
    out->priority = (uint16_t)(data[0] << 8 | data[1]);
    out->weight = (uint16_t)(data[2] << 8 | data[3]);
    out->port = (uint16_t)(data[4] << 8 | data[5]);
    size_t pos = 6, olen = 0;
    for (;;) {
        if (pos >= len)
            return -1;                       /* no terminating root label */
        size_t l = data[pos++];
        if (l == 0)
            break;
        if (l > LABEL_MAX || l > len - pos)  /* also refuses pointers (0xc0) and 0x40 types */
            return -1;
        if (olen + (olen ? 1 : 0) + l > HOST_TEXT_MAX || !label_ok(data + pos, l))
            return -1;
        if (olen)
            out->target[olen++] = '.';
        memcpy(out->target + olen, data + pos, l);
        olen += l;
        pos += l;
    }
    if (pos != len)
        return -1;                           /* bytes after the name */
    if (olen == 0)
        out->target[0] = '.';
    out->target[olen ? olen : 1] = '\0';
    return 0;
}

/* ---- ordering (RFC 2782) ------------------------------------------------------------------- */

/* Priority, and within a priority the zero weights first (RFC 2782's "placed at the beginning"). */
static unsigned order_key(const s2s_srv_record *r)
{
    return (unsigned)r->priority * 2u + (r->weight != 0);
}

/* Moves recs[from] to recs[to] (to <= from), shifting the ones between up by one: keeps the
 * relative order of the rest, which the zero-weights-first rule needs. */
static void move_back(s2s_srv_record *recs, size_t to, size_t from)
{
    if (from == to)
        return;
    s2s_srv_record tmp = recs[from];
    memmove(recs + to + 1, recs + to, (from - to) * sizeof(*recs));
    recs[to] = tmp;
}

void s2s_srv_order(s2s_srv_record *recs, size_t n, uint32_t (*rnd)(void))
{
    for (size_t i = 1; i < n; i++) {         /* stable insertion sort */
        size_t j = i;
        while (j > 0 && order_key(&recs[j - 1]) > order_key(&recs[i]))
            j--;
        move_back(recs, j, i);
    }
    for (size_t start = 0, end; start < n; start = end) {
        end = start;
        while (end < n && recs[end].priority == recs[start].priority)
            end++;
        for (size_t pos = start; pos + 1 < end; pos++) {
            uint64_t sum = 0;
            for (size_t k = pos; k < end; k++)
                sum += recs[k].weight;
            /* uniform in [0, sum] */
            uint64_t pick = ((uint64_t)rnd() * (sum + 1)) >> 32;
            uint64_t running = 0;
            size_t chosen = end - 1;
            for (size_t k = pos; k < end; k++) {
                running += recs[k].weight;
                if (running >= pick) {
                    chosen = k;
                    break;
                }
            }
            move_back(recs, pos, chosen);
        }
    }
}

/* ---- the merge ----------------------------------------------------------------------------- */

typedef enum { SVC_NONE, SVC_TARGETS, SVC_DOT, SVC_FAILED } svc_state;

/* Adds one service's usable records to recs (at most cap - *n more). */
static svc_state collect(const s2s_srv_answer *a, bool direct_tls, s2s_srv_record *recs,
                         size_t cap, size_t *n)
{
    if (a->kind == S2S_SRV_ANSWER_FAILED)
        return SVC_FAILED;
    if (a->kind != S2S_SRV_ANSWER_RECORDS || a->count == 0)
        return SVC_NONE;
    s2s_srv_record rec;
    if (a->count == 1 && s2s_srv_rdata_parse(a->rdata[0], a->len[0], &rec) == 0 &&
        strcmp(rec.target, ".") == 0)
        return SVC_DOT;
    size_t added = 0;
    for (size_t i = 0; i < a->count && *n < cap; i++) {
        if (s2s_srv_rdata_parse(a->rdata[i], a->len[i], &rec) < 0 || strcmp(rec.target, ".") == 0)
            continue;
        rec.direct_tls = direct_tls;
        recs[(*n)++] = rec;
        added++;
    }
    return added ? SVC_TARGETS : SVC_FAILED;
}

int s2s_srv_merge(const s2s_srv_answer *xmpps, const s2s_srv_answer *xmpp, const char *domain,
                  uint32_t (*rnd)(void), s2s_target *out, size_t cap, size_t *n)
{
    s2s_srv_record recs[S2S_SRV_COLLECT_MAX];
    size_t count = 0;
    *n = 0;
    svc_state s1 = collect(xmpps, true, recs, S2S_SRV_COLLECT_MAX / 2, &count);
    svc_state s2 = collect(xmpp, false, recs, S2S_SRV_COLLECT_MAX, &count);
    if (s1 == SVC_TARGETS || s2 == SVC_TARGETS) {
        s2s_srv_order(recs, count, rnd);
        for (size_t i = 0; i < count && *n < cap && *n < S2S_TARGETS_MAX; i++) {
            memcpy(out[*n].host, recs[i].target, sizeof(out[*n].host));
            out[*n].port = recs[i].port;
            out[*n].direct_tls = recs[i].direct_tls;
            (*n)++;
        }
        return S2S_RESOLVE_OK;
    }
    if (s1 == SVC_FAILED || s2 == SVC_FAILED)
        return S2S_RESOLVE_FAILED;
    if (s1 == SVC_DOT || s2 == SVC_DOT)
        return S2S_RESOLVE_NO_SERVICE;
    if (cap == 0 || !s2s_host_valid(domain))
        return S2S_RESOLVE_FAILED;
    snprintf(out[0].host, sizeof(out[0].host), "%s", domain);
    out[0].port = S2S_DEFAULT_PORT;
    out[0].direct_tls = false;
    *n = 1;
    return S2S_RESOLVE_OK;
}

/* ---- the resolver ---------------------------------------------------------------------------- */

static void on_readable(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    s2s_resolver *r = arg;
    int rc = ub_process(r->ctx);
    if (rc != 0)
        log_error("s2s dns: ub_process: %s", ub_strerror(rc));
}

s2s_resolver *s2s_resolver_new(evloop *loop, const char *resolv_conf, const char *hosts_file,
                               char *err, size_t errlen)
{
    if (resolv_conf && access(resolv_conf, R_OK) != 0) {
        err_set(err, errlen, "cannot read %s: %s", resolv_conf, strerror(errno));
        return NULL;
    }
    struct ub_ctx *ctx = ub_ctx_create();
    if (!ctx) {
        err_set(err, errlen, "libunbound: cannot create a context");
        return NULL;
    }
    int rc;
    const char *what = "threaded mode";
    if ((rc = ub_ctx_async(ctx, 1)) == 0 &&
        (what = "do-not-query-localhost",
         rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) == 0 &&
        /* libunbound answers RFC 6761's test. itself (NXDOMAIN); a deployment's resolver, an
         * internal network's or a test's, may well serve names under it. */
        (what = "local-zone test. transparent",
         rc = ub_ctx_set_option(ctx, "local-zone:", "test. transparent")) == 0 &&
        (what = hosts_file ? hosts_file : "/etc/hosts", rc = ub_ctx_hosts(ctx, hosts_file)) == 0) {
        int fd = ub_fd(ctx);
        if (fd < 0) {
            rc = UB_PIPE;
            what = "ub_fd";
        } else {
            s2s_resolver *r = mem_zalloc(sizeof(*r));
            r->loop = loop;
            r->ctx = ctx;
            r->resolv_conf = resolv_conf ? mem_strdup(resolv_conf) : NULL;
            r->timeout_ms = S2S_RESOLVE_TIMEOUT_MS;
            evloop_io_init(&r->io, fd, on_readable, r);
            if (evloop_io_set(loop, &r->io, EVLOOP_READ) == 0)
                return r;
            err_set(err, errlen, "libunbound's pipe on the event loop: %s", strerror(errno));
            free(r->resolv_conf);
            free(r);
            ub_ctx_delete(ctx);
            return NULL;
        }
    }
    err_set(err, errlen, "libunbound: %s: %s", what, ub_strerror(rc));
    ub_ctx_delete(ctx);
    return NULL;
}

int s2s_resolver_forward(s2s_resolver *r, const char *addr_at_port)
{
    if (r->finalized) {
        log_error("s2s dns: forwarder %s: set after the first query", addr_at_port);
        return -1;
    }
    int rc = ub_ctx_set_fwd(r->ctx, addr_at_port);
    if (rc != 0) {
        log_error("s2s dns: forwarder %s: %s", addr_at_port, ub_strerror(rc));
        return -1;
    }
    r->forwarded = true;
    return 0;
}

void s2s_resolver_set_timeout(s2s_resolver *r, uint64_t ms)
{
    r->timeout_ms = ms;
}

/* Frees a query's memory; its subs must be gone or orphaned already. */
static void query_free(s2s_query *q)
{
    s2s_resolver *r = q->r;
    evloop_timer_cancel(r->loop, &q->deadline);
    if (q->prev)
        q->prev->next = q->next;
    else
        r->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    for (int i = 0; i < 2; i++)
        ub_resolve_free(q->res[i]);
    free(q);
}

void s2s_resolver_free(s2s_resolver *r)
{
    if (!r)
        return;
    evloop_io_set(r->loop, &r->io, 0);
    ub_ctx_delete(r->ctx);                  /* drops outstanding queries without callbacks */
    while (r->queries) {
        s2s_query *q = r->queries;
        for (int i = 0; i < 2; i++)
            free(q->subs[i]);
        query_free(q);
    }
    while (r->orphans) {
        sub *s = r->orphans;
        r->orphans = s->next;
        free(s);
    }
    free(r->resolv_conf);
    free(r);
}

/* Stops waiting for a sub: cancelled and freed, or orphaned when libunbound will not cancel. */
static void sub_drop(s2s_resolver *r, sub *s)
{
    if (!s)
        return;
    if (s->pending && ub_cancel(r->ctx, s->async_id) != 0) {
        s->q = NULL;
        s->next = r->orphans;
        r->orphans = s;
        return;
    }
    free(s);
}

static void query_drop_subs(s2s_query *q)
{
    for (int i = 0; i < 2; i++) {
        sub_drop(q->r, q->subs[i]);
        q->subs[i] = NULL;
    }
}

void s2s_resolve_cancel(s2s_query *q)
{
    if (!q || q->delivering)
        return;
    query_drop_subs(q);
    query_free(q);
}

/* What one lookup said. */
static s2s_srv_answer_kind answer_kind(const s2s_query *q, int i)
{
    const struct ub_result *res = q->res[i];
    if (!q->subs[i] || q->subs[i]->pending || q->err[i] || !res || res->bogus)
        return S2S_SRV_ANSWER_FAILED;
    if (res->havedata && res->data && res->len)
        return S2S_SRV_ANSWER_RECORDS;
    if (res->rcode == RCODE_NOERROR || res->rcode == RCODE_NXDOMAIN)
        return S2S_SRV_ANSWER_NONE;
    return S2S_SRV_ANSWER_FAILED;
}

static void deliver_srv(s2s_query *q)
{
    const uint8_t *rdata[2][S2S_SRV_COLLECT_MAX / 2];
    size_t lens[2][S2S_SRV_COLLECT_MAX / 2];
    s2s_srv_answer ans[2];
    for (int i = 0; i < 2; i++) {
        ans[i] = (s2s_srv_answer){ .kind = answer_kind(q, i), .rdata = rdata[i], .len = lens[i] };
        if (ans[i].kind != S2S_SRV_ANSWER_RECORDS)
            continue;
        const struct ub_result *res = q->res[i];
        for (size_t k = 0; res->data[k] && ans[i].count < S2S_SRV_COLLECT_MAX / 2; k++) {
            rdata[i][ans[i].count] = (const uint8_t *)res->data[k];
            lens[i][ans[i].count++] = res->len[k] > 0 ? (size_t)res->len[k] : 0;
        }
    }
    s2s_target targets[S2S_TARGETS_MAX];
    size_t n = 0;
    int status = q->immediate ? q->immediate_status
                              : s2s_srv_merge(&ans[0], &ans[1], q->name, rnd32, targets,
                                              S2S_TARGETS_MAX, &n);
    q->srv_fn(q->arg, status, targets, n);
}

static void deliver_addr(s2s_query *q)
{
    struct sockaddr_storage addrs[S2S_ADDRS_MAX];
    size_t n = 0;
    int status = S2S_RESOLVE_NOT_FOUND;
    if (q->immediate) {
        status = q->immediate_status;
        if (status == S2S_RESOLVE_OK)
            addrs[n++] = q->literal;
    } else {
        for (int i = 0; i < 2; i++) {                /* AAAA first */
            s2s_srv_answer_kind kind = answer_kind(q, i);
            if (kind == S2S_SRV_ANSWER_FAILED)
                status = S2S_RESOLVE_FAILED;
            if (kind != S2S_SRV_ANSWER_RECORDS)
                continue;
            const struct ub_result *res = q->res[i];
            for (size_t k = 0; res->data[k] && n < S2S_ADDRS_MAX; k++) {
                struct sockaddr_storage *ss = &addrs[n];
                memset(ss, 0, sizeof(*ss));
                if (i == 0 && res->len[k] == 16) {
                    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
                    s6->sin6_family = AF_INET6;
                    s6->sin6_port = htons(q->port);
                    memcpy(&s6->sin6_addr, res->data[k], 16);
                    n++;
                } else if (i == 1 && res->len[k] == 4) {
                    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
                    s4->sin_family = AF_INET;
                    s4->sin_port = htons(q->port);
                    memcpy(&s4->sin_addr, res->data[k], 4);
                    n++;
                }
            }
        }
        if (n)
            status = S2S_RESOLVE_OK;
    }
    q->addr_fn(q->arg, status, addrs, n);
}

/* Both answers are in, or time is up, or the answer was known from the start. */
static void query_finish(s2s_query *q)
{
    evloop_timer_cancel(q->r->loop, &q->deadline);
    q->delivering = true;
    if (q->is_srv)
        deliver_srv(q);
    else
        deliver_addr(q);
    query_drop_subs(q);   /* pending ones (a timeout) are cancelled; answered ones freed */
    query_free(q);
}

static void on_deadline(timer *t, void *arg)
{
    s2s_query *q = arg;
    if ((q->subs[0] && q->subs[0]->pending) || (q->subs[1] && q->subs[1]->pending))
        log_info("s2s dns: no answer for %s within %llu ms", q->name,
                 (unsigned long long)q->r->timeout_ms);
    query_finish(q);
}

static void on_answer(void *arg, int err, struct ub_result *result)
{
    sub *s = arg;
    s->pending = false;
    s2s_query *q = s->q;
    if (!q) {                       /* an orphan: its query is gone */
        ub_resolve_free(result);
        return;
    }
    int i = q->subs[0] == s ? 0 : 1;
    q->err[i] = err;
    q->res[i] = result;
    if (err)
        log_debug("s2s dns: %s: %s", q->name, ub_strerror(err));
    if (!q->subs[1 - i]->pending)
        query_finish(q);
}

static s2s_query *query_new(s2s_resolver *r, const char *name, void *arg)
{
    s2s_query *q = mem_zalloc(sizeof(*q));
    q->r = r;
    q->arg = arg;
    snprintf(q->name, sizeof(q->name), "%s", name);
    timer_init(&q->deadline, on_deadline, q);
    q->next = r->queries;
    if (r->queries)
        r->queries->prev = q;
    r->queries = q;
    return q;
}

static void answer_now(s2s_query *q, int status)
{
    q->immediate = true;
    q->immediate_status = status;
    evloop_timer_after(q->r->loop, &q->deadline, 0);
}

/* The context's last configuration, at the first query: resolv.conf unless forwarders were set. */
static int finalize(s2s_resolver *r)
{
    if (r->finalized)
        return 0;
    r->finalized = true;
    if (r->forwarded)
        return 0;
    int rc = ub_ctx_resolvconf(r->ctx, r->resolv_conf);
    if (rc != 0)
        log_error("s2s dns: %s: %s", r->resolv_conf ? r->resolv_conf : "/etc/resolv.conf",
                  ub_strerror(rc));
    return rc;
}

/* Starts the two lookups of q; answers at once (from the loop) if neither could start. */
static void query_start(s2s_query *q, const char *const names[2], const int types[2])
{
    s2s_resolver *r = q->r;
    int rc = finalize(r);
    for (int i = 0; i < 2; i++) {
        sub *s = q->subs[i] = mem_zalloc(sizeof(*s));
        s->q = q;
        if (rc == 0)
            q->err[i] = ub_resolve_async(r->ctx, names[i], types[i], RR_CLASS_IN, s, on_answer,
                                         &s->async_id);
        else
            q->err[i] = rc;
        s->pending = q->err[i] == 0;
        if (q->err[i])
            log_error("s2s dns: cannot look up %s: %s", names[i], ub_strerror(q->err[i]));
    }
    /* An answer can only arrive through ub_process, on the loop: none has come yet. */
    if (!q->subs[0]->pending && !q->subs[1]->pending)
        evloop_timer_after(r->loop, &q->deadline, 0);
    else
        evloop_timer_after(r->loop, &q->deadline, r->timeout_ms);
}

s2s_query *s2s_resolve_srv(s2s_resolver *r, const char *domain, s2s_srv_fn fn, void *arg)
{
    s2s_query *q = query_new(r, domain, arg);
    q->is_srv = true;
    q->srv_fn = fn;
    if (!s2s_host_valid(domain)) {
        answer_now(q, S2S_RESOLVE_FAILED);
        return q;
    }
    char xmpps[300], xmpp[300];
    snprintf(xmpps, sizeof(xmpps), "_xmpps-server._tcp.%s", domain);
    snprintf(xmpp, sizeof(xmpp), "_xmpp-server._tcp.%s", domain);
    const char *names[2] = { xmpps, xmpp };
    const int types[2] = { RR_TYPE_SRV, RR_TYPE_SRV };
    query_start(q, names, types);
    return q;
}

/* A literal address: "192.0.2.1", "2001:db8::1" or "[2001:db8::1]". */
static bool parse_literal(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        return true;
    }
    char v6[INET6_ADDRSTRLEN + 2];
    size_t len = strnlen(host, sizeof(v6));
    if (len >= 2 && len < sizeof(v6) && host[0] == '[' && host[len - 1] == ']') {
        memcpy(v6, host + 1, len - 2);
        v6[len - 2] = '\0';
        host = v6;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        return true;
    }
    return false;
}

s2s_query *s2s_resolve_addr(s2s_resolver *r, const char *host, uint16_t port, s2s_addr_fn fn,
                            void *arg)
{
    s2s_query *q = query_new(r, host, arg);
    q->addr_fn = fn;
    q->port = port;
    if (parse_literal(host, port, &q->literal))
        answer_now(q, S2S_RESOLVE_OK);
    else if (!s2s_host_valid(host))
        answer_now(q, S2S_RESOLVE_NOT_FOUND);
    else {
        const char *names[2] = { host, host };
        const int types[2] = { RR_TYPE_AAAA, RR_TYPE_A };
        query_start(q, names, types);
    }
    return q;
}
