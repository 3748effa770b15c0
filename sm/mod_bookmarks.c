/* sm/mod_bookmarks.c — bookmarks compatibility (XEP-0402 §5, XEP-0411): an account's bookmarks
 * live in its PEP node urn:xmpp:bookmarks:1, one item per room; a client that still keeps them as
 * private XML (XEP-0048's <storage xmlns='storage:bookmarks'/> through XEP-0049) sees the same.
 *
 * - A private XML get of storage:bookmarks is answered from the PEP node's items when the node
 *   exists (else from private XML, as stored before);
 * - a private XML set of storage:bookmarks is stored as before, and each of its rooms published
 *   to the PEP node (made with XEP-0402's configuration when absent: persistent, max items, the
 *   owner only, no last item sent), the rooms no longer in it retracted;
 * - the account advertises urn:xmpp:bookmarks:1#compat.
 * XEP-0048's URL bookmarks have no place in XEP-0402: they stay in private XML only.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/disco.h"
#include "sm/modules.h"
#include "sm/pep.h"

#define NS_BOOKMARKS "urn:xmpp:bookmarks:1"
#define NS_STORAGE "storage:bookmarks"
#define NS_PRIVATE "jabber:iq:private"

/* ---- one room, both ways ---- */

static void child_text(xml_arena *a, xml_node *parent, const char *ns, const char *name,
                       const char *text)
{
    if (text && *text) {
        xml_node *el = xml_element_new(a, parent, ns, name);
        xml_text_new(a, el, text, strlen(text));
    }
}

static bool is_true(const char *v) { return v && (!strcmp(v, "true") || !strcmp(v, "1")); }

/* A room of one namespace as the other's: conf's name, autojoin, nick and password, in ns;
 * room_jid: the room's address on the XEP-0048 side (NULL on the XEP-0402 side, where it is the
 * item's id). */
static xml_node *room_convert(xml_arena *a, xml_node *parent, const xml_node *conf, const char *ns,
                              const char *room_jid)
{
    xml_node *out = xml_element_new(a, parent, ns, "conference");
    if (room_jid)
        xml_attr_set(a, out, NULL, "jid", room_jid);
    const char *name = xml_attr_get(conf, "name");
    if (name)
        xml_attr_set(a, out, NULL, "name", name);
    if (is_true(xml_attr_get(conf, "autojoin")))
        xml_attr_set(a, out, NULL, "autojoin", "true");   /* false when absent, both sides */
    const xml_node *nick = xml_child(conf, conf->ns, "nick");
    const xml_node *password = xml_child(conf, conf->ns, "password");
    child_text(a, out, ns, "nick", nick ? xml_text(a, nick) : NULL);
    child_text(a, out, ns, "password", password ? xml_text(a, password) : NULL);
    return out;
}

/* ---- get: from PEP ---- */

typedef struct get_ctx {
    sm *s;
    sm_stanza *st;
} get_ctx;

/* <query><storage>rooms</storage></query> answering the get. */
static void answer(sm *s, sm_stanza *st, const xdb_pep_item *items, size_t n)
{
    xml_arena *a = xml_arena_new(2048);
    xml_node *q = xml_element_new(a, NULL, NS_PRIVATE, "query");
    xml_node *storage = xml_element_new(a, q, NS_STORAGE, "storage");
    for (size_t i = 0; i < n; i++) {
        sm_stanza *conf = sm_parse(s, items[i].xml, strlen(items[i].xml));
        if (conf && conf->node && xml_is(conf->node, NS_BOOKMARKS, "conference"))
            room_convert(a, storage, conf->node, NS_STORAGE, items[i].id);
        sm_stanza_free(conf);
    }
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static void items_read(xdb_request *r, void *ctx)
{
    get_ctx *c = ctx;
    if (r->status != XDB_OK)
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    else
        answer(c->s, c->st, r->pep_items, r->npep_items);
    free(c);
}

/* What private XML kept, when there is no PEP node yet. */
static void private_read(xdb_request *r, void *ctx)
{
    get_ctx *c = ctx;
    sm_stanza *stored = r->status == XDB_OK ? sm_parse(c->s, r->value.data, r->value.len) : NULL;
    if (r->status == XDB_ERROR) {
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    } else {
        xml_arena *a = xml_arena_new(1024);
        xml_node *q = xml_element_new(a, NULL, NS_PRIVATE, "query");
        if (stored && stored->node)
            xml_node_copy(a, q, stored->node);
        else
            xml_element_new(a, q, NS_STORAGE, "storage");
        sm_iq_result(c->s, c->st, q);
        xml_arena_free(a);
    }
    sm_stanza_free(stored);
    free(c);
}

static void get_with(sm *s, pep_owner *o, void *ctx)
{
    get_ctx *c = ctx;
    if (!o) {
        if (sm_stopping(s))
            sm_stanza_free(c->st);
        else
            sm_bounce(s, c->st, "wait", "internal-server-error");
        free(c);
        return;
    }
    xdb_request *r;
    if (pep_owner_node(o, NS_BOOKMARKS)) {
        r = sm_user_request(XDB_PEP_ITEMS, pep_owner_jid(o));
        xdb_request_set_pep(r, NS_BOOKMARKS, NULL);
        sm_submit(s, r, items_read, c);
    } else {
        r = sm_user_request(XDB_DOC_GET, pep_owner_jid(o));
        xdb_request_set_doc(r, "private", NS_STORAGE);
        sm_submit(s, r, private_read, c);
    }
}

/* ---- set: to PEP ---- */

typedef struct room {
    char *jid, *xml;        /* the item's id and its XEP-0402 payload */
} room;

typedef struct set_ctx {
    sm *s;
    jid owner;
    room *rooms;
    size_t n;
} set_ctx;

static void set_ctx_free(set_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->rooms[i].jid);
        free(c->rooms[i].xml);
    }
    free(c->rooms);
    jid_free(&c->owner);
    free(c);
}

