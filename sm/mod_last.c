/* sm/mod_last.c — Last Activity (XEP-0012). Asked of the server: its uptime (§5). Asked of an
 * account: 0 when it has an available resource, else the seconds since its last logout with the
 * status it left with (§4); only the account itself and contacts allowed to see its presence
 * (subscription from or both) may ask.
 *
 * A logout is a session's unavailable broadcast, whether the client sent it or the server sent it
 * for a session that ended while available (mod_presence gives both to the hooks after its own,
 * as SM_EV_PRESENCE_OUT). Each is recorded in the document store, store "last", key "", as the
 * Unix time in decimal, then, when there is a status, a space and the status (the version 3
 * migration in xdbsql/schema.c writes the same). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_LAST "jabber:iq:last"
#define LAST_STORE "last"


static void last_answer(sm *s, sm_stanza *st, int64_t seconds, const char *status)
{
    char secs[24];
    snprintf(secs, sizeof(secs), "%lld", (long long)(seconds < 0 ? 0 : seconds));
    xml_arena *a = xml_arena_new(256);
    xml_node *q = xml_element_new(a, NULL, NS_LAST, "query");
    xml_attr_set(a, q, NULL, "seconds", secs);
    if (status && *status)
        xml_text_new(a, q, status, strlen(status));
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static void last_uptime(sm *s, sm_stanza *st)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const struct timespec *started = sm_module_data(s, &mod_last);
    last_answer(s, st, (int64_t)(now.tv_sec - started->tv_sec), NULL);
}

static bool user_available(const sm *s, const jid *bare)
{
    sm_user *u = sm_user_find(s, bare);
    for (sm_session *x = u ? u->sessions : NULL; x; x = x->next)
        if (x->available)
            return true;
    return false;
}

static bool sub_allows(xdb_subscription sub)
{
    return sub == XDB_SUB_FROM || sub == XDB_SUB_BOTH;
}

typedef struct last_ctx {
    sm *s;
    sm_stanza *st;      /* the iq being answered; its 'to' is the account asked about */
} last_ctx;

static xdb_request *last_request(xdb_op op, const jid *account)
{
    xdb_request *r = sm_user_request(op, account);
    xdb_request_set_doc(r, LAST_STORE, "");
    return r;
}

/* Reads a stored logout: false when the value is not one. */
static bool last_parse(const xdb_value *v, int64_t *seconds, const char **status)
{
    char *end;
    *seconds = strtoll(v->data, &end, 10);
    if (end == v->data || (*end && *end != ' '))
        return false;
    *status = *end ? end + 1 : NULL;
    return true;
}

static void last_got(xdb_request *r, void *ctx)
{
    last_ctx *c = ctx;
    int64_t seconds;
    const char *status;
    if (user_available(c->s, &c->st->to)) {
        last_answer(c->s, c->st, 0, NULL);   /* logged in meanwhile */
    } else if (r->status == XDB_OK && last_parse(&r->value, &seconds, &status)) {
        last_answer(c->s, c->st, (int64_t)time(NULL) - seconds, status);
    } else if (r->status == XDB_NOT_FOUND) {
        sm_bounce(c->s, c->st, "cancel", "item-not-found");   /* never logged out */
    } else {
        log_warn("sm: reading the last activity of %s@%s failed: %s", r->user, r->host,
                 r->status == XDB_OK ? "not a stored logout" : r->error);
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    }
    free(c);
}

/* The asker may know: answer from what is online, or from storage. */
static void last_allowed(last_ctx *c)
{
    if (user_available(c->s, &c->st->to)) {
        last_answer(c->s, c->st, 0, NULL);
        free(c);
        return;
    }
    sm_submit(c->s, last_request(XDB_DOC_GET, &c->st->to), last_got, c);
}

