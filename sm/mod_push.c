/* sm/mod_push.c — push notifications (XEP-0357), the account's side: <enable/> and <disable/>
 * from the account's own sessions, its registrations with app servers kept in its user state and
 * in the document store "push" (one document per registration, keyed "JID NODE", holding the
 * <enable/> as it was accepted, plus "count": the messages it missed), the feature in the
 * account's disco#info, and the counter's resets when a session of the account becomes active.
 *
 * Bounds: push/registrations per account (an <enable/> past it replaces the oldest registration:
 * a reinstalled app gets a new node while the old one is still registered); a node of
 * PUSH_NODE_MAX bytes, a publish-options form of PUSH_FORM_MAX. The notifications themselves are
 * sm/push_notify.c's; docs/push.md has the whole behaviour.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/disco.h"
#include "sm/modules.h"
#include "sm/push.h"

#define PUSH_STORE "push"
#define PUSH_COUNT_KEY "count"      /* no space: never a registration's key */
#define PUSH_DOC_MAX (PUSH_FORM_MAX + 2 * XDB_DOC_NAME_MAX + 256)

/* registrations: most per account (an enable past it replaces the oldest); interval: seconds
 * between two notifications to one registration; timeout: seconds to wait for an app server's
 * answer (no other notification goes to it meanwhile); body_max: bytes of a body a notification
 * carries with <include_body/>. */
static const sm_int_option push_options[] = {
    {"push/registrations", 5, 1, PUSH_REGS_HARD_MAX},
    {"push/interval", 5, 0, 86400},
    {"push/timeout", 30, 1, 3600},
    {"push/body_max", 256, 1, 4096},
    {NULL, 0, 0, 0},
};

static const char *const push_paths[] = {"push/include_body", NULL};

long long push_option(sm *s, const char *path) { return sm_module_int(s, &mod_push, path); }

push_data *push_data_of(sm *s) { return sm_module_data(s, &mod_push); }

static push_user *user_of(sm *s, const sm_user *u) { return sm_user_state(s, u, &mod_push); }

/* ---- registrations ---- */

static void reg_free(push_reg *r)
{
    free(r->key);
    free(r->jid);
    free(r->node);
    if (r->arena)
        xml_arena_free(r->arena);
    memset(r, 0, sizeof *r);
}

/* Whether form is a publish-options form (XEP-0004 submit with that FORM_TYPE). */
static bool publish_options(xml_arena *a, const xml_node *form)
{
    const char *type = xml_attr_get(form, "type");
    if (type && strcmp(type, "submit") != 0)
        return false;
    for (const xml_node *f = xml_child(form, NS_XDATA, "field"); f;
         f = xml_next(f, NS_XDATA, "field")) {
        const char *var = xml_attr_get(f, "var");
        const xml_node *v = xml_child(f, NS_XDATA, "value");
        if (var && !strcmp(var, "FORM_TYPE"))
            return v && !strcmp(xml_text(a, v), PUSH_PUBLISH_OPTIONS);
    }
    return false;
}

/* Reads an <enable/> (a client's, or one stored) into out. NULL when it is one; otherwise the
 * reason, with the RFC 6120 condition in *cond. */
static const char *reg_read(xml_arena *a, const xml_node *enable, push_reg *out, const char **cond)
{
    *cond = "bad-request";
    const char *to = xml_attr_get(enable, "jid"), *node = xml_attr_get(enable, "node");
    if (!to || !*to)
        return "<enable/> needs the app server's jid";
    if (!node || !*node)
        return "<enable/> needs a node";
    *cond = "not-acceptable";
    if (strlen(node) > PUSH_NODE_MAX)
        return "the node is too long";
    const xml_node *form = xml_child(enable, NS_XDATA, "x");
    char *xml = form ? sm_xml_string(form, PUSH_FORM_MAX, NULL) : NULL;
    if (form && !xml)
        return "the publish-options form is too large";
    free(xml);
    *cond = "bad-request";
    if (form && !publish_options(a, form))
        return "the form is not a publish-options form";
    jid j;
    if (jid_parse(to, strlen(to), &j) != JID_OK) {
        *cond = "jid-malformed";
        return "the app server's jid is not a JID";
    }
    buf key = BUF_INIT;
    buf_appendf(&key, "%s %s", jid_full(&j), node);
    buf_append(&key, "", 1);
    bool fits = buf_len(&key) - 1 <= XDB_DOC_NAME_MAX;
    if (fits) {
        out->key = mem_strdup(buf_data(&key));
        out->jid = mem_strdup(jid_full(&j));
        out->node = mem_strdup(node);
        const char *since = xml_attr_get(enable, "since");
        out->since_ms = since ? strtoll(since, NULL, 10) : 0;
        if (form) {
            out->arena = xml_arena_new(1024);
            out->form = xml_node_copy(out->arena, NULL, form);
        }
    }
    buf_free(&key);
    jid_free(&j);
    *cond = "not-acceptable";
    return fits ? NULL : "the jid and node are too long";
}

