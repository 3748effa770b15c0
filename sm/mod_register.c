/* sm/mod_register.c — In-Band Registration (XEP-0077): account creation from clients that have
 * not authenticated (REGISTER frames, allowed per host by <register/>), and for authenticated
 * users a password change or the removal of their account. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "smproto/frame.h"

#define NS_REGISTER "jabber:iq:register"

/* The answer to a REGISTER iq: a result (with payload) or an error carrying the request. */
static xml_node *answer(xml_arena *a, const xml_node *iq, const char *host, const char *etype,
                        const char *condition)
{
    xml_node *r = xml_element_new(a, NULL, SM_NS_CLIENT, "iq");
    const char *id = xml_attr_get(iq, "id");
    if (id)
        xml_attr_set(a, r, NULL, "id", id);
    if (host)
        xml_attr_set(a, r, NULL, "from", host);
    xml_attr_set(a, r, NULL, "type", etype ? "error" : "result");
    if (etype) {
        for (xml_node *c = iq->children; c; c = c->next)
            xml_node_copy(a, r, c);
        xml_node *e = xml_element_new(a, r, SM_NS_CLIENT, "error");
        xml_attr_set(a, e, NULL, "type", etype);
        xml_element_new(a, e, SM_NS_STANZAS, condition);
    }
    return r;
}

static void send_answer(sm *s, uint64_t serial, uint64_t sid, const xml_node *iq,
                        const char *host, const char *etype, const char *condition)
{
    xml_arena *a = xml_arena_new(1024);
    sm_send_unbound(s, serial, sid, answer(a, iq, host, etype, condition));
    xml_arena_free(a);
}

typedef struct create_ctx {
    sm *s;
    uint64_t serial, sid;
    char *host;
    xml_arena *arena;
    xml_node *iq;
} create_ctx;

static void created(xdb_request *r, void *ctx)
{
    create_ctx *c = ctx;
    if (r->status == XDB_OK) {
        log_info("sm: registered %s@%s", r->user, r->host);
        send_answer(c->s, c->serial, c->sid, c->iq, c->host, NULL, NULL);
    } else if (r->status == XDB_EXISTS) {
        send_answer(c->s, c->serial, c->sid, c->iq, c->host, "cancel", "conflict");
    } else {
        log_warn("sm: registering %s@%s failed: %s", r->user, r->host,
                 r->status == XDB_ERROR ? r->error : xdb_status_name(r->status));
        send_answer(c->s, c->serial, c->sid, c->iq, c->host, "wait", "internal-server-error");
    }
    free(c->host);
    xml_arena_free(c->arena);
    free(c);
}

static xml_node *form(xml_arena *a, const char *username, bool registered)
{
    xml_node *q = xml_element_new(a, NULL, NS_REGISTER, "query");
    if (registered)
        xml_element_new(a, q, NS_REGISTER, "registered");
    else
        xml_text_new(a, xml_element_new(a, q, NS_REGISTER, "instructions"),
                     "Choose a username and password.", 31);
    xml_node *u = xml_element_new(a, q, NS_REGISTER, "username");
    if (username)
        xml_text_new(a, u, username, strlen(username));
    xml_element_new(a, q, NS_REGISTER, "password");
    return q;
}

/* Username and password from a set; false when either is missing or empty. */
static bool credentials(xml_arena *a, const xml_node *q, const char **user, const char **pass)
{
    xml_node *u = xml_child(q, NS_REGISTER, "username");
    xml_node *p = xml_child(q, NS_REGISTER, "password");
    *user = u ? xml_text(a, u) : "";
    *pass = p ? xml_text(a, p) : "";
    return **user && **pass;
}

static bool register_preauth(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    const char *type = sm_stanza_type(st);
    xml_node *q = xml_child(st->node, NS_REGISTER, "query");
    const sm_host *h = sm_config_host(sm_cfg(s), ev->host);
    const char *host = h ? h->name : NULL;
    const bool *open = sm_module_data(s, &mod_register);
    if (!q || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
        send_answer(s, ev->link_serial, ev->sid, st->node, host, "cancel", "service-unavailable");
        return true;
    }
    if (!h || !open[h - sm_cfg(s)->hosts]) {
        send_answer(s, ev->link_serial, ev->sid, st->node, host, "cancel", "not-allowed");
        return true;
    }
    if (strcmp(type, "get") == 0) {
        xml_arena *a = xml_arena_new(1024);
        xml_node *r = answer(a, st->node, host, NULL, NULL);
        xml_node_copy(a, r, form(a, NULL, false));
        sm_send_unbound(s, ev->link_serial, ev->sid, r);
        xml_arena_free(a);
        return true;
    }
    const char *user, *pass;
    jid j;
    if (!credentials(st->arena, q, &user, &pass) ||
        jid_make(user, strlen(user), host, strlen(host), NULL, 0, &j) != JID_OK) {
        send_answer(s, ev->link_serial, ev->sid, st->node, host, "modify", "bad-request");
        return true;
    }
    size_t nlen;
    const char *node = jid_node(&j, &nlen);
    char *username = mem_strndup(node, nlen);
    jid_free(&j);
    xdb_request *r = xdb_request_new(XDB_USER_CREATE, host, username);
    free(username);
    xdb_request_set_password(r, pass);
    create_ctx *c = mem_zalloc(sizeof(*c));
    c->s = s;
    c->serial = ev->link_serial;
    c->sid = ev->sid;
    c->host = mem_strdup(host);
    c->arena = xml_arena_new(1024);
    c->iq = xml_node_copy(c->arena, NULL, st->node);
    sm_submit(s, r, created, c);
    return true;
}