/* The account is not in memory: its roster says whether the asker may know. */
static void last_roster_loaded(xdb_request *r, void *ctx)
{
    last_ctx *c = ctx;
    if (r->status != XDB_OK) {
        bool missing = r->status == XDB_NOT_FOUND;
        sm_bounce(c->s, c->st, missing ? "cancel" : "wait",
                  missing ? "service-unavailable" : "internal-server-error");
        free(c);
        return;
    }
    char asker[JID_MAX_LEN + 1];
    jid_bare_to_string(&c->st->from, asker, sizeof(asker));
    for (size_t i = 0; i < r->roster.nitems; i++)
        if (strcmp(r->roster.items[i].jid, asker) == 0 && sub_allows(r->roster.items[i].subscription)) {
            last_allowed(c);
            return;
        }
    sm_bounce(c->s, c->st, "auth", "forbidden");
    free(c);
}

static void last_iq(sm *s, sm_stanza *st, xml_node *query)
{
    if (strcmp(sm_stanza_type(st), "get") != 0 || strcmp(query->name, "query") != 0) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    size_t nlen;
    if (st->to.domain_len && !jid_node(&st->to, &nlen)) {
        last_uptime(s, st);
        return;
    }
    if (!st->to.domain_len) {   /* from a session, about its own account */
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&st->origin->jid, bare, sizeof(bare));
        sm_stanza_set_to(st, bare);
    }
    last_ctx *c = mem_zalloc(sizeof(*c));
    c->s = s;
    c->st = sm_iq_keep(st);
    if (jid_equal_bare(&st->from, &st->to)) {
        last_allowed(c);
        return;
    }
    sm_user *u = sm_user_find(s, &st->to);
    if (!u || !u->loaded) {
        sm_submit(s, sm_user_request(XDB_ROSTER_LOAD, &st->to), last_roster_loaded, c);
        return;
    }
    char asker[JID_MAX_LEN + 1];
    jid_bare_to_string(&st->from, asker, sizeof(asker));
    sm_roster_item *it = sm_roster_find(u, asker);
    if (u->exists && it && sub_allows(it->sub)) {
        last_allowed(c);
        return;
    }
    sm_bounce(s, st, "auth", u->exists ? "forbidden" : "service-unavailable");
    free(c);
}

static void last_stored(xdb_request *r, void *ctx)
{
    if (r->status != XDB_OK)
        log_warn("sm: storing the last activity of %s@%s failed: %s", r->user, r->host,
                 r->error[0] ? r->error : xdb_status_name(r->status));
}

/* A session's unavailable broadcast (no 'to'): the logout to record, with its status. */
static bool last_presence_out(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!st->node || st->to.domain_len || strcmp(sm_stanza_type(st), "unavailable") != 0)
        return false;
    xml_node *status = xml_child(st->node, SM_NS_CLIENT, "status");
    const char *text = status ? xml_text(st->arena, status) : "";
    size_t text_len = strlen(text);
    char *value = mem_alloc(24 + text_len);
    size_t len = (size_t)snprintf(value, 24, "%" PRId64, (int64_t)time(NULL));
    if (text_len) {
        value[len++] = ' ';
        memcpy(value + len, text, text_len);
        len += text_len;
    }
    xdb_request *r = last_request(XDB_DOC_PUT, &ev->session->jid);
    xdb_request_set_value(r, value, len);
    free(value);
    sm_submit(s, r, last_stored, NULL);
    return false;
}

/* The module's data: when the server started, for its uptime (§5). */
static bool last_init(sm *s, const sm_module *self, config *cfg)
{
    struct timespec *started = mem_zalloc(sizeof *started);
    clock_gettime(CLOCK_MONOTONIC, started);
    sm_module_set_data(s, self, started);
    return true;
}

static void last_fini(sm *s, const sm_module *self)
{
    free(sm_module_data(s, self));
}

static const sm_handler last_handlers[] = {
    {"iq/any/" NS_LAST ":*", .iq = last_iq},
    {"presence-out", .hook = last_presence_out},
    {NULL},
};

const sm_module mod_last = {
    .name = "last",
    .init = last_init,
    .fini = last_fini,
    .handlers = last_handlers,
    .features = (const char *const[]){NS_LAST, NULL},
};
