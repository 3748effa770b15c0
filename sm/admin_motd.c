/* sm/admin_motd.c — mod_admin_commands' announcement and message of the day (XEP-0133):
 * announce (a headline to every online session of the host, sm/announce.h), set-motd, edit-motd,
 * delete-motd. A host's message of the day is sent to each of its sessions once, when it becomes
 * available (a flag in the session's STATE record, so an SM restart does not send it again).
 *
 * Storage: the document "motd" (key "") of the host's own storage row (host, user ""), made with
 * XDB_ROOM_CREATE as a room's row is: an owner of documents that never authenticates and is
 * never listed as an account. Read once per host when the SM starts, kept in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "sm/admin_commands.h"
#include "sm/announce.h"
#include "sm/module.h"
#include "sm/modules.h"

#define MOTD_STORE "motd"
#define MOTD_MAX 4096
#define ANNOUNCE_MAX 4096

static void admin_motd_register(sm *s);

static admin_data *data_of(const sm *s)
{
    return sm_module_data(s, &mod_admin_commands);
}

int admin_host_index(const sm *s, const char *host)
{
    const sm_config *c = sm_cfg(s);
    for (int i = 0; i < c->nhosts; i++)
        if (strcasecmp(c->hosts[i].name, host) == 0)
            return i;
    return -1;
}

/* A text-multi field's values joined by newlines ("" when none); NULL when longer than max. */
static char *multi_text(adhoc_call *c, const xml_node *form, const char *var, size_t max)
{
    const char *lines[64];
    size_t n = adhoc_values(c, form, var, lines, 64);
    buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        buf_appendf(&b, "%s%s", i ? "\n" : "", lines[i]);
    buf_append(&b, "", 1);
    char *text = buf_len(&b) - 1 <= max ? mem_strdup(buf_data(&b)) : NULL;
    buf_free(&b);
    return text;
}

/* ---- announce ---- */

static void announce(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form) {
        xml_node *x = adhoc_form(c, "form", ADMIN_NS, "Making an Announcement",
                                 "Fill out this form to make an announcement to all active "
                                 "users of this service.");
        adhoc_field(c, x, "subject", "text-single", "Subject", false, NULL);
        adhoc_field(c, x, "announcement", "text-multi", "Announcement", true, NULL);
        adhoc_reply(s, c, ADHOC_EXECUTING);
        return;
    }
    char *body = multi_text(c, form, "announcement", ANNOUNCE_MAX);
    if (!body || !*body) {
        free(body);
        adhoc_bad_form(s, c, body ? "the field announcement is required"
                                  : "the announcement is too long (4096 bytes at most)");
        return;
    }
    const char *subject = adhoc_value(c, form, "subject");
    size_t n = sm_announce(s, adhoc_host(c), subject, body);
    free(body);
    char text[100];
    snprintf(text, sizeof text, "Sent to %zu session(s)", n);
    log_notice("sm: admin %s: announcement to %s: %s", jid_full(adhoc_requester(c)),
               adhoc_host(c), text);
    adhoc_note(c, "info", text);
    adhoc_reply(s, c, ADHOC_COMPLETED);
}

/* ---- the message of the day ---- */

typedef struct motd_op {
    sm *s;
    adhoc_call *c;              /* NULL: the start's read */
    int host;
    char *text;                 /* what is being stored (NULL: deleted) */
} motd_op;

static void motd_set_memory(sm *s, int host, char *text)
{
    admin_data *d = data_of(s);
    free(d->motd[host]);
    d->motd[host] = text;
}

static void motd_loaded(xdb_request *r, void *ctx)
{
    motd_op *op = ctx;
    if (r->status == XDB_OK && r->value.len)
        motd_set_memory(op->s, op->host, mem_strndup(r->value.data, r->value.len));
    else if (r->status != XDB_OK && r->status != XDB_NOT_FOUND)
        log_warn("sm: reading the message of the day of %s failed: %s", r->host, r->error);
    free(op);
}

bool admin_motd_init(sm *s)
{
    admin_data *d = data_of(s);
    const sm_config *c = sm_cfg(s);
    d->motd = mem_array((size_t)c->nhosts + 1, sizeof(char *));
    for (int i = 0; i < c->nhosts; i++) {
        motd_op *op = mem_zalloc(sizeof(*op));
        op->s = s;
        op->host = i;
        xdb_request *r = xdb_request_new(XDB_DOC_GET, c->hosts[i].name, "");
        xdb_request_set_doc(r, MOTD_STORE, "");
        sm_submit(s, r, motd_loaded, op);
    }
    admin_motd_register(s);
    return true;
}

void admin_motd_fini(sm *s)
{
    admin_data *d = data_of(s);
    for (int i = 0; d->motd && i < d->nhosts; i++)
        free(d->motd[i]);
    free(d->motd);
}

static void motd_stored(xdb_request *r, void *ctx)
{
    motd_op *op = ctx;
    if (r->status == XDB_OK || (r->op == XDB_DOC_DELETE && r->status == XDB_NOT_FOUND)) {
        motd_set_memory(op->s, op->host, op->text);
        op->text = NULL;
        const char *what = r->op == XDB_DOC_DELETE ? "Deleted" : "Set";
        log_notice("sm: admin %s: %s the message of the day of %s",
                   jid_full(adhoc_requester(op->c)), what, r->host);
        adhoc_note(op->c, "info", r->op == XDB_DOC_DELETE ? "Message of the day deleted"
                                                          : "Message of the day set");
        adhoc_reply(op->s, op->c, ADHOC_COMPLETED);
    } else {
        log_warn("sm: storing the message of the day of %s failed: %s", r->host, r->error);
        adhoc_fail(op->s, op->c, "wait", "internal-server-error", NULL, NULL);
    }
    free(op->text);
    free(op);
}

