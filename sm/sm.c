/* sm/sm.c — the session manager's core: links, sessions, users and their roster caches, the
 * router (RFC 6121 §8) and stanza errors (RFC 6120 §8.3). See sm.h. */
#include "sm/sm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/utf8.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "sm/barrier.h"
#include "sm/map.h"
#include "sm/modules.h"
#include "smproto/frame.h"

/* An error echoes the stanza it answers only below this many bytes of tree (RFC 6120 §8.3.1
 * leaves it optional): whoever provokes errors gets back about what they sent, never more. */
#define SM_BOUNCE_ECHO_MAX 1024
/* Bytes kept of a pending subscription request's status and nick. */
#define SM_PENDING_TEXT_MAX 512
/* The wire buffer is kept between stanzas unless one made it grow past this. */
#define SM_WIRE_KEEP_BYTES (64 * 1024)
#define SM_NS_ERRORS "urn:xmpp:errors"

struct sm_link {
    void *handle;
    uint64_t serial;        /* never reused: callbacks find the link again by it */
    char *service;
    bool component;
    sm_link *next;
};

/* Work waiting for a user's roster to load. */
typedef struct sm_deferred {
    struct sm_deferred *next;
    sm_stanza *stanza;      /* a stanza to route again (presence, or a message or iq that the
                             * user's block list may refuse); or NULL for a bind */
    uint64_t link_serial, sid;  /* the bind's session, or the stanza's origin when from_session */
    bool from_session;
    jid full;
    bool resync;
    uint8_t state;          /* a resync's STATE flags */
    char *presence;         /* a resync's last broadcast presence, or NULL */
    custody_ticket ticket;  /* the frame that caused it (docs/smproto.md §3) */
} sm_deferred;

typedef struct iq_handler {
    char *ns;
    unsigned where;
    sm_iq_fn fn;
} iq_handler;

struct sm {
    const sm_config *cfg;
    sm_transport t;
    void *tctx;
    sm_submit_fn submit;
    void *submit_ctx;
    sm_link *links;
    uint64_t next_serial;
    sm_map sessions;        /* (link serial, sid) -> session */
    sm_map by_jid;          /* full JID -> session */
    sm_map users;           /* bare JID -> user */
    iq_handler *iqs;
    size_t niqs;
    char **features;
    size_t nfeatures;
    sm_hook_fn *hooks[SM_EV_COUNT];
    size_t nhooks[SM_EV_COUNT];
    xmlstream *parser;      /* for stanzas that arrive as bytes (frames, storage): one stream
                             * that each stanza continues, so expat is made once, not per stanza */
    bool parser_open;       /* it has had its stream header and sits between stanzas */
    xml_node *parsed;
    xml_arena *parsed_arena;
    bool parsed_extra;
    sm_stats stats;
    uint64_t push_id;
    bool stopping;          /* sm_shutdown ran: storage is closing, so its unavailable
                             * broadcast loads no one */
    custody_ticket ticket;  /* the frame being processed: whatever it causes holds it */
    sm_barrier *barrier;    /* the current barrier (sm/barrier.h), or NULL */
    buf wire;               /* the stanza being sent, serialized (wire_put) */
};

/* A storage request made while a frame was being processed holds the frame's ticket until its
 * answer has been handled. */
typedef struct ticketed_submit {
    sm *s;
    custody_ticket ticket;
    sm_barrier *barrier;    /* counts the request, or NULL */
    xdb_callback cb;
    void *ctx;
} ticketed_submit;

/* ---- small helpers ---- */

static bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

void sm_format_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

char *sm_xml_string(const xml_node *node, size_t max, size_t *len)
{
    buf b = BUF_INIT;
    if (!xml_write_node_max(&b, node, SM_NS_CLIENT, false, max)) {
        buf_free(&b);
        return NULL;
    }
    buf_append(&b, "", 1);
    size_t start, n;
    char *mem = buf_detach(&b, &start, &n);
    if (start)
        memmove(mem, mem + start, n);
    if (len)
        *len = n - 1;
    return mem;
}

/* Component streams carry stanzas in jabber:component:accept; inside the SM every stanza is in
 * jabber:client, so modules and the serializer see one namespace. */
static void renamespace(xml_node *n, const char *from, const char *to)
{
    if (n->kind != XML_ELEMENT)
        return;
    if (streq(n->ns, from))
        n->ns = to;
    for (xml_node *c = n->children; c; c = c->next)
        renamespace(c, from, to);
}

/* ---- stanzas ---- */

static void stanza_parse_addr(sm_stanza *st)
{
    const char *from = xml_attr_get(st->node, "from");
    const char *to = xml_attr_get(st->node, "to");
    jid_free(&st->from);
    jid_free(&st->to);
    st->bad_to = false;
    if (from && jid_parse(from, strlen(from), &st->from) != JID_OK)
        memset(&st->from, 0, sizeof(st->from));
    if (to && jid_parse(to, strlen(to), &st->to) != JID_OK) {
        memset(&st->to, 0, sizeof(st->to));
        st->bad_to = true;
    }
}

sm_stanza *sm_stanza_new(xml_arena *arena, xml_node *node)
{
    sm_stanza *st = mem_zalloc(sizeof(*st));
    st->arena = arena;
    st->node = node;
    stanza_parse_addr(st);
    return st;
}

sm_stanza *sm_stanza_take(sm_stanza *st)
{
    sm_stanza *n = mem_zalloc(sizeof(*n));
    *n = *st;
    n->origin = NULL;
    memset(st, 0, sizeof(*st));
    return n;
}

void sm_stanza_free(sm_stanza *st)
{
    if (!st)
        return;
    jid_free(&st->from);
    jid_free(&st->to);
    if (st->arena)
        xml_arena_free(st->arena);
    free(st);
}

sm_stanza *sm_stanza_copy(const sm_stanza *st)
{
    xml_arena *a = xml_arena_new(1024);
    sm_stanza *n = mem_zalloc(sizeof(*n));
    n->arena = a;
    n->node = xml_node_copy(a, NULL, st->node);
    jid_copy(&n->from, &st->from);
    jid_copy(&n->to, &st->to);
    n->bad_to = st->bad_to;
    return n;
}

const char *sm_stanza_type(const sm_stanza *st)
{
    const char *t = st->node ? xml_attr_get(st->node, "type") : NULL;
    return t ? t : "";
}

static bool set_addr(sm_stanza *st, const char *name, const char *value, jid *j)
{
    jid_free(j);
    if (!value) {
        xml_attr_remove(st->node, NULL, name);
        return true;
    }
    if (jid_parse(value, strlen(value), j) != JID_OK) {
        memset(j, 0, sizeof(*j));
        return false;
    }
    xml_attr_set(st->arena, st->node, NULL, name, jid_full(j));
    return true;
}

bool sm_stanza_set_to(sm_stanza *st, const char *to)
{
    st->bad_to = false;
    return set_addr(st, "to", to, &st->to);
}

bool sm_stanza_set_from(sm_stanza *st, const char *from)
{
    return set_addr(st, "from", from, &st->from);
}

