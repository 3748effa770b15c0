/* sm/pep_notify.c — who hears of a PEP node's changes, and the last items a session starts to
 * care about (XEP-0163 §4.3: filtered notifications by entity capabilities, XEP-0115).
 *
 * A notification is a headline message from the owner's bare JID with a pubsub#event payload,
 * built and parsed once, then copied to each session that may read the node and announced
 * NODE+notify: the owner's own sessions and, unless the node is whitelist-only, those of its
 * contacts with a subscription to the owner's presence (RFC 6121 "from" on the owner's side).
 * When a session's capabilities become known (mod_caps' "caps-known"), it gets the newest item of
 * every node it cares about: its own account's, and those of the accounts whose presence it is
 * subscribed to; and so do an account's sessions when it becomes subscribed to a contact's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/caps.h"
#include "sm/pep.h"
#include "sm/subscription.h"

bool pep_access_allows(const pep_node *n, bool owner, bool subscribed)
{
    if (owner || n->cfg.access == PEP_ACCESS_OPEN)
        return true;
    return n->cfg.access != PEP_ACCESS_WHITELIST && subscribed;
}

/* "NODE+notify", what a session's capabilities announce to get n's notifications. */
static void notify_feature(const pep_node *n, char *out, size_t size)
{
    snprintf(out, size, "%s+notify", n->name);
}

static void put_attr(buf *b, const char *name, const char *value)
{
    buf_appendf(b, " %s='", name);
    xml_write_attr_value(b, value, strlen(value));
    buf_append(b, "'", 1);
}

/* <message type='headline' from=owner><event>inner</event></message>, parsed. */
static sm_stanza *event_message(sm *s, const pep_owner *o, const buf *inner)
{
    char id[32];
    sm_make_id(s, "pep", id);
    buf b = BUF_INIT;
    buf_appendf(&b, "<message xmlns='jabber:client' type='headline'");
    put_attr(&b, "from", jid_full(pep_owner_jid(o)));
    put_attr(&b, "id", id);
    buf_appendf(&b, "><event xmlns='%s'>", NS_PUBSUB_EVENT);
    buf_append(&b, buf_data(inner), buf_len(inner));
    buf_appendf(&b, "</event></message>");
    sm_stanza *st = sm_parse(s, buf_data(&b), buf_len(&b));
    buf_free(&b);
    return st;
}

/* <items node><item id publisher>payload</item></items> */
static void put_item(buf *b, const pep_owner *o, const pep_node *n, const char *id,
                     const char *xml)
{
    buf_appendf(b, "<items");
    put_attr(b, "node", n->name);
    buf_appendf(b, "><item");
    put_attr(b, "id", id);
    put_attr(b, "publisher", jid_full(pep_owner_jid(o)));
    buf_appendf(b, ">%s</item></items>", xml);
}

static void send_copy(sm *s, const sm_stanza *tmpl, sm_session *sess)
{
    sm_stanza *c = sm_stanza_copy(tmpl);
    if (sm_stanza_set_to(c, jid_full(&sess->jid)))
        sm_deliver(s, sess, c);
    else
        sm_stanza_free(c);
}

/* The available sessions of u that announced feature. */
static void to_interested(sm *s, sm_user *u, const char *feature, const sm_stanza *tmpl)
{
    for (sm_session *x = u->sessions; x; x = x->next)
        if (x->available && sm_caps_has(s, x, feature))
            send_copy(s, tmpl, x);
}

static void fan_out(sm *s, pep_owner *o, const pep_node *n, const buf *inner)
{
    sm_user *u = sm_user_find(s, pep_owner_jid(o));
    if (!u)
        return;
    sm_stanza *tmpl = event_message(s, o, inner);
    if (!tmpl)
        return;
    char feature[XDB_DOC_NAME_MAX + 16];
    notify_feature(n, feature, sizeof feature);
    to_interested(s, u, feature, tmpl);
    for (size_t i = 0; n->cfg.access != PEP_ACCESS_WHITELIST && i < u->nitems; i++) {
        if (!sm_sub_has_from(u->items[i].sub))
            continue;
        jid c;
        if (jid_parse(u->items[i].jid, strlen(u->items[i].jid), &c) != JID_OK)
            continue;
        sm_user *cu = sm_user_find(s, &c);
        if (cu && cu != u)
            to_interested(s, cu, feature, tmpl);
        jid_free(&c);
    }
    sm_stanza_free(tmpl);
}

