/* sm/mod_pep.c — personal eventing (PEP, XEP-0163): every account is a pubsub service (XEP-0060,
 * the subset PEP needs) on its bare JID, with nodes created on first publish.
 *
 * Served here: publish (item ids made when absent) with XEP-0223 publish-options, retract, items
 * (all, newest max_items, by id), node creation, and for the owner configure (get, set), default,
 * purge and delete; everything else of XEP-0060 is answered <feature-not-implemented/> with the
 * <unsupported/> feature. Only the account's owner publishes and manages; who else may read is the
 * node's access model (presence, the default; open; roster, taken here as presence; whitelist:
 * the owner only). Notifications go to whoever may read and announced NODE+notify in their
 * entity capabilities (pep_notify.c); nodes and items are kept in storage (pep_owner.c).
 *
 * Bounds (options under <pep>): nodes per account, items a node keeps ("max" is that bound), the
 * size of a payload, item ids asked in one request, accounts whose nodes are in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/xml_write.h"
#include "sm/disco.h"
#include "sm/modules.h"
#include "sm/pep.h"
#include "sm/subscription.h"

static const sm_int_option pep_options[] = {
    {"pep/nodes_max", 100, 1, 10000},
    {"pep/items_max", 256, 1, 100000},
    {"pep/item_bytes", 256 * 1024, 1024, 400 * 1024},
    {"pep/ids_asked", 100, 1, 10000},
    {"pep/cache_owners", 10000, 1, 10000000},
    {NULL, 0, 0, 0},
};

long long pep_option(sm *s, const char *path) { return sm_module_int(s, &mod_pep, path); }

/* ---- answers ---- */

/* An error (RFC 6120 §8.3) with XEP-0060's application condition app (NULL: none) and, for
 * <unsupported/>, the feature. Frees st when it cannot be answered. */
static void fail(sm *s, sm_stanza *st, const char *type, const char *cond, const char *app,
                 const char *feature)
{
    if (!sm_stanza_error(st, type, cond, app ? NS_PUBSUB_ERRORS : NULL, app)) {
        sm_stanza_free(st);
        return;
    }
    if (feature) {
        xml_node *err = xml_child(st->node, NULL, "error");
        xml_node *u = err ? xml_child(err, NS_PUBSUB_ERRORS, app) : NULL;
        if (u)
            xml_attr_set(st->arena, u, NULL, "feature", feature);
    }
    sm_route(s, st);
}

static void unsupported(sm *s, sm_stanza *st, const char *feature)
{
    fail(s, st, "cancel", "feature-not-implemented", "unsupported", feature);
}

/* The owner's view: the requester is the account itself. */
static bool by_owner(const sm_stanza *st, const pep_owner *o)
{
    return st->from.domain_len && jid_equal_bare(&st->from, pep_owner_jid(o));
}

/* Whether a requester other than the owner may read n: the access model against the owner's
 * roster (the owner's user is in memory: an iq to an account waits for its roster). */
static bool reader_allowed(sm *s, const pep_owner *o, const pep_node *n, const sm_stanza *st)
{
    bool subscribed = false;
    sm_user *u = sm_user_find(s, pep_owner_jid(o));
    if (u && st->from.domain_len) {
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&st->from, bare, sizeof bare);
        sm_roster_item *it = sm_roster_find(u, bare);
        subscribed = it && sm_sub_has_from(it->sub);
    }
    return pep_access_allows(n, false, subscribed);
}

/* The same for any requester, answering answer_if_not with XEP-0060's error when not. */
static bool may_read(sm *s, const pep_owner *o, const pep_node *n, const sm_stanza *st,
                     sm_stanza *answer_if_not)
{
    if (by_owner(st, o) || reader_allowed(s, o, n, st))
        return true;
    if (n->cfg.access == PEP_ACCESS_WHITELIST)
        fail(s, answer_if_not, "cancel", "not-allowed", "closed-node", NULL);
    else if (n->cfg.access == PEP_ACCESS_ROSTER)
        fail(s, answer_if_not, "auth", "not-authorized", "not-in-roster-group", NULL);
    else
        fail(s, answer_if_not, "auth", "not-authorized", "presence-subscription-required", NULL);
    return false;
}

