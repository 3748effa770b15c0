/* sm/mod_blocking.c — the blocking command (XEP-0191): the block list (get, block, unblock, pushed
 * to every resource that asked for it) and its enforcement. Nothing from a blocked JID reaches the
 * user (presence is dropped silently; messages and iq requests are answered
 * <service-unavailable/>, as if the account did not exist); what the user sends to one is refused
 * with <not-acceptable/> and <blocked xmlns='urn:xmpp:blocking:errors'/>, and what the server
 * would send on their behalf (presence broadcasts, probes) is dropped. Blocking a contact first
 * sends them unavailable presence; unblocking sends current presence and probes again.
 *
 * The list is cached with the user (this module's user state), loaded at login just before the
 * roster, and holds at most limits/blocklist entries. Items match as privacy-list JIDs do
 * (XEP-0016 §2.1): user@domain/resource, user@domain, domain/resource or domain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/mod_presence.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "sm/subscription.h"

#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"

/* limits/blocklist: the most entries a list may hold. */
static const sm_int_option block_options[] = {
    {"limits/blocklist", 1000, 1, 1000000},
    {NULL},
};

/* Per user: the block list, normalized JIDs. */
typedef struct block_user {
    xdb_strings list;
} block_user;

/* Per session: whether it asked for the list (XEP-0191 §3.1: it gets the pushes). */
typedef struct block_session {
    bool interested;
} block_session;

static xdb_strings *blocked_of(sm *s, const sm_user *u)
{
    return &((block_user *)sm_user_state(s, u, &mod_blocking))->list;
}

/* ---- the list ---- */

static void strings_free(xdb_strings *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i]);
    free(x->v);
    memset(x, 0, sizeof *x);
}

static bool block_has(const xdb_strings *list, const char *s, size_t len)
{
    for (size_t i = 0; i < list->n; i++)
        if (strlen(list->v[i]) == len && memcmp(list->v[i], s, len) == 0)
            return true;
    return false;
}

/* Whether entry (one item, as a string) matches x. */
static bool block_entry_matches(const char *entry, const jid *x)
{
    size_t dlen, rlen, elen = strlen(entry);
    const char *full = jid_full(x);
    const char *domain = jid_domain(x, &dlen);
    const char *res = jid_resource(x, &rlen);
    if ((elen == jid_full_len(x) || elen == jid_bare_len(x)) && memcmp(entry, full, elen) == 0)
        return true;
    if (elen < dlen || memcmp(entry, domain, dlen) != 0)
        return false;
    return elen == dlen || (res && elen == dlen + 1 + rlen && entry[dlen] == '/' &&
                            memcmp(entry + dlen + 1, res, rlen) == 0);
}

static bool block_matches(sm *s, const sm_user *u, const jid *x)
{
    if (!u || !x->domain_len)
        return false;
    const xdb_strings *list = blocked_of(s, u);
    for (size_t i = 0; i < list->n; i++)
        if (block_entry_matches(list->v[i], x))
            return true;
    return false;
}

static void block_remove_at(xdb_strings *list, size_t i)
{
    free(list->v[i]);
    list->v[i] = list->v[--list->n];
}

static void block_loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    if (r->status != XDB_OK && r->status != XDB_NOT_FOUND) {
        log_warn("sm: loading the block list of %s@%s failed: %s", r->user, r->host, r->error);
        return;
    }
    sm_user *u = sm_user_of_request(s, r);
    if (!u)
        return;
    xdb_strings *list = blocked_of(s, u);
    strings_free(list);
    *list = r->jids;
    memset(&r->jids, 0, sizeof(r->jids));
}

static bool block_user_load(sm *s, sm_event *ev)
{
    sm_submit(s, sm_user_request(XDB_BLOCK_LIST, &ev->user->jid), block_loaded, s);
    return false;
}

/* ---- presence around a change ---- */


