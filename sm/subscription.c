/* sm/subscription.c — RFC 6121 §3 subscription transitions (see subscription.h). Section numbers
 * in comments are RFC 6121's. */
#include "sm/subscription.h"

#include <string.h>

int sm_sub_type_parse(const char *type)
{
    static const char *const names[] = {"subscribe", "subscribed", "unsubscribe", "unsubscribed"};
    for (int i = 0; i < 4; i++)
        if (strcmp(type, names[i]) == 0)
            return i;
    return -1;
}


static xdb_subscription add_to(xdb_subscription s) { return sm_sub_has_from(s) ? XDB_SUB_BOTH : XDB_SUB_TO; }
static xdb_subscription add_from(xdb_subscription s) { return sm_sub_has_to(s) ? XDB_SUB_BOTH : XDB_SUB_FROM; }
static xdb_subscription drop_to(xdb_subscription s) { return sm_sub_has_from(s) ? XDB_SUB_FROM : XDB_SUB_NONE; }
static xdb_subscription drop_from(xdb_subscription s) { return sm_sub_has_to(s) ? XDB_SUB_TO : XDB_SUB_NONE; }

sm_sub_actions sm_sub_outbound(sm_sub_state *st, sm_sub_type type)
{
    sm_sub_actions a = {0};
    switch (type) {
    case SM_SUB_SUBSCRIBE:  /* §3.1.2: the request goes out in any case; ask only if not subscribed */
        a.forward = true;
        if (!sm_sub_has_to(st->sub) && !st->ask) {
            st->ask = true;
            a.changed = true;
        }
        break;
    case SM_SUB_SUBSCRIBED: /* §3.1.5: approval of a pending request; no pre-approval support */
        if (st->pending_in && !sm_sub_has_from(st->sub)) {
            st->sub = add_from(st->sub);
            st->pending_in = false;
            a.changed = a.forward = a.remove_pending = a.send_presence = true;
        } else if (st->pending_in) {
            st->pending_in = false;
            a.remove_pending = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBE: /* §3.3.2 */
        a.forward = true;
        if (sm_sub_has_to(st->sub) || st->ask) {
            st->sub = drop_to(st->sub);
            st->ask = false;
            a.changed = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBED: /* §3.2.2: cancel the contact's subscription, or deny its request */
        if (sm_sub_has_from(st->sub)) {
            st->sub = drop_from(st->sub);
            a.changed = a.forward = a.send_unavailable = true;
        }
        if (st->pending_in) {
            st->pending_in = false;
            a.forward = a.remove_pending = true;
        }
        break;
    }
    return a;
}

sm_sub_actions sm_sub_inbound(sm_sub_state *st, sm_sub_type type)
{
    sm_sub_actions a = {0};
    switch (type) {
    case SM_SUB_SUBSCRIBE: /* §3.1.3 */
        if (sm_sub_has_from(st->sub)) {
            a.reply_subscribed = true;
        } else {
            st->pending_in = true;
            a.forward = a.store_pending = true;
        }
        break;
    case SM_SUB_SUBSCRIBED: /* §3.1.6: only when the user asked */
        if (st->ask && !sm_sub_has_to(st->sub)) {
            st->sub = add_to(st->sub);
            st->ask = false;
            a.changed = a.forward = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBE: /* §3.3.3 */
        if (sm_sub_has_from(st->sub)) {
            st->sub = drop_from(st->sub);
            a.changed = a.forward = a.send_unavailable = true;
        }
        if (st->pending_in) {
            st->pending_in = false;
            a.forward = a.remove_pending = true;
        }
        break;
    case SM_SUB_UNSUBSCRIBED: /* §3.2.3 */
        if (sm_sub_has_to(st->sub) || st->ask) {
            st->sub = drop_to(st->sub);
            st->ask = false;
            a.changed = a.forward = true;
        }
        break;
    }
    return a;
}
