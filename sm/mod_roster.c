/* sm/mod_roster.c — roster management (RFC 6121 §2): get, with versioning (XEP-0237), and set
 * and remove; every change the core stores (a set, a remove, a subscription's new state) is
 * pushed to the user's interested resources, those that asked for the roster (§2.1.6), which
 * this module remembers per session across an SM restart. The roster itself is cached in the user
 * (sm/users.c loads it before a session is bound); subscription states are mod_presence's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_ROSTER "jabber:iq:roster"
#define NS_ROSTERVER "urn:xmpp:features:rosterver"
/* An item's name and each group name are at most this many bytes, and an item is in at most
 * ROSTER_GROUPS_MAX groups (RFC 6121 §2.3.3: past a server's limit, <not-acceptable/>): a roster
 * is loaded whole at every login. */
#define ROSTER_TEXT_MAX 1023
#define ROSTER_GROUPS_MAX 64

/* Per session: whether it asked for the roster (and so gets pushes). */
typedef struct roster_session {
    bool interested;
} roster_session;

static const char *const sub_names[] = {"none", "to", "from", "both"};

/* <item/> for a roster item (subscription='remove' when remove) under parent. */
static void item_xml(xml_arena *a, xml_node *parent, const sm_roster_item *item, bool remove)
{
    xml_node *el = xml_element_new(a, parent, NS_ROSTER, "item");
    xml_attr_set(a, el, NULL, "jid", item->jid);
    if (item->name && !remove)
        xml_attr_set(a, el, NULL, "name", item->name);
    xml_attr_set(a, el, NULL, "subscription", remove ? "remove" : sub_names[item->sub]);
    if (item->ask && !remove)
        xml_attr_set(a, el, NULL, "ask", "subscribe");
    for (size_t i = 0; !remove && i < item->ngroups; i++) {
        xml_node *g = xml_element_new(a, el, NS_ROSTER, "group");
        xml_text_new(a, g, item->groups[i], strlen(item->groups[i]));
    }
}

/* §2.1.6: a stored change goes to every interested resource, with the roster's new version. */
static bool roster_push(sm *s, sm_event *ev)
{
    char ver[24];
    snprintf(ver, sizeof(ver), "%lld", (long long)ev->user->version);
    for (sm_session *sess = ev->user->sessions; sess; sess = sess->next) {
        roster_session *rs = sm_session_state(s, sess, &mod_roster);
        if (!rs->interested)
            continue;
        char id[32];
        sm_make_id(s, "push", id);
        sm_stanza *iq = sm_stanza_make("iq", NULL, jid_full(&sess->jid), "set");
        xml_attr_set(iq->arena, iq->node, NULL, "id", id);
        xml_node *q = xml_element_new(iq->arena, iq->node, NS_ROSTER, "query");
        xml_attr_set(iq->arena, q, NULL, "ver", ver);
        item_xml(iq->arena, q, ev->item, ev->removed);
        sm_deliver(s, sess, iq);
    }
    return false;
}

