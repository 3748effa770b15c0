/* sm/caps.h — what mod_caps (XEP-0115 entity capabilities) offers the other modules: which
 * features each local session's client has, as its broadcast presence announced them and the
 * client's own disco#info answer verified them, and an event when that becomes known or changes
 * (docs/caps.md). PEP asks it which sessions want notifications of a node ("NODE+notify").
 */
#ifndef JABSHARD_SM_CAPS_H
#define JABSHARD_SM_CAPS_H

#include <stdbool.h>

#include "sm/sm.h"

/* Whether sess's client has feature (XEP-0030 'var'). false when mod_caps is not loaded, the
 * session announced no caps (or none it could verify), or they are not known yet. O(log n) in
 * the client's features. */
bool sm_caps_has(sm *s, const sm_session *sess, const char *feature);

/* The event mod_caps fires (sm_fire_named) with ev.session and ev.user each time a session's
 * feature set becomes known or changes to another known one; not when it is cleared (unavailable
 * presence, caps no longer announced, session end). */
#define SM_CAPS_EVENT "caps-known"

#endif
