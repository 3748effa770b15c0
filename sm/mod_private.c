/* sm/mod_private.c — private XML storage (XEP-0049): a user keeps XML of their own under a
 * namespace (bookmarks, client settings); only they can read or write it. Kept in the document
 * store: store "private", one document per namespace, the namespace limit its quota. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_PRIVATE "jabber:iq:private"
#define PRIVATE_STORE "private"

typedef struct private_ctx {
    sm *s;
    sm_stanza *st;      /* the iq being answered */
    size_t waiting;     /* set: stores not yet answered */
    bool failed, full;
} private_ctx;

static void private_got(xdb_request *r, void *ctx)
{
    private_ctx *c = ctx;
    xml_node *query = xml_child(c->st->node, NS_PRIVATE, "query");
    xml_node *asked = xml_child(query, NULL, NULL);
    sm_stanza *stored = r->status == XDB_OK ? sm_parse(c->s, r->value.data, r->value.len) : NULL;
    if (r->status == XDB_ERROR) {
        log_warn("sm: reading private XML of %s@%s failed: %s", r->user, r->host, r->error);
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    } else {
        /* Nothing stored: the element asked for, empty (§3). */
        xml_arena *a = xml_arena_new(256);
        xml_node *q = xml_element_new(a, NULL, NS_PRIVATE, "query");
        if (stored)
            xml_node_copy(a, q, stored->node);
        else
            xml_element_new(a, q, asked->ns, asked->name);
        sm_iq_result(c->s, c->st, q);
        xml_arena_free(a);
    }
    sm_stanza_free(stored);
    free(c);
}

/* The account holds as many namespaces as it may. */
static void private_full(sm *s, sm_stanza *st)
{
    char why[80];
    snprintf(why, sizeof why, "at most %lld private XML namespaces per account",
             sm_module_int(s, &mod_private, "limits/private_namespaces"));
    sm_bounce_text(s, st, "cancel", "resource-constraint", why);
}

static void private_stored(xdb_request *r, void *ctx)
{
    private_ctx *c = ctx;
    if (r->status == XDB_QUOTA) {
        c->full = true;
    } else if (r->status != XDB_OK) {
        log_warn("sm: storing private XML of %s@%s failed: %s", r->user, r->host,
                 r->error[0] ? r->error : xdb_status_name(r->status));
        c->failed = true;
    }
    if (--c->waiting)
        return;
    if (c->full)
        private_full(c->s, c->st);
    else if (c->failed)
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    else
        sm_iq_result(c->s, c->st, NULL);
    free(c);
}

/* The namespaces nobody may store under: the protocol's own (§3), and those too long to be a
 * document's key. */
static bool private_ns_allowed(const char *ns)
{
    return *ns && strcmp(ns, SM_NS_CLIENT) != 0 && strcmp(ns, NS_PRIVATE) != 0 &&
           strlen(ns) <= XDB_DOC_NAME_MAX;
}

static xdb_request *private_request(xdb_op op, const jid *owner, const char *ns)
{
    xdb_request *r = sm_user_request(op, owner);
    xdb_request_set_doc(r, PRIVATE_STORE, ns);
    return r;
}

static void private_iq(sm *s, sm_stanza *st, xml_node *query)
{
    if (!sm_stanza_to_self(st)) {
        sm_bounce(s, st, "cancel", st->origin ? "forbidden" : "service-unavailable");
        return;
    }
    xml_node *first = xml_child(query, NULL, NULL);
    bool get = strcmp(sm_stanza_type(st), "get") == 0;
    if (strcmp(query->name, "query") != 0 || !first || (get && xml_next(first, NULL, NULL))) {
        sm_bounce(s, st, "modify", "bad-format");
        return;
    }
    for (xml_node *x = first; x; x = xml_next(x, NULL, NULL))
        if (!private_ns_allowed(x->ns)) {
            sm_bounce(s, st, "modify", "not-acceptable");
            return;
        }
    /* A module that keeps a namespace elsewhere (mod_bookmarks: storage:bookmarks in PEP) may
     * answer the request itself, or learn of a set before it is stored here. */
    sm_event ev = {.stanza = st, .node = first, .session = st->origin};
    if (sm_fire_named(s, "private-iq", &ev))
        return;
    const jid *owner = &st->origin->jid;
    private_ctx *c = mem_zalloc(sizeof(*c));
    c->s = s;
    if (get) {
        xdb_request *r = private_request(XDB_DOC_GET, owner, first->ns);
        c->st = sm_iq_keep(st);
        sm_submit(s, r, private_got, c);
        return;
    }
    /* Serialize every element first, so a set is refused whole or stored whole (but for the
     * namespace quota, which storage checks as it goes). */
    long long namespaces = sm_module_int(s, &mod_private, "limits/private_namespaces");
    long long bytes = sm_module_int(s, &mod_private, "limits/private_bytes");
    size_t n = 0;
    for (xml_node *x = first; x; x = xml_next(x, NULL, NULL))
        n++;
    if (n > (size_t)namespaces) {
        free(c);
        private_full(s, st);
        return;
    }
    xdb_request **rs = mem_array(n, sizeof(*rs));
    size_t i = 0;
    bool too_big = false;
    for (xml_node *x = first; x; x = xml_next(x, NULL, NULL), i++) {
        size_t len;
        char *xml = sm_xml_string(x, (size_t)bytes, &len);
        if (!xml) {
            too_big = true;
            break;
        }
        rs[i] = private_request(XDB_DOC_PUT, owner, x->ns);
        xdb_request_set_value(rs[i], xml, len);
        rs[i]->value_max = (size_t)bytes;
        rs[i]->quota = namespaces;
        free(xml);
    }
    if (too_big) {
        for (size_t k = 0; k < i; k++)
            xdb_request_free(rs[k]);
        free(rs);
        free(c);
        char why[80];
        snprintf(why, sizeof why, "private XML is limited to %lld bytes per namespace",
                 bytes);
        sm_bounce_text(s, st, "modify", "not-acceptable", why);
        return;
    }
    c->waiting = n;
    c->st = sm_iq_keep(st);
    for (i = 0; i < n; i++)
        sm_submit(s, rs[i], private_stored, c);
    free(rs);
}

/* limits/private_namespaces, limits/private_bytes: how many namespaces an account may store,
 * and the most under one (at most 6.4 MiB an account by default). */
static const sm_int_option private_options[] = {
    {"limits/private_namespaces", 100, 1, 1000000},
    {"limits/private_bytes", 64 * 1024, 1024, 1 << 20},
    {NULL},
};

static const sm_handler private_handlers[] = {
    {"iq/bare/" NS_PRIVATE ":*", .iq = private_iq},
    {NULL},
};

const sm_module mod_private = {
    .name = "private",
    /* A valid request of the account's own (stanza, node: its first element, session), before
     * it is served: a hook that returns true has answered it. */
    .events = (const char *const[]){"private-iq", NULL},
    .int_options = private_options,
    .handlers = private_handlers,
    .features = (const char *const[]){NS_PRIVATE, NULL},
};
