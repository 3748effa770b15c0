/* sm/users.c — users in memory: their roster caches (loaded before a session binds, or after it
 * for the sessions a restart restores; kept while the user has sessions or work waiting), roster
 * and pending-request storage, and running the work that waited, in order, for a user to load
 * (queued and loads started by user_loads.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "sm/core.h"
#include "smproto/frame.h"

/* Bytes kept of a pending subscription request's status and nick. */
#define SM_PENDING_TEXT_MAX 512

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

void smc_user_clear_roster(sm_user *u)
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

bool smc_user_has_jid(const void *val, const void *key, size_t len)
{
    const sm_user *u = val;
    return jid_full_len(&u->jid) == len && memcmp(jid_full(&u->jid), key, len) == 0;
}

sm_user *sm_user_find(const sm *s, const jid *bare)
{
    return sm_map_get(&s->users, jid_full(bare), jid_bare_len(bare));
}

sm_user *sm_user_find_bare(const sm *s, const char *bare_jid)
{
    return sm_map_get(&s->users, bare_jid, strlen(bare_jid));
}

sm_user *smc_user_get(sm *s, const jid *j)
{
    sm_user *u = sm_map_get(&s->users, jid_full(j), jid_bare_len(j));
    if (u)
        return u;
    u = mem_zalloc(SMC_EXT_OFFSET(sizeof(*u)) + s->user_ext);
    u->ext = (unsigned char *)u + SMC_EXT_OFFSET(sizeof(*u));
    jid_bare(j, &u->jid);
    sm_map_put(&s->users, jid_full(&u->jid), jid_full_len(&u->jid), u);
    return u;
}

void sm_account_names(const jid *j, char node[JID_PART_MAX + 1], char host[JID_PART_MAX + 1])
{
    size_t nlen = 0, dlen = 0;
    const char *n = jid_node(j, &nlen);
    const char *d = jid_domain(j, &dlen);
    memcpy(node, n ? n : "", nlen);
    node[nlen] = '\0';
    memcpy(host, d, dlen);
    host[dlen] = '\0';
}

xdb_request *sm_user_request(xdb_op op, const jid *j)
{
    char node[JID_PART_MAX + 1], host[JID_PART_MAX + 1];
    sm_account_names(j, node, host);
    return xdb_request_new(op, host, node);
}

static bool user_idle(const sm_user *u)
{
    return !u->sessions && !u->deferred && !u->holds;
}

/* What a user holds besides its roster: the modules' per-user state. */
void smc_user_release(sm *s, sm_user *u)
{
    smc_user_state_release(s, u);
    jid_free(&u->jid);
    free(u);
}

static void user_free(sm *s, sm_user *u)
{
    sm_map_del(&s->users, jid_full(&u->jid), jid_full_len(&u->jid));
    smc_user_clear_roster(u);
    smc_user_release(s, u);
}

void smc_user_maybe_free(sm *s, sm_user *u)
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

sm_user *sm_user_of_request(const sm *s, const xdb_request *r)
{
    jid bare;
    if (!r->user || jid_make(r->user, strlen(r->user), r->host, strlen(r->host), NULL, 0, &bare) !=
                        JID_OK)
        return NULL;
    sm_user *u = sm_user_find(s, &bare);
    jid_free(&bare);
    return u;
}

/* Stored: the modules hear of it (mod_roster pushes it to the interested resources). */
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
    sm_user *u = sm_user_of_request(s, r);
    if (!u)
        return;
    u->version = r->roster.version;
    sm_roster_item item = {.jid = r->item.jid, .name = r->item.name,
                           .sub = (xdb_subscription)r->item.subscription, .ask = r->item.ask,
                           .groups = r->item.groups, .ngroups = r->item.ngroups};
    sm_event ev = {.user = u, .item = &item, .removed = remove};
    sm_fire(s, SM_EV_ROSTER_CHANGED, &ev);
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

void smc_deferred_free(sm_deferred *d)
{
    sm_stanza_free(d->stanza);
    jid_free(&d->full);
    free(d->presence);
    free(d->frame);
    buf_free(&d->state);
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
        if (d->revived) {
            smc_revive_finish(s, u, d, failed);
        } else if (d->frame) {
            /* The session's bind came before it in this queue: it is handled as it came. */
            sm_link *l = smc_link_by_serial(s, d->link_serial);
            if (l)
                sm_session_stanza(s, l, d->sid, d->frame, d->frame_len);
        } else if (d->stanza) {
            /* Handlers tell the account's own requests by their origin: find it again. */
            if (d->from_session)
                d->stanza->origin = sm_session_lookup(s, d->link_serial, d->sid);
            sm_stanza *st = d->stanza;
            d->stanza = NULL;
            if (failed)
                sm_bounce(s, st, "wait", "internal-server-error");
            else if (streq(st->node->name, "presence"))
                smc_route_local_presence(s, u, st);
            else
                smc_route_inbound(s, u, st);
        } else if (failed) {
            sm_link *l = smc_link_by_serial(s, d->link_serial);
            if (l)
                smc_bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_CONSTRAINT, NULL);
        } else {
            smc_bind_finish(s, u, d);
        }
        smc_restart_resync_done(s, d);
        sm_swap_ticket(s, prev);
        smc_deferred_free(d);
    }
    u->holds--;
}

/* Sessions a restart restored before their account was loaded (sessions.c), of an account that
 * is gone: the account was deleted while the SM was down. */
static void end_restored_sessions(sm *s, sm_user *u)
{
    while (u->sessions) {
        log_notice("sm: session %s restored for an account that no longer exists: it ends",
                   jid_full(&u->sessions->jid));
        sm_session_end(s, u->sessions, SMPROTO_END_ERROR, "the account no longer exists");
    }
}

/* The roster (and with it the account) of r's user is in: its deferred work runs. */
sm_user *smc_user_roster_loaded(sm *s, xdb_request *r)
{
    jid bare;
    if (jid_make(r->user, strlen(r->user), r->host, strlen(r->host), NULL, 0, &bare) != JID_OK)
        return NULL;
    sm_user *u = sm_user_find(s, &bare);
    jid_free(&bare);
    if (!u)
        return NULL;
    u->loading = false;
    bool failed = r->status != XDB_OK && r->status != XDB_NOT_FOUND;
    if (failed) {
        log_warn("sm: loading the roster of %s@%s failed: %s", r->user, r->host, r->error);
    } else {
        smc_user_clear_roster(u);
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
    u->holds++;
    if (u->loaded)
        sm_fire(s, SM_EV_USER_READY, &(sm_event){.user = u});
    if (u->loaded && !u->exists)
        end_restored_sessions(s, u);
    deferred_run(s, u, failed);
    u->holds--;
    return u;
}

