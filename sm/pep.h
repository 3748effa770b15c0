/* sm/pep.h — what the files of personal eventing (PEP, XEP-0163) share: mod_pep.c (the iq
 * handlers and notifications), pep_config.c (a node's configuration: defaults, data forms,
 * publish-options, the stored record) and pep_owner.c (each account's nodes in memory, loaded
 * from storage on demand); and mod_bookmarks.c, which keeps XEP-0048 bookmarks in a PEP node
 * (pep_item_publish, pep_item_retract). Nothing else includes it.
 *
 * Thread rules: the SM's routing thread.
 */
#ifndef JABSHARD_SM_PEP_H
#define JABSHARD_SM_PEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "sm/module.h"

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define NS_DATA "jabber:x:data"
#define PEP_FORM_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define PEP_FORM_PUBLISH "http://jabber.org/protocol/pubsub#publish-options"

typedef enum {
    PEP_ACCESS_PRESENCE,    /* those subscribed to the owner's presence (the default) */
    PEP_ACCESS_OPEN,        /* anyone */
    PEP_ACCESS_ROSTER,      /* those in the owner's roster with a presence subscription */
    PEP_ACCESS_WHITELIST,   /* the owner only */
} pep_access;

typedef enum {
    PEP_SEND_NEVER,
    PEP_SEND_ON_SUB,
    PEP_SEND_ON_SUB_AND_PRESENCE,   /* the default */
} pep_send_last;

typedef struct pep_config {
    pep_access access;
    bool persist_items;
    uint32_t max_items;     /* PEP_MAX_ITEMS_MAX: "max", the server's bound */
    pep_send_last send_last;
    bool notify_retract;
} pep_config;

#define PEP_MAX_ITEMS_MAX UINT32_MAX

/* ---- pep_config.c ---- */

void pep_config_default(pep_config *c);
/* The stored record (core/bytes.h), and back; false when malformed. */
void pep_config_put(buf *out, const pep_config *c);
bool pep_config_get(const uint8_t *data, size_t len, pep_config *c);
/* How many items the node keeps: max_items, "max" being items_max, and never above it. */
uint32_t pep_config_keep(const pep_config *c, uint32_t items_max);
/* Applies a submitted node_config form (x type='submit') to c: known fields are set, others
 * ignored. false, with *field naming it, when a known field has a value it cannot take. */
bool pep_config_apply(pep_config *c, xml_arena *a, const xml_node *x, const char **field);
/* XEP-0223: the publish-options form's preconditions against c. false, with *field, when one
 * does not hold or names a field this service does not have. */
bool pep_config_matches(const pep_config *c, xml_arena *a, const xml_node *x,
                        const char **field);
/* The node_config form (type='form') showing c, appended to parent. */
void pep_config_form(xml_arena *a, xml_node *parent, const pep_config *c);

/* ---- pep_owner.c ---- */

typedef struct pep_node {
    char *name;
    pep_config cfg;
    char *last_id;          /* the newest item, NULL when none */
    char *last_xml;         /* its payload */
} pep_node;

typedef struct pep_owner pep_owner;
/* Work waiting for an owner's nodes: o is NULL when they could not be loaded. */
typedef void (*pep_owner_fn)(sm *s, pep_owner *o, void *ctx);

/* Runs fn with the account's nodes, at once when they are in memory, else once storage has
 * given them (under the current frame's custody). bare: a local account. */
void pep_owner_with(sm *s, const jid *bare, pep_owner_fn fn, void *ctx);
/* The account's nodes if they are in memory (no load), or NULL. */
pep_owner *pep_owner_find(sm *s, const jid *bare);
/* Submits a write whose answer matters only when it fails (logged). */
void pep_owner_write(sm *s, xdb_request *r);
const jid *pep_owner_jid(const pep_owner *o);
pep_node *pep_owner_node(pep_owner *o, const char *name);
size_t pep_owner_count(const pep_owner *o);
pep_node *pep_owner_at(pep_owner *o, size_t i);
/* A new node (none of that name exists), stored. */
pep_node *pep_owner_create(sm *s, pep_owner *o, const char *name, const pep_config *cfg);
/* The node's configuration changed: stored. */
void pep_owner_configured(sm *s, pep_owner *o, pep_node *n);
/* Deletes the node (and its items), in memory and storage. */
void pep_owner_delete(sm *s, pep_owner *o, pep_node *n);
/* The node's newest item is now (id, xml) (both copied; NULL: none). */
void pep_owner_set_last(pep_node *n, const char *id, const char *xml);
/* ---- mod_pep.c: for other modules that keep their data in PEP (mod_bookmarks) ---- */

/* The item (id, payload xml) is n's newest: stored (when n persists items, within its bound),
 * kept in memory, notified. */
void pep_item_publish(sm *s, pep_owner *o, pep_node *n, const char *id, const char *xml);
/* Deletes n's item id (nothing when absent), then notifies as a retraction would. */
void pep_item_retract(sm *s, pep_owner *o, pep_node *n, const char *id);
long long pep_option(sm *s, const char *path);

/* ---- pep_notify.c ---- */

/* Whether n's items may go to someone: the owner, or another who is subscribed to the owner's
 * presence (or anyone, for an open node). */
bool pep_access_allows(const pep_node *n, bool owner, bool subscribed);
/* Notifications (XEP-0060 §7.1.2.1) of n's new item, of a retracted one, and of the node's
 * "purge" or "delete", to the owner's sessions and to the contacts who may read n, each only to
 * the sessions that announced n+notify in their entity capabilities. */
void pep_notify_items(sm *s, pep_owner *o, const pep_node *n, const char *id, const char *xml);
void pep_notify_retract(sm *s, pep_owner *o, const pep_node *n, const char *id);
void pep_notify_node(sm *s, pep_owner *o, const pep_node *n, const char *what);
/* "caps-known": a session's features are known (or changed); it gets the last items of the
 * nodes it now cares about, its own account's and its contacts'. */
bool pep_caps_known(sm *s, sm_event *ev);
/* "roster-changed": a new presence subscription; the account's sessions get that contact's last
 * items they care about. */
bool pep_roster_changed(sm *s, sm_event *ev);

/* Memory for the owners: cache bounds, every tick; all of it at the end. */
void pep_owners_init(sm *s);
void pep_owners_trim(sm *s);
/* A session of bare's account ended: its owner, if in memory, may be idle now. */
void pep_owners_session_end(sm *s, const jid *bare);
void pep_owners_free(sm *s);

#endif
