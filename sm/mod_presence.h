/* sm/mod_presence.h — what mod_presence offers the other modules. */
#ifndef JABSHARD_SM_MOD_PRESENCE_H
#define JABSHARD_SM_MOD_PRESENCE_H

#include "sm/sm.h"

/* The full JIDs sess has sent directed available presence to (RFC 6121 §4.6): they hear when it
 * goes unavailable (NULL when none, or when mod_presence is not loaded). */
const sm_strset *presence_directed(sm *s, const sm_session *sess);

#endif
