/* sm/pep_owner.c — each account's PEP nodes in memory: name, configuration and newest item, read
 * from storage (XDB_PEP_LOAD, one request) the first time the account's PEP is needed, and written
 * through on every change. Work that needs an account's nodes waits for the load.
 *
 * An account's nodes stay in memory while it has sessions; those of others (loaded to answer a
 * contact, or to send a contact the last items) are dropped, least recently used first, when more
 * than <pep><cache_owners> accounts are in memory (checked every tick). The check looks only at
 * the owners that may be idle (the candidates: loaded since the last check, or whose account's
 * session ended since), never at every owner: with a million accounts online and none of them
 * idle, a walk over all of them each tick had been the routing thread's largest cost. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/map.h"
#include "sm/modules.h"
#include "sm/pep.h"

typedef struct pep_wait {
    struct pep_wait *next;
    pep_owner_fn fn;
    void *ctx;
} pep_wait;

struct pep_owner {
    jid bare;
    bool loaded;
    pep_node *nodes;
    size_t n, cap;
    pep_wait *waiting, **wtail;
    int64_t used_ms;
    struct pep_owner *cand_next, **cand_prev;   /* in the candidates while cand_prev */
};

typedef struct pep_owners {
    sm_map by_jid;          /* bare JID -> pep_owner */
    pep_owner *candidates;  /* owners that may be idle (a superset of the idle ones) */
    size_t ncandidates;
} pep_owners;

static pep_owners *owners_of(sm *s) { return sm_module_data(s, &mod_pep); }

static void node_clear(pep_node *n)
{
    free(n->name);
    free(n->last_id);
    free(n->last_xml);
}

static void candidate_add(pep_owners *d, pep_owner *o)
{
    if (o->cand_prev)
        return;
    o->cand_next = d->candidates;
    if (o->cand_next)
        o->cand_next->cand_prev = &o->cand_next;
    o->cand_prev = &d->candidates;
    d->candidates = o;
    d->ncandidates++;
}

static void candidate_remove(pep_owners *d, pep_owner *o)
{
    if (!o->cand_prev)
        return;
    *o->cand_prev = o->cand_next;
    if (o->cand_next)
        o->cand_next->cand_prev = o->cand_prev;
    o->cand_next = NULL;
    o->cand_prev = NULL;
    d->ncandidates--;
}

static void owner_free(pep_owners *d, pep_owner *o)
{
    candidate_remove(d, o);
    for (size_t i = 0; i < o->n; i++)
        node_clear(&o->nodes[i]);
    free(o->nodes);
    jid_free(&o->bare);
    free(o);
}

const jid *pep_owner_jid(const pep_owner *o) { return &o->bare; }
size_t pep_owner_count(const pep_owner *o) { return o->n; }
pep_node *pep_owner_at(pep_owner *o, size_t i) { return &o->nodes[i]; }

pep_node *pep_owner_node(pep_owner *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->nodes[i].name, name) == 0)
            return &o->nodes[i];
    return NULL;
}

static pep_node *node_add(pep_owner *o, const char *name, const pep_config *cfg)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 4;
        o->nodes = mem_realloc(o->nodes, o->cap * sizeof *o->nodes);
    }
    pep_node *n = &o->nodes[o->n++];
    *n = (pep_node){.name = mem_strdup(name), .cfg = *cfg};
    return n;
}

void pep_owner_set_last(pep_node *n, const char *id, const char *xml)
{
    char *new_id = id ? mem_strdup(id) : NULL, *new_xml = id && xml ? mem_strdup(xml) : NULL;
    free(n->last_id);
    free(n->last_xml);
    n->last_id = new_id;
    n->last_xml = new_xml;
}

/* ---- loading ---- */

static void loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    jid bare;
    if (jid_make(r->user, strlen(r->user), r->host, strlen(r->host), NULL, 0, &bare) != JID_OK)
        return;
    pep_owners *d = owners_of(s);
    pep_owner *o = sm_map_get(&d->by_jid, jid_full(&bare), jid_full_len(&bare));
    jid_free(&bare);
    if (!o || o->loaded)
        return;
    bool ok = r->status == XDB_OK;
    if (!ok)
        log_warn("sm: storage: loading the PEP nodes of %s@%s failed: %s", r->user, r->host,
                 r->error[0] ? r->error : xdb_status_name(r->status));
    for (size_t i = 0; ok && i < r->npep_nodes; i++) {
        xdb_pep_node *x = &r->pep_nodes[i];
        pep_config cfg;
        if (!pep_config_get((const uint8_t *)x->config.data, x->config.len, &cfg)) {
            log_warn("sm: storage: the PEP node %s of %s@%s has a malformed configuration: "
                     "the defaults apply", x->node, r->user, r->host);
            pep_config_default(&cfg);
        }
        pep_owner_set_last(node_add(o, x->node, &cfg), x->last.id, x->last.xml);
    }
    o->loaded = ok;
    pep_wait *w = o->waiting;
    o->waiting = NULL;
    o->wtail = &o->waiting;
    if (!ok)
        sm_map_del(&d->by_jid, jid_full(&o->bare), jid_full_len(&o->bare));
    while (w) {
        pep_wait *next = w->next;
        w->fn(s, ok ? o : NULL, w->ctx);
        free(w);
        w = next;
    }
    if (!ok)
        owner_free(d, o);
}

