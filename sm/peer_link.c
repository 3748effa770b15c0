/* sm/peer_link.c — the peer SMs' services and this SM's connections to the lower ones (see
 * peer_link.h). */
#include "sm/peer_link.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/tcp_connect.h"

#define PEER_RETRY_MAX_MS 30000u

typedef struct peer_conn {
    peer_links *pl;
    const sm_peer *peer;
    const sm_service *svc;
    link_sm *link;          /* the current attempt or link, NULL between attempts */
    timer retry;
    unsigned attempts;      /* failed in a row */
} peer_conn;

struct peer_links {
    evloop *loop;
    const sm_config *cfg;
    link_sm_server *srv;
    peer_conn *conns;
    int nconns;
};

sm_service *peer_services(const sm_config *cfg, int *n)
{
    const sm_partitions *p = &cfg->partitions;
    *n = cfg->nservices;
    if (!p->npeers)
        return cfg->services;
    sm_service *all = mem_array((size_t)(cfg->nservices + p->npeers) + 1, sizeof *all);
    memcpy(all, cfg->services, (size_t)cfg->nservices * sizeof *all);
    for (int i = 0; i < p->npeers; i++) {
        const sm_peer *q = &p->peers[i];
        bool accepts = q->index > p->index;   /* it connects here */
        all[(*n)++] = (sm_service){.id = q->id, .ip = accepts ? p->ip : NULL,
                                   .port = accepts ? p->port : 0, .secret = q->secret,
                                   .role = SM_ROLE_PEER};
    }
    return all;
}

void peer_services_free(const sm_config *cfg, sm_service *services)
{
    if (services != cfg->services)
        free(services);
}

static void try_connect(timer *t, void *arg);

static void conn_closed(void *ctx, link_sm *l, bool was_up)
{
    peer_conn *c = ctx;
    c->link = NULL;
    if (was_up)
        c->attempts = 0;
    unsigned n = c->attempts++;
    uint64_t delay = was_up ? 1000 : n < 5 ? 1000u << n : PEER_RETRY_MAX_MS;
    evloop_timer_after(c->pl->loop, &c->retry, delay);
}

static void try_connect(timer *t, void *arg)
{
    peer_conn *c = arg;
    char err[160];
    int fd = tcp_connect_start(c->peer->host, c->peer->port, err, sizeof err);
    if (fd < 0) {
        log_info("sm: peer %s (%s port %d): %s", c->peer->id, c->peer->host, c->peer->port, err);
        conn_closed(c, NULL, false);
        return;
    }
    c->link = link_sm_connect(c->pl->srv, fd, c->svc, c->pl->cfg->partitions.id, conn_closed, c);
    if (!c->link)
        conn_closed(c, NULL, false);
}

peer_links *peer_links_start(evloop *loop, const sm_config *cfg, link_sm_server *srv,
                             const sm_service *services, int n)
{
    const sm_partitions *p = &cfg->partitions;
    if (!p->npeers)
        return NULL;
    peer_links *pl = mem_zalloc(sizeof *pl);
    pl->loop = loop;
    pl->cfg = cfg;
    pl->srv = srv;
    pl->conns = mem_array((size_t)p->npeers, sizeof *pl->conns);
    for (int i = 0; i < p->npeers; i++) {
        const sm_peer *q = &p->peers[i];
        if (q->index > p->index)
            continue;
        peer_conn *c = &pl->conns[pl->nconns++];
        c->pl = pl;
        c->peer = q;
        for (int k = 0; k < n; k++)
            if (services[k].role == SM_ROLE_PEER && strcmp(services[k].id, q->id) == 0)
                c->svc = &services[k];
        timer_init(&c->retry, try_connect, c);
        evloop_timer_after(loop, &c->retry, 0);
    }
    log_info("sm: partition %d of %d (%s), %d peer link(s) to open", p->index, p->count, p->id,
             pl->nconns);
    return pl;
}

void peer_links_free(peer_links *pl)
{
    if (!pl)
        return;
    for (int i = 0; i < pl->nconns; i++)
        evloop_timer_cancel(pl->loop, &pl->conns[i].retry);
    free(pl->conns);
    free(pl);
}
