/* sm/sm.c — the session manager's core, its life (new, shutdown, free), storage requests
 * holding the ticket of the frame that caused them, and parsing the stanzas that arrive as bytes.
 * The rest of the core is in stanza.c, registry.c, users.c, sessions.c and route.c (sm/core.h).
 * See sm.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mem.h"
#include "sm/barrier.h"
#include "sm/core.h"
#include "smproto/frame.h"

/* A storage request made while a frame was being processed holds the frame's ticket until its
 * answer has been handled. */
typedef struct ticketed_submit {
    sm *s;
    custody_ticket ticket;
    sm_barrier *barrier;    /* counts the request, or NULL */
    xdb_callback cb;
    void *ctx;
} ticketed_submit;

custody_ticket sm_current_ticket(const sm *s) { return s->ticket; }

custody_ticket sm_swap_ticket(sm *s, custody_ticket t)
{
    custody_ticket prev = s->ticket;
    s->ticket = t;
    return prev;
}

sm_barrier *sm_swap_barrier(sm *s, sm_barrier *b)
{
    sm_barrier *prev = s->barrier;
    s->barrier = b;
    return prev;
}

static void submitted(xdb_request *r, void *arg)
{
    ticketed_submit *c = arg;
    custody_ticket prev = sm_swap_ticket(c->s, c->ticket);
    if (c->cb)
        c->cb(r, c->ctx);
    sm_swap_ticket(c->s, prev);
    custody_release(c->ticket);
    if (c->barrier)
        sm_barrier_answered(c->barrier);
    free(c);
}

void sm_submit(sm *s, xdb_request *r, xdb_callback cb, void *ctx)
{
    if (!s->ticket.link && !s->barrier) {
        s->submit(s->submit_ctx, r, cb, ctx);
        return;
    }
    ticketed_submit *c = mem_alloc(sizeof *c);
    *c = (ticketed_submit){s, s->ticket, s->barrier, cb, ctx};
    custody_hold(c->ticket);
    if (c->barrier)
        sm_barrier_submitted(c->barrier);
    s->submit(s->submit_ctx, r, submitted, c);
}

const sm_config *sm_cfg(const sm *s) { return s->cfg; }

void sm_set_storage_lanes(sm *s, int count, sm_lane_fn lane_of)
{
    s->lanes = count;
    s->lane_of = lane_of;
}

int sm_storage_lanes(const sm *s) { return s->lanes > 0 ? s->lanes : 1; }

int sm_storage_lane(const sm *s, const char *host, const char *user)
{
    return s->lanes > 1 ? s->lane_of(s->submit_ctx, host, user) : 0;
}

void sm_make_id(sm *s, const char *prefix, char out[32])
{
    snprintf(out, 32, "%.12s%llu", prefix, (unsigned long long)++s->push_id);
}

bool sm_is_local_host(const sm *s, const char *domain, size_t len)
{
    for (int i = 0; i < s->cfg->nhosts; i++) {
        const char *h = s->cfg->hosts[i].name;
        if (h && strlen(h) == len && strncasecmp(h, domain, len) == 0)
            return true;
    }
    return false;
}

bool sm_is_local_user(const sm *s, const jid *j)
{
    size_t dlen, nlen;
    const char *d = jid_domain(j, &dlen);
    return d && jid_node(j, &nlen) && sm_is_local_host(s, d, dlen);
}

static void parsed_stanza(void *ctx, xml_node *node, xml_arena *arena)
{
    sm *s = ctx;
    if (s->parsed) {
        xml_arena_free(arena);
        s->parsed_extra = true;
        return;
    }
    s->parsed = node;
    s->parsed_arena = arena;
}

sm_stanza *sm_parse(sm *s, const char *xml, size_t len)
{
    static const char header[] = "<stream:stream xmlns='jabber:client' "
                                 "xmlns:stream='http://etherx.jabber.org/streams'>";
    if (!s->parser_open) {
        xmlstream_reset(s->parser);
        if (xmlstream_feed(s->parser, header, sizeof(header) - 1, NULL) != XMLSTREAM_OK)
            return NULL;
        s->parser_open = true;
    }
    s->parsed = NULL;
    s->parsed_arena = NULL;
    s->parsed_extra = false;
    /* Exactly one element and nothing after it but whitespace; anything else (no element, two,
     * a partial one, text, a stream close) is refused, and the next stanza starts a new stream. */
    bool ok = xmlstream_feed(s->parser, xml, len, NULL) == XMLSTREAM_OK && s->parsed &&
              !s->parsed_extra && xmlstream_idle(s->parser);
    if (!ok) {
        s->parser_open = false;
        if (s->parsed_arena)
            xml_arena_free(s->parsed_arena);
        s->parsed_arena = NULL;
        s->parsed = NULL;
        return NULL;
    }
    sm_stanza *st = sm_stanza_new(s->parsed_arena, s->parsed);
    s->parsed = NULL;
    s->parsed_arena = NULL;
    return st;
}