/* The node the element names; answers (and returns NULL) when it names none or an unknown one. */
static pep_node *named_node(sm *s, pep_owner *o, sm_stanza *st, const xml_node *el)
{
    const char *name = xml_attr_get(el, "node");
    if (!name || !*name) {
        fail(s, st, "modify", "bad-request", "nodeid-required", NULL);
        return NULL;
    }
    pep_node *n = pep_owner_node(o, name);
    if (!n)
        sm_bounce(s, st, "cancel", "item-not-found");
    return n;
}

/* A result holding <pubsub xmlns=ns><name node=node/></pubsub>; returns name's element for more. */
static xml_node *result_shell(xml_arena *a, const char *ns, const char *name, const char *node,
                              xml_node **top)
{
    *top = xml_element_new(a, NULL, ns, "pubsub");
    xml_node *el = xml_element_new(a, *top, ns, name);
    if (node)
        xml_attr_set(a, el, NULL, "node", node);
    return el;
}

/* ---- publish ---- */

/* The item's one payload element, serialized (malloc'd), or NULL after answering. */
static char *payload_of(sm *s, sm_stanza *st, const xml_node *item)
{
    const xml_node *payload = NULL;
    size_t count = 0;
    for (const xml_node *c = item->children; c; c = c->next)
        if (c->kind == XML_ELEMENT) {
            payload = c;
            count++;
        }
    if (count != 1) {
        fail(s, st, "modify", "bad-request", count ? "invalid-payload" : "payload-required", NULL);
        return NULL;
    }
    buf b = BUF_INIT;
    if (!xml_write_node_max(&b, payload, NULL, false, (size_t)pep_option(s, "pep/item_bytes"))) {
        buf_free(&b);
        fail(s, st, "modify", "not-acceptable", "payload-too-big", NULL);
        return NULL;
    }
    buf_append(&b, "", 1);
    char *xml = mem_strdup(buf_data(&b));
    buf_free(&b);
    return xml;
}

/* Whether o may have one more node named name: within <pep><nodes_max>, and a name storage holds;
 * answers st when not. */
static bool node_allowed(sm *s, pep_owner *o, sm_stanza *st, const char *name)
{
    if ((long long)pep_owner_count(o) >= pep_option(s, "pep/nodes_max")) {
        char why[96];
        snprintf(why, sizeof why, "an account has at most %lld PEP nodes",
                 pep_option(s, "pep/nodes_max"));
        sm_bounce_text(s, st, "cancel", "policy-violation", why);
        return false;
    }
    if (strlen(name) > XDB_DOC_NAME_MAX) {
        fail(s, st, "modify", "not-acceptable", NULL, NULL);
        return false;
    }
    return true;
}

/* A node for a first publish, configured by the publish-options (XEP-0223 §4: they become its
 * configuration); NULL after answering. */
static pep_node *create_for_publish(sm *s, pep_owner *o, sm_stanza *st, const char *name,
                                    const xml_node *options)
{
    if (!node_allowed(s, o, st, name))
        return NULL;
    pep_config cfg;
    pep_config_default(&cfg);
    const char *field;
    if (options && !pep_config_apply(&cfg, st->arena, options, &field)) {
        log_info("sm: %s: publish-options field %s refused", jid_full(pep_owner_jid(o)), field);
        fail(s, st, "cancel", "conflict", "precondition-not-met", NULL);
        return NULL;
    }
    return pep_owner_create(s, o, name, &cfg);
}