/* What is stored for r: the <enable/> it was read from, with its time. */
static char *reg_document(const push_reg *r, size_t *len)
{
    xml_arena *a = xml_arena_new(1024);
    xml_node *e = xml_element_new(a, NULL, NS_PUSH, "enable");
    xml_attr_set(a, e, NULL, "jid", r->jid);
    xml_attr_set(a, e, NULL, "node", r->node);
    char since[32];
    snprintf(since, sizeof since, "%lld", (long long)r->since_ms);
    xml_attr_set(a, e, NULL, "since", since);
    if (r->form)
        xml_node_copy(a, e, r->form);
    char *xml = sm_xml_string(e, PUSH_DOC_MAX, len);
    xml_arena_free(a);
    return xml;
}

static xdb_request *doc_request(xdb_op op, const jid *account, const char *key)
{
    xdb_request *r = sm_user_request(op, account);
    xdb_request_set_doc(r, PUSH_STORE, key);
    return r;
}

static void doc_done(xdb_request *r, void *ctx)
{
    if (r->status != XDB_OK && r->status != XDB_NOT_FOUND)
        log_warn("sm: push: storing %s of %s@%s failed: %s", r->key, r->user, r->host,
                 r->error[0] ? r->error : xdb_status_name(r->status));
}

static void doc_delete(sm *s, const jid *account, const char *key)
{
    sm_submit(s, doc_request(XDB_DOC_DELETE, account, key), doc_done, NULL);
}

/* Takes u's registration i out of memory (not storage). */
static void reg_remove(push_user *pu, size_t i)
{
    reg_free(&pu->regs[i]);
    pu->regs[i] = pu->regs[--pu->nregs];
}

static ssize_t reg_find(const push_user *pu, const char *key)
{
    for (size_t i = 0; i < pu->nregs; i++)
        if (!strcmp(pu->regs[i].key, key))
            return (ssize_t)i;
    return -1;
}

/* Drops u's oldest registrations, from storage too, until fewer than max are left. */
static void regs_trim(sm *s, sm_user *u, size_t max)
{
    push_user *pu = user_of(s, u);
    while (pu->nregs && pu->nregs >= max) {
        size_t oldest = 0;
        for (size_t i = 1; i < pu->nregs; i++)
            if (pu->regs[i].since_ms < pu->regs[oldest].since_ms)
                oldest = i;
        log_info("sm: push: %s has %zu registrations, the oldest (%s) is dropped",
                 jid_full(&u->jid), pu->nregs, pu->regs[oldest].key);
        doc_delete(s, &u->jid, pu->regs[oldest].key);
        reg_remove(pu, oldest);
    }
}

/* Adds r (taken) to u's registrations in memory, replacing the one of its key or, past the
 * bound, the oldest. */
static void reg_add(sm *s, sm_user *u, push_reg *r)
{
    push_user *pu = user_of(s, u);
    ssize_t i = reg_find(pu, r->key);
    if (i >= 0) {
        reg_free(&pu->regs[i]);
        pu->regs[i] = *r;
        return;
    }
    regs_trim(s, u, (size_t)push_option(s, "push/registrations"));
    if (!pu->regs)
        pu->regs = mem_array(PUSH_REGS_HARD_MAX, sizeof *pu->regs);
    pu->regs[pu->nregs++] = *r;
}

void push_disable(sm *s, const char *account, const char *key)
{
    jid j;
    if (jid_parse(account, strlen(account), &j) != JID_OK)
        return;
    sm_user *u = sm_user_find(s, &j);
    ssize_t i = u ? reg_find(user_of(s, u), key) : -1;
    if (i >= 0)
        reg_remove(user_of(s, u), (size_t)i);
    log_info("sm: push: the app server refused %s's registration %s: disabled", account, key);
    doc_delete(s, &j, key);
    jid_free(&j);
}

/* ---- the counter of missed messages ---- */

