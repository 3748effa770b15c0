/* sm/server.c — wiring links, core and storage together (see server.h). */
#include "sm/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "smproto/link_sm.h"

struct sm_server {
    evloop *loop;
    xdbsql *xdb;
    sm *core;
    link_sm_server *links;
};

/* ---- core -> links ---- */

static void t_stanza(void *ctx, void *link, uint64_t sid, const char *xml, size_t len)
{
    smproto_put(link_sm_out(link), SMPROTO_STANZA, sid, xml, len);
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
}

static void t_bound(void *ctx, void *link, uint64_t sid, uint8_t status, const char *full_jid)
{
    smproto_put_bound(link_sm_out(link), sid, status, full_jid);
}

static void t_end(void *ctx, void *link, uint64_t sid, uint8_t reason, const char *text)
{
    smproto_put_end(link_sm_out(link), sid, reason, text);
}

static void t_component(void *ctx, void *link, const char *xml, size_t len)
{
    buf_append(link_sm_out(link), xml, len);
}

static void submit(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx)
{
    xdbsql_submit(ctx, r, cb, cbctx);
}

/* ---- links -> core ---- */

static void on_up(void *ctx, link_sm *l, bool component)
{
    sm_server *srv = ctx;
    link_sm_set_data(l, sm_link_up(srv->core, l, link_sm_service(l), component));
}

static void on_down(void *ctx, link_sm *l)
{
    sm_server *srv = ctx;
    sm_link *sl = link_sm_data(l);
    if (sl)
        sm_link_down(srv->core, sl);
    link_sm_set_data(l, NULL);
}

static void on_stanza(void *ctx, link_sm *l, xml_node *st, xml_arena *arena)
{
    sm_server *srv = ctx;
    sm_component_stanza(srv->core, link_sm_data(l), st, arena);
}

static void on_frame(void *ctx, link_sm *l, const smproto_frame *f)
{
    sm_server *srv = ctx;
    sm_link *sl = link_sm_data(l);
    const char *host, *user, *resource, *text, *xml;
    uint8_t flags, reason;
    bool ok = true;
    if (f->type != SMPROTO_STANZA)
        log_debug("link %s: %s frame, sid %016llx", link_sm_service(l), smproto_type_name(f->type),
                  (unsigned long long)f->sid);
    switch (f->type) {
    case SMPROTO_STANZA:
        sm_session_stanza(srv->core, sl, f->sid, (const char *)f->payload, f->len);
        break;
    case SMPROTO_AUTH_QUERY:
        if ((ok = smproto_get_auth_query(f, &host, &user)))
            sm_auth_query(srv->core, sl, f->sid, host, user);
        break;
    case SMPROTO_BIND:
        if ((ok = smproto_get_bind(f, &host, &user, &resource, &flags)))
            sm_bind(srv->core, sl, f->sid, host, user, resource, flags);
        break;
    case SMPROTO_END:
        if ((ok = smproto_get_end(f, &reason, &text)))
            sm_end(srv->core, sl, f->sid, reason);
        break;
    case SMPROTO_REGISTER:
        if ((ok = smproto_get_register(f, &host, &xml)))
            sm_register(srv->core, sl, f->sid, host, xml, strlen(xml));
        break;
    case SMPROTO_UNDELIVERED: {
        size_t len;
        if ((ok = smproto_get_undelivered(f, &xml, &len)))
            sm_undelivered(srv->core, sl, f->sid, xml, len);
        break;
    }
    case SMPROTO_RESYNC: {
        smproto_resync_reader rd;
        smproto_resync_read(f, &rd);
        uint64_t sid;
        const char *full;
        int rc;
        while ((rc = smproto_resync_next(&rd, &sid, &full)) == 1)
            sm_resync(srv->core, sl, sid, full);
        ok = rc == 0;
        break;
    }
    default:
        ok = false;  /* AUTH_ANSWER, BOUND: the SM's own frames */
        break;
    }
    if (!ok) {
        char why[80];
        snprintf(why, sizeof(why), "protocol error: bad %s frame", smproto_type_name(f->type));
        link_sm_close(l, why);
    }
}

/* ---- loop hooks ---- */

static void on_wake(evloop *loop, void *arg)
{
    sm_server *srv = arg;
    xdbsql_dispatch(srv->xdb);
}

static void before_sleep(evloop *loop, void *arg)
{
    sm_server *srv = arg;
    link_sm_flush_all(srv->links);
}

sm_server *sm_server_new(evloop *loop, const sm_config *cfg, xdbsql *xdb)
{
    sm_server *srv = mem_zalloc(sizeof(*srv));
    srv->loop = loop;
    srv->xdb = xdb;
    static const sm_transport t = {t_stanza, t_auth_answer, t_bound, t_end, t_component};
    srv->core = sm_new(cfg, &t, srv, submit, xdb);
    link_sm_handlers h = {on_up, on_frame, on_stanza, on_down};
    srv->links = link_sm_server_new(loop, cfg->services, cfg->nservices, &h, srv);
    evloop_on_wake(loop, on_wake, srv);
    evloop_before_sleep(loop, before_sleep, srv);
    return srv;
}

int sm_server_listen(sm_server *srv, char *err, size_t errlen)
{
    return link_sm_listen(srv->links, err, errlen);
}

void sm_server_shutdown(sm_server *srv)
{
    sm_shutdown(srv->core);
    link_sm_flush_all(srv->links);
}

sm *sm_server_core(sm_server *srv) { return srv->core; }

void sm_server_free(sm_server *srv)
{
    if (!srv)
        return;
    link_sm_server_free(srv->links);
    sm_free(srv->core);
    evloop_on_wake(srv->loop, NULL, NULL);
    evloop_before_sleep(srv->loop, NULL, NULL);
    free(srv);
}
