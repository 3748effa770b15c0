/* sm/mod_caps.c — entity capabilities (XEP-0115) of the local sessions, for the other modules
 * (sm/caps.h; docs/caps.md). A session's broadcast available presence announces its client's
 * caps (hash, node, ver); a ver the cache does not know is asked once, whatever the number of
 * sessions announcing it meanwhile (they wait on that one disco#info query, sm/iq_out.h), and the
 * answer is verified (§5.4, sm/caps_ver.c) before it is cached and given to them. The cache is
 * keyed by (hash, ver), bounded, least recently used first out; a session holds a reference to
 * its entry, so an entry evicted while sessions use it lives on until the last lets it go.
 *
 * The server does not advertise the caps feature itself: that would promise §8.4's presence
 * optimisation, which it does not do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/caps.h"
#include "sm/caps_ver.h"
#include "sm/disco.h"
#include "sm/iq_out.h"
#include "sm/map.h"
#include "sm/module.h"
#include "sm/modules.h"

/* The most bytes of a <c/>'s node the module queries with; a longer one announces nothing. */
#define CAPS_NODE_MAX 1024
#define CAPS_KEY_MAX (CAPS_VER_MAX + 4)

static const sm_int_option caps_options[] = {
    {"caps/cache_max", 1000, 1, 1000000},       /* verified feature sets kept */
    {"caps/queries", 100, 1, SM_IQ_OUT_MAX},    /* disco#info queries outstanding at once */
    {"caps/max_items", 256, 1, 100000},         /* identities, features, form fields and values */
    {"caps/max_bytes", 16384, 64, 1048576},     /* of an answer's verification string */
    {"caps/timeout", 30, 1, 600},               /* seconds a query waits for its answer */
    {NULL},
};

/* A verified feature set, shared by the sessions that announced its (hash, ver). One block: the
 * struct, the sorted feature pointers, the key, the strings. */
typedef struct caps_entry caps_entry;
struct caps_entry {
    unsigned refs;                  /* sessions holding it, and one while it is cached */
    caps_entry *newer, *older;      /* the cache's recency list, while cached */
    const char *key;
    const char **features;
    size_t nfeatures;
};

typedef struct caps_query caps_query;
typedef struct caps_session caps_session;

/* A session waiting for a query's answer. Sessions never outlive their waiter: the state's
 * release unlinks it, so the list holds only live sessions. */
typedef struct caps_waiter caps_waiter;
struct caps_waiter {
    sm_session *sess;
    caps_session *cs;
    caps_query *q;
    caps_waiter *prev, *next;
};

/* One disco#info query for a (hash, ver) nobody has verified yet. */
struct caps_query {
    char key[CAPS_KEY_MAX];
    char ver[CAPS_VER_MAX];
    caps_hash h;
    bool answered;      /* its answer is being applied: waiters leaving do not end it */
    caps_waiter *waiters;
};

/* Per session: its verified features, or the query it waits for (at most one of the two). */
struct caps_session {
    caps_entry *entry;
    caps_waiter *waiter;
};

typedef struct caps_data {
    sm_map cache;                   /* key -> caps_entry */
    caps_entry *newest, *oldest;
    sm_map queries;                 /* key -> caps_query */
    caps_ver_limits lim;
    size_t cache_max, queries_max;
    int timeout_s;
} caps_data;

static caps_data *caps_data_of(sm *s)
{
    return sm_module_data(s, &mod_caps);
}

static caps_session *caps_state(sm *s, const sm_session *sess)
{
    return sm_session_state(s, sess, &mod_caps);
}

static void caps_key(caps_hash h, const char *ver, char key[CAPS_KEY_MAX])
{
    snprintf(key, CAPS_KEY_MAX, "%d:%s", (int)h, ver);
}

/* ---- the cache ------------------------------------------------------------------------------ */

static caps_entry *entry_new(const char *key, const char *const *features, size_t n)
{
    size_t size = sizeof(caps_entry) + n * sizeof(char *) + strlen(key) + 1;
    for (size_t i = 0; i < n; i++)
        size += strlen(features[i]) + 1;
    caps_entry *e = mem_zalloc(size);
    e->features = (const char **)(e + 1);
    char *p = (char *)(e->features + n);
    e->key = strcpy(p, key);
    p += strlen(key) + 1;
    for (size_t i = 0; i < n; i++) {
        e->features[i] = strcpy(p, features[i]);
        p += strlen(p) + 1;
    }
    e->nfeatures = n;
    return e;
}