static void publish(sm *s, pep_owner *o, sm_stanza *st, const xml_node *pubsub,
                    const xml_node *el)
{
    if (!by_owner(st, o)) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    const char *name = xml_attr_get(el, "node");
    if (!name || !*name) {
        fail(s, st, "modify", "bad-request", "nodeid-required", NULL);
        return;
    }
    const xml_node *item = xml_child(el, NS_PUBSUB, "item");
    if (!item || xml_next(item, NS_PUBSUB, "item")) {
        fail(s, st, "modify", "bad-request", item ? "invalid-payload" : "item-required", NULL);
        return;
    }
    const xml_node *po = xml_child(pubsub, NS_PUBSUB, "publish-options");
    const xml_node *options = po ? xml_child(po, NS_DATA, "x") : NULL;
    char *xml = payload_of(s, st, item);
    if (!xml)
        return;
    char made[17];
    const char *id = xml_attr_get(item, "id");
    if (!id || !*id) {
        random_token(made, 16);
        id = made;
    }
    pep_node *n = pep_owner_node(o, name);
    const char *field;
    if (!n) {
        n = create_for_publish(s, o, st, name, options);
    } else if (options && !pep_config_matches(&n->cfg, st->arena, options, &field)) {
        log_info("sm: %s: publish-options precondition %s not met for %s",
                 jid_full(pep_owner_jid(o)), field, name);
        fail(s, st, "cancel", "conflict", "precondition-not-met", NULL);
        n = NULL;
    }
    if (n && strlen(id) > XDB_DOC_NAME_MAX) {
        fail(s, st, "modify", "not-acceptable", NULL, NULL);
        n = NULL;
    }
    if (!n) {
        free(xml);
        return;
    }
    /* The answer frees st, which id may point into; the publisher hears first. */
    char *item_id = mem_strdup(id);
    xml_arena *a = xml_arena_new(512);
    xml_node *top, *p = result_shell(a, NS_PUBSUB, "publish", n->name, &top);
    xml_attr_set(a, xml_element_new(a, p, NS_PUBSUB, "item"), NULL, "id", item_id);
    sm_iq_result(s, st, top);
    xml_arena_free(a);
    pep_item_publish(s, o, n, item_id, xml);
    free(item_id);
    free(xml);
}

void pep_item_publish(sm *s, pep_owner *o, pep_node *n, const char *id, const char *xml)
{
    if (n->cfg.persist_items) {
        xdb_request *r = sm_user_request(XDB_PEP_ITEM_PUT, pep_owner_jid(o));
        xdb_request_set_pep(r, n->name, id);
        r->xml = mem_strdup(xml);
        r->limit = pep_config_keep(&n->cfg, (uint32_t)pep_option(s, "pep/items_max"));
        pep_owner_write(s, r);
    }
    pep_owner_set_last(n, id, xml);
    pep_notify_items(s, o, n, id, xml);
    sm_event ev = {.user = sm_user_find(s, pep_owner_jid(o)), .name = n->name, .id = id,
                   .xml = xml, .len = strlen(xml)};
    sm_fire_named(s, "pep-published", &ev);
}

/* ---- create ---- */

static void create(sm *s, pep_owner *o, sm_stanza *st, const xml_node *pubsub,
                   const xml_node *el)
{
    if (!by_owner(st, o)) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    const char *name = xml_attr_get(el, "node");
    if (!name || !*name) {
        fail(s, st, "modify", "not-acceptable", "nodeid-required", NULL);
        return;
    }
    if (pep_owner_node(o, name)) {
        sm_bounce(s, st, "cancel", "conflict");
        return;
    }
    const xml_node *conf = xml_child(pubsub, NS_PUBSUB, "configure");
    const xml_node *x = conf ? xml_child(conf, NS_DATA, "x") : NULL;
    pep_config cfg;
    pep_config_default(&cfg);
    const char *field;
    if (x && !pep_config_apply(&cfg, st->arena, x, &field)) {
        sm_bounce_text(s, st, "modify", "not-acceptable", field);
        return;
    }
    if (!node_allowed(s, o, st, name))
        return;
    pep_owner_create(s, o, name, &cfg);
    sm_iq_result(s, st, NULL);
}

/* ---- retract ---- */

typedef struct retract_ctx {
    sm *s;
    sm_stanza *st;
    jid owner;
    char *node, *id;
    bool notify;
} retract_ctx;

static void retract_ctx_free(retract_ctx *c)
{
    sm_stanza_free(c->st);
    jid_free(&c->owner);
    free(c->node);
    free(c->id);
    free(c);
}

/* The node's newest item, read after its newest was retracted (unless one was published since). */
static void newest_read(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    jid bare;
    if (r->status != XDB_OK || !r->npep_items ||
        jid_make(r->user, strlen(r->user), r->host, strlen(r->host), NULL, 0, &bare) != JID_OK)
        return;
    pep_owner *o = pep_owner_find(s, &bare);
    pep_node *n = o ? pep_owner_node(o, r->node) : NULL;
    if (n && !n->last_id)
        pep_owner_set_last(n, r->pep_items[0].id, r->pep_items[0].xml);
    jid_free(&bare);
}