sm_stanza *sm_stanza_make(const char *name, const char *from, const char *to, const char *type)
{
    xml_arena *a = xml_arena_new(512);
    xml_node *n = xml_element_new(a, NULL, SM_NS_CLIENT, name);
    if (from)
        xml_attr_set(a, n, NULL, "from", from);
    if (to)
        xml_attr_set(a, n, NULL, "to", to);
    if (type)
        xml_attr_set(a, n, NULL, "type", type);
    return sm_stanza_new(a, n);
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

/* ---- registry ---- */

void sm_iq_handler(sm *s, const char *ns, unsigned where, sm_iq_fn fn)
{
    s->iqs = mem_realloc(s->iqs, (s->niqs + 1) * sizeof(*s->iqs));
    s->iqs[s->niqs++] = (iq_handler){mem_strdup(ns), where, fn};
}

void sm_add_feature(sm *s, const char *ns)
{
    for (size_t i = 0; i < s->nfeatures; i++)
        if (streq(s->features[i], ns))
            return;
    s->features = mem_realloc(s->features, (s->nfeatures + 1) * sizeof(char *));
    s->features[s->nfeatures++] = mem_strdup(ns);
}

size_t sm_features(const sm *s, const char *const **out)
{
    *out = (const char *const *)s->features;
    return s->nfeatures;
}

void sm_hook(sm *s, sm_event_kind kind, sm_hook_fn fn)
{
    s->hooks[kind] = mem_realloc(s->hooks[kind], (s->nhooks[kind] + 1) * sizeof(sm_hook_fn));
    s->hooks[kind][s->nhooks[kind]++] = fn;
}

bool sm_fire(sm *s, sm_event_kind kind, sm_event *ev)
{
    for (size_t i = 0; i < s->nhooks[kind]; i++)
        if (s->hooks[kind][i](s, ev))
            return true;
    return false;
}

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

/* ---- links ---- */

static sm_link *link_by_serial(const sm *s, uint64_t serial)
{
    for (sm_link *l = s->links; l; l = l->next)
        if (l->serial == serial)
            return l;
    return NULL;
}

uint64_t sm_link_serial(const sm_link *l) { return l->serial; }

const char *sm_link_service(const sm_link *l) { return l->service; }

sm_link *sm_link_up(sm *s, void *handle, const char *service_id, bool component)
{
    sm_link *l = mem_zalloc(sizeof(*l));
    l->handle = handle;
    l->serial = ++s->next_serial;
    l->service = mem_strdup(service_id);
    l->component = component;
    l->next = s->links;
    s->links = l;
    log_info("sm: %s '%s' is up", component ? "component" : "front", service_id);
    return l;
}

static sm_link *component_for(const sm *s, const char *domain, size_t len)
{
    for (sm_link *l = s->links; l; l = l->next)
        if (l->component && strlen(l->service) == len && strncasecmp(l->service, domain, len) == 0)
            return l;
    return NULL;
}

/* A <service> with this id may connect (its domain is ours to serve), connected or not. */
static bool component_configured(const sm *s, const char *domain, size_t len)
{
    for (int i = 0; i < s->cfg->nservices; i++) {
        const char *id = s->cfg->services[i].id;
        if (id && strlen(id) == len && strncasecmp(id, domain, len) == 0)
            return true;
    }
    return false;
}

/* ---- users ---- */

static void item_clear(sm_roster_item *it)
{
    free(it->jid);
    free(it->name);
    for (size_t i = 0; i < it->ngroups; i++)
        free(it->groups[i]);
    free(it->groups);
    memset(it, 0, sizeof(*it));
}

static void item_copy(sm_roster_item *dst, const sm_roster_item *src)
{
    dst->jid = mem_strdup(src->jid);
    dst->name = src->name ? mem_strdup(src->name) : NULL;
    dst->sub = src->sub;
    dst->ask = src->ask;
    dst->ngroups = src->ngroups;
    dst->groups = src->ngroups ? mem_array(src->ngroups, sizeof(char *)) : NULL;
    for (size_t i = 0; i < src->ngroups; i++)
        dst->groups[i] = mem_strdup(src->groups[i]);
}

static void user_clear_roster(sm_user *u)
{
    for (size_t i = 0; i < u->nitems; i++)
        item_clear(&u->items[i]);
    free(u->items);
    u->items = NULL;
    u->nitems = u->items_cap = 0;
    for (size_t i = 0; i < u->npending; i++) {
        free(u->pending[i].jid);
        free(u->pending[i].xml);
    }
    free(u->pending);
    u->pending = NULL;
    u->npending = 0;
}

sm_user *sm_user_find(const sm *s, const jid *bare)
{
    return sm_map_get(&s->users, jid_full(bare), jid_bare_len(bare));
}

static sm_user *user_get(sm *s, const jid *j)
{
    sm_user *u = sm_map_get(&s->users, jid_full(j), jid_bare_len(j));
    if (u)
        return u;
    u = mem_zalloc(sizeof(*u));
    jid_bare(j, &u->jid);
    sm_map_put(&s->users, jid_full(&u->jid), jid_full_len(&u->jid), u);
    return u;
}

typedef struct user_names {
    char *node, *host;
} user_names;

/* Node and host as separate strings, for storage requests (the jid holds them unterminated). */
static user_names user_split(const jid *j)
{
    size_t nlen = 0, dlen = 0;
    const char *n = jid_node(j, &nlen);
    const char *d = jid_domain(j, &dlen);
    return (user_names){n ? mem_strndup(n, nlen) : mem_strdup(""), mem_strndup(d, dlen)};
}

xdb_request *sm_user_request(xdb_op op, const jid *j)
{
    user_names n = user_split(j);
    xdb_request *r = xdb_request_new(op, n.host, n.node);
    free(n.node);
    free(n.host);
    return r;
}

static bool user_idle(const sm_user *u)
{
    return !u->sessions && !u->deferred && !u->holds;
}

/* What a user holds besides its roster: the modules' per-user data. */
static void user_release(sm_user *u)
{
    for (size_t i = 0; i < u->blocked.n; i++)
        free(u->blocked.v[i]);
    free(u->blocked.v);
    jid_free(&u->jid);
    free(u);
}

static void user_free(sm *s, sm_user *u)
{
    sm_map_del(&s->users, jid_full(&u->jid), jid_full_len(&u->jid));
    user_clear_roster(u);
    user_release(u);
}

static void user_maybe_free(sm *s, sm_user *u)
{
    if (user_idle(u))
        user_free(s, u);
}

sm_roster_item *sm_roster_find(sm_user *u, const char *bare_jid)
{
    for (size_t i = 0; i < u->nitems; i++)
        if (streq(u->items[i].jid, bare_jid))
            return &u->items[i];
    return NULL;
}

sm_roster_item *sm_roster_add(sm_user *u, const char *bare_jid)
{
    sm_roster_item *it = sm_roster_find(u, bare_jid);
    if (it)
        return it;
    if (u->nitems == u->items_cap) {
        u->items_cap = u->items_cap ? u->items_cap * 2 : 8;
        u->items = mem_realloc(u->items, u->items_cap * sizeof(*u->items));
    }
    it = &u->items[u->nitems++];
    memset(it, 0, sizeof(*it));
    it->jid = mem_strdup(bare_jid);
    return it;
}

void sm_roster_delete(sm_user *u, const char *bare_jid)
{
    sm_roster_item *it = sm_roster_find(u, bare_jid);
    if (!it)
        return;
    item_clear(it);
    *it = u->items[--u->nitems];
}

static const char *const sub_names[] = {"none", "to", "from", "both"};

xml_node *sm_roster_item_xml(xml_arena *a, xml_node *parent, const sm_roster_item *item,
                             bool remove)
{
    xml_node *el = xml_element_new(a, parent, "jabber:iq:roster", "item");
    xml_attr_set(a, el, NULL, "jid", item->jid);
    if (item->name && !remove)
        xml_attr_set(a, el, NULL, "name", item->name);
    xml_attr_set(a, el, NULL, "subscription", remove ? "remove" : sub_names[item->sub]);
    if (item->ask && !remove)
        xml_attr_set(a, el, NULL, "ask", "subscribe");
    for (size_t i = 0; !remove && i < item->ngroups; i++) {
        xml_node *g = xml_element_new(a, el, "jabber:iq:roster", "group");
        xml_text_new(a, g, item->groups[i], strlen(item->groups[i]));
    }
    return el;
}

static bool send_session(sm *s, sm_session *sess, const xml_node *node);

static void roster_stored(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    bool remove = r->op == XDB_ROSTER_REMOVE;
    if (r->status != XDB_OK) {
        if (r->status == XDB_ERROR || !remove)
            log_warn("sm: storing roster item %s of %s@%s failed: %s", r->item.jid, r->user,
                     r->host, r->status == XDB_ERROR ? r->error : xdb_status_name(r->status));
        return;
    }
    jid bare;
    if (jid_make(r->user, strlen(r->user), r->host, strlen(r->host), NULL, 0, &bare) != JID_OK)
        return;
    sm_user *u = sm_user_find(s, &bare);
    jid_free(&bare);
    if (!u)
        return;
    u->version = r->roster.version;
    sm_roster_item item = {.jid = r->item.jid, .name = r->item.name, .sub = (xdb_subscription)r->item.subscription,
                           .ask = r->item.ask, .groups = r->item.groups, .ngroups = r->item.ngroups};
    char ver[24];
    snprintf(ver, sizeof(ver), "%lld", (long long)r->roster.version);
    for (sm_session *sess = u->sessions; sess; sess = sess->next) {
        if (!sess->interested)
            continue;
        xml_arena *a = xml_arena_new(512);
        xml_node *iq = xml_element_new(a, NULL, SM_NS_CLIENT, "iq");
        char id[32];
        snprintf(id, sizeof(id), "push%llu", (unsigned long long)++s->push_id);
        xml_attr_set(a, iq, NULL, "type", "set");
        xml_attr_set(a, iq, NULL, "id", id);
        xml_attr_set(a, iq, NULL, "to", jid_full(&sess->jid));
        xml_node *q = xml_element_new(a, iq, "jabber:iq:roster", "query");
        xml_attr_set(a, q, NULL, "ver", ver);
        sm_roster_item_xml(a, q, &item, remove);
        send_session(s, sess, iq);
        xml_arena_free(a);
    }
}

void sm_roster_store(sm *s, sm_user *u, const sm_roster_item *item, bool remove)
{
    xdb_request *r = sm_user_request(remove ? XDB_ROSTER_REMOVE : XDB_ROSTER_SET, &u->jid);
    xdb_roster_item xi = {.jid = item->jid, .name = item->name, .subscription = item->sub,
                          .ask = item->ask, .groups = item->groups, .ngroups = item->ngroups};
    xdb_request_set_item(r, &xi);
    if (remove) {
        sm_roster_delete(u, item->jid);
    } else {
        sm_roster_item *cached = sm_roster_find(u, item->jid);
        if (cached != item) {
            sm_roster_item copy;
            item_copy(&copy, item);
            if (cached) {
                item_clear(cached);
                *cached = copy;
            } else {
                cached = sm_roster_add(u, item->jid);
                item_clear(cached);
                *cached = copy;
            }
        }
    }
    sm_submit(s, r, roster_stored, s);
}

bool sm_pending_has(const sm_user *u, const char *bare_jid)
{
    for (size_t i = 0; i < u->npending; i++)
        if (streq(u->pending[i].jid, bare_jid))
            return true;
    return false;
}

static void pending_stored(xdb_request *r, void *ctx)
{
    if (r->status == XDB_ERROR)
        log_warn("sm: %s for %s@%s failed: %s", xdb_op_name(r->op), r->user, r->host, r->error);
}

bool sm_roster_full(const sm *s, const sm_user *u, const char *bare_jid)
{
    return u->nitems >= (size_t)s->cfg->limits.roster_items &&
           !sm_roster_find((sm_user *)u, bare_jid);
}

/* Appends <name/> in ns with el's text, cut to SM_PENDING_TEXT_MAX bytes. */
static void pending_keep_text(xml_arena *a, xml_node *parent, const sm_stanza *st, const char *ns,
                              const char *name)
{
    xml_node *el = xml_child(st->node, ns, name);
    if (!el)
        return;
    const char *text = xml_text(st->arena, el);
    size_t len = utf8_cut(text, strlen(text), SM_PENDING_TEXT_MAX);
    xml_text_new(a, xml_element_new(a, parent, ns, name), text, len);
}

/* What is kept of a subscription request until it is answered and shown again at every login:
 * its addresses, and the requester's status and nick, bounded. */
static char *pending_xml(const sm_stanza *subscribe)
{
    xml_arena *a = xml_arena_new(512);
    xml_node *p = xml_element_new(a, NULL, SM_NS_CLIENT, "presence");
    static const char *const attrs[] = {"from", "to", "type", "id"};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        const char *v = xml_attr_get(subscribe->node, attrs[i]);
        if (v)
            xml_attr_set(a, p, NULL, attrs[i],
                         xml_arena_strndup(a, v, utf8_cut(v, strlen(v), SM_PENDING_TEXT_MAX)));
    }
    pending_keep_text(a, p, subscribe, SM_NS_CLIENT, "status");
    pending_keep_text(a, p, subscribe, "http://jabber.org/protocol/nick", "nick");
    char *xml = sm_xml_string(p, SMPROTO_MAX_PAYLOAD, NULL);   /* a few hundred bytes */
    xml_arena_free(a);
    return xml;
}

