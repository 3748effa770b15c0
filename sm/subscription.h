/* sm/subscription.h — the presence subscription state machine of RFC 6121 §3, as pure functions.
 *
 * A contact's state in a user's roster is the subscription (none, to, from, both), whether the
 * user's own request is pending (ask, "Pending Out") and whether the contact's request is waiting
 * for the user's answer (pending_in, "Pending In"). Given a subscription presence that the user
 * sends (outbound) or receives (inbound), these functions update the state and say what the
 * server must do; mod_presence does it. Kept apart so the unit tests can walk every transition.
 */
#ifndef JABSHARD_SM_SUBSCRIPTION_H
#define JABSHARD_SM_SUBSCRIPTION_H

#include <stdbool.h>

#include "xdbsql/xdbsql.h"

typedef enum { SM_SUB_SUBSCRIBE, SM_SUB_SUBSCRIBED, SM_SUB_UNSUBSCRIBE, SM_SUB_UNSUBSCRIBED } sm_sub_type;

typedef struct sm_sub_state {
    xdb_subscription sub;
    bool ask;
    bool pending_in;
} sm_sub_state;

typedef struct sm_sub_actions {
    bool changed;            /* subscription or ask changed: store the item and push it */
    bool forward;            /* outbound: route the stanza to the contact; inbound: deliver it to
                              * the user's available resources */
    bool store_pending;      /* inbound subscribe: keep it until answered (delivered at login) */
    bool remove_pending;     /* the pending request was answered or withdrawn */
    bool reply_subscribed;   /* inbound subscribe from a contact already subscribed: answer
                              * subscribed on the user's behalf */
    bool send_presence;      /* outbound subscribed: send the user's current presence */
    bool send_unavailable;   /* the contact lost its subscription to the user's presence: send
                              * unavailable from the user's available resources */
} sm_sub_actions;

/* Whether the user receives the contact's presence (to, both), and whether the contact receives
 * the user's (from, both). */
static inline bool sm_sub_has_to(xdb_subscription s) { return s == XDB_SUB_TO || s == XDB_SUB_BOTH; }
static inline bool sm_sub_has_from(xdb_subscription s)
{
    return s == XDB_SUB_FROM || s == XDB_SUB_BOTH;
}

/* "subscribe" ... -> type; -1 for anything else. */
int sm_sub_type_parse(const char *type);
sm_sub_actions sm_sub_outbound(sm_sub_state *st, sm_sub_type type);
sm_sub_actions sm_sub_inbound(sm_sub_state *st, sm_sub_type type);

#endif