/* After the item is gone: the node's newest item, and the notifications. */
static void retracted(sm *s, pep_owner *o, void *ctx)
{
    retract_ctx *c = ctx;
    pep_node *n = o ? pep_owner_node(o, c->node) : NULL;
    if (n && n->last_id && strcmp(n->last_id, c->id) == 0) {
        pep_owner_set_last(n, NULL, NULL);
        if (n->cfg.persist_items) {
            xdb_request *r = sm_user_request(XDB_PEP_ITEMS, pep_owner_jid(o));
            xdb_request_set_pep(r, n->name, NULL);
            r->limit = 1;
            sm_submit(s, r, newest_read, s);
        }
    }
    if (n && (c->notify || n->cfg.notify_retract))
        pep_notify_retract(s, o, n, c->id);
    retract_ctx_free(c);
}

static void retract_stored(xdb_request *r, void *ctx)
{
    retract_ctx *c = ctx;
    sm_stanza *st = c->st;
    c->st = NULL;
    if (r->status == XDB_OK) {
        if (st)
            sm_iq_result(c->s, st, NULL);
        pep_owner_with(c->s, &c->owner, retracted, c);
        return;
    }
    if (st)
        sm_bounce(c->s, st, r->status == XDB_NOT_FOUND ? "cancel" : "wait",
                  r->status == XDB_NOT_FOUND ? "item-not-found" : "internal-server-error");
    retract_ctx_free(c);
}

static void retract(sm *s, pep_owner *o, sm_stanza *st, const xml_node *el)
{
    if (!by_owner(st, o)) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    pep_node *n = named_node(s, o, st, el);
    if (!n)
        return;
    const xml_node *item = xml_child(el, NS_PUBSUB, "item");
    const char *id = item ? xml_attr_get(item, "id") : NULL;
    if (!id || !*id) {
        fail(s, st, "modify", "bad-request", "item-required", NULL);
        return;
    }
    const char *notify = xml_attr_get(el, "notify");
    retract_ctx *c = mem_zalloc(sizeof *c);
    *c = (retract_ctx){.s = s, .node = mem_strdup(n->name), .id = mem_strdup(id),
                       .notify = notify && (!strcmp(notify, "true") || !strcmp(notify, "1"))};
    jid_copy(&c->owner, pep_owner_jid(o));
    if (!n->cfg.persist_items) {
        /* Only the newest is kept, in memory. */
        if (!n->last_id || strcmp(n->last_id, id) != 0) {
            sm_bounce(s, st, "cancel", "item-not-found");
            retract_ctx_free(c);
            return;
        }
        sm_iq_result(s, st, NULL);
        retracted(s, o, c);
        return;
    }
    c->st = st;
    xdb_request *r = sm_user_request(XDB_PEP_ITEM_DELETE, pep_owner_jid(o));
    xdb_request_set_pep(r, n->name, id);
    sm_submit(s, r, retract_stored, c);
}

void pep_item_retract(sm *s, pep_owner *o, pep_node *n, const char *id)
{
    retract_ctx *c = mem_zalloc(sizeof *c);
    *c = (retract_ctx){.s = s, .node = mem_strdup(n->name), .id = mem_strdup(id)};
    jid_copy(&c->owner, pep_owner_jid(o));
    xdb_request *r = sm_user_request(XDB_PEP_ITEM_DELETE, pep_owner_jid(o));
    xdb_request_set_pep(r, n->name, id);
    sm_submit(s, r, retract_stored, c);
}

/* ---- items ---- */

typedef struct items_ctx {
    sm *s;
    sm_stanza *st;
} items_ctx;