bool sm_pending_add(sm *s, sm_user *u, const char *bare_jid, const sm_stanza *subscribe)
{
    size_t i = 0;
    while (i < u->npending && !streq(u->pending[i].jid, bare_jid))
        i++;
    if (i == u->npending && u->npending >= (size_t)s->cfg->limits.pending)
        return false;
    char *xml = pending_xml(subscribe);
    if (i == u->npending) {
        u->pending = mem_realloc(u->pending, (u->npending + 1) * sizeof(*u->pending));
        u->pending[u->npending++] = (xdb_pending){mem_strdup(bare_jid), mem_strdup(xml)};
    } else {
        free(u->pending[i].xml);
        u->pending[i].xml = mem_strdup(xml);
    }
    xdb_request *r = sm_user_request(XDB_PENDING_ADD, &u->jid);
    xdb_request_set_jid(r, bare_jid);
    xdb_request_set_xml(r, xml);
    free(xml);
    sm_submit(s, r, pending_stored, s);
    return true;
}

void sm_pending_remove(sm *s, sm_user *u, const char *bare_jid)
{
    for (size_t i = 0; i < u->npending; i++) {
        if (!streq(u->pending[i].jid, bare_jid))
            continue;
        free(u->pending[i].jid);
        free(u->pending[i].xml);
        u->pending[i] = u->pending[--u->npending];
        xdb_request *r = sm_user_request(XDB_PENDING_REMOVE, &u->jid);
        xdb_request_set_jid(r, bare_jid);
        sm_submit(s, r, pending_stored, s);
        return;
    }
}

