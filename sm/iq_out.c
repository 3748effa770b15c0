/* sm/iq_out.c — the iq requests the SM sends on its own behalf (sm/iq_out.h): ids, the table of
 * those awaiting an answer (by id, and a list for the clock), matching answers, timeouts on the
 * core's tick, and the last calls when the SM stops. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "sm/core.h"
#include "sm/iq_out.h"

struct iq_out_req {
    char id[32];
    char *host;             /* the served host it came from: answers come to it */
    char *to;               /* the full JID it went to: answers come from it */
    int64_t deadline_ms;    /* 0 until the first tick when made before it */
    int timeout_s;
    sm_iq_reply_fn fn;
    void *ctx;
    iq_out_req *prev, *next;    /* s->iq_out_list */
};

static void req_unlink(sm *s, iq_out_req *r)
{
    sm_map_del(&s->iq_out, r->id, strlen(r->id));
    if (r->prev)
        r->prev->next = r->next;
    else
        s->iq_out_list = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(iq_out_req *r)
{
    free(r->host);
    free(r->to);
    free(r);
}

/* The last call for r, which is out of the table. */
static void req_finish(sm *s, iq_out_req *r, const sm_stanza *reply)
{
    r->fn(s, reply, r->ctx);
    req_free(r);
}

bool sm_iq_request(sm *s, const char *type, const char *from_host, const jid *to,
                   const xml_node *payload, int timeout_s, sm_iq_reply_fn fn, void *ctx)
{
    if (s->stopping || sm_map_count(&s->iq_out) >= SM_IQ_OUT_MAX)
        return false;
    iq_out_req *r = mem_zalloc(sizeof(*r));
    sm_make_id(s, "iq", r->id);
    r->host = mem_strdup(from_host);
    r->to = mem_strdup(jid_full(to));
    r->timeout_s = timeout_s;
    r->deadline_ms = s->now_ms ? s->now_ms + (int64_t)timeout_s * 1000 : 0;
    r->fn = fn;
    r->ctx = ctx;
    r->next = s->iq_out_list;
    if (r->next)
        r->next->prev = r;
    s->iq_out_list = r;
    sm_map_put(&s->iq_out, r->id, strlen(r->id), r);
    sm_stanza *st = sm_stanza_make("iq", from_host, r->to, type);
    xml_attr_set(st->arena, st->node, NULL, "id", r->id);
    if (payload)
        xml_node_copy(st->arena, st->node, payload);
    sm_route(s, st);   /* may answer at once (an error): the request is in the table already */
    return true;
}

void sm_iq_cancel(sm *s, sm_iq_reply_fn fn, void *ctx)
{
    for (iq_out_req *r = s->iq_out_list, *next; r; r = next) {
        next = r->next;
        if (r->fn == fn && r->ctx == ctx) {
            req_unlink(s, r);
            req_free(r);
        }
    }
}

bool smc_iq_out_answer(sm *s, sm_stanza *st)
{
    const char *id = xml_attr_get(st->node, "id");
    iq_out_req *r = id ? sm_map_get(&s->iq_out, id, strlen(id)) : NULL;
    if (!r || !st->from.domain_len || strcmp(jid_full(&st->from), r->to) != 0 ||
        strcasecmp(jid_full(&st->to), r->host) != 0)
        return false;
    req_unlink(s, r);
    req_finish(s, r, st);
    sm_stanza_free(st);
    return true;
}

/* Takes every request matching (expired or, when all, any) out of the table, then calls them
 * back: a callback may make or cancel requests without meeting a half-walked list. */
static void finish_unanswered(sm *s, bool all)
{
    iq_out_req *done = NULL;
    for (iq_out_req *r = s->iq_out_list, *next; r; r = next) {
        next = r->next;
        if (!r->deadline_ms)
            r->deadline_ms = s->now_ms + (int64_t)r->timeout_s * 1000;
        if (!all && r->deadline_ms > s->now_ms)
            continue;
        req_unlink(s, r);
        r->next = done;
        done = r;
    }
    while (done) {
        iq_out_req *r = done;
        done = r->next;
        req_finish(s, r, NULL);
    }
}

void smc_iq_out_tick(sm *s)
{
    finish_unanswered(s, false);
}

void smc_iq_out_free(sm *s)
{
    finish_unanswered(s, true);
    sm_map_free(&s->iq_out);
}
