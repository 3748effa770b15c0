/* sm/mod_adhoc.c — ad-hoc commands (XEP-0050) on the server's JID, for the commands other modules
 * register (sm/adhoc.h): the command list (disco#items of node http://jabber.org/protocol/commands,
 * only the commands the asker may run), each command's disco#info, and execution: sessions with
 * ids, the actions execute, complete, cancel (prev and next are bad-action: every command has one
 * form stage), data forms and notes, and XEP-0050's errors (malformed-action, bad-action,
 * bad-sessionid, session-expired, bad-payload).
 *
 * Sessions are bounded: ADHOC_PER_REQUESTER per full JID (a new one ends that JID's oldest idle
 * one), ADHOC_SESSIONS_MAX in all (then <resource-constraint/>), and ADHOC_TIMEOUT_MS idle (then
 * <session-expired/>; the clock's tick reaps them). A session id starts with the monotonic time
 * it was made, so an id that is not known any more is told expired when it is that old, and
 * bad-sessionid otherwise. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"
#include "sm/adhoc.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_INFO "http://jabber.org/protocol/disco#info"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"
#define ADHOC_SESSIONS_MAX 256
#define ADHOC_PER_REQUESTER 4
#define ADHOC_TIMEOUT_MS (10 * 60 * 1000)
#define ADHOC_ID_LEN 33         /* 16 hex digits of time, '-', 16 random characters */

typedef struct adhoc_session {
    char id[ADHOC_ID_LEN + 1];
    char *owner;                /* the requester's full JID */
    const adhoc_command *cmd;
    int64_t last_ms;            /* sm_now_ms of its last request */
    bool busy;                  /* a step has not answered yet */
    struct adhoc_session *next;
} adhoc_session;

typedef struct adhoc_data {
    const adhoc_command **cmds;
    size_t ncmds;
    adhoc_session *sessions;    /* newest first */
    size_t nsessions;
} adhoc_data;

struct adhoc_call {
    sm_stanza *st;              /* the iq, kept (sm_iq_keep) */
    const adhoc_command *cmd;
    char id[ADHOC_ID_LEN + 1];
    char host[JID_PART_MAX + 1];
    xml_arena *a;
    xml_node *body;             /* what goes in the <command/>: notes and forms */
};

static adhoc_data *data_of(const sm *s)
{
    return sm_module_data(s, &mod_adhoc);
}

bool adhoc_register(sm *s, const adhoc_command *cmd)
{
    if (!sm_module_loaded(s, &mod_adhoc))
        return false;
    adhoc_data *d = data_of(s);
    for (size_t i = 0; i < d->ncmds; i++)
        if (strcmp(d->cmds[i]->node, cmd->node) == 0)
            return false;
    d->cmds = mem_realloc(d->cmds, (d->ncmds + 1) * sizeof(*d->cmds));
    d->cmds[d->ncmds++] = cmd;
    return true;
}

static const adhoc_command *command_find(const adhoc_data *d, const char *node)
{
    for (size_t i = 0; node && i < d->ncmds; i++)
        if (strcmp(d->cmds[i]->node, node) == 0)
            return d->cmds[i];
    return NULL;
}

static bool command_allowed(sm *s, const adhoc_command *cmd, const jid *requester,
                            const char *host)
{
    return !cmd->allowed || cmd->allowed(s, requester, host);
}

/* ---- sessions ---- */

static void session_remove(adhoc_data *d, const char *id)
{
    for (adhoc_session **pp = &d->sessions; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            adhoc_session *x = *pp;
            *pp = x->next;
            free(x->owner);
            free(x);
            d->nsessions--;
            return;
        }
}

