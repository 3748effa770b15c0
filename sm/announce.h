/* sm/announce.h — a headline message (RFC 6121 §5.2.2) from the server to every online session:
 * what the ad-hoc announce command (sm/mod_admin_commands.c) and jabshardctl's announce (through
 * sm/admin.c) send. Runs on the routing thread. */
#ifndef JABSHARD_SM_ANNOUNCE_H
#define JABSHARD_SM_ANNOUNCE_H

#include <stddef.h>

#include "sm/sm.h"

/* Sends <message type='headline'> with subject (NULL or "": none) and body from host to every
 * bound session of host's accounts (host NULL: every host's sessions, each from its own host).
 * Returns how many sessions it was sent to. */
size_t sm_announce(sm *s, const char *host, const char *subject, const char *body);

#endif