/* The <items/> answer: each (id, payload) as an <item/>. */
static void answer_items(sm *s, sm_stanza *st, const char *node, const xdb_pep_item *items,
                         size_t n)
{
    xml_arena *a = xml_arena_new(1024);
    xml_node *top, *list = result_shell(a, NS_PUBSUB, "items", node, &top);
    for (size_t i = 0; i < n; i++) {
        xml_node *item = xml_element_new(a, list, NS_PUBSUB, "item");
        xml_attr_set(a, item, NULL, "id", items[i].id);
        sm_stanza *payload = sm_parse(s, items[i].xml, strlen(items[i].xml));
        if (payload && payload->node)
            xml_node_copy(a, item, payload->node);
        sm_stanza_free(payload);
    }
    sm_iq_result(s, st, top);
    xml_arena_free(a);
}

static void items_read(xdb_request *r, void *ctx)
{
    items_ctx *c = ctx;
    if (r->status != XDB_OK)
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    else
        answer_items(c->s, c->st, r->node, r->pep_items, r->npep_items);
    free(c);
}

static void items(sm *s, pep_owner *o, sm_stanza *st, const xml_node *el)
{
    pep_node *n = named_node(s, o, st, el);
    if (!n || !may_read(s, o, n, st, st))
        return;
    xdb_request *r = sm_user_request(XDB_PEP_ITEMS, pep_owner_jid(o));
    xdb_request_set_pep(r, n->name, NULL);
    long long asked = 0, ids_max = pep_option(s, "pep/ids_asked");
    for (const xml_node *i = xml_child(el, NS_PUBSUB, "item"); i; i = xml_next(i, NS_PUBSUB, "item")) {
        const char *id = xml_attr_get(i, "id");
        if (!id || ++asked > ids_max) {
            xdb_request_free(r);
            if (id)
                sm_bounce_text(s, st, "modify", "policy-violation", "too many item ids asked");
            else
                fail(s, st, "modify", "bad-request", "item-required", NULL);
            return;
        }
        xdb_request_add_item_id(r, id);
    }
    const char *max = xml_attr_get(el, "max_items");
    if (max) {
        char *end;
        long long m = strtoll(max, &end, 10);
        if (*end || m <= 0 || *max < '0' || *max > '9') {
            xdb_request_free(r);
            sm_bounce(s, st, "modify", "bad-request");
            return;
        }
        r->limit = m;
    }
    if (!n->cfg.persist_items) {
        /* Only the newest is kept, in memory. */
        xdb_pep_item last = {n->last_id, n->last_xml};
        bool asked_for = !asked;
        for (size_t i = 0; n->last_id && i < r->item_ids.n; i++)
            asked_for |= strcmp(r->item_ids.v[i], n->last_id) == 0;
        answer_items(s, st, n->name, &last, n->last_id && asked_for ? 1 : 0);
        xdb_request_free(r);
        return;
    }
    items_ctx *c = mem_alloc(sizeof *c);
    *c = (items_ctx){s, st};
    sm_submit(s, r, items_read, c);
}

/* ---- the owner's operations (pubsub#owner) ---- */

static void configure_get(sm *s, pep_node *n, sm_stanza *st)
{
    xml_arena *a = xml_arena_new(2048);
    xml_node *top, *conf = result_shell(a, NS_PUBSUB_OWNER, "configure", n->name, &top);
    pep_config_form(a, conf, &n->cfg);
    sm_iq_result(s, st, top);
    xml_arena_free(a);
}

static void configure_set(sm *s, pep_owner *o, pep_node *n, sm_stanza *st, const xml_node *el)
{
    const xml_node *x = xml_child(el, NS_DATA, "x");
    const char *type = x ? xml_attr_get(x, "type") : NULL;
    if (!x || !type || (strcmp(type, "submit") != 0 && strcmp(type, "cancel") != 0)) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    const char *field;
    if (strcmp(type, "submit") == 0) {
        if (!pep_config_apply(&n->cfg, st->arena, x, &field)) {
            sm_bounce_text(s, st, "modify", "not-acceptable", field);
            return;
        }
        pep_owner_configured(s, o, n);
    }
    sm_iq_result(s, st, NULL);
}

