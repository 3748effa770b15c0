/* sm/mod_admin_commands.c — service administration (XEP-0133) as ad-hoc commands (mod_adhoc) for
 * the administrators sm.xml lists: who they are, and the account commands: add-user,
 * delete-user, disable-user, change-user-password, end-user-session. Statistics (user-stats,
 * get-online-users-num, get-online-users-list) are admin_stats.c's, the announcement and the
 * message of the day admin_motd.c's. Everyone else is <forbidden/> and sees no command.
 *
 * sm.xml: <admins> at the root (administrators of every host) or inside a <host> (of that host
 * alone), each a bare account JID:
 *   <admins><jid>alice@example.org</jid></admins>
 *
 * Disabling an account gives it a random password nobody knows and ends its sessions: logins
 * fail from then on; change-user-password enables it again. (Storage has no lock of its own.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "sm/admin_commands.h"
#include "sm/module.h"
#include "sm/modules.h"

#define MAX_ACCOUNTS 100        /* accounts one command may name */
#define KICK_TEXT "ended by an administrator"

/* ---- administrators ---- */

static void read_admins(config *cfg, const xml_node *parent, admin_list *l)
{
    const xml_node *el = config_first(cfg, parent, "admins");
    for (xml_node *n = el ? config_first(cfg, el, "jid") : NULL; n; n = config_next(n)) {
        const char *v = config_str(cfg, n, NULL, "");
        jid j;
        if (jid_parse(v, strlen(v), &j) != JID_OK) {
            config_fail(cfg, n, "expected an account's JID (user@host), got \"%s\"", v);
            continue;
        }
        if (!jid_node(&j, &(size_t){0}) || !jid_is_bare(&j))
            config_fail(cfg, n, "expected an account's bare JID (user@host), got \"%s\"", v);
        l->jids = mem_realloc(l->jids, (l->n + 1) * sizeof(char *));
        l->jids[l->n++] = mem_strdup(jid_full(&j));
        jid_free(&j);
    }
}

static void free_admins(admin_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->jids[i]);
    free(l->jids);
}

static bool listed(const admin_list *l, const char *bare)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->jids[i], bare) == 0)
            return true;
    return false;
}

bool admin_allowed(sm *s, const jid *requester, const char *host)
{
    const admin_data *d = sm_module_data(s, &mod_admin_commands);
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(requester, bare, sizeof bare);
    if (!jid_node(requester, &(size_t){0}) || !sm_is_local_user(s, requester))
        return false;
    if (listed(&d->root, bare))
        return sm_is_local_host(s, host, strlen(host));
    const sm_config *c = sm_cfg(s);
    for (int i = 0; i < c->nhosts && i < d->nhosts; i++)
        if (strcasecmp(c->hosts[i].name, host) == 0)
            return listed(&d->hosts[i], bare);
    return false;
}

bool admin_account(sm *s, adhoc_call *c, const char *var, const char *value, jid *out)
{
    char why[256];
    size_t dlen;
    if (!value || !*value) {
        snprintf(why, sizeof why, "the field %s is required", var);
    } else if (jid_parse(value, strlen(value), out) != JID_OK) {
        snprintf(why, sizeof why, "%s: \"%.100s\" is not a JID", var, value);
    } else if (!jid_node(out, &(size_t){0}) || !jid_is_bare(out)) {
        snprintf(why, sizeof why, "%s: %.100s is not an account (user@host)", var, value);
        jid_free(out);
    } else {
        const char *dom = jid_domain(out, &dlen);
        char host[JID_PART_MAX + 1];
        snprintf(host, sizeof host, "%.*s", (int)dlen, dom);
        if (admin_allowed(s, adhoc_requester(c), host))
            return true;
        snprintf(why, sizeof why, "%s: %.100s is not an account of a host you administer", var,
                 value);
        jid_free(out);
    }
    adhoc_bad_form(s, c, why);
    return false;
}

