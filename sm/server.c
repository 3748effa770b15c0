/* sm/server.c — wiring links, core and storage together (see server.h), and custody on the front
 * links (sm/custody.h): numbering what a front sends and what it is sent, acknowledgements both
 * ways, and what a front's instance had delivered when its link went down, so that a reconnecting
 * front sends again only what the SM never received (docs/smproto.md §3). */
#include "sm/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "sm/frame_in.h"
#include "sm/modules.h"
#include "sm/link_sm.h"
#include "sm/peer_link.h"

/* What the SM remembers of a front (one per <service>) across its links. */
typedef struct front_memory {
    char instance[SMPROTO_INSTANCE_MAX + 1];   /* "" before its first link */
    uint64_t received;      /* the last counted frame received from that instance */
} front_memory;

/* The data of an up link. */
typedef struct server_link {
    struct server_link *next, **prev;
    sm_server *srv;
    link_sm *l;
    sm_link *core;
    custody_link *cl;       /* NULL for a component */
    front_memory *memory;
} server_link;

struct sm_server {
    evloop *loop;
    xdbsql *xdb;
    sm *core;
    link_sm_server *links;
    sm_service *services;   /* what links may authenticate as: cfg's, and the peer SMs' */
    int nservices;
    peer_links *peers;      /* our connections to the peer SMs with lower indexes */
    const sm_config *cfg;
    front_memory *memory;   /* [cfg->nservices] */
    server_link *up;        /* every up link: fronts and components */
    timer tick;             /* the core's clock (sm_tick), every SM_SERVER_TICK_MS */
};

/* ---- core -> links ---- */

/* A counted frame went out on link: in custody until the front acknowledges it. */
static void sent(sm_server *srv, void *link, smproto_type type, uint64_t sid, const char *xml,
                 size_t len)
{
    server_link *sl = link_sm_data(link);
    if (sl && sl->cl)   /* frames only go to fronts; a component's stream has no custody */
        custody_sent(sl->cl, sm_current_ticket(srv->core), type, sid, xml, len);
}

static void t_stanza(void *ctx, void *link, uint64_t sid, const char *xml, size_t len)
{
    /* The core sends nothing larger than a frame (sm.c wire_put); should it ever, the stanza is
     * dropped here rather than the process. */
    if (!smproto_put(link_sm_out(link), SMPROTO_STANZA, sid, xml, len)) {
        log_error("link %s: a %zu-byte stanza for %016llx does not fit in a frame: dropped",
                  link_sm_service(link), len, (unsigned long long)sid);
        return;
    }
    sent(ctx, link, SMPROTO_STANZA, sid, xml, len);
}

static void t_auth_answer(void *ctx, void *link, uint64_t sid, uint8_t status,
                          const xdb_credentials *creds)
{
    smproto_creds c;
    if (creds) {
        c.sha1 = creds->sha1;
        c.sha256 = creds->sha256;
    }
    smproto_put_auth_answer(link_sm_out(link), sid, status, creds ? &c : NULL);
    sent(ctx, link, SMPROTO_AUTH_ANSWER, sid, NULL, 0);
}

static void t_bound(void *ctx, void *link, uint64_t sid, uint8_t status, const char *full_jid)
{
    smproto_put_bound(link_sm_out(link), sid, status, full_jid);
    sent(ctx, link, SMPROTO_BOUND, sid, NULL, 0);
}

static void t_end(void *ctx, void *link, uint64_t sid, uint8_t reason, const char *text)
{
    smproto_put_end(link_sm_out(link), sid, reason, text);
    sent(ctx, link, SMPROTO_END, sid, NULL, 0);
}

static void t_component(void *ctx, void *link, const char *xml, size_t len)
{
    buf_append(link_sm_out(link), xml, len);
}

static void t_state(void *ctx, void *link, uint64_t sid, const uint8_t *state, size_t len)
{
    smproto_put_state(link_sm_out(link), sid, state, len);
    sent(ctx, link, SMPROTO_STATE, sid, NULL, 0);
}

static void t_module(void *ctx, void *link, uint64_t sid, const char *name, const uint8_t *body,
                     size_t len)
{
    /* Modules check the size first (sm_module_send); the core's empty answers always fit. */
    if (!smproto_put_module(link_sm_out(link), sid, name, body, len)) {
        log_error("link %s: a %zu-byte message of module %s does not fit in a frame: dropped",
                  link_sm_service(link), len, name);
        return;
    }
    sent(ctx, link, SMPROTO_MODULE, sid, NULL, 0);
}

static void submit(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx)
{
    xdbsql_submit(ctx, r, cb, cbctx);
}