static void owner_op(sm *s, pep_owner *o, sm_stanza *st, const xml_node *el, bool get)
{
    if (!by_owner(st, o)) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    if (get && strcmp(el->name, "default") == 0) {
        pep_config cfg;
        pep_config_default(&cfg);
        xml_arena *a = xml_arena_new(2048);
        xml_node *top, *d = result_shell(a, NS_PUBSUB_OWNER, "default", NULL, &top);
        pep_config_form(a, d, &cfg);
        sm_iq_result(s, st, top);
        xml_arena_free(a);
        return;
    }
    bool known = strcmp(el->name, "configure") == 0 ||
                 (!get && (strcmp(el->name, "delete") == 0 || strcmp(el->name, "purge") == 0));
    if (!known) {
        unsupported(s, st, strcmp(el->name, "subscriptions") == 0 ? "manage-subscriptions"
                           : strcmp(el->name, "affiliations") == 0 ? "modify-affiliations"
                                                                     : "config-node");
        return;
    }
    pep_node *n = named_node(s, o, st, el);
    if (!n)
        return;
    if (strcmp(el->name, "configure") == 0) {
        if (get)
            configure_get(s, n, st);
        else
            configure_set(s, o, n, st, el);
        return;
    }
    if (strcmp(el->name, "purge") == 0) {
        xdb_request *r = sm_user_request(XDB_PEP_PURGE, pep_owner_jid(o));
        xdb_request_set_pep(r, n->name, NULL);
        pep_owner_write(s, r);
        pep_owner_set_last(n, NULL, NULL);
        sm_iq_result(s, st, NULL);
        pep_notify_node(s, o, n, "purge");
        return;
    }
    sm_iq_result(s, st, NULL);
    pep_notify_node(s, o, n, "delete");
    pep_owner_delete(s, o, n);
}

/* ---- dispatch ---- */

/* What an XEP-0060 request names that PEP does not serve here, by element. */
static const char *unsupported_feature(const char *name)
{
    static const char *const map[][2] = {
        {"subscribe", "subscribe"},        {"unsubscribe", "subscribe"},
        {"options", "subscription-options"}, {"subscriptions", "retrieve-subscriptions"},
        {"affiliations", "retrieve-affiliations"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], name) == 0)
            return map[i][1];
    return NULL;
}

static void pubsub_run(sm *s, pep_owner *o, void *ctx)
{
    sm_stanza *st = ctx;
    if (!o) {
        if (sm_stopping(s))
            sm_stanza_free(st);
        else
            sm_bounce(s, st, "wait", "internal-server-error");
        return;
    }
    bool get = strcmp(sm_stanza_type(st), "get") == 0;
    const xml_node *pubsub = xml_child(st->node, NULL, "pubsub");
    if (strcmp(pubsub->ns, NS_PUBSUB_OWNER) == 0) {
        const xml_node *el = xml_child(pubsub, NS_PUBSUB_OWNER, NULL);
        if (!el)
            sm_bounce(s, st, "modify", "bad-request");
        else
            owner_op(s, o, st, el, get);
        return;
    }
    /* publish (with publish-options beside it), create (with configure), retract, items */
    const xml_node *el = xml_child(pubsub, NS_PUBSUB, NULL);
    while (el && (strcmp(el->name, "publish-options") == 0 || strcmp(el->name, "configure") == 0))
        el = xml_next(el, NS_PUBSUB, NULL);
    const char *name = el ? el->name : "";
    const char *feature = unsupported_feature(name);
    if (!get && strcmp(name, "publish") == 0)
        publish(s, o, st, pubsub, el);
    else if (!get && strcmp(name, "create") == 0)
        create(s, o, st, pubsub, el);
    else if (!get && strcmp(name, "retract") == 0)
        retract(s, o, st, el);
    else if (get && strcmp(name, "items") == 0)
        items(s, o, st, el);
    else if (feature)
        unsupported(s, st, feature);
    else
        sm_bounce(s, st, "modify", "bad-request");
}

/* An iq to an account's bare JID (or to none: the sender's own) in a pubsub namespace. */
static void pubsub_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(payload->name, "pubsub") != 0) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    jid owner;
    jid_bare(st->to.domain_len ? &st->to : &st->from, &owner);
    if (!sm_is_local_user(s, &owner)) {
        jid_free(&owner);
        sm_bounce(s, st, "cancel", "service-unavailable");
        return;
    }
    pep_owner_with(s, &owner, pubsub_run, sm_iq_keep(st));
    jid_free(&owner);
}