void admin_register(sm *s, const adhoc_command *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!adhoc_register(s, &cmds[i]))
            log_error("sm: the ad-hoc command %s is registered twice", cmds[i].node);
}

/* ---- one account: add-user, change-user-password ---- */

typedef struct account_op {
    sm *s;
    adhoc_call *c;
    const char *done;           /* the note when it worked */
} account_op;

static void account_op_done(xdb_request *r, void *ctx)
{
    account_op *op = ctx;
    char text[300];
    if (r->status == XDB_OK) {
        snprintf(text, sizeof text, "%s %s@%s", op->done, r->user, r->host);
        log_notice("sm: admin %s: %s", jid_full(adhoc_requester(op->c)), text);
        adhoc_note(op->c, "info", text);
        adhoc_reply(op->s, op->c, ADHOC_COMPLETED);
    } else if (r->status == XDB_EXISTS) {
        adhoc_fail(op->s, op->c, "cancel", "conflict", NULL, "the account exists");
    } else if (r->status == XDB_NOT_FOUND) {
        adhoc_fail(op->s, op->c, "cancel", "item-not-found", NULL, "no such account");
    } else if (r->status == XDB_ERROR && strstr(r->error, "SASLprep")) {
        adhoc_bad_form(op->s, op->c, "the password has characters SASLprep prohibits");
    } else {
        log_warn("sm: admin command on %s@%s: %s", r->user, r->host, r->error);
        adhoc_fail(op->s, op->c, "wait", "internal-server-error", NULL, NULL);
    }
    free(op);
}

static void submit_account(sm *s, adhoc_call *c, xdb_request *r, const char *done)
{
    account_op *op = mem_zalloc(sizeof(*op));
    op->s = s;
    op->c = c;
    op->done = done;
    sm_submit(s, r, account_op_done, op);
}

xml_node *admin_account_form(adhoc_call *c, const char *title, const char *instructions,
                             const char *label)
{
    xml_node *x = adhoc_form(c, "form", ADMIN_NS, title, instructions);
    adhoc_field(c, x, "accountjid", "jid-single", label, true, NULL);
    return x;
}

static void add_user(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form) {
        xml_node *x = admin_account_form(c, "Adding a User", "Fill out this form to add a user.",
                                         "The Jabber ID for the account to be added");
        adhoc_field(c, x, "password", "text-private", "The password for this account", true,
                    NULL);
        adhoc_field(c, x, "password-verify", "text-private", "Retype password", true, NULL);
        adhoc_reply(s, c, ADHOC_EXECUTING);
        return;
    }
    const char *password = adhoc_value(c, form, "password");
    const char *verify = adhoc_value(c, form, "password-verify");
    jid account;
    if (!admin_account(s, c, "accountjid", adhoc_value(c, form, "accountjid"), &account))
        return;
    xdb_request *r = sm_user_request(XDB_USER_CREATE, &account);
    jid_free(&account);
    if (!password || !*password || !verify || strcmp(password, verify) != 0) {
        xdb_request_free(r);
        adhoc_bad_form(s, c, password && *password ? "the passwords differ"
                                                   : "the field password is required");
        return;
    }
    xdb_request_set_password(r, password);
    submit_account(s, c, r, "Created");
}

static void change_password(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form) {
        xml_node *x = admin_account_form(c, "Changing a User Password",
                                         "Fill out this form to change a user's password.",
                                         "The Jabber ID for this account");
        adhoc_field(c, x, "password", "text-private", "The password for this account", true,
                    NULL);
        adhoc_reply(s, c, ADHOC_EXECUTING);
        return;
    }
    const char *password = adhoc_value(c, form, "password");
    jid account;
    if (!admin_account(s, c, "accountjid", adhoc_value(c, form, "accountjid"), &account))
        return;
    xdb_request *r = sm_user_request(XDB_USER_PASSWD, &account);
    jid_free(&account);
    if (!password || !*password) {
        xdb_request_free(r);
        adhoc_bad_form(s, c, "the field password is required");
        return;
    }
    xdb_request_set_password(r, password);
    submit_account(s, c, r, "Changed the password of");
}