static int storage_lane(void *ctx, const char *host, const char *user)
{
    return xdbsql_lane(ctx, host, user);
}

/* ---- links -> core ---- */

static front_memory *memory_of(sm_server *srv, const char *service)
{
    for (int i = 0; i < srv->cfg->nservices; i++)
        if (strcmp(srv->cfg->services[i].id, service) == 0)
            return &srv->memory[i];
    return NULL;
}

/* The table index of the peer SM whose service id this is. */
static int peer_index(const sm_config *cfg, const char *id)
{
    for (int i = 0; i < cfg->partitions.npeers; i++)
        if (strcmp(cfg->partitions.peers[i].id, id) == 0)
            return cfg->partitions.peers[i].index;
    return -1;
}

static uint64_t on_up(void *ctx, link_sm *l, const link_sm_hello *hello)
{
    sm_server *srv = ctx;
    server_link *sl = mem_zalloc(sizeof *sl);
    sl->srv = srv;
    sl->l = l;
    sl->core = sm_link_up(srv->core, l, link_sm_service(l), hello == NULL);
    if (link_sm_role(l) == SM_ROLE_S2S)
        sm_link_set_s2s(srv->core, sl->core);
    if (link_sm_role(l) == SM_ROLE_PEER)
        sm_link_set_peer(srv->core, sl->core, peer_index(srv->cfg, link_sm_service(l)));
    link_sm_set_data(l, sl);
    sl->next = srv->up;
    sl->prev = &srv->up;
    if (srv->up)
        srv->up->prev = &sl->next;
    srv->up = sl;
    if (!hello)
        return 0;
    /* The same instance reconnecting: it has nothing to send again up to what we received. A new
     * instance (or this SM restarted): what it says was acknowledged is where counting resumes. */
    sl->memory = memory_of(srv, link_sm_service(l));
    uint64_t received = hello->acked;
    if (strcmp(sl->memory->instance, hello->instance) == 0 && sl->memory->received > received)
        received = sl->memory->received;
    snprintf(sl->memory->instance, sizeof sl->memory->instance, "%s", hello->instance);
    sl->cl = custody_link_new(received);
    log_info("link %s: instance %s, resuming after frame %llu", link_sm_service(l),
             hello->instance, (unsigned long long)received);
    return received;
}

/* A stanza the link took and never acknowledged: undeliverable there, under its own ticket. */
static void handed_back(void *ctx, custody_ticket origin, uint64_t sid, const char *xml,
                        size_t len)
{
    server_link *sl = ctx;
    sm *core = sl->srv->core;
    custody_ticket prev = sm_swap_ticket(core, origin);
    sm_undelivered(core, sl->core, sid, xml, len);
    sm_swap_ticket(core, prev);
}

static void on_down(void *ctx, link_sm *l)
{
    sm_server *srv = ctx;
    server_link *sl = link_sm_data(l);
    if (!sl)
        return;
    if (sl->cl) {
        custody_link *cl = sl->cl;
        /* What the core sends this link from now on (bounces of what is handed back, the
         * unavailable presence of its ending sessions) goes down with it, out of custody:
         * custody_link_down may free cl. */
        sl->cl = NULL;
        sl->memory->received = custody_received(cl);
        custody_link_down(cl, handed_back, sl);
    }
    *sl->prev = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sm_link_down(srv->core, sl->core);
    link_sm_set_data(l, NULL);
    free(sl);
}

static void on_stanza(void *ctx, link_sm *l, xml_node *st, xml_arena *arena)
{
    sm_server *srv = ctx;
    server_link *sl = link_sm_data(l);
    sm_component_stanza(srv->core, sl->core, st, arena);
}

/* One frame of a front for the core; a malformed one closes the link. */
static void dispatch(sm_server *srv, link_sm *l, sm_link *sl, const smproto_frame *f)
{
    if (sm_frame_in(srv->core, sl, f))
        return;
    char why[80];
    snprintf(why, sizeof(why), "protocol error: bad %s frame", smproto_type_name(f->type));
    link_sm_close(l, why);
}

static void on_frame(void *ctx, link_sm *l, const smproto_frame *f)
{
    sm_server *srv = ctx;
    server_link *link = link_sm_data(l);
    if (f->type == SMPROTO_ACK) {
        uint64_t n;
        if (!smproto_get_ack(f, &n) || !custody_acked(link->cl, n))
            link_sm_close(l, "protocol error: bad ACK frame");
        return;
    }
    if (!smproto_counted(f->type)) {
        dispatch(srv, l, link->core, f);
        return;
    }
    custody_ticket t = custody_in(link->cl);
    custody_ticket prev = sm_swap_ticket(srv->core, t);
    dispatch(srv, l, link->core, f);
    sm_swap_ticket(srv->core, prev);
    custody_release(t);
}