/* ---- the account's disco#info, and the module ---- */

static const char *const pep_features[] = {
    NS_PUBSUB,
    NS_PUBSUB "#access-open",        NS_PUBSUB "#access-presence",
    NS_PUBSUB "#access-roster",      NS_PUBSUB "#access-whitelist",
    NS_PUBSUB "#auto-create",        NS_PUBSUB "#auto-subscribe",
    NS_PUBSUB "#config-node",        NS_PUBSUB "#create-and-configure",
    NS_PUBSUB "#create-nodes",       NS_PUBSUB "#delete-items",
    NS_PUBSUB "#delete-nodes",       NS_PUBSUB "#filtered-notifications",
    NS_PUBSUB "#item-ids",           NS_PUBSUB "#last-published",
    NS_PUBSUB "#persistent-items",   NS_PUBSUB "#publish",
    NS_PUBSUB "#publish-options",    NS_PUBSUB "#purge-nodes",
    NS_PUBSUB "#retract-items",      NS_PUBSUB "#retrieve-default",
    NS_PUBSUB "#retrieve-items",     NS_PUBSUB "#multi-items",
    NULL,
};

static bool account_info(sm *s, sm_event *ev)
{
    xml_node *id = xml_element_new(ev->arena, ev->node, "http://jabber.org/protocol/disco#info",
                                   "identity");
    xml_attr_set(ev->arena, id, NULL, "category", "pubsub");
    xml_attr_set(ev->arena, id, NULL, "type", "pep");
    for (size_t i = 0; pep_features[i]; i++)
        disco_feature(ev->arena, ev->node, pep_features[i]);
    return false;
}

/* The account's disco#items: its nodes the asker may read (XEP-0060 §5.2), when its nodes are in
 * memory (they are read with the user, whose roster an iq to the account waits for). */
static bool account_items(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    jid owner;
    jid_bare(st->to.domain_len ? &st->to : &st->from, &owner);
    pep_owner *o = pep_owner_find(s, &owner);
    for (size_t i = 0; o && i < pep_owner_count(o); i++) {
        pep_node *n = pep_owner_at(o, i);
        if (!by_owner(st, o) && !reader_allowed(s, o, n, st))
            continue;
        xml_node *item = xml_element_new(ev->arena, ev->node, "http://jabber.org/protocol/disco#items",
                                         "item");
        xml_attr_set(ev->arena, item, NULL, "jid", jid_full(&owner));
        xml_attr_set(ev->arena, item, NULL, "node", n->name);
    }
    jid_free(&owner);
    return false;
}

static bool pep_tick(sm *s, sm_event *ev)
{
    pep_owners_trim(s);
    return false;
}

static bool pep_session_end(sm *s, sm_event *ev)
{
    pep_owners_session_end(s, &ev->user->jid);
    return false;
}

static bool pep_init(sm *s, const sm_module *self, config *cfg)
{
    pep_owners_init(s);
    return true;
}

static void pep_fini(sm *s, const sm_module *self)
{
    pep_owners_free(s);
}

static const sm_handler pep_handlers[] = {
    {"iq/bare/" NS_PUBSUB ":pubsub", .iq = pubsub_iq},
    {"iq/bare/" NS_PUBSUB_OWNER ":pubsub", .iq = pubsub_iq},
    {"disco-account-info", .hook = account_info},
    {"disco-account-items", .hook = account_items},
    {"caps-known", .hook = pep_caps_known},
    {"roster-changed", .hook = pep_roster_changed},
    {"tick", .hook = pep_tick},
    {"session-end", .hook = pep_session_end},
    {NULL},
};

const sm_module mod_pep = {
    .name = "pep",
    /* On the server's JID too: clients (Profanity) look there for publish-options before they
     * use them. The rest is the account's (account_info). */
    .features = (const char *const[]){NS_PUBSUB "#publish-options", NULL},
    /* An item was published (user: the owner's, when in memory; name: the node; id; xml: the
     * payload), after its notifications. */
    .events = (const char *const[]){"pep-published", NULL},
    .int_options = pep_options,
    .init = pep_init,
    .fini = pep_fini,
    .handlers = pep_handlers,
};