static void entry_unref(caps_entry *e)
{
    if (e && --e->refs == 0)
        free(e);
}

static void cache_unlink(caps_data *d, caps_entry *e)
{
    *(e->newer ? &e->newer->older : &d->newest) = e->older;
    *(e->older ? &e->older->newer : &d->oldest) = e->newer;
    e->newer = e->older = NULL;
}

static void cache_link_newest(caps_data *d, caps_entry *e)
{
    e->older = d->newest;
    *(d->newest ? &d->newest->newer : &d->oldest) = e;
    d->newest = e;
}

static void cache_touch(caps_data *d, caps_entry *e)
{
    cache_unlink(d, e);
    cache_link_newest(d, e);
}

static void cache_evict_oldest(caps_data *d)
{
    caps_entry *e = d->oldest;
    cache_unlink(d, e);
    sm_map_del(&d->cache, e->key, strlen(e->key));
    entry_unref(e);
}

/* Past cache_max, the least recently announced entry goes (its sessions keep their reference). */
static void cache_add(caps_data *d, caps_entry *e)
{
    e->refs++;
    sm_map_put(&d->cache, e->key, strlen(e->key), e);
    cache_link_newest(d, e);
    while (sm_map_count(&d->cache) > d->cache_max)
        cache_evict_oldest(d);
}

/* ---- sessions ------------------------------------------------------------------------------- */

static void caps_set(sm *s, sm_session *sess, caps_entry *e)
{
    caps_session *cs = caps_state(s, sess);
    if (cs->entry == e)
        return;
    entry_unref(cs->entry);
    cs->entry = e;
    e->refs++;
    sm_event ev = {.session = sess, .user = sess->user};
    sm_fire_named(s, SM_CAPS_EVENT, &ev);
}

static void waiter_join(caps_session *cs, sm_session *sess, caps_query *q)
{
    caps_waiter *w = mem_zalloc(sizeof(*w));
    *w = (caps_waiter){sess, cs, q, NULL, q->waiters};
    if (q->waiters)
        q->waiters->prev = w;
    q->waiters = w;
    cs->waiter = w;
}

static void waiter_unlink(caps_waiter *w)
{
    *(w->prev ? &w->prev->next : &w->q->waiters) = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->cs->waiter = NULL;
    free(w);
}

static void caps_answer(sm *s, const sm_stanza *reply, void *ctx);

/* The query is over, or nobody waits for it any more: gone, with its waiters (told nothing). */
static void query_drop(caps_data *d, caps_query *q)
{
    sm_map_del(&d->queries, q->key, strlen(q->key));
    while (q->waiters)
        waiter_unlink(q->waiters);
    free(q);
}

/* sess stops waiting; a query nobody waits for any more is cancelled (a client switching vers
 * keeps at most one query outstanding). */
static void waiter_leave(sm *s, caps_session *cs)
{
    caps_waiter *w = cs->waiter;
    if (!w)
        return;
    caps_query *q = w->q;
    waiter_unlink(w);
    if (!q->waiters && !q->answered) {
        sm_iq_cancel(s, caps_answer, q);
        query_drop(caps_data_of(s), q);
    }
}

/* sess has no known features any more. */
static void caps_clear(sm *s, sm_session *sess)
{
    caps_session *cs = caps_state(s, sess);
    waiter_leave(s, cs);
    entry_unref(cs->entry);
    cs->entry = NULL;
}

/* ---- queries -------------------------------------------------------------------------------- */

/* The entry an answer makes, or NULL (logged) when it does not verify. */
static caps_entry *caps_verify(caps_data *d, const caps_query *q, const sm_stanza *reply)
{
    const char *who = jid_full(&reply->from);
    const xml_node *query = xml_child(reply->node, CAPS_NS_DISCO_INFO, "query");
    if (strcmp(sm_stanza_type(reply), "result") != 0 || !query) {
        log_debug("sm: caps: %s gave no disco#info for ver %s", who, q->ver);
        return NULL;
    }
    xml_arena *scratch = xml_arena_new(4096);
    caps_ver_result r;
    caps_ver_status st = caps_ver(query, q->h, &d->lim, scratch, &r);
    caps_entry *e = NULL;
    if (st != CAPS_VER_OK)
        log_info("sm: caps: %s's disco#info for ver %s is %s: not cached", who, q->ver,
                 st == CAPS_VER_TOO_BIG ? "past the limits" : "ill-formed");
    else if (strcmp(r.ver, q->ver) != 0)
        log_info("sm: caps: %s's disco#info hashes to %s, not the announced %s: not cached", who,
                 r.ver, q->ver);
    else
        e = entry_new(q->key, r.features, r.nfeatures);
    xml_arena_free(scratch);
    return e;
}