/* Authenticated users: password change and account removal. */
typedef struct account_ctx {
    sm *s;
    sm_stanza *st;
} account_ctx;

static void account_done(xdb_request *r, void *ctx)
{
    account_ctx *c = ctx;
    sm *s = c->s;
    if (r->status != XDB_OK) {
        log_warn("sm: %s of %s@%s failed: %s", xdb_op_name(r->op), r->user, r->host,
                 r->status == XDB_ERROR ? r->error : xdb_status_name(r->status));
        sm_bounce(s, c->st, "wait", "internal-server-error");
        free(c);
        return;
    }
    jid bare;
    jid_bare(&c->st->from, &bare);
    sm_iq_result(s, c->st, NULL);
    if (r->op == XDB_USER_DELETE) {
        log_info("sm: account %s@%s removed by its owner", r->user, r->host);
        sm_kick(s, &bare, "account removed");  /* XEP-0077 §3.2 */
    }
    jid_free(&bare);
    free(c);
}

static void register_iq(sm *s, sm_stanza *st, xml_node *q)
{
    sm_session *sess = st->origin;
    if (!sess || strcmp(q->name, "query") != 0) {
        sm_bounce(s, st, "cancel", "service-unavailable");
        return;
    }
    size_t nlen, dlen;
    const char *node = jid_node(&sess->jid, &nlen);
    const char *dom = jid_domain(&sess->jid, &dlen);
    char *username = mem_strndup(node, nlen), *host = mem_strndup(dom, dlen);
    if (strcmp(sm_stanza_type(st), "get") == 0) {
        xml_arena *a = xml_arena_new(512);
        sm_iq_result(s, st, form(a, username, true));
        xml_arena_free(a);
    } else if (xml_child(q, NS_REGISTER, "remove")) {
        account_ctx *c = mem_zalloc(sizeof(*c));
        *c = (account_ctx){s, sm_stanza_take(st)};
        sm_stanza_free(st);
        sm_submit(s, xdb_request_new(XDB_USER_DELETE, host, username), account_done, c);
    } else {
        const char *user, *pass;
        if (!credentials(st->arena, q, &user, &pass) || strcmp(user, username) != 0) {
            sm_bounce(s, st, "modify", "bad-request");
        } else {
            xdb_request *r = xdb_request_new(XDB_USER_PASSWD, host, username);
            xdb_request_set_password(r, pass);
            account_ctx *c = mem_zalloc(sizeof(*c));
            *c = (account_ctx){s, sm_stanza_take(st)};
            sm_stanza_free(st);
            sm_submit(s, r, account_done, c);
        }
    }
    free(username);
    free(host);
}

/* <host name='...'><register/></host>: which hosts take new accounts from clients (none when
 * there is no configuration file). The module's data: a flag per configured host. */
static const char *const register_options[] = {"host/register", NULL};

static bool register_init(sm *s, const sm_module *self, config *cfg)
{
    const sm_config *c = sm_cfg(s);
    bool *open = mem_array((size_t)c->nhosts + 1, sizeof(bool));
    for (int i = 0; i < c->nhosts; i++)
        open[i] = cfg && config_bool(cfg, c->hosts[i].el, "register", false);
    sm_module_set_data(s, self, open);
    return true;
}

static void register_fini(sm *s, const sm_module *self)
{
    free(sm_module_data(s, self));
}

static const sm_handler register_handlers[] = {
    {"register", .hook = register_preauth},
    {"iq/host/" NS_REGISTER ":*", .iq = register_iq},
    {NULL},
};

const sm_module mod_register = {
    .name = "register",
    .options = register_options,
    .init = register_init,
    .fini = register_fini,
    .handlers = register_handlers,
    .features = (const char *const[]){NS_REGISTER, NULL},
};
