/* sm/push.h — what mod_push's two files share (XEP-0357 push notifications): an account's
 * registrations with app servers, kept in its user state and in the document store, and the
 * counter of messages it missed (sm/mod_push.c); the notifications themselves, their bounds and
 * the app servers' answers (sm/push_notify.c). docs/push.md has the behaviour. */
#ifndef JABSHARD_SM_PUSH_H
#define JABSHARD_SM_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/xml.h"
#include "sm/map.h"
#include "sm/module.h"

#define NS_PUSH "urn:xmpp:push:0"
#define NS_XDATA "jabber:x:data"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define PUSH_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"

/* Bounds on what a client registers: the node's bytes, the publish-options form's serialized
 * bytes (Conversations' is a secret and an endpoint, well under this), and the most
 * registrations an account can have whatever push/registrations says. */
#define PUSH_NODE_MAX 512
#define PUSH_FORM_MAX 4096
#define PUSH_REGS_HARD_MAX 64

/* One registration (XEP-0357 §5): the app server's JID and node, the publish-options form the
 * client gave (its own arena, NULL when none), when it was made. key is its document's key in
 * the store "push": "JID NODE" (no JID has a space, so the first one splits them). */
typedef struct push_reg {
    char *key, *jid, *node;
    xml_arena *arena;
    xml_node *form;
    int64_t since_ms;
} push_reg;

/* Per user (sm/module.h's user state): the registrations, loaded with the user, and the messages
 * that came while no session of the account was active (kept in the store too, as "count"). */
typedef struct push_user {
    push_reg *regs;
    size_t nregs;
    uint32_t count;
} push_user;

extern const sm_module mod_push;

/* The module's data: the option that is not an integer (<push><include_body/>: notifications
 * carry the message's body), the flights (push_notify.c's: notifications sent and waiting for
 * the app server's answer, or sent within push/interval), by account and registration, and the
 * counters of the metrics (what became of notifications, and of the app servers' answers). */
typedef enum { PUSH_SENT, PUSH_LIMITED, PUSH_SKIPPED, PUSH_RESULTS } push_result;
typedef enum { PUSH_ACCEPTED, PUSH_REFUSED, PUSH_DISABLED, PUSH_UNANSWERED, PUSH_ANSWERS } push_answer;
typedef struct push_data {
    bool include_body;
    sm_map flights;
    uint64_t results[PUSH_RESULTS];
    uint64_t answers[PUSH_ANSWERS];
} push_data;

long long push_option(sm *s, const char *path);
push_data *push_data_of(sm *s);

/* ---- push_notify.c ---- */

void push_notify_init(push_data *d);
void push_notify_free(push_data *d);
/* Forgets the flights that are over (answered and older than push/interval). */
void push_notify_tick(sm *s);
/* Whether st, a message routed to u (loaded), is one to push (XEP-0357 §7: it has a body, an
 * encrypted payload or a call proposal) and would reach no active session of u. */
bool push_wanted(sm *s, const sm_user *u, const sm_stanza *st);
/* The module's counters in the metrics (core/metrics.h). */
void push_notify_metrics(sm *s, buf *out);
/* Sends u's registrations the notification of st (u's count already counts it), each within
 * its rate bound. */
void push_notify(sm *s, sm_user *u, const sm_stanza *st);

/* ---- mod_push.c, for push_notify.c ---- */

/* The app server's error says the registration key of account (bare JID) is gone: it is
 * removed, from memory when the user is there and from storage. */
void push_disable(sm *s, const char *account, const char *key);

#endif