void sm_shutdown(sm *s)
{
    s->stopping = true;
    smc_restart_wait_end(s, "shutting down");
    smc_sessions_end(s, NULL, SMPROTO_END_SHUTDOWN, "");
}

bool sm_stopping(const sm *s) { return s->stopping; }

void sm_tick(sm *s, int64_t now_ms)
{
    s->now_ms = now_ms;
    smc_restart_wait_tick(s);
    smc_iq_out_tick(s);
    sm_event ev = {0};
    sm_fire(s, SM_EV_TICK, &ev);
}

int64_t sm_now_ms(const sm *s) { return s->now_ms; }

int64_t sm_wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t sm_started_ms(const sm *s)
{
    return s->started_ms;
}

void sm_get_stats(const sm *s, sm_stats *out)
{
    *out = s->stats;
    out->sessions = sm_map_count(&s->by_jid);
    out->users = sm_map_count(&s->users);
    out->detached = s->detached;
    out->loads_pending = smc_loads_pending(s);
    out->fronts_up = out->components_up = 0;
    for (const sm_link *l = s->links; l; l = l->next)
        *(l->component ? &out->components_up : &out->fronts_up) += 1;
}

sm *sm_new(const sm_config *cfg, const sm_module *const *modules, const sm_transport *t,
           void *transport_ctx, sm_submit_fn submit, void *submit_ctx)
{
    sm *s = mem_zalloc(sizeof(*s));
    s->cfg = cfg;
    s->started_ms = sm_wall_ms();
    s->t = *t;
    s->tctx = transport_ctx;
    s->submit = submit;
    s->submit_ctx = submit_ctx;
    sm_map_init_keyed(&s->sessions, smc_session_has_key);
    sm_map_init_keyed(&s->by_jid, smc_session_has_jid);
    sm_map_init_keyed(&s->users, smc_user_has_jid);
    sm_map_init(&s->iq_out);
    xmlstream_handlers h = {.stanza = parsed_stanza};
    xmlstream_limits lim;
    xmlstream_limits_default(&lim);
    lim.max_stanza_bytes = SMPROTO_MAX_PAYLOAD;
    lim.max_attr_bytes = lim.max_text_bytes = SMPROTO_MAX_PAYLOAD;
    s->parser = xmlstream_new(&h, s, &lim);
    smc_restart_wait_start(s);
    if (!smc_modules_load(s, modules)) {
        sm_free(s);
        return NULL;
    }
    return s;
}

static void free_session(void *val, void *ctx)
{
    smc_session_release(ctx, val);
}

static void free_user(void *val, void *ctx)
{
    sm_user *u = val;
    while (u->deferred) {
        sm_deferred *d = u->deferred;
        u->deferred = d->next;
        if (d->revived)
            smc_revive_finish(ctx, NULL, d, true);
        smc_deferred_free(d);
    }
    smc_user_clear_roster(u);
    smc_user_release(ctx, u);
}

void sm_free(sm *s)
{
    if (!s)
        return;
    s->stopping = true;
    smc_restart_wait_free(s);
    smc_domains_free(s);
    smc_iq_out_free(s);     /* while the modules that asked, and the sessions, are still here */
    sm_map_each(&s->by_jid, free_session, s);
    sm_map_each(&s->users, free_user, s);
    sm_map_free(&s->sessions);
    sm_map_free(&s->by_jid);
    sm_map_free(&s->users);
    free(s->background);
    while (s->links) {
        sm_link *l = s->links;
        s->links = l->next;
        free(l->service);
        free(l);
    }
    smc_modules_unload(s);
    xmlstream_free(s->parser);
    buf_free(&s->wire);
    free(s);
}
