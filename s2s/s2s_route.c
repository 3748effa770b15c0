/* s2s/s2s_route.c — outgoing routes (see s2s_server.h): one per (local domain, remote domain),
 * created by the first stanza or dialback check for the pair. A route resolves the remote domain
 * (SRV with XEP-0368, then each target's addresses), connects to the targets in order until one
 * stream authenticates, and meanwhile holds the pair's stanzas (at most <queue_stanzas> and
 * <queue_bytes>) for at most <connect_timeout> seconds. When every target has failed, or the
 * time is up, what it held is bounced to the senders: <remote-server-not-found/> (RFC 6120
 * §8.3.3.16) when no server could be found or reached, <remote-server-timeout/> (§8.3.3.17) when
 * the time ran out. Dialback checks for incoming streams (db:verify) ride the same stream, sent
 * once it is up, whether or not it is authenticated yet. A route may also send on an incoming
 * stream that the remote server made bidirectional (XEP-0288), while it has no stream of its own:
 * then it opens none. */
#include "s2s/s2s_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/siphash.h"
#include "core/xml_write.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define VERIFY_MAX 64      /* dialback checks waiting on one route */

typedef struct held {
    struct held *next;
    xml_node *node;
    xml_arena *arena;
    size_t bytes;
} held;

typedef struct verify {
    struct verify *next;
    uint64_t conn_id;     /* the incoming connection that asked */
    char *stream_id, *key;
    bool sent;
} verify;

typedef enum { R_IDLE, R_RESOLVING, R_CONNECTING, R_STREAM, R_READY } route_state;

struct s2s_route {
    s2s_server *srv;
    s2s_route *next;              /* hash chain */
    char *local, *remote;
    route_state state;
    held *first, *last;
    unsigned nheld;
    size_t held_bytes;
    verify *verifies;
    unsigned nverifies;
    s2s_conn *conn;
    s2s_conn *bidi;               /* an incoming bidirectional stream for the pair, or NULL */
    bool ready;                   /* conn's stream may carry db:verify */
    s2s_query *query;
    s2s_target targets[S2S_TARGETS_MAX];
    size_t ntargets, at_target;
    struct sockaddr_storage addrs[S2S_ADDRS_MAX];
    size_t naddrs, at_addr;
    timer deadline;
    char last_error[160];
};

static uint64_t hash_key[2];