/* The answer to q (NULL: none in time, or the SM stops): verified, cached and given to every
 * session waiting for it. */
static void caps_answer(sm *s, const sm_stanza *reply, void *ctx)
{
    caps_query *q = ctx;
    caps_data *d = caps_data_of(s);
    q->answered = true;
    sm_map_del(&d->queries, q->key, strlen(q->key));
    caps_entry *e = reply ? caps_verify(d, q, reply) : NULL;
    if (!e) {
        query_drop(d, q);
        return;
    }
    cache_add(d, e);
    e->refs++;      /* held while the hooks run: they might make the cache evict it */
    while (q->waiters) {
        sm_session *sess = q->waiters->sess;
        waiter_unlink(q->waiters);
        caps_set(s, sess, e);
    }
    entry_unref(e);
    free(q);
}

static void caps_query_send(sm *s, caps_data *d, sm_session *sess, caps_query *q,
                            const char *node)
{
    char nodever[CAPS_NODE_MAX + CAPS_VER_MAX + 2], host[JID_MAX_LEN + 1];
    snprintf(nodever, sizeof nodever, "%s#%s", node, q->ver);
    size_t hlen;
    const char *domain = jid_domain(&sess->jid, &hlen);
    snprintf(host, sizeof host, "%.*s", (int)hlen, domain);
    xml_arena *a = xml_arena_new(256);
    xml_node *payload = xml_element_new(a, NULL, CAPS_NS_DISCO_INFO, "query");
    xml_attr_set(a, payload, NULL, "node", nodever);
    bool sent = sm_iq_request(s, "get", host, &sess->jid, payload, d->timeout_s, caps_answer, q);
    xml_arena_free(a);
    if (!sent)
        query_drop(d, q);   /* otherwise q is the answer's (which may have come already) */
}

/* A ver nobody has verified: sess waits for the query that asks it (a new one, within the
 * bound on outstanding queries; past it, sess gets no features until its next presence). */
static void caps_discover(sm *s, sm_session *sess, caps_hash h, const char *node, const char *ver,
                          const char *key)
{
    caps_data *d = caps_data_of(s);
    caps_query *q = sm_map_get(&d->queries, key, strlen(key));
    if (q) {
        waiter_join(caps_state(s, sess), sess, q);
        return;
    }
    if (sm_map_count(&d->queries) >= d->queries_max) {
        log_debug("sm: caps: %zu queries outstanding: %s's ver %s not asked", d->queries_max,
                  jid_full(&sess->jid), ver);
        return;
    }
    q = mem_zalloc(sizeof(*q));
    snprintf(q->key, sizeof q->key, "%s", key);
    snprintf(q->ver, sizeof q->ver, "%s", ver);
    q->h = h;
    sm_map_put(&d->queries, q->key, strlen(q->key), q);
    waiter_join(caps_state(s, sess), sess, q);
    caps_query_send(s, d, sess, q, node);
}

/* A broadcast available presence from sess: its <c/>, if any, says what its client has. */
static void caps_announce(sm *s, sm_session *sess, const xml_node *presence)
{
    const xml_node *c = xml_child(presence, CAPS_NS, "c");
    const char *node = c ? xml_attr_get(c, "node") : NULL, *ver = c ? xml_attr_get(c, "ver") : NULL;
    caps_hash h;
    if (!node || !ver || !caps_hash_parse(xml_attr_get(c, "hash"), &h) ||
        strlen(ver) != caps_ver_len(h) || strlen(node) > CAPS_NODE_MAX) {
        caps_clear(s, sess);   /* none, legacy (no hash), or nothing we can verify */
        return;
    }
    char key[CAPS_KEY_MAX];
    caps_key(h, ver, key);
    caps_data *d = caps_data_of(s);
    caps_session *cs = caps_state(s, sess);
    caps_entry *e = sm_map_get(&d->cache, key, strlen(key));
    if (e)
        cache_touch(d, e);
    if ((cs->entry && strcmp(cs->entry->key, key) == 0) ||
        (cs->waiter && strcmp(cs->waiter->q->key, key) == 0))
        return;     /* the same caps again */
    caps_clear(s, sess);
    if (e)
        caps_set(s, sess, e);
    else
        caps_discover(s, sess, h, node, ver, key);
}

/* ---- hooks ---------------------------------------------------------------------------------- */