/* ---- several accounts: delete-user, disable-user, end-user-session ---- */

typedef struct batch_op {
    sm *s;
    adhoc_call *c;
    size_t waiting, done;
    buf failed;                 /* "jid (why), " */
    const char *verb;
} batch_op;

static void batch_finish(batch_op *b)
{
    char text[200];
    snprintf(text, sizeof text, "%s %zu account(s)", b->verb, b->done);
    log_notice("sm: admin %s: %s", jid_full(adhoc_requester(b->c)), text);
    adhoc_note(b->c, "info", text);
    if (buf_len(&b->failed)) {
        buf_append(&b->failed, "", 1);
        adhoc_note(b->c, "warn", buf_data(&b->failed));
    }
    adhoc_reply(b->s, b->c, ADHOC_COMPLETED);
    buf_free(&b->failed);
    free(b);
}

static void batch_done(xdb_request *r, void *ctx)
{
    batch_op *b = ctx;
    if (r->status == XDB_OK)
        b->done++;
    else
        buf_appendf(&b->failed, "%s%s@%s: %s", buf_len(&b->failed) ? "; " : "Failed: ", r->user,
                    r->host, r->status == XDB_NOT_FOUND ? "no such account" : "storage failed");
    if (--b->waiting == 0)
        batch_finish(b);
}

static void accounts_form(sm *s, adhoc_call *c, const char *title, const char *label)
{
    xml_node *x = adhoc_form(c, "form", ADMIN_NS, title, NULL);
    adhoc_field(c, x, "accountjids", "jid-multi", label, true, NULL);
    adhoc_reply(s, c, ADHOC_EXECUTING);
}

/* The accountjids field's JIDs (up to MAX_ACCOUNTS, each checked; full JIDs when full_ok);
 * 0 after answering. */
static size_t accounts_read(sm *s, adhoc_call *c, const xml_node *form, bool full_ok,
                            jid *out)
{
    const char *values[MAX_ACCOUNTS + 1];
    size_t n = adhoc_values(c, form, "accountjids", values, MAX_ACCOUNTS + 1);
    const char *why = n == 0 ? "the field accountjids is required"
                      : n > MAX_ACCOUNTS ? "too many accounts at once (100 at most)" : NULL;
    if (why) {
        adhoc_bad_form(s, c, why);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        jid j;
        bool ok;
        if (full_ok && jid_parse(values[i], strlen(values[i]), &j) == JID_OK &&
            !jid_is_bare(&j)) {
            jid bare;
            jid_bare(&j, &bare);
            ok = admin_account(s, c, "accountjids", jid_full(&bare), &out[i]);
            jid_free(&bare);
            if (ok) {
                jid_free(&out[i]);
                out[i] = j;
            } else {
                jid_free(&j);
            }
        } else {
            if (full_ok && values[i][0] && jid_parse(values[i], strlen(values[i]), &j) == JID_OK)
                jid_free(&j);
            ok = admin_account(s, c, "accountjids", values[i], &out[i]);
        }
        if (!ok) {
            while (i--)
                jid_free(&out[i]);
            return 0;
        }
    }
    return n;
}

static void batch_run(sm *s, adhoc_call *c, const xml_node *form, xdb_op op, const char *verb)
{
    jid *accounts = mem_array(MAX_ACCOUNTS + 1, sizeof(jid));
    size_t n = accounts_read(s, c, form, false, accounts);
    if (!n) {
        free(accounts);
        return;
    }
    batch_op *b = mem_zalloc(sizeof(*b));
    b->s = s;
    b->c = c;
    b->verb = verb;
    b->waiting = n;
    buf_init(&b->failed);
    for (size_t i = 0; i < n; i++) {
        sm_kick(s, &accounts[i], KICK_TEXT);
        xdb_request *r = sm_user_request(op, &accounts[i]);
        if (op == XDB_USER_PASSWD) {
            char secret[33];
            random_token(secret, 32);
            secret[32] = '\0';
            xdb_request_set_password(r, secret);
        }
        jid_free(&accounts[i]);
        sm_submit(s, r, batch_done, b);
    }
    free(accounts);
}