static size_t slot_of(const s2s_server *srv, const char *local, const char *remote)
{
    char key[2 * S2S_DOMAIN_MAX + 2];
    int n = snprintf(key, sizeof key, "%s %s", local, remote);
    for (int i = 0; i < n; i++)
        key[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
    return (size_t)(siphash24(hash_key[0], hash_key[1], key, (size_t)n) % srv->route_slots);
}

const char *s2s_route_local(const s2s_route *r) { return r->local; }
const char *s2s_route_remote(const s2s_route *r) { return r->remote; }

static s2s_route *route_find(s2s_server *srv, const char *local, const char *remote)
{
    if (!srv->route_slots)
        return NULL;
    for (s2s_route *r = srv->routes[slot_of(srv, local, remote)]; r; r = r->next)
        if (strcasecmp(r->local, local) == 0 && strcasecmp(r->remote, remote) == 0)
            return r;
    return NULL;
}

static void deadline_fired(timer *t, void *arg);

static void grow(s2s_server *srv)
{
    size_t old = srv->route_slots;
    s2s_route **was = srv->routes;
    srv->route_slots = old ? old * 2 : 64;
    srv->routes = mem_array(srv->route_slots, sizeof *srv->routes);
    for (size_t i = 0; i < old; i++)
        for (s2s_route *r = was[i], *next; r; r = next) {
            next = r->next;
            size_t s = slot_of(srv, r->local, r->remote);
            r->next = srv->routes[s];
            srv->routes[s] = r;
        }
    free(was);
}

static s2s_route *route_get(s2s_server *srv, const char *local, const char *remote)
{
    s2s_route *r = route_find(srv, local, remote);
    if (r)
        return r;
    if (srv->nroutes >= srv->cfg->limits.max_routes) {
        log_warn("s2s out %s -> %s: over <max_routes> (%u remote domains at once): refused",
                 local, remote, srv->cfg->limits.max_routes);
        return NULL;
    }
    if (!hash_key[0])
        random_bytes(hash_key, sizeof hash_key);
    if (srv->nroutes >= srv->route_slots)
        grow(srv);
    r = mem_zalloc(sizeof *r);
    r->srv = srv;
    r->local = mem_strdup(local);
    r->remote = mem_strdup(remote);
    timer_init(&r->deadline, deadline_fired, r);
    size_t s = slot_of(srv, local, remote);
    r->next = srv->routes[s];
    srv->routes[s] = r;
    srv->nroutes++;
    return r;
}

static void route_free(s2s_route *r)
{
    s2s_server *srv = r->srv;
    s2s_route **p = &srv->routes[slot_of(srv, r->local, r->remote)];
    while (*p != r)
        p = &(*p)->next;
    *p = r->next;
    srv->nroutes--;
    if (r->bidi)
        s2s_conn_forget_route(r->bidi);
    evloop_timer_cancel(srv->loop, &r->deadline);
    if (r->query)
        s2s_resolve_cancel(r->query);
    free(r->local);
    free(r->remote);
    free(r);
}

/* ---- bounces --------------------------------------------------------------------------------- */

/* RFC 6120 §8.3.1: the stanza back to its sender with from and to swapped and an error; never
 * for an error or an iq result (§8.3.1 rule 2, §8.2.3), nor for presence other than
 * subscription requests (an unavailable presence to a gone server needs no answer). */
static void bounce(s2s_server *srv, xml_node *st, xml_arena *arena, const char *type,
                   const char *condition)
{
    const char *t = xml_attr_get(st, "type");
    bool is_presence = strcmp(st->name, "presence") == 0;
    if ((t && (strcmp(t, "error") == 0 || strcmp(t, "result") == 0)) ||
        (is_presence && (!t || strcmp(t, "subscribe") != 0)) || !xml_attr_get(st, "from")) {
        xml_arena_free(arena);
        return;
    }
    const char *from = xml_arena_strdup(arena, xml_attr_get(st, "from"));
    const char *to = xml_attr_get(st, "to") ? xml_arena_strdup(arena, xml_attr_get(st, "to")) : NULL;
    xml_attr_set(arena, st, NULL, "to", from);
    if (to)
        xml_attr_set(arena, st, NULL, "from", to);
    else
        xml_attr_remove(st, NULL, "from");
    xml_attr_set(arena, st, NULL, "type", "error");
    xml_node *e = xml_element_new(arena, st, S2S_NS_SERVER, "error");
    xml_attr_set(arena, e, NULL, "type", type);
    xml_element_new(arena, e, NS_STANZAS, condition);
    srv->count.bounced++;
    s2s_link_send(srv->link, st, arena);
}

static void bounce_all(s2s_route *r, const char *type, const char *condition)
{
    held *h = r->first;
    r->first = r->last = NULL;
    r->nheld = 0;
    r->held_bytes = 0;
    while (h) {
        held *next = h->next;
        bounce(r->srv, h->node, h->arena, type, condition);
        free(h);
        h = next;
    }
}

/* Dialback checks that cannot be made: the incoming stream is told "invalid". */
static void fail_verifies(s2s_route *r)
{
    while (r->verifies) {
        verify *v = r->verifies;
        r->verifies = v->next;
        s2s_conn *in = s2s_conn_find(r->srv, v->conn_id);
        if (in) {
            s2s_stream_db_result(s2s_conn_stream(in), r->local, r->remote, false);
            s2s_conn_flush(in);
        }
        free(v->stream_id);
        free(v->key);
        free(v);
    }
    r->nverifies = 0;
}

/* Every target failed, or time ran out: bounce, answer, and forget the route. */
static void route_failed(s2s_route *r, const char *condition)
{
    log_warn("s2s out %s -> %s: %s (%u stanzas bounced with <%s/>)", r->local, r->remote,
             r->last_error[0] ? r->last_error : "no server", r->nheld, condition);
    if (r->query) {
        s2s_resolve_cancel(r->query);
        r->query = NULL;
    }
    if (r->conn) {
        s2s_conn *c = r->conn;
        r->conn = NULL;
        s2s_conn_forget_route(c);
        s2s_conn_close(c, "given up");
    }
    evloop_timer_cancel(r->srv->loop, &r->deadline);
    r->state = R_IDLE;
    bounce_all(r, "cancel", condition);
    fail_verifies(r);
    route_free(r);
}

static void deadline_fired(timer *t, void *arg)
{
    (void)t;
    s2s_route *r = arg;
    snprintf(r->last_error, sizeof r->last_error, "no authenticated stream within %u s",
             r->srv->cfg->limits.connect_timeout);
    route_failed(r, "remote-server-timeout");
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void next_target(s2s_route *r);

static void try_addr(s2s_route *r)
{
    while (r->at_addr < r->naddrs) {
        const struct sockaddr_storage *a = &r->addrs[r->at_addr++];
        char host[INET6_ADDRSTRLEN] = "?";
        uint16_t port;
        if (a->ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const void *)a;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
            port = ntohs(s6->sin6_port);
        } else {
            const struct sockaddr_in *s4 = (const void *)a;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
            port = ntohs(s4->sin_port);
        }
        char peer[80];
        snprintf(peer, sizeof peer, "%s port %u", host, port);
        int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(r->last_error, sizeof r->last_error, "socket: %s", strerror(errno));
            continue;
        }
        socklen_t len = a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
        if (connect(fd, (const struct sockaddr *)a, len) != 0 && errno != EINPROGRESS) {
            snprintf(r->last_error, sizeof r->last_error, "%s: %s", peer, strerror(errno));
            close(fd);
            continue;
        }
        r->state = R_STREAM;
        r->conn = s2s_conn_connect(r->srv, r, fd,
                                   r->targets[r->at_target - 1].direct_tls, peer);
        return;
    }
    next_target(r);
}