static adhoc_session *session_find(adhoc_data *d, const char *id)
{
    for (adhoc_session *x = d->sessions; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return x;
    return NULL;
}

/* A new session for owner, or NULL at the bound. */
static adhoc_session *session_new(sm *s, adhoc_data *d, const char *owner,
                                  const adhoc_command *cmd)
{
    size_t mine = 0;
    adhoc_session *oldest = NULL;
    for (adhoc_session *x = d->sessions; x; x = x->next)
        if (strcmp(x->owner, owner) == 0) {
            mine++;
            if (!x->busy)
                oldest = x;
        }
    if (mine >= ADHOC_PER_REQUESTER && oldest)
        session_remove(d, oldest->id);
    else if (d->nsessions >= ADHOC_SESSIONS_MAX)
        return NULL;
    adhoc_session *x = mem_zalloc(sizeof(*x));
    char token[17];
    random_token(token, 16);
    token[16] = '\0';
    snprintf(x->id, sizeof x->id, "%016" PRIx64 "-%s", (uint64_t)sm_now_ms(s), token);
    x->owner = mem_strdup(owner);
    x->cmd = cmd;
    x->last_ms = sm_now_ms(s);
    x->next = d->sessions;
    d->sessions = x;
    d->nsessions++;
    return x;
}

static bool expired(const sm *s, int64_t since)
{
    return sm_now_ms(s) - since >= ADHOC_TIMEOUT_MS;
}

/* An id we do not know: made long enough ago to have expired (true), or never ours. */
static bool id_expired(const sm *s, const char *id)
{
    if (strlen(id) != ADHOC_ID_LEN || id[16] != '-')
        return false;
    char *end;
    unsigned long long made = strtoull(id, &end, 16);
    return end == id + 16 && (int64_t)made <= sm_now_ms(s) && expired(s, (int64_t)made);
}

static bool adhoc_tick(sm *s, sm_event *ev)
{
    adhoc_data *d = data_of(s);
    for (adhoc_session **pp = &d->sessions; *pp;) {
        adhoc_session *x = *pp;
        if (!x->busy && expired(s, x->last_ms)) {
            *pp = x->next;
            free(x->owner);
            free(x);
            d->nsessions--;
        } else {
            pp = &x->next;
        }
    }
    return false;
}

/* ---- calls: building and sending the answer ---- */

const jid *adhoc_requester(const adhoc_call *c)
{
    return &c->st->from;
}

const char *adhoc_host(const adhoc_call *c)
{
    return c->host;
}

static xml_node *form_field(const xml_node *form, const char *var)
{
    for (xml_node *f = xml_child(form, ADHOC_NS_DATA, "field"); f;
         f = xml_next(f, ADHOC_NS_DATA, "field")) {
        const char *v = xml_attr_get(f, "var");
        if (v && strcmp(v, var) == 0)
            return f;
    }
    return NULL;
}

const char *adhoc_value(adhoc_call *c, const xml_node *form, const char *var)
{
    xml_node *f = form ? form_field(form, var) : NULL;
    if (!f)
        return NULL;
    xml_node *v = xml_child(f, ADHOC_NS_DATA, "value");
    return v ? xml_text(c->a, v) : "";
}

size_t adhoc_values(adhoc_call *c, const xml_node *form, const char *var, const char **out,
                    size_t max)
{
    xml_node *f = form ? form_field(form, var) : NULL;
    size_t n = 0;
    for (xml_node *v = f ? xml_child(f, ADHOC_NS_DATA, "value") : NULL; v && n < max;
         v = xml_next(v, ADHOC_NS_DATA, "value"))
        out[n++] = xml_text(c->a, v);
    return n;
}

xml_node *adhoc_form(adhoc_call *c, const char *type, const char *form_type, const char *title,
                     const char *instructions)
{
    xml_node *x = xml_element_new(c->a, c->body, ADHOC_NS_DATA, "x");
    xml_attr_set(c->a, x, NULL, "type", type);
    if (title)
        xml_text_new(c->a, xml_element_new(c->a, x, ADHOC_NS_DATA, "title"), title,
                     strlen(title));
    if (instructions)
        xml_text_new(c->a, xml_element_new(c->a, x, ADHOC_NS_DATA, "instructions"),
                     instructions, strlen(instructions));
    if (form_type)
        adhoc_field(c, x, "FORM_TYPE", "hidden", NULL, false, form_type);
    return x;
}

void adhoc_field_value(adhoc_call *c, xml_node *field, const char *value)
{
    xml_text_new(c->a, xml_element_new(c->a, field, ADHOC_NS_DATA, "value"), value,
                 strlen(value));
}

void adhoc_field_option(adhoc_call *c, xml_node *field, const char *value)
{
    xml_node *o = xml_element_new(c->a, field, ADHOC_NS_DATA, "option");
    xml_text_new(c->a, xml_element_new(c->a, o, ADHOC_NS_DATA, "value"), value, strlen(value));
}

xml_node *adhoc_field(adhoc_call *c, xml_node *form, const char *var, const char *type,
                      const char *label, bool required, const char *value)
{
    xml_node *f = xml_element_new(c->a, form, ADHOC_NS_DATA, "field");
    xml_attr_set(c->a, f, NULL, "var", var);
    if (type)
        xml_attr_set(c->a, f, NULL, "type", type);
    if (label)
        xml_attr_set(c->a, f, NULL, "label", label);
    if (required)
        xml_element_new(c->a, f, ADHOC_NS_DATA, "required");
    if (value)
        adhoc_field_value(c, f, value);
    return f;
}

void adhoc_note(adhoc_call *c, const char *type, const char *text)
{
    xml_node *n = xml_element_new(c->a, c->body, ADHOC_NS, "note");
    xml_attr_set(c->a, n, NULL, "type", type);
    xml_text_new(c->a, n, text, strlen(text));
}

static void call_free(adhoc_call *c)
{
    xml_arena_free(c->a);
    free(c);
}

static void command_answer(sm *s, sm_stanza *st, xml_arena *a, const char *node, const char *id,
                           const char *status, const xml_node *body, bool form_stage)
{
    xml_node *cmd = xml_element_new(a, NULL, ADHOC_NS, "command");
    xml_attr_set(a, cmd, NULL, "node", node);
    xml_attr_set(a, cmd, NULL, "sessionid", id);
    xml_attr_set(a, cmd, NULL, "status", status);
    if (form_stage) {
        xml_node *actions = xml_element_new(a, cmd, ADHOC_NS, "actions");
        xml_attr_set(a, actions, NULL, "execute", "complete");
        xml_element_new(a, actions, ADHOC_NS, "complete");
    }
    for (const xml_node *n = body ? body->children : NULL; n; n = n->next)
        xml_node_copy(a, cmd, n);
    sm_iq_result(s, st, cmd);
}

void adhoc_reply(sm *s, adhoc_call *c, adhoc_status status)
{
    adhoc_data *d = data_of(s);
    adhoc_session *x = session_find(d, c->id);
    if (x) {
        x->busy = false;
        x->last_ms = sm_now_ms(s);
    }
    bool done = status == ADHOC_COMPLETED;
    if (done)
        session_remove(d, c->id);
    command_answer(s, c->st, c->a, c->cmd->node, c->id, done ? "completed" : "executing",
                   c->body, !done);
    call_free(c);
}

static void error_answer(sm *s, sm_stanza *st, const char *type, const char *condition,
                         const char *app, const char *text)
{
    sm_bounce_app(s, st, type, condition, app ? ADHOC_NS : NULL, app, text);
}

void adhoc_fail(sm *s, adhoc_call *c, const char *type, const char *condition, const char *app,
                const char *text)
{
    session_remove(data_of(s), c->id);
    error_answer(s, c->st, type, condition, app, text);
    c->st = NULL;
    call_free(c);
}

void adhoc_bad_form(sm *s, adhoc_call *c, const char *text)
{
    adhoc_fail(s, c, "modify", "bad-request", "bad-payload", text);
}

/* ---- requests ---- */

static bool action_known(const char *action)
{
    static const char *const known[] = {"execute", "cancel", "prev", "next", "complete", NULL};
    for (int i = 0; known[i]; i++)
        if (strcmp(action, known[i]) == 0)
            return true;
    return false;
}

static void run_step(sm *s, sm_stanza *st, const adhoc_command *cmd, adhoc_session *x,
                     const char *host, const xml_node *form)
{
    adhoc_call *c = mem_zalloc(sizeof(*c));
    c->st = st;
    c->cmd = cmd;
    snprintf(c->id, sizeof c->id, "%s", x->id);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->a = xml_arena_new(1024);
    c->body = xml_element_new(c->a, NULL, ADHOC_NS, "command");
    x->busy = true;
    x->last_ms = sm_now_ms(s);
    cmd->step(s, c, form);
}

/* A submitted form's FORM_TYPE, when it has one, is the command's (XEP-0068). */
static bool form_type_ok(const adhoc_command *cmd, const xml_node *form)
{
    xml_node *f = form_field(form, "FORM_TYPE");
    xml_node *v = f ? xml_child(f, ADHOC_NS_DATA, "value") : NULL;
    if (!v || !cmd->form_type)
        return true;
    const xml_node *t = v->children;
    size_t n = strlen(cmd->form_type);
    return t && t->kind == XML_TEXT && !t->next && t->text_len == n &&
           memcmp(t->text, cmd->form_type, n) == 0;
}

/* The session ends: status canceled. */
static void cancel(sm *s, sm_stanza *st, adhoc_data *d, const adhoc_command *cmd, const char *id)
{
    session_remove(d, id);
    xml_arena *a = xml_arena_new(256);
    command_answer(s, st, a, cmd->node, id, "canceled", NULL, false);
    xml_arena_free(a);
}

static void adhoc_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    size_t hlen;
    const char *dom = st->to.domain_len ? jid_domain(&st->to, &hlen) : NULL;
    if (!dom || jid_node(&st->to, &(size_t){0})) {
        sm_bounce(s, st, "cancel", "service-unavailable");
        return;
    }
    if (strcmp(sm_stanza_type(st), "set") != 0 || strcmp(payload->name, "command") != 0) {
        sm_bounce(s, st, "cancel", "bad-request");
        return;
    }
    char host[JID_PART_MAX + 1];
    snprintf(host, sizeof host, "%.*s", (int)hlen, dom);
    st = sm_iq_keep(st);
    adhoc_data *d = data_of(s);
    const char *node = xml_attr_get(payload, "node");
    const char *action = xml_attr_get(payload, "action");
    const char *id = xml_attr_get(payload, "sessionid");
    const adhoc_command *cmd = command_find(d, node);
    if (!action)
        action = "execute";
    if (!cmd) {
        error_answer(s, st, "cancel", "item-not-found", NULL, "no such command");
        return;
    }
    if (!command_allowed(s, cmd, &st->from, host)) {
        error_answer(s, st, "auth", "forbidden", NULL,
                     "this command is for the server's administrators");
        return;
    }
    if (!action_known(action)) {
        error_answer(s, st, "modify", "bad-request", "malformed-action", NULL);
        return;
    }
    if (!id) {
        if (strcmp(action, "execute") != 0) {
            error_answer(s, st, "modify", "bad-request", "bad-sessionid",
                         "only execute starts a command");
            return;
        }
        adhoc_session *x = session_new(s, d, jid_full(&st->from), cmd);
        if (!x) {
            error_answer(s, st, "wait", "resource-constraint", NULL,
                         "too many commands under way");
            return;
        }
        run_step(s, st, cmd, x, host, NULL);
        return;
    }
    adhoc_session *x = session_find(d, id);
    if (x && expired(s, x->last_ms) && !x->busy) {
        session_remove(d, id);
        x = NULL;
    }
    if (!x) {
        if (id_expired(s, id))
            error_answer(s, st, "cancel", "not-allowed", "session-expired", NULL);
        else
            error_answer(s, st, "modify", "bad-request", "bad-sessionid", NULL);
        return;
    }
    if (strcmp(x->owner, jid_full(&st->from)) != 0 || x->cmd != cmd) {
        error_answer(s, st, "modify", "bad-request", "bad-sessionid", NULL);
        return;
    }
    if (x->busy) {
        error_answer(s, st, "wait", "unexpected-request", NULL, "the last step is under way");
        return;
    }
    if (strcmp(action, "cancel") == 0) {
        cancel(s, st, d, cmd, id);
        return;
    }
    if (strcmp(action, "prev") == 0 || strcmp(action, "next") == 0) {
        error_answer(s, st, "modify", "bad-request", "bad-action", NULL);
        return;
    }
    xml_node *form = xml_child(payload, ADHOC_NS_DATA, "x");
    const char *type = form ? xml_attr_get(form, "type") : NULL;
    if (type && strcmp(type, "cancel") == 0) {
        cancel(s, st, d, cmd, id);     /* a form canceled (XEP-0004 §3.1) */
        return;
    }
    if (!type || strcmp(type, "submit") != 0 || !form_type_ok(cmd, form)) {
        session_remove(d, id);
        error_answer(s, st, "modify", "bad-request", "bad-payload",
                     type && strcmp(type, "submit") == 0
                         ? "the form's FORM_TYPE is not the command's"
                         : "expected the command's form, submitted (type submit)");
        return;
    }
    run_step(s, st, cmd, x, host, form);
}