pep_owner *pep_owner_find(sm *s, const jid *bare)
{
    pep_owner *o = sm_map_get(&owners_of(s)->by_jid, jid_full(bare), jid_full_len(bare));
    return o && o->loaded ? o : NULL;
}

void pep_owner_with(sm *s, const jid *bare, pep_owner_fn fn, void *ctx)
{
    pep_owners *d = owners_of(s);
    pep_owner *o = sm_map_get(&d->by_jid, jid_full(bare), jid_full_len(bare));
    if (!o) {
        o = mem_zalloc(sizeof *o);
        jid_copy(&o->bare, bare);
        o->wtail = &o->waiting;
        sm_map_put(&d->by_jid, jid_full(&o->bare), jid_full_len(&o->bare), o);
        candidate_add(d, o);
        sm_submit(s, sm_user_request(XDB_PEP_LOAD, bare), loaded, s);
    }
    o->used_ms = sm_now_ms(s);
    if (o->loaded) {
        fn(s, o, ctx);
        return;
    }
    pep_wait *w = mem_alloc(sizeof *w);
    *w = (pep_wait){NULL, fn, ctx};
    *o->wtail = w;
    o->wtail = &w->next;
}

/* ---- writing through ---- */

static void written(xdb_request *r, void *ctx)
{
    if (r->status == XDB_ERROR)
        log_warn("sm: storage: %s of the PEP node %s of %s@%s failed: %s", xdb_op_name(r->op),
                 r->node, r->user, r->host, r->error);
}

void pep_owner_write(sm *s, xdb_request *r)
{
    sm_submit(s, r, written, NULL);
}

static void store_node(sm *s, pep_owner *o, pep_node *n)
{
    xdb_request *r = sm_user_request(XDB_PEP_NODE_PUT, &o->bare);
    xdb_request_set_pep(r, n->name, NULL);
    buf b = BUF_INIT;
    pep_config_put(&b, &n->cfg);
    xdb_request_set_value(r, buf_data(&b), buf_len(&b));
    buf_free(&b);
    pep_owner_write(s, r);
}

pep_node *pep_owner_create(sm *s, pep_owner *o, const char *name, const pep_config *cfg)
{
    pep_node *n = node_add(o, name, cfg);
    store_node(s, o, n);
    return n;
}

void pep_owner_configured(sm *s, pep_owner *o, pep_node *n)
{
    store_node(s, o, n);
}

void pep_owner_delete(sm *s, pep_owner *o, pep_node *n)
{
    xdb_request *r = sm_user_request(XDB_PEP_NODE_DELETE, &o->bare);
    xdb_request_set_pep(r, n->name, NULL);
    pep_owner_write(s, r);
    node_clear(n);
    size_t i = (size_t)(n - o->nodes);
    memmove(n, n + 1, (o->n - i - 1) * sizeof *n);
    o->n--;
}

/* ---- memory ---- */

void pep_owners_init(sm *s)
{
    pep_owners *d = mem_zalloc(sizeof *d);
    sm_map_init(&d->by_jid);
    sm_module_set_data(s, &mod_pep, d);
}

static int by_use(const void *a, const void *b)
{
    int64_t x = (*(pep_owner *const *)a)->used_ms, y = (*(pep_owner *const *)b)->used_ms;
    return (x > y) - (x < y);
}

/* Idle: loaded, nothing waiting, and its account has no session here. */
static bool idle(const sm *s, const pep_owner *o)
{
    if (!o->loaded || o->waiting)
        return false;
    sm_user *u = sm_user_find(s, &o->bare);
    return !u || !u->sessions;
}

void pep_owners_session_end(sm *s, const jid *bare)
{
    pep_owners *d = owners_of(s);
    pep_owner *o = sm_map_get(&d->by_jid, jid_full(bare), jid_full_len(bare));
    if (o)
        candidate_add(d, o);
}

void pep_owners_trim(sm *s)
{
    pep_owners *d = owners_of(s);
    size_t max = (size_t)sm_module_int(s, &mod_pep, "pep/cache_owners");
    size_t count = sm_map_count(&d->by_jid);
    if (count <= max || !d->ncandidates)
        return;
    /* A candidate that is not idle leaves the list: it comes back when its account's last session
     * ends. What stays is idle. */
    pep_owner **all = mem_array(d->ncandidates, sizeof *all);
    size_t n = 0;
    for (pep_owner *o = d->candidates, *next; o; o = next) {
        next = o->cand_next;
        if (idle(s, o))
            all[n++] = o;
        else if (o->loaded && !o->waiting)
            candidate_remove(d, o);
    }
    qsort(all, n, sizeof *all, by_use);
    for (size_t i = 0; i < n && count > max; i++, count--) {
        sm_map_del(&d->by_jid, jid_full(&all[i]->bare), jid_full_len(&all[i]->bare));
        owner_free(d, all[i]);
    }
    free(all);
}

static void free_owner(void *val, void *ctx)
{
    pep_owner *o = val;
    o->cand_prev = NULL;   /* the whole table goes, the list with it */
    for (pep_wait *w = o->waiting; w;) {
        pep_wait *next = w->next;
        w->fn(ctx, NULL, w->ctx);
        free(w);
        w = next;
    }
    owner_free(owners_of(ctx), o);
}

void pep_owners_free(sm *s)
{
    pep_owners *d = owners_of(s);
    if (!d)
        return;
    sm_map_each(&d->by_jid, free_owner, s);
    sm_map_free(&d->by_jid);
    free(d);
}