/* Roster contacts entry covers, with fn called for each (contact's bare JID). */
static void block_each_contact(sm *s, sm_user *u, const char *entry,
                               void (*fn)(sm *s, sm_user *u, const sm_roster_item *it))
{
    for (size_t i = 0; i < u->nitems; i++) {
        jid c;
        if (jid_parse(u->items[i].jid, strlen(u->items[i].jid), &c) != JID_OK)
            continue;
        bool match = block_entry_matches(entry, &c);
        jid_free(&c);
        if (match)
            fn(s, u, &u->items[i]);
    }
}

static void send_unavailable(sm *s, sm_user *u, const sm_roster_item *it)
{
    if (!sm_sub_has_from(it->sub))
        return;
    for (sm_session *x = u->sessions; x; x = x->next)
        if (x->available)
            sm_route(s, sm_stanza_make("presence", jid_full(&x->jid), it->jid, "unavailable"));
}

static void send_presence(sm *s, sm_user *u, const sm_roster_item *it)
{
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(&u->jid, bare, sizeof(bare));
    if (sm_sub_has_to(it->sub))
        sm_route(s, sm_stanza_make("presence", bare, it->jid, "probe"));
    if (!sm_sub_has_from(it->sub))
        return;
    for (sm_session *x = u->sessions; x; x = x->next) {
        if (!x->available || !x->presence)
            continue;
        sm_stanza *p = sm_stanza_copy(x->presence);
        sm_stanza_set_from(p, jid_full(&x->jid));
        sm_stanza_set_to(p, it->jid);
        sm_route(s, p);
    }
}

/* Unavailable presence to the directed-presence recipients entry covers. */
static void block_directed(sm *s, sm_user *u, const char *entry)
{
    for (sm_session *x = u->sessions; x; x = x->next) {
        const sm_strset *directed = presence_directed(s, x);
        const char **to = sm_strset_members(directed);
        for (size_t i = 0; i < sm_strset_count(directed); i++) {
            jid d;
            if (jid_parse(to[i], strlen(to[i]), &d) != JID_OK)
                continue;
            if (block_entry_matches(entry, &d))
                sm_route(s, sm_stanza_make("presence", jid_full(&x->jid), to[i], "unavailable"));
            jid_free(&d);
        }
        free(to);
    }
}

/* ---- the iq ---- */

typedef struct block_ctx {
    sm *s;
    sm_stanza *st;      /* the iq being answered */
    xml_node *push;     /* <block/> or <unblock/> to push, in push_arena */
    xml_arena *push_arena;
} block_ctx;

static void block_push(sm *s, sm_user *u, const xml_node *payload)
{
    for (sm_session *x = u->sessions; x; x = x->next) {
        if (!((block_session *)sm_session_state(s, x, &mod_blocking))->interested)
            continue;
        char id[32];
        sm_make_id(s, "block", id);
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&u->jid, bare, sizeof(bare));
        sm_stanza *push = sm_stanza_make("iq", bare, jid_full(&x->jid), "set");
        xml_attr_set(push->arena, push->node, NULL, "id", id);
        xml_node_copy(push->arena, push->node, payload);
        sm_deliver(s, x, push);
    }
}

static void block_stored(xdb_request *r, void *ctx)
{
    block_ctx *c = ctx;
    if (r->status == XDB_ERROR) {
        log_warn("sm: %s for %s@%s failed: %s", xdb_op_name(r->op), r->user, r->host, r->error);
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    } else {
        sm_iq_result(c->s, c->st, NULL);
        sm_user *u = sm_user_of_request(c->s, r);
        if (u)
            block_push(c->s, u, c->push);
    }
    xml_arena_free(c->push_arena);
    free(c);
}