/* ---- sessions ---- */

typedef struct session_key {
    uint64_t serial, sid;
} session_key;

sm_session *sm_session_lookup(const sm *s, uint64_t link_serial, uint64_t sid)
{
    session_key k = {link_serial, sid};
    return sm_map_get(&s->sessions, &k, sizeof(k));
}

sm_session *sm_session_find(const sm *s, const jid *full)
{
    return sm_map_get(&s->by_jid, jid_full(full), jid_full_len(full));
}

/* Serializes node into s->wire as a link carries it (a front's STANZA frame, a component's
 * stream). false, with nothing kept and a log line, when it would not fit in one frame
 * (SMPROTO_MAX_PAYLOAD): a size a client may provoke must never reach a frame encoder. */
static bool wire_put(sm *s, const xml_node *node)
{
    buf_consume(&s->wire, buf_len(&s->wire));
    if (xml_write_node_max(&s->wire, node, SM_NS_CLIENT, false, SMPROTO_MAX_PAYLOAD))
        return true;
    const char *to = xml_attr_get(node, "to"), *from = xml_attr_get(node, "from");
    log_notice("sm: a <%s/> from %s to %s is larger than a frame carries: not sent", node->name,
               from ? from : "the server", to ? to : "?");
    buf_free(&s->wire);
    return false;
}

/* The wire buffer after a send: its memory stays for the next one unless a large stanza grew it. */
static void wire_done(sm *s)
{
    if (s->wire.cap > SM_WIRE_KEEP_BYTES)
        buf_free(&s->wire);
}

static bool send_session(sm *s, sm_session *sess, const xml_node *node)
{
    if (!wire_put(s, node))
        return false;
    s->t.stanza(s->tctx, sess->link->handle, sess->sid, buf_data(&s->wire), buf_len(&s->wire));
    wire_done(s);
    return true;
}

void sm_bounce_too_big(sm *s, sm_stanza *st)
{
    st->node->children = st->node->last_child = NULL;
    if (sm_stanza_error(st, "modify", "policy-violation", SM_NS_ERRORS, "stanza-too-big"))
        sm_route(s, st);
    else
        sm_stanza_free(st);
}