/* A session's own presence (a resync's too); never stops it. */
static bool caps_presence_out(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    const char *type = sm_stanza_type(st);
    if (st->to.domain_len || !ev->session)
        return false;
    if (!*type)
        caps_announce(s, ev->session, st->node);
    else if (strcmp(type, "unavailable") == 0)
        caps_clear(s, ev->session);
    return false;
}

/* A session revived from storage has its last presence but no caps: learn them again. */
static bool caps_attached(sm *s, sm_event *ev)
{
    caps_session *cs = caps_state(s, ev->session);
    if (!cs->entry && !cs->waiter && ev->session->presence)
        caps_announce(s, ev->session, ev->session->presence->node);
    return false;
}

static bool caps_session_end(sm *s, sm_event *ev)
{
    caps_clear(s, ev->session);
    return false;
}

static void caps_session_release(void *state)
{
    caps_session *cs = state;
    if (cs->waiter)
        waiter_unlink(cs->waiter);   /* a query left without waiters ends with its answer */
    entry_unref(cs->entry);
}

static int cmp_feature(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool sm_caps_has(sm *s, const sm_session *sess, const char *feature)
{
    if (!sm_module_loaded(s, &mod_caps))
        return false;
    const caps_entry *e = caps_state(s, sess)->entry;
    return e && bsearch(&feature, e->features, e->nfeatures, sizeof(char *), cmp_feature);
}

/* ---- life ----------------------------------------------------------------------------------- */

static bool caps_init(sm *s, const sm_module *self, config *cfg)
{
    caps_data *d = mem_zalloc(sizeof(*d));
    sm_map_init(&d->cache);
    sm_map_init(&d->queries);
    d->cache_max = (size_t)sm_module_int(s, self, "caps/cache_max");
    d->queries_max = (size_t)sm_module_int(s, self, "caps/queries");
    d->lim.max_items = (size_t)sm_module_int(s, self, "caps/max_items");
    d->lim.max_bytes = (size_t)sm_module_int(s, self, "caps/max_bytes");
    d->timeout_s = (int)sm_module_int(s, self, "caps/timeout");
    sm_module_set_data(s, self, d);
    return true;
}

/* Sessions and queries are gone by now (sm_free calls the outstanding queries back first). */
static void caps_fini(sm *s, const sm_module *self)
{
    caps_data *d = sm_module_data(s, self);
    while (d->oldest)
        cache_evict_oldest(d);
    sm_map_free(&d->cache);
    sm_map_free(&d->queries);
    free(d);
}

/* ---- the server's own caps (XEP-0115 §6.3) ---- */

/* A front's link is up: it gets each host's ver (smproto/caps_msg.h), for its stream features;
 * mod_disco answers the node#ver query with the same info. */
static bool caps_front_up(sm *s, sm_event *ev)
{
    sm_link *l = sm_link_find(s, ev->link_serial);
    const sm_config *cfg = sm_cfg(s);
    if (!l)
        return false;
    buf body = BUF_INIT;
    for (int i = 0; i < cfg->nhosts; i++) {
        xml_arena *a = xml_arena_new(4096);
        caps_ver_limits lim = {100000, 1 << 20};
        caps_ver_result res;
        if (caps_ver(disco_host_info(s, cfg->hosts[i].name, a), CAPS_SHA1, &lim, a, &res) ==
            CAPS_VER_OK) {
            buf_append(&body, cfg->hosts[i].name, strlen(cfg->hosts[i].name) + 1);
            buf_append(&body, res.ver, strlen(res.ver) + 1);
        } else {
            log_warn("sm: the entity capabilities of %s cannot be computed: not announced",
                     cfg->hosts[i].name);
        }
        xml_arena_free(a);
    }
    if (!sm_module_send(s, &mod_caps, l, 0, buf_data(&body), buf_len(&body)))
        log_warn("sm: the server's entity capabilities do not fit a frame: not announced");
    buf_free(&body);
    return false;
}

static const sm_handler caps_handlers[] = {
    {"front-up", .hook = caps_front_up},
    {"presence-out", .hook = caps_presence_out},
    {"session-attached", .hook = caps_attached},
    {"session-end", .hook = caps_session_end},
    {NULL},
};

const sm_module mod_caps = {
    .name = "caps",
    .int_options = caps_options,
    .init = caps_init,
    .fini = caps_fini,
    .handlers = caps_handlers,
    .events = (const char *const[]){SM_CAPS_EVENT, NULL},
    .session_state = sizeof(caps_session),
    .session_release = caps_session_release,
};