/* ---- loop hooks ---- */

#define SM_SERVER_TICK_MS 1000

static void on_tick(timer *t, void *arg)
{
    sm_server *srv = arg;
    sm_tick(srv->core, (int64_t)evloop_now(srv->loop));
    evloop_timer_after(srv->loop, &srv->tick, SM_SERVER_TICK_MS);
}

static void on_wake(evloop *loop, void *arg)
{
    sm_server *srv = arg;
    xdbsql_dispatch(srv->xdb);
}

static void before_sleep(evloop *loop, void *arg)
{
    sm_server *srv = arg;
    for (server_link *sl = srv->up; sl; sl = sl->next) {
        uint64_t n;
        if (sl->cl && custody_ack_due(sl->cl, &n))
            smproto_put_ack(link_sm_out(sl->l), n);
    }
    link_sm_flush_all(srv->links);
}

sm_server *sm_server_new(evloop *loop, const sm_config *cfg, xdbsql *xdb)
{
    sm_server *srv = mem_zalloc(sizeof(*srv));
    srv->loop = loop;
    srv->xdb = xdb;
    srv->cfg = cfg;
    srv->memory = mem_array(cfg->nservices > 0 ? (size_t)cfg->nservices : 1, sizeof *srv->memory);
    static const sm_transport t = {t_stanza, t_auth_answer, t_bound, t_end, t_component, t_state,
                                      t_module};
    srv->core = sm_new(cfg, sm_builtin_modules, &t, srv, submit, xdb);
    if (!srv->core) {
        free(srv->memory);
        free(srv);
        return NULL;
    }
    sm_set_storage_lanes(srv->core, xdbsql_workers(xdb), storage_lane);
    link_sm_handlers h = {on_up, on_frame, on_stanza, on_down};
    srv->services = peer_services(cfg, &srv->nservices);
    srv->links = link_sm_server_new(loop, srv->services, srv->nservices, &h, srv);
    evloop_on_wake(loop, on_wake, srv);
    evloop_before_sleep(loop, before_sleep, srv);
    timer_init(&srv->tick, on_tick, srv);
    sm_tick(srv->core, (int64_t)evloop_now(loop));
    evloop_timer_after(loop, &srv->tick, SM_SERVER_TICK_MS);
    return srv;
}

int sm_server_listen(sm_server *srv, char *err, size_t errlen)
{
    if (link_sm_listen(srv->links, err, errlen) != 0)
        return -1;
    srv->peers = peer_links_start(srv->loop, srv->cfg, srv->links, srv->services, srv->nservices);
    return 0;
}

void sm_server_shutdown(sm_server *srv)
{
    sm_shutdown(srv->core);
    link_sm_flush_all(srv->links);
}

sm *sm_server_core(sm_server *srv) { return srv->core; }

void sm_server_metrics(sm_server *srv, buf *b)
{
    metrics_family(b, "jabshard_sm_custody_unacked", "gauge",
                   "Frames sent to fronts that they have not acknowledged yet (kept until they do).");
    metrics_family(b, "jabshard_sm_custody_unfinished", "gauge",
                   "Frames received from fronts whose work is not finished (not acknowledged yet).");
    uint64_t unacked = 0, unfinished = 0;
    for (server_link *sl = srv->up; sl; sl = sl->next)
        if (sl->cl) {
            unacked += custody_unacked(sl->cl);
            unfinished += custody_unfinished(sl->cl);
        }
    metrics_sample(b, "jabshard_sm_custody_unacked", "", unacked);
    metrics_sample(b, "jabshard_sm_custody_unfinished", "", unfinished);
}

void sm_server_free(sm_server *srv)
{
    if (!srv)
        return;
    evloop_timer_cancel(srv->loop, &srv->tick);
    link_sm_server_free(srv->links);
    peer_links_free(srv->peers);
    peer_services_free(srv->cfg, srv->services);
    /* The links closed without down: retire their custody (nothing is handed back, the SM is
     * stopping); each is freed when the core lets go of its last ticket, at the latest in
     * sm_free. */
    while (srv->up) {
        server_link *sl = srv->up;
        srv->up = sl->next;
        if (sl->cl)
            custody_link_down(sl->cl, NULL, NULL);
        free(sl);
    }
    sm_free(srv->core);
    free(srv->memory);
    evloop_on_wake(srv->loop, NULL, NULL);
    evloop_before_sleep(srv->loop, NULL, NULL);
    free(srv);
}