static void block_get(sm *s, sm_stanza *st, sm_session *sess)
{
    block_session *bs = sm_session_state(s, sess, &mod_blocking);
    if (!bs->interested) {
        bs->interested = true;
        sm_session_state_changed(s, sess);
    }
    const xdb_strings *blocked = blocked_of(s, sess->user);
    xml_arena *a = xml_arena_new(1024);
    xml_node *list = xml_element_new(a, NULL, NS_BLOCKING, "blocklist");
    for (size_t i = 0; i < blocked->n; i++)
        xml_attr_set(a, xml_element_new(a, list, NS_BLOCKING, "item"), NULL, "jid", blocked->v[i]);
    sm_iq_result(s, st, list);
    xml_arena_free(a);
}

/* The items of a <block/> or <unblock/>, normalized, into jids (duplicates once). false: one
 * does not parse. */
static bool block_items(const xml_node *cmd, xdb_strings *out)
{
    for (xml_node *it = xml_child(cmd, NS_BLOCKING, "item"); it;
         it = xml_next(it, NS_BLOCKING, "item")) {
        const char *attr = xml_attr_get(it, "jid");
        jid j;
        if (!attr || jid_parse(attr, strlen(attr), &j) != JID_OK)
            return false;
        bool dup = false;
        for (size_t i = 0; i < out->n; i++)
            dup |= strcmp(out->v[i], jid_full(&j)) == 0;
        if (!dup) {
            out->v = mem_realloc(out->v, (out->n + 1) * sizeof(char *));
            out->v[out->n++] = mem_strdup(jid_full(&j));
        }
        jid_free(&j);
    }
    return true;
}

static void refuse_full(sm *s, sm_stanza *st, int max)
{
    char why[64];
    snprintf(why, sizeof why, "a block list holds at most %d entries", max);
    sm_bounce_text(s, st, "cancel", "resource-constraint", why);
}

static void block_set(sm *s, sm_stanza *st, sm_session *sess, xml_node *cmd)
{
    sm_user *u = sess->user;
    xdb_strings *blocked = blocked_of(s, u);
    int max = (int)sm_module_int(s, &mod_blocking, "limits/blocklist");
    bool block = strcmp(cmd->name, "block") == 0;
    size_t count = 0;
    for (xml_node *it = xml_child(cmd, NS_BLOCKING, "item"); it;
         it = xml_next(it, NS_BLOCKING, "item"))
        count++;
    if (count > (size_t)max) {
        refuse_full(s, st, max);
        return;
    }
    xdb_strings items = {0};
    if (!block_items(cmd, &items)) {
        strings_free(&items);
        sm_bounce(s, st, "modify", "jid-malformed");
        return;
    }
    if (block && !items.n) {
        sm_bounce(s, st, "modify", "bad-request");   /* §3.3: at least one item */
        return;
    }
    size_t added = 0;
    for (size_t i = 0; block && i < items.n; i++)
        added += !block_has(blocked, items.v[i], strlen(items.v[i]));
    if (blocked->n + added > (size_t)max) {
        strings_free(&items);
        refuse_full(s, st, max);
        return;
    }
    block_ctx *c = mem_zalloc(sizeof(*c));
    c->s = s;
    c->push_arena = xml_arena_new(512);
    c->push = xml_element_new(c->push_arena, NULL, NS_BLOCKING, cmd->name);
    xdb_request *r = sm_user_request(block ? XDB_BLOCK_ADD : XDB_BLOCK_REMOVE, &u->jid);
    for (size_t i = 0; i < items.n; i++) {
        xml_attr_set(c->push_arena, xml_element_new(c->push_arena, c->push, NS_BLOCKING, "item"),
                     NULL, "jid", items.v[i]);
        xdb_request_add_jid(r, items.v[i]);
    }
    if (block) {
        for (size_t i = 0; i < items.n; i++) {
            if (block_has(blocked, items.v[i], strlen(items.v[i])))
                continue;
            /* While the contact is not blocked yet, so that these get out. */
            block_each_contact(s, u, items.v[i], send_unavailable);
            block_directed(s, u, items.v[i]);
            blocked->v = mem_realloc(blocked->v, (blocked->n + 1) * sizeof(char *));
            blocked->v[blocked->n++] = mem_strdup(items.v[i]);
        }
    } else {
        /* No items: unblock everyone (§3.5). */
        xdb_strings gone = {0};
        for (size_t i = blocked->n; i-- > 0;) {
            const char *e = blocked->v[i];
            bool named = !items.n;
            for (size_t k = 0; !named && k < items.n; k++)
                named = strcmp(items.v[k], e) == 0;
            if (!named)
                continue;
            gone.v = mem_realloc(gone.v, (gone.n + 1) * sizeof(char *));
            gone.v[gone.n++] = mem_strdup(e);
            block_remove_at(blocked, i);
        }
        for (size_t i = 0; i < gone.n; i++)
            block_each_contact(s, u, gone.v[i], send_presence);
        strings_free(&gone);
    }
    strings_free(&items);
    c->st = sm_iq_keep(st);
    sm_submit(s, r, block_stored, c);
}