/* The rooms of a <storage xmlns='storage:bookmarks'/>, as XEP-0402 items. */
static void rooms_of(sm *s, xml_arena *scratch, const xml_node *storage, set_ctx *c)
{
    size_t max = (size_t)pep_option(s, "pep/items_max");
    for (const xml_node *conf = xml_child(storage, NS_STORAGE, "conference"); conf && c->n < max;
         conf = xml_next(conf, NS_STORAGE, "conference")) {
        const char *room_jid = xml_attr_get(conf, "jid");
        if (!room_jid || !*room_jid || strlen(room_jid) > XDB_DOC_NAME_MAX)
            continue;
        buf b = BUF_INIT;
        xml_write_node(&b, room_convert(scratch, NULL, conf, NS_BOOKMARKS, NULL), NULL, false);
        buf_append(&b, "", 1);
        c->rooms = mem_realloc(c->rooms, (c->n + 1) * sizeof *c->rooms);
        c->rooms[c->n++] = (room){mem_strdup(room_jid), mem_strdup(buf_data(&b))};
        buf_free(&b);
    }
}

static bool listed(const set_ctx *c, const char *room_jid)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->rooms[i].jid, room_jid) == 0)
            return true;
    return false;
}

/* The node's items now: those no longer listed are retracted, the listed ones published. */
static void existing_read(xdb_request *r, void *ctx)
{
    set_ctx *c = ctx;
    pep_owner *o = r->status == XDB_OK ? pep_owner_find(c->s, &c->owner) : NULL;
    pep_node *n = o ? pep_owner_node(o, NS_BOOKMARKS) : NULL;
    if (!n) {
        log_warn("sm: %s: bookmarks not converted to PEP (%s)", jid_full(&c->owner),
                 r->status == XDB_OK ? "the node is gone" : r->error);
        set_ctx_free(c);
        return;
    }
    for (size_t i = 0; i < r->npep_items; i++)
        if (!listed(c, r->pep_items[i].id))
            pep_item_retract(c->s, o, n, r->pep_items[i].id);
    for (size_t i = 0; i < c->n; i++)
        pep_item_publish(c->s, o, n, c->rooms[i].jid, c->rooms[i].xml);
    set_ctx_free(c);
}

static void set_with(sm *s, pep_owner *o, void *ctx)
{
    set_ctx *c = ctx;
    if (!o) {
        set_ctx_free(c);
        return;
    }
    if (!pep_owner_node(o, NS_BOOKMARKS)) {
        pep_config cfg;
        pep_config_default(&cfg);
        cfg.max_items = PEP_MAX_ITEMS_MAX;
        cfg.access = PEP_ACCESS_WHITELIST;
        cfg.send_last = PEP_SEND_NEVER;
        pep_owner_create(s, o, NS_BOOKMARKS, &cfg);
    }
    xdb_request *r = sm_user_request(XDB_PEP_ITEMS, &c->owner);
    xdb_request_set_pep(r, NS_BOOKMARKS, NULL);
    sm_submit(s, r, existing_read, c);
}

/* ---- hooks ---- */

static bool private_iq(sm *s, sm_event *ev)
{
    if (!xml_is(ev->node, NS_STORAGE, "storage"))
        return false;
    jid owner;
    jid_bare(&ev->session->jid, &owner);
    if (strcmp(sm_stanza_type(ev->stanza), "get") == 0) {
        get_ctx *c = mem_alloc(sizeof *c);
        *c = (get_ctx){s, sm_iq_keep(ev->stanza)};
        pep_owner_with(s, &owner, get_with, c);
        jid_free(&owner);
        return true;
    }
    set_ctx *c = mem_zalloc(sizeof *c);
    c->s = s;
    jid_copy(&c->owner, &owner);
    jid_free(&owner);
    xml_arena *scratch = xml_arena_new(1024);
    rooms_of(s, scratch, ev->node, c);
    xml_arena_free(scratch);
    pep_owner_with(s, &c->owner, set_with, c);
    return false;   /* private XML stores it too, and answers */
}

static bool account_info(sm *s, sm_event *ev)
{
    disco_feature(ev->arena, ev->node, NS_BOOKMARKS "#compat");
    return false;
}

static const sm_handler bookmarks_handlers[] = {
    {"private-iq", .hook = private_iq},
    {"disco-account-info", .hook = account_info},
    {NULL},
};

static bool bookmarks_init(sm *s, const sm_module *self, config *cfg)
{
    if (sm_module_loaded(s, &mod_pep))
        return true;
    log_error("sm: module bookmarks keeps bookmarks in PEP: it needs module pep");
    return false;
}

const sm_module mod_bookmarks = {
    .name = "bookmarks",
    .init = bookmarks_init,
    .handlers = bookmarks_handlers,
};
