/* sm/mod_disco.c — service discovery (XEP-0030) for the server and, on their behalf, its
 * accounts. The server's features are those the loaded modules declare; other modules add to the
 * server's info (XEP-0128 forms, as mod_contact's XEP-0157 addresses) by hooking "disco-info",
 * and to an account's (mod_pep's identity and features) by hooking "disco-account-info". A node of
 * the server other than its caps node is a module's (mod_adhoc's command list and commands):
 * "disco-node-info" and "disco-node-items" ask the hooks, and one that knows the node answers. */
#include <stdio.h>
#include <string.h>

#include "sm/disco.h"
#include "smproto/caps_msg.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_INFO "http://jabber.org/protocol/disco#info"
#define NS_ITEMS "http://jabber.org/protocol/disco#items"

static void identity(xml_arena *a, xml_node *q, const char *category, const char *type,
                     const char *name)
{
    xml_node *id = xml_element_new(a, q, NS_INFO, "identity");
    xml_attr_set(a, id, NULL, "category", category);
    xml_attr_set(a, id, NULL, "type", type);
    if (name)
        xml_attr_set(a, id, NULL, "name", name);
}

void disco_feature(xml_arena *a, xml_node *q, const char *var)
{
    xml_attr_set(a, xml_element_new(a, q, NS_INFO, "feature"), NULL, "var", var);
}

void disco_host_item(sm_event *ev, const char *host, const char *service, const char *name)
{
    size_t hlen;
    const char *to = ev->stanza->to.domain_len ? jid_domain(&ev->stanza->to, &hlen) : NULL;
    if (to && (strlen(host) != hlen || memcmp(host, to, hlen) != 0))
        return;
    xml_node *item = xml_element_new(ev->arena, ev->node, NS_ITEMS, "item");
    xml_attr_set(ev->arena, item, NULL, "jid", service);
    xml_attr_set(ev->arena, item, NULL, "name", name);
}

xml_node *disco_host_info(sm *s, const char *host, xml_arena *a)
{
    xml_node *q = xml_element_new(a, NULL, NS_INFO, "query");
    identity(a, q, "server", "im", "jabshard");
    disco_feature(a, q, NS_INFO);
    disco_feature(a, q, NS_ITEMS);
    const char *const *features;
    size_t n = sm_features(s, &features);
    for (size_t i = 0; i < n; i++)
        disco_feature(a, q, features[i]);
    sm_event ev = {.host = host, .arena = a, .node = q};
    sm_fire_named(s, "disco-info", &ev);
    return q;
}

/* A node of the server's caps (CAPS_SERVER_NODE#ver, XEP-0115 §6.2): the same info. */
static bool caps_node(const char *node)
{
    size_t n = strlen(CAPS_SERVER_NODE);
    return strncmp(node, CAPS_SERVER_NODE, n) == 0 && node[n] == '#';
}

static void disco_info(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(sm_stanza_type(st), "get") != 0 || strcmp(payload->name, "query") != 0) {
        sm_bounce(s, st, "cancel", "bad-request");
        return;
    }
    bool user = st->to.domain_len ? jid_node(&st->to, &(size_t){0}) != NULL : st->origin != NULL;
    const char *node = xml_attr_get(payload, "node");
    if (node && (user || !caps_node(node))) {
        xml_arena *a = xml_arena_new(512);
        xml_node *q = xml_element_new(a, NULL, NS_INFO, "query");
        xml_attr_set(a, q, NULL, "node", node);
        sm_event ev = {.stanza = st, .arena = a, .node = q, .name = node};
        if (!user && sm_fire_named(s, "disco-node-info", &ev))
            sm_iq_result(s, st, q);
        else
            sm_bounce(s, st, "cancel", "item-not-found");
        xml_arena_free(a);
        return;
    }
    xml_arena *a = xml_arena_new(2048);
    xml_node *q;
    if (user) {
        q = xml_element_new(a, NULL, NS_INFO, "query");
        identity(a, q, "account", "registered", NULL);
        disco_feature(a, q, NS_INFO);
        sm_event ev = {.stanza = st, .arena = a, .node = q};
        sm_fire_named(s, "disco-account-info", &ev);
    } else {
        char host[JID_MAX_LEN + 1];
        size_t hlen;
        const char *dom = st->to.domain_len ? jid_domain(&st->to, &hlen) : NULL;
        snprintf(host, sizeof host, "%.*s", dom ? (int)hlen : 0, dom ? dom : "");
        q = disco_host_info(s, host, a);
        if (node)
            xml_attr_set(a, q, NULL, "node", node);
    }
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static void disco_items(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(sm_stanza_type(st), "get") != 0 || strcmp(payload->name, "query") != 0) {
        sm_bounce(s, st, "cancel", "bad-request");
        return;
    }
    xml_arena *a = xml_arena_new(256);
    xml_node *q = xml_element_new(a, NULL, NS_ITEMS, "query");
    const char *node = xml_attr_get(payload, "node");
    if (node)
        xml_attr_set(a, q, NULL, "node", node);
    bool user = st->to.domain_len ? jid_node(&st->to, &(size_t){0}) != NULL : st->origin != NULL;
    if (!node) {
        sm_event ev = {.stanza = st, .arena = a, .node = q};
        sm_fire_named(s, user ? "disco-account-items" : "disco-host-items", &ev);
    } else if (!user) {
        sm_event ev = {.stanza = st, .arena = a, .node = q, .name = node};
        sm_fire_named(s, "disco-node-items", &ev);
    }
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static const sm_handler disco_handlers[] = {
    {"iq/any/" NS_INFO ":*", .iq = disco_info},
    {"iq/any/" NS_ITEMS ":*", .iq = disco_items},
    {NULL},
};

const sm_module mod_disco = {
    .name = "disco",
    .handlers = disco_handlers,
    /* The server's disco#info is being built: host (the domain), arena and node (the <query/>,
     * features and identities in it) for hooks to add extensions to (answering a query, or
     * computing the server's caps). "disco-account-info" and "disco-account-items" the same
     * (stanza, arena, node) for an account's bare JID, "disco-host-items" for a host's items
     * (the services it offers). "disco-node-info" and "disco-node-items" the same (stanza, arena,
     * node, and name: the node asked) for a node of a host's: a hook that knows the node fills
     * the <query/> and returns true (info: otherwise <item-not-found/>). */
    .events = (const char *const[]){"disco-info", "disco-account-info", "disco-account-items",
                                    "disco-host-items", "disco-node-info", "disco-node-items",
                                    NULL},
};