static void block_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (!sm_stanza_to_self(st)) {
        sm_bounce(s, st, "cancel", st->origin ? "forbidden" : "service-unavailable");
        return;
    }
    bool get = strcmp(sm_stanza_type(st), "get") == 0;
    const char *name = payload->name;
    if (get && strcmp(name, "blocklist") == 0)
        block_get(s, st, st->origin);
    else if (!get && (strcmp(name, "block") == 0 || strcmp(name, "unblock") == 0))
        block_set(s, st, st->origin, payload);
    else
        sm_bounce(s, st, "modify", "bad-request");
}

/* ---- enforcement ---- */

static bool block_presence_in(sm *s, sm_event *ev)
{
    return block_matches(s, ev->user, &ev->stanza->from);   /* dropped without a word (§3.6) */
}

static bool block_inbound(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!block_matches(s, ev->user, &st->from))
        return false;
    const char *type = sm_stanza_type(st);
    bool iq = xml_is(st->node, SM_NS_CLIENT, "iq");
    if (!iq || strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
        sm_bounce(s, sm_stanza_take(st), "cancel", "service-unavailable");
    return true;
}

static bool block_outbound(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    /* Errors still go: they are the answers §3.6 asks for. */
    if (strcmp(sm_stanza_type(st), "error") == 0 || !block_matches(s, ev->user, &st->to))
        return false;
    sm_session *origin = ev->session;
    sm_stanza *err = sm_stanza_take(st);
    if (origin && sm_stanza_error(err, "cancel", "not-acceptable", NS_BLOCKING_ERRORS, "blocked"))
        sm_deliver(s, origin, err);
    else
        sm_stanza_free(err);
    return true;
}

/* ---- the module ---- */

static void block_user_release(void *state)
{
    strings_free(&((block_user *)state)->list);
}

/* Across an SM restart: whether the session asked for the list. */
static void block_pack(const sm_session *sess, const void *state, buf *out)
{
    sm_pack_flag(out, ((const block_session *)state)->interested);
}

static void block_restore(sm_session *sess, void *state, const uint8_t *data, size_t len)
{
    ((block_session *)state)->interested = sm_unpack_flag(data, len);
}

static const sm_handler block_handlers[] = {
    {"user-load", .hook = block_user_load},
    {"presence-in", .hook = block_presence_in},
    {"inbound", .hook = block_inbound},
    {"outbound", .hook = block_outbound},
    {"iq/bare/" NS_BLOCKING ":*", .iq = block_iq},
    {NULL},
};

const sm_module mod_blocking = {
    .name = "blocking",
    .int_options = block_options,
    .handlers = block_handlers,
    .features = (const char *const[]){NS_BLOCKING, NULL},
    .session_state = sizeof(block_session),
    .user_state = sizeof(block_user),
    .user_release = block_user_release,
    .pack = block_pack,
    .restore = block_restore,
};