static void roster_get(sm *s, sm_stanza *st, sm_session *sess, xml_node *query)
{
    sm_user *u = sess->user;
    roster_session *rs = sm_session_state(s, sess, &mod_roster);
    if (!rs->interested) {
        rs->interested = true;
        sm_session_state_changed(s, sess);
    }
    char ver[24];
    snprintf(ver, sizeof(ver), "%lld", (long long)u->version);
    const char *have = xml_attr_get(query, "ver");
    if (have && strcmp(have, ver) == 0) {
        sm_iq_result(s, st, NULL);  /* XEP-0237 §2.3: nothing changed, pushes follow */
        return;
    }
    xml_arena *a = xml_arena_new(4096);
    xml_node *q = xml_element_new(a, NULL, NS_ROSTER, "query");
    xml_attr_set(a, q, NULL, "ver", ver);
    for (size_t i = 0; i < u->nitems; i++)
        item_xml(a, q, &u->items[i], false);
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static void roster_remove(sm *s, sm_stanza *st, sm_session *sess, const char *contact)
{
    sm_user *u = sess->user;
    sm_roster_item *it = sm_roster_find(u, contact);
    if (!it) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    /* §2.5.2: cancel both directions of the subscription before the item goes. */
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(&sess->jid, bare, sizeof(bare));
    if (it->sub == XDB_SUB_TO || it->sub == XDB_SUB_BOTH || it->ask)
        sm_route(s, sm_stanza_make("presence", bare, contact, "unsubscribe"));
    if (it->sub == XDB_SUB_FROM || it->sub == XDB_SUB_BOTH) {
        sm_route(s, sm_stanza_make("presence", bare, contact, "unsubscribed"));
        for (sm_session *x = u->sessions; x; x = x->next)
            if (x->available)
                sm_route(s, sm_stanza_make("presence", jid_full(&x->jid), contact, "unavailable"));
    }
    it = sm_roster_find(u, contact);  /* routing may have changed the cache */
    if (it)
        sm_roster_store(s, u, it, true);
    sm_pending_remove(s, u, contact);
    sm_iq_result(s, st, NULL);
}

static void roster_set(sm *s, sm_stanza *st, sm_session *sess, xml_node *query)
{
    xml_node *item = xml_child(query, NS_ROSTER, "item");
    const char *jid_attr = item ? xml_attr_get(item, "jid") : NULL;
    jid contact;
    if (!item || xml_next(item, NULL, NULL) || !jid_attr ||
        jid_parse(jid_attr, strlen(jid_attr), &contact) != JID_OK) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(&contact, bare, sizeof(bare));
    jid_free(&contact);
    const char *sub = xml_attr_get(item, "subscription");
    if (sub && strcmp(sub, "remove") == 0) {
        roster_remove(s, st, sess, bare);
        return;
    }
    const char *name = xml_attr_get(item, "name");
    /* Groups (§2.3.3): a duplicate is <bad-request/>; an empty or over-long name, or too many,
     * <not-acceptable/>. */
    size_t ngroups = 0;
    for (xml_node *g = xml_child(item, NS_ROSTER, "group"); g; g = xml_next(g, NS_ROSTER, "group"))
        ngroups++;
    if (ngroups > ROSTER_GROUPS_MAX || (name && strlen(name) > ROSTER_TEXT_MAX)) {
        sm_bounce(s, st, "modify", "not-acceptable");
        return;
    }
    char **groups = ngroups ? mem_array(ngroups, sizeof(char *)) : NULL;
    size_t n = 0;
    for (xml_node *g = xml_child(item, NS_ROSTER, "group"); g; g = xml_next(g, NS_ROSTER, "group")) {
        const char *group = xml_text(st->arena, g);
        for (size_t i = 0; i < n; i++)
            if (strcmp(groups[i], group) == 0)
                group = NULL;
        if (!group || !*group || strlen(group) > ROSTER_TEXT_MAX) {
            free(groups);
            sm_bounce(s, st, "modify", group ? "not-acceptable" : "bad-request");
            return;
        }
        groups[n++] = (char *)group;
    }
    sm_user *u = sess->user;
    if (sm_roster_full(s, u, bare)) {
        free(groups);
        char why[64];
        snprintf(why, sizeof why, "at most %d roster items per account",
                 sm_cfg(s)->limits.roster_items);
        sm_bounce_text(s, st, "cancel", "resource-constraint", why);
        return;
    }
    sm_roster_item *cur = sm_roster_find(u, bare);
    sm_roster_item next = {
        .jid = bare,
        .name = name && *name ? (char *)name : NULL,
        .sub = cur ? cur->sub : XDB_SUB_NONE,
        .ask = cur ? cur->ask : false,
        .groups = groups,
        .ngroups = n,
    };
    sm_roster_store(s, u, &next, false);
    free(groups);
    sm_iq_result(s, st, NULL);
}

static void roster_iq(sm *s, sm_stanza *st, xml_node *query)
{
    sm_session *sess = st->origin;
    /* Only the user's own sessions manage the roster (§2.1.3: others get an error). */
    if (!sess || (st->to.domain_len && !jid_equal_bare(&st->to, &sess->jid)) ||
        strcmp(query->name, "query") != 0) {
        sm_bounce(s, st, "cancel", sess ? "forbidden" : "service-unavailable");
        return;
    }
    if (strcmp(sm_stanza_type(st), "get") == 0)
        roster_get(s, st, sess, query);
    else
        roster_set(s, st, sess, query);
}

/* Across an SM restart: whether the session asked for the roster. */
static void roster_pack(const sm_session *sess, const void *state, buf *out)
{
    sm_pack_flag(out, ((const roster_session *)state)->interested);
}

static void roster_restore(sm_session *sess, void *state, const uint8_t *data, size_t len)
{
    ((roster_session *)state)->interested = sm_unpack_flag(data, len);
}

static const sm_handler roster_handlers[] = {
    {"iq/bare/" NS_ROSTER ":*", .iq = roster_iq},
    {"roster-changed", .hook = roster_push},
    {NULL},
};

const sm_module mod_roster = {
    .name = "roster",
    .handlers = roster_handlers,
    .features = (const char *const[]){NS_ROSTERVER, NULL},
    .session_state = sizeof(roster_session),
    .pack = roster_pack,
    .restore = roster_restore,
};