static void delete_user(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form)
        accounts_form(s, c, "Deleting a User", "The Jabber ID(s) to delete");
    else
        batch_run(s, c, form, XDB_USER_DELETE, "Deleted");
}

static void disable_user(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form)
        accounts_form(s, c, "Disabling a User", "The Jabber ID(s) to disable");
    else
        batch_run(s, c, form, XDB_USER_PASSWD, "Disabled");
}

static void end_session(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form) {
        accounts_form(s, c, "Ending a User Session",
                      "The Jabber ID(s) for which to end sessions");
        return;
    }
    jid *accounts = mem_array(MAX_ACCOUNTS + 1, sizeof(jid));
    size_t n = accounts_read(s, c, form, true, accounts);
    if (!n) {
        free(accounts);
        return;
    }
    size_t ended = 0;
    for (size_t i = 0; i < n; i++) {
        ended += sm_kick(s, &accounts[i], KICK_TEXT);
        jid_free(&accounts[i]);
    }
    free(accounts);
    char text[100];
    snprintf(text, sizeof text, "Ended %zu session(s)", ended);
    log_notice("sm: admin %s: %s", jid_full(adhoc_requester(c)), text);
    adhoc_note(c, "info", text);
    adhoc_reply(s, c, ADHOC_COMPLETED);
}

/* ---- the module ---- */

static const adhoc_command commands[] = {
    ADMIN_COMMAND("add-user", "Add User", add_user),
    ADMIN_COMMAND("delete-user", "Delete User", delete_user),
    ADMIN_COMMAND("disable-user", "Disable User", disable_user),
    ADMIN_COMMAND("change-user-password", "Change User Password", change_password),
    ADMIN_COMMAND("end-user-session", "End User Session", end_session),
};

static void admin_data_free(admin_data *d)
{
    free_admins(&d->root);
    for (int i = 0; i < d->nhosts; i++)
        free_admins(&d->hosts[i]);
    free(d->hosts);
    free(d);
}

static bool admin_init(sm *s, const sm_module *self, config *cfg)
{
    if (!sm_module_loaded(s, &mod_adhoc)) {
        log_error("sm: module admin_commands needs module adhoc");
        return false;
    }
    const sm_config *c = sm_cfg(s);
    admin_data *d = mem_zalloc(sizeof(*d));
    d->nhosts = c->nhosts;
    d->hosts = mem_array((size_t)c->nhosts + 1, sizeof(admin_list));
    if (cfg) {
        read_admins(cfg, NULL, &d->root);
        for (int i = 0; i < c->nhosts; i++)
            read_admins(cfg, c->hosts[i].el, &d->hosts[i]);
        config_error err;
        if (config_check(cfg, &err) != 0) {
            admin_data_free(d);     /* a bad <admins>: nothing started (fini will not run) */
            return false;
        }
    }
    sm_module_set_data(s, self, d);
    admin_register(s, commands, sizeof commands / sizeof commands[0]);
    admin_stats_register(s);
    return admin_motd_init(s);
}

static void admin_fini(sm *s, const sm_module *self)
{
    admin_data *d = sm_module_data(s, self);
    if (!d)
        return;
    admin_motd_fini(s);
    admin_data_free(d);
}

static const sm_handler admin_handlers[] = {
    {"session-available", .hook = admin_motd_available},
    {NULL},
};

const sm_module mod_admin_commands = {
    .name = "admin_commands",
    .options = (const char *const[]){"admins/jid", "host/admins/jid", NULL},
    .init = admin_init,
    .fini = admin_fini,
    .handlers = admin_handlers,
    .session_state = sizeof(bool),
    .pack = admin_motd_pack,
    .restore = admin_motd_restore,
};