static void addrs_found(void *arg, int status, const struct sockaddr_storage *addrs, size_t n)
{
    s2s_route *r = arg;
    r->query = NULL;
    if (status != S2S_RESOLVE_OK || n == 0) {
        snprintf(r->last_error, sizeof r->last_error, "%s: no address",
                 r->targets[r->at_target - 1].host);
        next_target(r);
        return;
    }
    r->naddrs = n < S2S_ADDRS_MAX ? n : S2S_ADDRS_MAX;
    memcpy(r->addrs, addrs, r->naddrs * sizeof *addrs);
    r->at_addr = 0;
    try_addr(r);
}

static void next_target(s2s_route *r)
{
    if (r->at_target >= r->ntargets) {
        route_failed(r, "remote-server-not-found");
        return;
    }
    const s2s_target *t = &r->targets[r->at_target++];
    r->state = R_CONNECTING;
    r->query = s2s_resolve_addr(r->srv->dns, t->host, t->port, addrs_found, r);
    if (!r->query) {
        snprintf(r->last_error, sizeof r->last_error, "%s: cannot resolve", t->host);
        next_target(r);
    }
}

static void targets_found(void *arg, int status, const s2s_target *targets, size_t n)
{
    s2s_route *r = arg;
    r->query = NULL;
    /* RFC 6120 §3.2.1 (step 6): when the SRV lookup itself fails, the domain's own addresses on
     * the default port are still worth a try. */
    s2s_target fallback;
    if (status == S2S_RESOLVE_FAILED) {
        snprintf(fallback.host, sizeof fallback.host, "%s", r->remote);
        fallback.port = S2S_DEFAULT_PORT;
        fallback.direct_tls = false;
        targets = &fallback;
        n = 1;
        status = S2S_RESOLVE_OK;
    }
    if (status != S2S_RESOLVE_OK || n == 0) {
        snprintf(r->last_error, sizeof r->last_error, "%s", status == S2S_RESOLVE_NO_SERVICE
                 ? "the domain says it has no XMPP server (SRV '.')" : "DNS resolution failed");
        route_failed(r, "remote-server-not-found");
        return;
    }
    r->ntargets = n < S2S_TARGETS_MAX ? n : S2S_TARGETS_MAX;
    memcpy(r->targets, targets, r->ntargets * sizeof *targets);
    r->at_target = 0;
    next_target(r);
}