static void count_store(sm *s, sm_user *u, uint32_t count)
{
    push_user *pu = user_of(s, u);
    if (pu->count == count)
        return;
    pu->count = count;
    if (!count) {
        doc_delete(s, &u->jid, PUSH_COUNT_KEY);
        return;
    }
    char v[16];
    int n = snprintf(v, sizeof v, "%u", (unsigned)count);
    xdb_request *r = doc_request(XDB_DOC_PUT, &u->jid, PUSH_COUNT_KEY);
    xdb_request_set_value(r, v, (size_t)n);
    r->quota = PUSH_REGS_HARD_MAX + 1;
    sm_submit(s, r, doc_done, NULL);
}

/* A session of the account is active again (initial presence, or resumed): it has the messages. */
static bool session_active(sm *s, sm_event *ev)
{
    count_store(s, ev->session->user, 0);
    return false;
}

/* A message for a loaded account: counted and pushed when it is one to push and nobody would
 * read it now. Messages routed again (from offline storage, stamped by us) were counted when they
 * came. */
static bool inbound(sm *s, sm_event *ev)
{
    sm_user *u = ev->user;
    sm_stanza *st = ev->stanza;
    if (!u || !u->loaded || !user_of(s, u)->nregs || !xml_is(st->node, SM_NS_CLIENT, "message"))
        return false;
    size_t hlen;
    const char *domain = jid_domain(&u->jid, &hlen);
    char host[JID_MAX_LEN + 1];
    snprintf(host, sizeof host, "%.*s", (int)hlen, domain);
    if (sm_delayed_by(st->node, host) || !push_wanted(s, u, st))
        return false;
    uint32_t count = user_of(s, u)->count;
    count_store(s, u, count < 999999 ? count + 1 : count);
    push_notify(s, u, st);
    return false;
}

/* ---- loading with the user ---- */

static void loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    sm_user *u = sm_user_of_request(s, r);
    if (!u)
        return;
    if (r->status != XDB_OK) {
        if (r->status != XDB_NOT_FOUND)
            log_warn("sm: push: loading the registrations of %s failed: %s", jid_full(&u->jid),
                     r->error[0] ? r->error : xdb_status_name(r->status));
        return;
    }
    push_user *pu = user_of(s, u);
    for (size_t i = 0; i < r->docs.n; i++) {
        const xdb_doc *d = &r->docs.v[i];
        if (!d->value.data)
            continue;
        if (!strcmp(d->key, PUSH_COUNT_KEY)) {
            unsigned long n = strtoul(d->value.data, NULL, 10);
            pu->count = n < 999999 ? (uint32_t)n : 999999;
            continue;
        }
        sm_stanza *doc = sm_parse(s, d->value.data, d->value.len);
        push_reg reg = {0};
        const char *cond;
        if (doc && xml_is(doc->node, NS_PUSH, "enable") &&
            !reg_read(doc->arena, doc->node, &reg, &cond) && !strcmp(reg.key, d->key) &&
            reg_find(pu, reg.key) < 0) {
            reg_add(s, u, &reg);
        } else {
            reg_free(&reg);
            log_warn("sm: push: the stored registration %s of %s is malformed: dropped", d->key,
                     jid_full(&u->jid));
            doc_delete(s, &u->jid, d->key);
        }
        sm_stanza_free(doc);
    }
}

static bool user_load(sm *s, sm_event *ev)
{
    xdb_request *r = doc_request(XDB_DOC_LIST, &ev->user->jid, "");
    r->limit = PUSH_REGS_HARD_MAX + 2;   /* the registrations and the count, and one too many */
    sm_submit(s, r, loaded, s);
    return false;
}

static void user_release(void *state)
{
    push_user *pu = state;
    for (size_t i = 0; i < pu->nregs; i++)
        reg_free(&pu->regs[i]);
    free(pu->regs);
}

/* ---- <enable/> and <disable/> ---- */

typedef struct enable_ctx {
    sm *s;
    sm_stanza *st;
} enable_ctx;

static void enabled(xdb_request *r, void *ctx)
{
    enable_ctx *c = ctx;
    if (r->status == XDB_OK) {
        sm_iq_result(c->s, c->st, NULL);
    } else {
        doc_done(r, NULL);
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    }
    free(c);
}