static void row_made(xdb_request *r, void *ctx)
{
    if (r->status != XDB_OK)
        log_warn("sm: the storage row of %s for its message of the day: %s", r->host,
                 r->status == XDB_EXISTS ? "an account has that name" : r->error);
}

static void motd_form(sm *s, adhoc_call *c, const char *title, const char *current)
{
    xml_node *x = adhoc_form(c, "form", ADMIN_NS, title, NULL);
    xml_node *f = adhoc_field(c, x, "motd", "text-multi", "Message of the day", true, NULL);
    for (const char *p = current; p && *p;) {
        size_t len = strcspn(p, "\n");
        char *line = mem_strndup(p, len);
        adhoc_field_value(c, f, line);
        free(line);
        p += len + (p[len] == '\n');
    }
    adhoc_reply(s, c, ADHOC_EXECUTING);
}

static void motd_submit(sm *s, adhoc_call *c, const xml_node *form)
{
    int host = admin_host_index(s, adhoc_host(c));
    char *text = multi_text(c, form, "motd", MOTD_MAX);
    if (!text || !*text) {
        free(text);
        adhoc_bad_form(s, c, text ? "the field motd is required"
                                  : "the message is too long (4096 bytes at most)");
        return;
    }
    if (host < 0) {
        free(text);
        adhoc_fail(s, c, "cancel", "item-not-found", NULL, "not a host of this server");
        return;
    }
    const char *name = sm_cfg(s)->hosts[host].name;
    sm_submit(s, xdb_request_new(XDB_ROOM_CREATE, name, ""), row_made, NULL);
    motd_op *op = mem_zalloc(sizeof(*op));
    op->s = s;
    op->c = c;
    op->host = host;
    op->text = text;
    xdb_request *r = xdb_request_new(XDB_DOC_PUT, name, "");
    xdb_request_set_doc(r, MOTD_STORE, "");
    xdb_request_set_value(r, text, strlen(text));
    sm_submit(s, r, motd_stored, op);
}

static void set_motd(sm *s, adhoc_call *c, const xml_node *form)
{
    if (!form)
        motd_form(s, c, "Set Message of the Day", NULL);
    else
        motd_submit(s, c, form);
}

static void edit_motd(sm *s, adhoc_call *c, const xml_node *form)
{
    int host = admin_host_index(s, adhoc_host(c));
    if (!form)
        motd_form(s, c, "Edit Message of the Day", host >= 0 ? data_of(s)->motd[host] : NULL);
    else
        motd_submit(s, c, form);
}

static void delete_motd(sm *s, adhoc_call *c, const xml_node *form)
{
    int host = admin_host_index(s, adhoc_host(c));
    if (host < 0) {
        adhoc_fail(s, c, "cancel", "item-not-found", NULL, "not a host of this server");
        return;
    }
    motd_op *op = mem_zalloc(sizeof(*op));
    op->s = s;
    op->c = c;
    op->host = host;
    xdb_request *r = xdb_request_new(XDB_DOC_DELETE, sm_cfg(s)->hosts[host].name, "");
    xdb_request_set_doc(r, MOTD_STORE, "");
    sm_submit(s, r, motd_stored, op);
}

/* ---- at login ---- */

bool admin_motd_available(sm *s, sm_event *ev)
{
    sm_session *sess = ev->session;
    bool *sent = sm_session_state(s, sess, &mod_admin_commands);
    if (*sent)
        return false;
    size_t dlen;
    const char *dom = jid_domain(&sess->jid, &dlen);
    char host[JID_PART_MAX + 1];
    snprintf(host, sizeof host, "%.*s", (int)dlen, dom);
    int i = admin_host_index(s, host);
    const char *motd = i >= 0 ? data_of(s)->motd[i] : NULL;
    if (!motd)
        return false;
    *sent = true;
    sm_session_state_changed(s, sess);
    sm_stanza *m = sm_stanza_make("message", host, jid_full(&sess->jid), "normal");
    xml_text_new(m->arena, xml_element_new(m->arena, m->node, SM_NS_CLIENT, "body"), motd,
                 strlen(motd));
    sm_deliver(s, sess, m);
    return false;
}

void admin_motd_pack(const sm_session *sess, const void *state, buf *out)
{
    sm_pack_flag(out, *(const bool *)state);
}

void admin_motd_restore(sm_session *sess, void *state, const uint8_t *data, size_t len)
{
    *(bool *)state = sm_unpack_flag(data, len);
}

/* ---- registration ---- */

static const adhoc_command commands[] = {
    ADMIN_COMMAND("announce", "Send Announcement to Online Users", announce),
    ADMIN_COMMAND("set-motd", "Set Message of the Day", set_motd),
    ADMIN_COMMAND("edit-motd", "Edit Message of the Day", edit_motd),
    ADMIN_COMMAND("delete-motd", "Delete Message of the Day", delete_motd),
};

static void admin_motd_register(sm *s)
{
    admin_register(s, commands, sizeof commands / sizeof commands[0]);
}