static void route_start(s2s_route *r)
{
    if (r->state != R_IDLE)
        return;
    r->state = R_RESOLVING;
    r->last_error[0] = '\0';
    evloop_timer_after(r->srv->loop, &r->deadline,
                       (uint64_t)r->srv->cfg->limits.connect_timeout * 1000);
    r->query = s2s_resolve_srv(r->srv->dns, r->remote, targets_found, r);
    if (!r->query) {
        snprintf(r->last_error, sizeof r->last_error, "cannot start a DNS query");
        route_failed(r, "remote-server-not-found");
    }
}

/* ---- from the route's connection ------------------------------------------------------------- */

static void send_verifies(s2s_route *r)
{
    if (!r->conn || !r->ready)
        return;
    for (verify *v = r->verifies; v; v = v->next)
        if (!v->sent) {
            s2s_stream_db_verify(s2s_conn_stream(r->conn), r->local, r->remote, v->stream_id,
                                 v->key);
            v->sent = true;
        }
    s2s_conn_flush(r->conn);
}

void s2s_route_stream_ready(s2s_route *r)
{
    r->ready = true;
    send_verifies(r);
}

/* What the route held, written on via (its stream, or a bidi one). */
static void write_held(s2s_route *r, s2s_conn *via)
{
    s2s_stream *st = s2s_conn_stream(via);
    while (r->first) {
        held *h = r->first;
        r->first = h->next;
        if (!s2s_stream_send(st, h->node, r->srv->cfg->limits.stanza_size))
            bounce(r->srv, h->node, h->arena, "modify", "policy-violation");
        else {
            r->srv->count.stanzas_out++;
            xml_arena_free(h->arena);
        }
        free(h);
    }
    r->last = NULL;
    r->nheld = 0;
    r->held_bytes = 0;
    s2s_conn_flush(via);
}

void s2s_route_authed(s2s_route *r)
{
    r->state = R_READY;
    evloop_timer_cancel(r->srv->loop, &r->deadline);
    write_held(r, r->conn);
}

s2s_route *s2s_route_attach_bidi(s2s_server *srv, const char *local, const char *remote,
                                 s2s_conn *c)
{
    s2s_route *r = route_get(srv, local, remote);
    if (!r)
        return NULL;
    if (r->bidi)
        s2s_conn_forget_route(r->bidi);
    r->bidi = c;
    if (r->state != R_READY && r->first)
        write_held(r, c);
    return r;
}

void s2s_route_bidi_closed(s2s_route *r)
{
    r->bidi = NULL;
    if (r->state == R_IDLE && !r->first && !r->verifies)
        route_free(r);
    else if (r->first)
        route_start(r);
}

void s2s_route_verify_answer(s2s_route *r, const char *id, bool valid)
{
    for (verify **p = &r->verifies; *p; p = &(*p)->next) {
        verify *v = *p;
        if (!v->sent || strcmp(v->stream_id, id) != 0)
            continue;
        *p = v->next;
        r->nverifies--;
        s2s_conn *in = s2s_conn_find(r->srv, v->conn_id);
        if (in) {
            s2s_stream_db_result(s2s_conn_stream(in), r->local, r->remote, valid);
            s2s_conn_flush(in);
        }
        free(v->stream_id);
        free(v->key);
        free(v);
        return;
    }
    log_debug("s2s out %s -> %s: a db:verify answer for no question (id %s)", r->local,
              r->remote, id);
}