/* ---- disco ---- */

static const char *disco_host(const sm_event *ev, char host[JID_PART_MAX + 1])
{
    size_t hlen;
    const sm_stanza *st = ev->stanza;
    const char *dom = st->to.domain_len ? jid_domain(&st->to, &hlen) : NULL;
    if (!dom)
        return NULL;
    snprintf(host, JID_PART_MAX + 1, "%.*s", (int)hlen, dom);
    return host;
}

static void identity(sm_event *ev, const char *type, const char *name)
{
    xml_node *id = xml_element_new(ev->arena, ev->node, NS_INFO, "identity");
    xml_attr_set(ev->arena, id, NULL, "category", "automation");
    xml_attr_set(ev->arena, id, NULL, "type", type);
    xml_attr_set(ev->arena, id, NULL, "name", name);
}

static void feature(sm_event *ev, const char *var)
{
    xml_attr_set(ev->arena, xml_element_new(ev->arena, ev->node, NS_INFO, "feature"), NULL, "var",
                 var);
}

static bool adhoc_node_items(sm *s, sm_event *ev)
{
    char host[JID_PART_MAX + 1];
    if (strcmp(ev->name, ADHOC_NS) != 0 || !disco_host(ev, host))
        return false;
    adhoc_data *d = data_of(s);
    for (size_t i = 0; i < d->ncmds; i++) {
        if (!command_allowed(s, d->cmds[i], &ev->stanza->from, host))
            continue;
        xml_node *item = xml_element_new(ev->arena, ev->node, NS_ITEMS, "item");
        xml_attr_set(ev->arena, item, NULL, "jid", host);
        xml_attr_set(ev->arena, item, NULL, "node", d->cmds[i]->node);
        xml_attr_set(ev->arena, item, NULL, "name", d->cmds[i]->name);
    }
    return true;
}