void pep_notify_items(sm *s, pep_owner *o, const pep_node *n, const char *id, const char *xml)
{
    buf inner = BUF_INIT;
    put_item(&inner, o, n, id, xml);
    fan_out(s, o, n, &inner);
    buf_free(&inner);
}

void pep_notify_retract(sm *s, pep_owner *o, const pep_node *n, const char *id)
{
    buf inner = BUF_INIT;
    buf_appendf(&inner, "<items");
    put_attr(&inner, "node", n->name);
    buf_appendf(&inner, "><retract");
    put_attr(&inner, "id", id);
    buf_appendf(&inner, "/></items>");
    fan_out(s, o, n, &inner);
    buf_free(&inner);
}

void pep_notify_node(sm *s, pep_owner *o, const pep_node *n, const char *what)
{
    buf inner = BUF_INIT;
    buf_appendf(&inner, "<%s", what);
    put_attr(&inner, "node", n->name);
    buf_appendf(&inner, "/>");
    fan_out(s, o, n, &inner);
    buf_free(&inner);
}

/* ---- last items for a session that starts to care ---- */

typedef struct last_ctx {
    jid session;
    bool own, subscribed;
} last_ctx;

static void send_last(sm *s, pep_owner *o, void *ctx)
{
    last_ctx *c = ctx;
    sm_session *sess = o ? sm_session_find(s, &c->session) : NULL;
    for (size_t i = 0; sess && i < pep_owner_count(o); i++) {
        pep_node *n = pep_owner_at(o, i);
        char feature[XDB_DOC_NAME_MAX + 16];
        notify_feature(n, feature, sizeof feature);
        if (!n->last_id || n->cfg.send_last == PEP_SEND_NEVER ||
            !pep_access_allows(n, c->own, c->subscribed) || !sm_caps_has(s, sess, feature))
            continue;
        buf inner = BUF_INIT;
        put_item(&inner, o, n, n->last_id, n->last_xml);
        sm_stanza *st = event_message(s, o, &inner);
        buf_free(&inner);
        if (st)
            send_copy(s, st, sess);
        sm_stanza_free(st);
    }
    jid_free(&c->session);
    free(c);
}

static void last_items_of(sm *s, const sm_session *sess, const jid *owner, bool own)
{
    last_ctx *c = mem_zalloc(sizeof *c);
    jid_copy(&c->session, &sess->jid);
    c->own = own;
    c->subscribed = true;
    pep_owner_with(s, owner, send_last, c);
}

bool pep_caps_known(sm *s, sm_event *ev)
{
    /* Fired from the session's available presence, before mod_presence marks it available. */
    sm_session *sess = ev->session;
    if (!sess)
        return false;
    sm_user *u = sess->user;
    last_items_of(s, sess, &u->jid, true);
    for (size_t i = 0; i < u->nitems; i++) {
        if (!sm_sub_has_to(u->items[i].sub))
            continue;
        jid c;
        if (jid_parse(u->items[i].jid, strlen(u->items[i].jid), &c) != JID_OK)
            continue;
        if (sm_is_local_user(s, &c) && !jid_equal_bare(&c, &u->jid))
            last_items_of(s, sess, &c, false);
        jid_free(&c);
    }
    return false;
}

/* "roster-changed": an account is now subscribed to a contact's presence (or its item changed
 * otherwise while subscribed): its sessions get the contact's last items they care about. */
bool pep_roster_changed(sm *s, sm_event *ev)
{
    if (ev->removed || !ev->item || !sm_sub_has_to(ev->item->sub))
        return false;
    jid c;
    if (jid_parse(ev->item->jid, strlen(ev->item->jid), &c) != JID_OK)
        return false;
    if (sm_is_local_user(s, &c) && !jid_equal_bare(&c, &ev->user->jid))
        for (sm_session *x = ev->user->sessions; x; x = x->next)
            if (x->available)
                last_items_of(s, x, &c, false);
    jid_free(&c);
    return false;
}