static void enable(sm *s, sm_stanza *st, xml_node *payload)
{
    sm_user *u = st->origin->user;
    push_reg reg = {0};
    const char *cond;
    const char *why = reg_read(st->arena, payload, &reg, &cond);
    if (why) {
        reg_free(&reg);
        sm_bounce_text(s, st, "modify", cond, why);
        return;
    }
    /* Its time orders the registrations for the bound: later than any other, even within one
     * millisecond. */
    reg.since_ms = sm_wall_ms();
    const push_user *pu = user_of(s, u);
    for (size_t i = 0; i < pu->nregs; i++)
        if (pu->regs[i].since_ms >= reg.since_ms)
            reg.since_ms = pu->regs[i].since_ms + 1;
    size_t len;
    char *xml = reg_document(&reg, &len);
    if (!xml) {     /* within the bounds checked, it fits; escaping is what could make it not */
        reg_free(&reg);
        sm_bounce_text(s, st, "modify", "not-acceptable", "the registration is too large");
        return;
    }
    xdb_request *r = doc_request(XDB_DOC_PUT, &u->jid, reg.key);
    xdb_request_set_value(r, xml, len);
    free(xml);
    r->value_max = PUSH_DOC_MAX;
    r->quota = PUSH_REGS_HARD_MAX + 1;
    log_info("sm: push: %s enabled %s", jid_full(&u->jid), reg.key);
    reg_add(s, u, &reg);    /* first: a registration it replaces leaves storage before the put */
    enable_ctx *c = mem_zalloc(sizeof *c);
    *c = (enable_ctx){s, sm_iq_keep(st)};
    sm_submit(s, r, enabled, c);
}

static void disable(sm *s, sm_stanza *st, xml_node *payload)
{
    sm_user *u = st->origin->user;
    const char *to = xml_attr_get(payload, "jid"), *node = xml_attr_get(payload, "node");
    jid j;
    if (!to || !*to) {
        sm_bounce_text(s, st, "modify", "bad-request", "<disable/> needs the app server's jid");
        return;
    }
    if (jid_parse(to, strlen(to), &j) != JID_OK) {
        sm_bounce_text(s, st, "modify", "jid-malformed", "the app server's jid is not a JID");
        return;
    }
    push_user *pu = user_of(s, u);
    for (size_t i = pu->nregs; i-- > 0;) {
        push_reg *r = &pu->regs[i];
        if (strcmp(r->jid, jid_full(&j)) != 0 || (node && strcmp(r->node, node) != 0))
            continue;
        log_info("sm: push: %s disabled %s", jid_full(&u->jid), r->key);
        doc_delete(s, &u->jid, r->key);
        reg_remove(pu, i);
    }
    jid_free(&j);
    sm_iq_result(s, st, NULL);
}

static void push_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (!sm_stanza_to_self(st)) {
        sm_bounce(s, st, "cancel", st->origin ? "forbidden" : "service-unavailable");
        return;
    }
    if (strcmp(sm_stanza_type(st), "set") != 0) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    if (!strcmp(payload->name, "enable"))
        enable(s, st, payload);
    else if (!strcmp(payload->name, "disable"))
        disable(s, st, payload);
    else
        sm_bounce(s, st, "cancel", "feature-not-implemented");
}

/* ---- the module ---- */

static bool account_info(sm *s, sm_event *ev)
{
    disco_feature(ev->arena, ev->node, NS_PUSH);
    return false;
}

static bool push_tick(sm *s, sm_event *ev)
{
    push_notify_tick(s);
    return false;
}

static bool push_metrics(sm *s, sm_event *ev)
{
    push_notify_metrics(s, ev->out);
    return false;
}

static bool push_init(sm *s, const sm_module *self, config *cfg)
{
    push_data *d = mem_zalloc(sizeof *d);
    d->include_body = cfg && config_bool(cfg, NULL, "push/include_body", false);
    push_notify_init(d);
    sm_module_set_data(s, self, d);
    return true;
}

static void push_fini(sm *s, const sm_module *self)
{
    push_data *d = sm_module_data(s, self);
    push_notify_free(d);
    free(d);
}

static const sm_handler push_handlers[] = {
    {"iq/bare/" NS_PUSH ":*", .iq = push_iq},
    {"inbound", .hook = inbound},
    {"user-load", .hook = user_load},
    {"session-available", .hook = session_active},
    {"session-attached", .hook = session_active},
    {"disco-account-info", .hook = account_info},
    {"tick", .hook = push_tick},
    {"metrics", .hook = push_metrics},
    {NULL},
};

const sm_module mod_push = {
    .name = "push",
    .int_options = push_options,
    .options = push_paths,
    .init = push_init,
    .fini = push_fini,
    .handlers = push_handlers,
    .user_state = sizeof(push_user),
    .user_release = user_release,
};