void s2s_route_conn_closed(s2s_route *r, bool was_authed, const char *why)
{
    r->conn = NULL;
    r->ready = false;
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
    if (r->state == R_READY || was_authed) {
        /* An established stream ended (idle, or the peer went): start again only if something
         * waits; sent verifies are lost with the stream. */
        r->state = R_IDLE;
        for (verify *v = r->verifies; v; v = v->next)
            v->sent = false;
        if (r->first || r->verifies)
            route_start(r);
        else if (!r->bidi)
            route_free(r);
        return;
    }
    /* A stream that never authenticated: the next address, then the next target. */
    r->state = R_CONNECTING;
    try_addr(r);
}

/* ---- from the SM and from incoming streams --------------------------------------------------- */

void s2s_route_stanza(s2s_server *srv, const char *local, const char *remote, xml_node *st,
                      xml_arena *arena)
{
    s2s_policy p;
    s2s_config_policy(srv->cfg, remote, &p);
    if (p.blocked) {
        bounce(srv, st, arena, "cancel", "not-allowed");
        return;
    }
    s2s_route *r = route_get(srv, local, remote);
    if (!r) {
        bounce(srv, st, arena, "wait", "resource-constraint");
        return;
    }
    const s2s_limits *l = &srv->cfg->limits;
    s2s_conn *via = r->state == R_READY && r->conn ? r->conn : r->bidi;
    if (via && !r->first) {
        if (s2s_conn_pending(via) > l->output_max) {
            bounce(srv, st, arena, "wait", "resource-constraint");
            return;
        }
        if (!s2s_stream_send(s2s_conn_stream(via), st, l->stanza_size)) {
            bounce(srv, st, arena, "modify", "policy-violation");
            return;
        }
        srv->count.stanzas_out++;
        xml_arena_free(arena);   /* written before the loop sleeps: s2s_conns_flush_pending */
        return;
    }
    size_t bytes = xml_arena_bytes(arena);
    if (r->nheld >= l->queue_stanzas || r->held_bytes + bytes > l->queue_bytes) {
        bounce(srv, st, arena, "wait", "resource-constraint");
        return;
    }
    held *h = mem_zalloc(sizeof *h);
    h->node = st;
    h->arena = arena;
    h->bytes = bytes;
    if (r->last)
        r->last->next = h;
    else
        r->first = h;
    r->last = h;
    r->nheld++;
    r->held_bytes += bytes;
    route_start(r);
}

void s2s_route_verify(s2s_server *srv, const char *local, const char *remote, uint64_t conn_id,
                      const char *stream_id, const char *key)
{
    s2s_route *r = route_get(srv, local, remote);
    if (!r || r->nverifies >= VERIFY_MAX) {
        s2s_conn *in = s2s_conn_find(srv, conn_id);
        if (in) {
            s2s_stream_db_result(s2s_conn_stream(in), local, remote, false);
            s2s_conn_flush(in);
        }
        return;
    }
    verify *v = mem_zalloc(sizeof *v);
    v->conn_id = conn_id;
    v->stream_id = mem_strdup(stream_id);
    v->key = mem_strdup(key);
    v->next = r->verifies;
    r->verifies = v;
    r->nverifies++;
    if (r->state == R_IDLE)
        route_start(r);
    else
        send_verifies(r);
}

void s2s_routes_free(s2s_server *srv)
{
    for (size_t i = 0; i < srv->route_slots; i++)
        while (srv->routes[i]) {
            s2s_route *r = srv->routes[i];
            while (r->first) {
                held *h = r->first;
                r->first = h->next;
                xml_arena_free(h->arena);
                free(h);
            }
            while (r->verifies) {
                verify *v = r->verifies;
                r->verifies = v->next;
                free(v->stream_id);
                free(v->key);
                free(v);
            }
            route_free(r);
        }
    free(srv->routes);
    srv->routes = NULL;
    srv->route_slots = 0;
}