static bool adhoc_node_info(sm *s, sm_event *ev)
{
    char host[JID_PART_MAX + 1];
    if (!disco_host(ev, host))
        return false;
    if (strcmp(ev->name, ADHOC_NS) == 0) {
        identity(ev, "command-list", "Commands");
        return true;
    }
    const adhoc_command *cmd = command_find(data_of(s), ev->name);
    if (!cmd || !command_allowed(s, cmd, &ev->stanza->from, host))
        return false;
    identity(ev, "command-node", cmd->name);
    feature(ev, ADHOC_NS);
    feature(ev, ADHOC_NS_DATA);
    return true;
}

/* ---- the module ---- */

static bool adhoc_init(sm *s, const sm_module *self, config *cfg)
{
    sm_module_set_data(s, self, mem_zalloc(sizeof(adhoc_data)));
    return true;
}

static void adhoc_fini(sm *s, const sm_module *self)
{
    adhoc_data *d = sm_module_data(s, self);
    if (!d)
        return;
    while (d->sessions)
        session_remove(d, d->sessions->id);
    free(d->cmds);
    free(d);
}

static const sm_handler adhoc_handlers[] = {
    {"iq/any/" ADHOC_NS ":*", .iq = adhoc_iq},
    {"disco-node-items", .hook = adhoc_node_items},
    {"disco-node-info", .hook = adhoc_node_info},
    {"tick", .hook = adhoc_tick},
    {NULL},
};

const sm_module mod_adhoc = {
    .name = "adhoc",
    .init = adhoc_init,
    .fini = adhoc_fini,
    .handlers = adhoc_handlers,
    .features = (const char *const[]){ADHOC_NS, NULL},
};
