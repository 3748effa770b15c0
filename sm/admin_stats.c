/* sm/admin_stats.c — mod_admin_commands' statistics (XEP-0133): user-stats
 * (roster size and online resources of an account; the SM does not know clients' addresses,
 * the fronts do, so there is no ipaddresses field), get-online-users-num and
 * get-online-users-list (the host's accounts with a session, sorted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "sm/admin_commands.h"

typedef struct stats_op {
    sm *s;
    adhoc_call *c;
    jid account;
} stats_op;

static void stats_answer(sm *s, adhoc_call *c, const jid *account, long long roster)
{
    xml_node *x = adhoc_form(c, "result", ADMIN_NS, "User Statistics", NULL);
    adhoc_field(c, x, "accountjid", "jid-single", "The Jabber ID of the user", false,
                jid_full(account));
    char n[32];
    snprintf(n, sizeof n, "%lld", roster);
    adhoc_field(c, x, "rostersize", "text-single", "Roster size", false, n);
    xml_node *res = adhoc_field(c, x, "onlineresources", "text-multi", "Online resources", false,
                                NULL);
    sm_user *u = sm_user_find(s, account);
    for (sm_session *sess = u ? u->sessions : NULL; sess; sess = sess->next) {
        size_t rlen;
        const char *r = jid_resource(&sess->jid, &rlen);
        char resource[JID_PART_MAX + 1];
        snprintf(resource, sizeof resource, "%.*s", (int)rlen, r ? r : "");
        adhoc_field_value(c, res, resource);
    }
    /* The session manager does not know the clients' addresses (the fronts do): no
     * ipaddresses field. */
    adhoc_reply(s, c, ADHOC_COMPLETED);
}

static void stats_loaded(xdb_request *r, void *ctx)
{
    stats_op *op = ctx;
    if (r->status == XDB_OK)
        stats_answer(op->s, op->c, &op->account, (long long)r->roster.nitems);
    else if (r->status == XDB_NOT_FOUND)
        adhoc_fail(op->s, op->c, "cancel", "item-not-found", NULL, "no such account");
    else
        adhoc_fail(op->s, op->c, "wait", "internal-server-error", NULL, NULL);
    jid_free(&op->account);
    free(op);
}

static void user_stats(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form) {
        admin_account_form(c, "Get User Statistics",
                           "Fill out this form to gather user statistics.",
                           "The Jabber ID for statistics");
        adhoc_reply(s, c, ADHOC_EXECUTING);
        return;
    }
    jid account;
    if (!admin_account(s, c, "accountjid", adhoc_value(c, form, "accountjid"), &account))
        return;
    sm_user *u = sm_user_find(s, &account);
    if (u && u->loaded && u->exists) {
        stats_answer(s, c, &account, (long long)u->nitems);
        jid_free(&account);
        return;
    }
    stats_op *op = mem_zalloc(sizeof(*op));
    op->s = s;
    op->c = c;
    op->account = account;
    sm_submit(s, sm_user_request(XDB_ROSTER_LOAD, &account), stats_loaded, op);
}

/* ---- online users ---- */

typedef struct online {
    const char *host;
    char **bare;
    size_t n;
} online;

static void online_collect(sm_session *sess, void *ctx)
{
    online *o = ctx;
    size_t dlen;
    const char *dom = jid_domain(&sess->jid, &dlen);
    if (strlen(o->host) != dlen || strncasecmp(o->host, dom, dlen) != 0)
        return;
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(&sess->jid, bare, sizeof bare);
    o->bare = mem_realloc(o->bare, (o->n + 1) * sizeof(char *));
    o->bare[o->n++] = mem_strdup(bare);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The host's accounts with a session, sorted, each once. */
static void online_users(sm *s, const char *host, online *o)
{
    *o = (online){.host = host};
    sm_each_session(s, online_collect, o);
    if (o->n)
        qsort(o->bare, o->n, sizeof(char *), str_cmp);
    size_t w = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (w && strcmp(o->bare[w - 1], o->bare[i]) == 0)
            free(o->bare[i]);
        else
            o->bare[w++] = o->bare[i];
    }
    o->n = w;
}

static void online_free(online *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->bare[i]);
    free(o->bare);
}

static void online_num(sm *s, adhoc_call *c, const xml_node *form)
{
    online o;
    online_users(s, adhoc_host(c), &o);
    char n[32];
    snprintf(n, sizeof n, "%zu", o.n);
    online_free(&o);
    xml_node *x = adhoc_form(c, "result", ADMIN_NS, "Number of Online Users", NULL);
    adhoc_field(c, x, "onlineusersnum", "text-single", "The number of online users", false, n);
    adhoc_reply(s, c, ADHOC_COMPLETED);
}

static void online_list(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form) {
        xml_node *x = adhoc_form(c, "form", ADMIN_NS, "Requesting List of Online Users", NULL);
        xml_node *f = adhoc_field(c, x, "max_items", "list-single",
                                  "Maximum number of items to show", false, "100");
        static const char *const options[] = {"25", "50", "75", "100", "150", "200", "none"};
        for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
            adhoc_field_option(c, f, options[i]);
        adhoc_reply(s, c, ADHOC_EXECUTING);
        return;
    }
    const char *max = adhoc_value(c, form, "max_items");
    long limit = 0;
    if (max && *max && strcmp(max, "none") != 0) {
        char *end;
        limit = strtol(max, &end, 10);
        if (*end || limit <= 0) {
            adhoc_bad_form(s, c, "max_items: expected a positive number or none");
            return;
        }
    }
    online o;
    online_users(s, adhoc_host(c), &o);
    xml_node *x = adhoc_form(c, "result", ADMIN_NS, "List of Online Users", NULL);
    xml_node *f = adhoc_field(c, x, "onlineuserjids", "text-multi", "The list of all online users",
                              false, NULL);
    for (size_t i = 0; i < o.n && (!limit || i < (size_t)limit); i++)
        adhoc_field_value(c, f, o.bare[i]);
    online_free(&o);
    adhoc_reply(s, c, ADHOC_COMPLETED);
}

/* ---- registration ---- */

static const adhoc_command commands[] = {
    ADMIN_COMMAND("user-stats", "Get User Statistics", user_stats),
    ADMIN_COMMAND("get-online-users-num", "Get Number of Online Users", online_num),
    ADMIN_COMMAND("get-online-users-list", "Get List of Online Users", online_list),
};

void admin_stats_register(sm *s)
{
    admin_register(s, commands, sizeof commands / sizeof commands[0]);
}