void sm_deliver(sm *s, sm_session *sess, sm_stanza *st)
{
    if (s->barrier && sm_barrier_hold(s->barrier, sess, st))
        return;
    if (!send_session(s, sess, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    sm_stanza_free(st);
}

void sm_send_unbound(sm *s, uint64_t link_serial, uint64_t sid, const xml_node *node)
{
    sm_link *l = link_by_serial(s, link_serial);
    if (!l || !wire_put(s, node))
        return;
    s->t.stanza(s->tctx, l->handle, sid, buf_data(&s->wire), buf_len(&s->wire));
    wire_done(s);
}

/* What a session owns, once it is out of the tables. */
static void session_release(sm_session *sess)
{
    sm_stanza_free(sess->presence);
    sm_strset_free(&sess->directed);
    jid_free(&sess->jid);
    free(sess);
}

/* Ends sess: modules see it go (unavailable presence, last activity), then it leaves the tables.
 * reason < 0: the front already knows (it sent END, or the link is gone). */
static void session_end(sm *s, sm_session *sess, int reason, const char *text)
{
    sm_event ev = {.session = sess, .user = sess->user};
    sm_fire(s, SM_EV_SESSION_END, &ev);
    if (reason >= 0)
        s->t.end(s->tctx, sess->link->handle, sess->sid, (uint8_t)reason, text ? text : "");
    session_key k = {sess->link->serial, sess->sid};
    sm_map_del(&s->sessions, &k, sizeof(k));
    sm_map_del(&s->by_jid, jid_full(&sess->jid), jid_full_len(&sess->jid));
    sm_user *u = sess->user;
    for (sm_session **pp = &u->sessions; *pp; pp = &(*pp)->next)
        if (*pp == sess) {
            *pp = sess->next;
            break;
        }
    log_info("sm: session %s ended", jid_full(&sess->jid));
    session_release(sess);
    user_maybe_free(s, u);
}

void sm_end(sm *s, sm_link *l, uint64_t sid, uint8_t reason)
{
    sm_session *sess = sm_session_lookup(s, l->serial, sid);
    if (!sess) {
        s->stats.dropped_stale++;
        return;
    }
    session_end(s, sess, -1, NULL);
}

/* Ends every session (of link l, or all when l is NULL) with reason. Ending one runs the modules,
 * which may end others: the sessions are found again by key before each is ended, so none is ended
 * twice or after it was freed. */
static void sessions_end(sm *s, const sm_link *l, int reason, const char *text)
{
    size_t n = sm_map_count(&s->sessions), k = 0;
    void **all = sm_map_values(&s->sessions);
    session_key *keys = n ? mem_array(n, sizeof *keys) : NULL;
    for (size_t i = 0; i < n; i++) {
        sm_session *sess = all[i];
        if (!l || sess->link == l)
            keys[k++] = (session_key){sess->link->serial, sess->sid};
    }
    free(all);
    for (size_t i = 0; i < k; i++) {
        sm_session *sess = sm_session_lookup(s, keys[i].serial, keys[i].sid);
        if (sess)
            session_end(s, sess, reason, text);
    }
    free(keys);
}

void sm_link_down(sm *s, sm_link *l)
{
    sessions_end(s, l, -1, NULL);
    for (sm_link **pp = &s->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    log_info("sm: %s '%s' is down", l->component ? "component" : "front", l->service);
    free(l->service);
    free(l);
}

typedef struct auth_ctx {
    sm *s;
    uint64_t serial, sid;
} auth_ctx;

static void auth_loaded(xdb_request *r, void *ctx)
{
    auth_ctx *a = ctx;
    sm_link *l = link_by_serial(a->s, a->serial);
    if (l) {
        uint8_t status = r->status == XDB_OK          ? SMPROTO_AUTH_OK
                         : r->status == XDB_NOT_FOUND ? SMPROTO_AUTH_NO_USER
                                                      : SMPROTO_AUTH_ERROR;
        if (r->status == XDB_ERROR)
            log_warn("sm: credentials of %s@%s: %s", r->user, r->host, r->error);
        log_debug("sm: credentials of %s@%s: %s", r->user, r->host, xdb_status_name(r->status));
        a->s->t.auth_answer(a->s->tctx, l->handle, a->sid, status,
                            status == SMPROTO_AUTH_OK ? &r->creds : NULL);
    }
    free(a);
}

void sm_auth_query(sm *s, sm_link *l, uint64_t sid, const char *host, const char *user)
{
    jid j;
    if (jid_make(user, strlen(user), host, strlen(host), NULL, 0, &j) != JID_OK ||
        !sm_is_local_user(s, &j)) {
        if (j.domain_len)
            jid_free(&j);
        s->t.auth_answer(s->tctx, l->handle, sid, SMPROTO_AUTH_NO_USER, NULL);
        return;
    }
    auth_ctx *a = mem_zalloc(sizeof(*a));
    *a = (auth_ctx){s, l->serial, sid};
    sm_submit(s, sm_user_request(XDB_USER_CREDS, &j), auth_loaded, a);
    jid_free(&j);
}

static void bind_reply(sm *s, sm_link *l, uint64_t sid, bool resync, uint8_t status,
                       const char *full)
{
    if (!resync)
        s->t.bound(s->tctx, l->handle, sid, status, full);
    else if (status != SMPROTO_BOUND_OK)
        s->t.end(s->tctx, l->handle, sid, SMPROTO_END_ERROR, "session could not be restored");
}

static int user_session_count(const sm_user *u)
{
    int n = 0;
    for (const sm_session *x = u->sessions; x; x = x->next)
        n++;
    return n;
}

static void bind_finish(sm *s, sm_user *u, sm_deferred *d)
{
    sm_link *l = link_by_serial(s, d->link_serial);
    if (!l)
        return;
    if (!u->exists) {
        bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    if (sm_session_lookup(s, l->serial, d->sid)) {
        bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    sm_session *old = sm_session_find(s, &d->full);
    if (!old && !d->resync && user_session_count(u) >= s->cfg->limits.sessions) {
        /* RFC 6120 §7.6.2.1. A resync restores sessions that were already counted. */
        log_info("sm: %s has %d sessions, the most allowed: bind refused", jid_full(&u->jid),
                 s->cfg->limits.sessions);
        bind_reply(s, l, d->sid, false, SMPROTO_BOUND_CONSTRAINT, NULL);
        return;
    }
    if (old) {
        log_info("sm: session %s replaced by a new one", jid_full(&old->jid));
        u->holds++;   /* it may have been the user's last session */
        session_end(s, old, SMPROTO_END_REPLACED, "replaced by a new session");
        u->holds--;
    }
    sm_session *sess = mem_zalloc(sizeof(*sess));
    sess->link = l;
    sess->sid = d->sid;
    jid_copy(&sess->jid, &d->full);
    sess->user = u;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sess->since_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    sess->next = u->sessions;
    u->sessions = sess;
    session_key k = {l->serial, d->sid};
    sm_map_put(&s->sessions, &k, sizeof(k), sess);
    sm_map_put(&s->by_jid, jid_full(&sess->jid), jid_full_len(&sess->jid), sess);
    log_info("sm: session %s %s", jid_full(&sess->jid), d->resync ? "restored" : "bound");
    bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_OK, jid_full(&sess->jid));
    if (d->resync) {
        sess->interested = d->state & SMPROTO_STATE_ROSTER;
        sess->carbons = d->state & SMPROTO_STATE_CARBONS;
        sess->blocklist_interested = d->state & SMPROTO_STATE_BLOCKLIST;
        if (d->presence)
            sm_session_stanza(s, l, d->sid, d->presence, strlen(d->presence));
    }
}

void sm_session_state_changed(sm *s, sm_session *sess)
{
    uint8_t flags = (sess->interested ? SMPROTO_STATE_ROSTER : 0) |
                    (sess->carbons ? SMPROTO_STATE_CARBONS : 0) |
                    (sess->blocklist_interested ? SMPROTO_STATE_BLOCKLIST : 0);
    s->t.state(s->tctx, sess->link->handle, sess->sid, flags);
}

static void route_local_presence(sm *s, sm_user *u, sm_stanza *st);
static void route_inbound(sm *s, sm_user *u, sm_stanza *st);

static void deferred_free(sm_deferred *d)
{
    sm_stanza_free(d->stanza);
    jid_free(&d->full);
    free(d->presence);
    custody_release(d->ticket);
    free(d);
}

static void deferred_run(sm *s, sm_user *u, bool failed)
{
    u->holds++;
    while (u->deferred) {
        sm_deferred *d = u->deferred;
        u->deferred = d->next;
        if (!u->deferred)
            u->deferred_tail = NULL;
        custody_ticket prev = sm_swap_ticket(s, d->ticket);
        if (d->stanza) {
            /* Handlers tell the account's own requests by their origin: find it again. */
            if (d->from_session)
                d->stanza->origin = sm_session_lookup(s, d->link_serial, d->sid);
            sm_stanza *st = d->stanza;
            d->stanza = NULL;
            if (failed)
                sm_bounce(s, st, "wait", "internal-server-error");
            else if (streq(st->node->name, "presence"))
                route_local_presence(s, u, st);
            else
                route_inbound(s, u, st);
        } else if (failed) {
            sm_link *l = link_by_serial(s, d->link_serial);
            if (l)
                bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_CONSTRAINT, NULL);
        } else {
            bind_finish(s, u, d);
        }
        sm_swap_ticket(s, prev);
        deferred_free(d);
    }
    u->holds--;
}

static void roster_loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    jid bare;
    if (jid_make(r->user, strlen(r->user), r->host, strlen(r->host), NULL, 0, &bare) != JID_OK)
        return;
    sm_user *u = sm_user_find(s, &bare);
    jid_free(&bare);
    if (!u)
        return;
    bool failed = r->status != XDB_OK && r->status != XDB_NOT_FOUND;
    if (failed) {
        log_warn("sm: loading the roster of %s@%s failed: %s", r->user, r->host, r->error);
    } else {
        user_clear_roster(u);
        u->exists = r->status == XDB_OK;
        u->loaded = true;
        u->version = r->roster.version;
        u->nitems = u->items_cap = r->roster.nitems;
        u->items = u->nitems ? mem_array(u->nitems, sizeof(*u->items)) : NULL;
        for (size_t i = 0; i < u->nitems; i++) {
            xdb_roster_item *x = &r->roster.items[i];
            u->items[i] = (sm_roster_item){x->jid, x->name, x->subscription, x->ask, x->groups,
                                           x->ngroups};
        }
        free(r->roster.items);
        r->roster.items = NULL;
        r->roster.nitems = 0;
        u->pending = r->roster.pending;
        u->npending = r->roster.npending;
        r->roster.pending = NULL;
        r->roster.npending = 0;
    }
    deferred_run(s, u, failed);
    user_maybe_free(s, u);
}

/* Queues d until u's roster is loaded (starting the load if it is not under way). */
static void defer(sm *s, sm_user *u, sm_deferred *d)
{
    bool loading = u->deferred != NULL;
    d->ticket = s->ticket;
    custody_hold(d->ticket);
    if (u->deferred_tail)
        u->deferred_tail->next = d;
    else
        u->deferred = d;
    u->deferred_tail = d;
    if (!loading) {
        sm_event ev = {.user = u};
        sm_fire(s, SM_EV_USER_LOAD, &ev);
        sm_submit(s, sm_user_request(XDB_ROSTER_LOAD, &u->jid), roster_loaded, s);
    }
}

/* resync: NULL for a BIND; else the session's STATE flags and presence ("" for none). */
static void bind_start(sm *s, sm_link *l, uint64_t sid, jid *full, const uint8_t *resync_state,
                       const char *resync_presence)
{
    sm_user *u = user_get(s, full);
    sm_deferred *d = mem_zalloc(sizeof(*d));
    d->link_serial = l->serial;
    d->sid = sid;
    jid_copy(&d->full, full);
    d->resync = resync_state != NULL;
    if (resync_state) {
        d->state = *resync_state;
        d->presence = *resync_presence ? mem_strdup(resync_presence) : NULL;
    }
    if (u->loaded && !u->deferred) {
        bind_finish(s, u, d);
        deferred_free(d);
        user_maybe_free(s, u);
    } else {
        defer(s, u, d);
    }
}

void sm_bind(sm *s, sm_link *l, uint64_t sid, const char *host, const char *user,
             const char *resource, uint8_t flags)
{
    char token[17];
    if (!resource || !*resource) {
        random_token(token, 16);
        resource = token;
    }
    jid full;
    if (l->component ||
        jid_make(user, strlen(user), host, strlen(host), resource, strlen(resource), &full) !=
            JID_OK) {
        s->t.bound(s->tctx, l->handle, sid, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    if (!sm_is_local_user(s, &full)) {
        jid_free(&full);
        s->t.bound(s->tctx, l->handle, sid, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    bind_start(s, l, sid, &full, NULL, NULL);
    jid_free(&full);
}

void sm_resync(sm *s, sm_link *l, uint64_t sid, const char *full_jid, uint8_t state,
               const char *presence)
{
    jid full;
    if (jid_parse(full_jid, strlen(full_jid), &full) != JID_OK) {
        s->t.end(s->tctx, l->handle, sid, SMPROTO_END_ERROR, "bad JID in resync");
        return;
    }
    if (!sm_is_local_user(s, &full) || jid_is_bare(&full)) {
        s->t.end(s->tctx, l->handle, sid, SMPROTO_END_ERROR, "not a local full JID");
    } else {
        sm_session *old = sm_session_lookup(s, l->serial, sid);
        if (!old || !jid_equal_full(&old->jid, &full))
            bind_start(s, l, sid, &full, &state, presence);
    }
    jid_free(&full);
}

void sm_register(sm *s, sm_link *l, uint64_t sid, const char *host, const char *xml, size_t len)
{
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st || !xml_is(st->node, SM_NS_CLIENT, "iq")) {
        s->stats.dropped_bad++;
        sm_stanza_free(st);
        return;
    }
    sm_event ev = {.stanza = st, .link_serial = l->serial, .sid = sid, .host = host};
    sm_fire(s, SM_EV_REGISTER, &ev);
    sm_stanza_free(ev.stanza);
}

void sm_kick_user(sm *s, const jid *bare, const char *text)
{
    sm_kick(s, bare, text);
}

size_t sm_kick(sm *s, const jid *j, const char *text)
{
    size_t n = 0;
    if (!jid_is_bare(j)) {
        sm_session *sess = sm_session_find(s, j);
        if (sess) {
            session_end(s, sess, SMPROTO_END_KICKED, text);
            n++;
        }
        return n;
    }
    sm_user *u;
    while ((u = sm_user_find(s, j)) && u->sessions) {
        session_end(s, u->sessions, SMPROTO_END_KICKED, text);
        n++;
    }
    return n;
}

void sm_each_session(sm *s, void (*fn)(sm_session *sess, void *ctx), void *ctx)
{
    size_t n = sm_map_count(&s->sessions);
    void **all = sm_map_values(&s->sessions);
    for (size_t i = 0; i < n; i++)
        fn(all[i], ctx);
    free(all);
}

void sm_shutdown(sm *s)
{
    s->stopping = true;
    sessions_end(s, NULL, SMPROTO_END_SHUTDOWN, "");
}

void sm_get_stats(const sm *s, sm_stats *out)
{
    *out = s->stats;
    out->sessions = sm_map_count(&s->sessions);
    out->users = sm_map_count(&s->users);
}

/* ---- errors ---- */

bool sm_stanza_error(sm_stanza *st, const char *type, const char *condition, const char *app_ns,
                     const char *app_name)
{
    const char *t = sm_stanza_type(st);
    if (streq(t, "error") || (xml_is(st->node, SM_NS_CLIENT, "iq") && streq(t, "result")) ||
        !st->from.domain_len)
        return false;
    if (xml_arena_bytes(st->arena) > SM_BOUNCE_ECHO_MAX)
        st->node->children = st->node->last_child = NULL;
    char *from = mem_strdup(jid_full(&st->from));
    char *to = st->to.domain_len && !st->bad_to ? mem_strdup(jid_full(&st->to)) : NULL;
    sm_stanza_set_to(st, from);
    sm_stanza_set_from(st, to);
    free(from);
    free(to);
    xml_attr_set(st->arena, st->node, NULL, "type", "error");
    xml_node *err = xml_element_new(st->arena, st->node, SM_NS_CLIENT, "error");
    xml_attr_set(st->arena, err, NULL, "type", type);
    xml_element_new(st->arena, err, SM_NS_STANZAS, condition);
    if (app_ns)
        xml_element_new(st->arena, err, app_ns, app_name);
    st->origin = NULL;
    return true;
}

void sm_bounce(sm *s, sm_stanza *st, const char *type, const char *condition)
{
    sm_bounce_text(s, st, type, condition, NULL);
}

void sm_bounce_text(sm *s, sm_stanza *st, const char *type, const char *condition,
                    const char *text)
{
    if (!sm_stanza_error(st, type, condition, NULL, NULL)) {
        sm_stanza_free(st);
        return;
    }
    if (text) {
        xml_node *t = xml_element_new(st->arena, st->node->last_child, SM_NS_STANZAS, "text");
        xml_attr_set(st->arena, t, XML_NS_XML, "lang", "en");
        xml_text_new(st->arena, t, text, strlen(text));
    }
    sm_route(s, st);
}

void sm_iq_result(sm *s, sm_stanza *st, const xml_node *payload)
{
    const char *id = xml_attr_get(st->node, "id");
    sm_stanza *r = sm_stanza_make("iq", st->to.domain_len ? jid_full(&st->to) : NULL,
                                  jid_full(&st->from), "result");
    if (id)
        xml_attr_set(r->arena, r->node, NULL, "id", id);
    if (payload)
        xml_node_copy(r->arena, r->node, payload);
    sm_stanza_free(st);
    sm_route(s, r);
}

bool sm_stanza_to_self(const sm_stanza *st)
{
    return st->origin && (!st->to.domain_len ||
                          (jid_is_bare(&st->to) && jid_equal_bare(&st->to, &st->origin->jid)));
}

sm_stanza *sm_iq_keep(sm_stanza *st)
{
    st->origin = NULL;
    return st;
}

/* ---- routing ---- */

static void iq_dispatch(sm *s, sm_stanza *st, unsigned where)
{
    const char *type = sm_stanza_type(st);
    if (streq(type, "result") || streq(type, "error")) {
        sm_stanza_free(st);
        return;
    }
    xml_node *payload = xml_child(st->node, NULL, NULL);
    if ((!streq(type, "get") && !streq(type, "set")) || !payload ||
        xml_next(payload, NULL, NULL) || !xml_attr_get(st->node, "id")) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    for (size_t i = 0; i < s->niqs; i++)
        if ((s->iqs[i].where & where) && streq(s->iqs[i].ns, payload->ns)) {
            s->iqs[i].fn(s, st, payload);
            return;
        }
    sm_bounce(s, st, "cancel", "service-unavailable");
}

static int message_kind(const char *type)
{
    if (streq(type, "chat"))
        return 1;
    if (streq(type, "groupchat"))
        return 2;
    if (streq(type, "headline"))
        return 3;
    if (streq(type, "error"))
        return 4;
    return 0;  /* normal, and unknown values (RFC 6121 §5.2.2: treat as normal) */
}

/* Tells the modules (message carbons) which of the user's sessions got st, and frees it. */
static void message_delivered(sm *s, sm_stanza *st, sm_user *u, sm_session *const *to, size_t n)
{
    sm_event ev = {.stanza = st, .user = u, .recipients = to, .nrecipients = n};
    sm_fire(s, SM_EV_MESSAGE_DELIVERED, &ev);
    sm_stanza_free(ev.stanza);
}

/* Offline storage, or <service-unavailable/> when the modules do not take it (as route_message
 * does for a user with no available resource). */
static void message_offline(sm *s, sm_stanza *st)
{
    sm_event ev = {.stanza = st};
    if (!sm_fire(s, SM_EV_MESSAGE_OFFLINE, &ev)) {
        sm_bounce(s, ev.stanza, "cancel", "service-unavailable");
        return;
    }
    sm_stanza_free(ev.stanza);
}

static void route_message(sm *s, sm_stanza *st)
{
    int kind = message_kind(sm_stanza_type(st));
    if (!jid_is_bare(&st->to)) {
        sm_session *sess = sm_session_find(s, &st->to);
        if (sess && !send_session(s, sess, st->node)) {
            sm_bounce_too_big(s, st);
            return;
        }
        if (sess) {
            message_delivered(s, st, sess->user, &sess, 1);
            return;
        }
        if (kind == 4) {
            sm_stanza_free(st);
            return;
        }
        if (kind == 2) {
            sm_bounce(s, st, "cancel", "service-unavailable");
            return;
        }
    }
    sm_user *u = sm_user_find(s, &st->to);
    int top = -1;
    for (sm_session *x = u ? u->sessions : NULL; x; x = x->next)
        if (x->available && x->priority >= 0 && x->priority > top)
            top = x->priority;
    if (kind == 4) {
        sm_stanza_free(st);
        return;
    }
    if (kind == 2) {
        sm_bounce(s, st, "cancel", "service-unavailable");
        return;
    }
    if (top < 0) {
        if (kind == 3) {
            sm_stanza_free(st);
            return;
        }
        message_offline(s, st);
        return;
    }
    /* Serialized once for every resource it goes to. */
    if (!wire_put(s, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    size_t n = 0, cap = 4;
    sm_session **got = mem_array(cap, sizeof(*got));
    for (sm_session *x = u->sessions; x; x = x->next) {
        if (!x->available || x->priority < 0)
            continue;
        if (kind == 3 || x->priority == top) {
            s->t.stanza(s->tctx, x->link->handle, x->sid, buf_data(&s->wire), buf_len(&s->wire));
            if (n == cap)
                got = mem_realloc(got, (cap *= 2) * sizeof(*got));
            got[n++] = x;
            if (kind == 0)
                break;  /* normal: one "most available" resource */
        }
    }
    wire_done(s);
    message_delivered(s, st, u, got, n);
    free(got);
}

static void route_local_presence(sm *s, sm_user *u, sm_stanza *st)
{
    sm_event ev = {.stanza = st, .user = u};
    sm_fire(s, SM_EV_PRESENCE_IN, &ev);
    sm_stanza_free(ev.stanza);
}

/* Whether message or iq st, for a user who is not loaded, would be stored or answered on their
 * behalf (offline storage, a bare-JID iq handler): the user must be loaded first, so that their
 * block list (XEP-0191) can refuse it. What is dropped or refused anyway is not worth a load. */
static bool inbound_needs_user(const sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    if (streq(st->node->name, "message"))
        return !streq(type, "error") && !streq(type, "groupchat") && !streq(type, "headline");
    return jid_is_bare(&st->to) && (streq(type, "get") || streq(type, "set"));
}

/* Queues st (taken) until u is loaded. */
static void defer_stanza(sm *s, sm_user *u, sm_stanza *st)
{
    sm_deferred *d = mem_zalloc(sizeof(*d));
    if (st->origin) {
        d->from_session = true;
        d->link_serial = st->origin->link->serial;
        d->sid = st->origin->sid;
    }
    d->stanza = sm_stanza_take(st);
    sm_stanza_free(st);
    defer(s, u, d);
}

/* A message or iq for local user u (NULL when not in memory). */
static void route_inbound(sm *s, sm_user *u, sm_stanza *st)
{
    sm_event ev = {.stanza = st, .user = u};
    if (sm_fire(s, SM_EV_INBOUND, &ev)) {
        sm_stanza_free(ev.stanza);
        return;
    }
    if (streq(st->node->name, "message")) {
        route_message(s, st);
    } else {
        if (jid_is_bare(&st->to)) {
            iq_dispatch(s, st, SM_IQ_BARE);
            return;
        }
        sm_session *sess = sm_session_find(s, &st->to);
        if (sess)
            sm_deliver(s, sess, st);
        else
            sm_bounce(s, st, "cancel", "service-unavailable");
    }
}

static void route_to_user(sm *s, sm_stanza *st)
{
    const char *name = st->node->name;
    sm_user *u = sm_user_find(s, &st->to);
    bool ready = u && u->loaded && !u->deferred;
    if (streq(name, "message") || streq(name, "iq")) {
        if (!ready && inbound_needs_user(st))
            defer_stanza(s, user_get(s, &st->to), st);
        else
            route_inbound(s, u, st);
    } else if (streq(name, "presence")) {
        if (ready) {
            route_local_presence(s, u, st);
            user_maybe_free(s, u);
        } else if (s->stopping && !u && streq(sm_stanza_type(st), "unavailable")) {
            /* The shutdown's broadcast to a contact with no session here: nobody to tell, and
             * loading them would only queue work on closing storage. */
            sm_stanza_free(st);
        } else {
            defer_stanza(s, user_get(s, &st->to), st);
        }
    } else {
        sm_stanza_free(st);
    }
}

void sm_route(sm *s, sm_stanza *st)
{
    if (s->barrier && sm_barrier_hold(s->barrier, NULL, st))
        return;
    if (!st->node || !xml_is(st->node, SM_NS_CLIENT, NULL)) {
        sm_stanza_free(st);
        return;
    }
    if (st->bad_to) {
        sm_bounce(s, st, "modify", "jid-malformed");
        return;
    }
    if (!st->to.domain_len) {
        if (xml_is(st->node, SM_NS_CLIENT, "iq") && st->origin) {
            iq_dispatch(s, st, SM_IQ_BARE);
            return;
        }
        sm_stanza_free(st);
        return;
    }
    size_t dlen, nlen;
    sm_user *sender = st->from.domain_len && jid_node(&st->from, &nlen) ? sm_user_find(s, &st->from)
                                                                        : NULL;
    if (sender) {
        sm_event ev = {.stanza = st, .user = sender, .session = st->origin};
        if (sm_fire(s, SM_EV_OUTBOUND, &ev)) {
            sm_stanza_free(ev.stanza);
            return;
        }
    }
    const char *domain = jid_domain(&st->to, &dlen);
    if (sm_is_local_host(s, domain, dlen)) {
        if (jid_node(&st->to, &nlen)) {
            route_to_user(s, st);
        } else if (xml_is(st->node, SM_NS_CLIENT, "iq")) {
            iq_dispatch(s, st, SM_IQ_HOST);
        } else {
            sm_stanza_free(st);
        }
        return;
    }
    sm_link *c = component_for(s, domain, dlen);
    if (c && !wire_put(s, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    if (c) {
        s->t.component(s->tctx, c->handle, buf_data(&s->wire), buf_len(&s->wire));
        wire_done(s);
        sm_stanza_free(st);
        return;
    }
    /* A configured component that is not connected is a local service that is down (RFC 6120
     * §10.5, §8.3.3.19); any other domain would be remote, and there is no server-to-server. */
    sm_bounce(s, st, "cancel",
              component_configured(s, domain, dlen) ? "service-unavailable"
                                                    : "remote-server-not-found");
}

/* A stanza whose session is gone (see sm.h): messages and iqs still go where they were sent. */
static void stanza_from_gone_session(sm *s, sm_stanza *st)
{
    const char *name = st->node->name;
    if (!streq(st->node->ns, SM_NS_CLIENT) || (!streq(name, "message") && !streq(name, "iq")) ||
        !sm_is_local_user(s, &st->from) || jid_is_bare(&st->from) || st->bad_to ||
        !st->to.domain_len) {
        s->stats.dropped_stale++;
        sm_stanza_free(st);
        return;
    }
    sm_route(s, st);
}

void sm_session_stanza(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len)
{
    sm_session *sess = sm_session_lookup(s, l->serial, sid);
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st) {
        s->stats.dropped_bad++;
        log_debug("sm: %s sent a stanza that does not parse", sess ? jid_full(&sess->jid) : "?");
        return;
    }
    if (!sess) {
        stanza_from_gone_session(s, st);
        return;
    }
    const char *name = st->node->name;
    if (!streq(st->node->ns, SM_NS_CLIENT) ||
        (!streq(name, "message") && !streq(name, "presence") && !streq(name, "iq"))) {
        sm_stanza_free(st);
        return;
    }
    /* The front stamps 'from'; the session's JID is the authority all the same. */
    sm_stanza_set_from(st, jid_full(&sess->jid));
    st->origin = sess;
    if (streq(name, "presence") && !st->bad_to) {
        sm_event ev = {.stanza = st, .session = sess, .user = sess->user};
        if (!sm_fire(s, SM_EV_PRESENCE_OUT, &ev) && ev.stanza->node && ev.stanza->to.domain_len) {
            sm_route(s, ev.stanza);
            return;
        }
        sm_stanza_free(ev.stanza);
        return;
    }
    if (streq(name, "message") && !st->to.domain_len && !st->bad_to) {
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&sess->jid, bare, sizeof(bare));
        sm_stanza_set_to(st, bare);
    }
    sm_route(s, st);
}

void sm_undelivered(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len)
{
    sm_session *sess = sm_session_lookup(s, l->serial, sid);
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st) {
        s->stats.dropped_bad++;
        return;
    }
    /* The session's JID, while it is known, says whose stanza it was; after its END, the address
     * the SM gave it, which must be a local user's. */
    bool ours = sess ? jid_equal_bare(&st->to, &sess->jid) : sm_is_local_user(s, &st->to);
    if (sess && !ours && !st->bad_to) {
        sm_stanza_set_to(st, jid_full(&sess->jid));
        ours = true;
    }
    if (!ours || st->bad_to || !streq(st->node->ns, SM_NS_CLIENT)) {
        s->stats.dropped_stale++;
        sm_stanza_free(st);
        return;
    }
    const char *name = st->node->name, *type = sm_stanza_type(st);
    int kind = streq(name, "message") ? message_kind(type) : -1;
    if (kind == 0 || kind == 1)
        message_offline(s, st);
    else if (kind == 2 || (streq(name, "iq") && (streq(type, "get") || streq(type, "set"))))
        sm_bounce(s, st, "cancel", "service-unavailable");
    else
        sm_stanza_free(st);
}

void sm_component_stanza(sm *s, sm_link *l, xml_node *node, xml_arena *arena)
{
    renamespace(node, SM_NS_COMPONENT, SM_NS_CLIENT);
    sm_stanza *st = sm_stanza_new(arena, node);
    size_t dlen = 0;
    const char *d = st->from.domain_len ? jid_domain(&st->from, &dlen) : NULL;
    if (!d || strlen(l->service) != dlen || strncasecmp(d, l->service, dlen) != 0) {
        log_debug("sm: component '%s' sent a stanza from outside its domain", l->service);
        s->stats.dropped_bad++;
        sm_stanza_free(st);
        return;
    }
    sm_route(s, st);
}

/* ---- life ---- */

sm *sm_new(const sm_config *cfg, const sm_transport *t, void *transport_ctx, sm_submit_fn submit,
           void *submit_ctx)
{
    sm *s = mem_zalloc(sizeof(*s));
    s->cfg = cfg;
    s->t = *t;
    s->tctx = transport_ctx;
    s->submit = submit;
    s->submit_ctx = submit_ctx;
    sm_map_init(&s->sessions);
    sm_map_init(&s->by_jid);
    sm_map_init(&s->users);
    xmlstream_handlers h = {.stanza = parsed_stanza};
    xmlstream_limits lim;
    xmlstream_limits_default(&lim);
    lim.max_stanza_bytes = SMPROTO_MAX_PAYLOAD;
    lim.max_attr_bytes = lim.max_text_bytes = SMPROTO_MAX_PAYLOAD;
    s->parser = xmlstream_new(&h, s, &lim);
    sm_modules_register(s);
    return s;
}

static void free_session(void *val, void *ctx)
{
    session_release(val);
}

static void free_user(void *val, void *ctx)
{
    sm_user *u = val;
    while (u->deferred) {
        sm_deferred *d = u->deferred;
        u->deferred = d->next;
        deferred_free(d);
    }
    user_clear_roster(u);
    user_release(u);
}

void sm_free(sm *s)
{
    if (!s)
        return;
    sm_map_each(&s->sessions, free_session, NULL);
    sm_map_each(&s->users, free_user, NULL);
    sm_map_free(&s->sessions);
    sm_map_free(&s->by_jid);
    sm_map_free(&s->users);
    while (s->links) {
        sm_link *l = s->links;
        s->links = l->next;
        free(l->service);
        free(l);
    }
    for (size_t i = 0; i < s->niqs; i++)
        free(s->iqs[i].ns);
    free(s->iqs);
    for (size_t i = 0; i < s->nfeatures; i++)
        free(s->features[i]);
    free(s->features);
    for (int k = 0; k < SM_EV_COUNT; k++)
        free(s->hooks[k]);
    xmlstream_free(s->parser);
    buf_free(&s->wire);
    free(s);
}
