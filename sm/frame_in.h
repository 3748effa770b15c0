/* sm/frame_in.h — a front's frames (docs/smproto.md §2) turned into calls on the core: the one
 * place where the SM decodes what a front sends about sessions (AUTH_QUERY, BIND, END, REGISTER,
 * STANZA, UNDELIVERED, RESYNC). The link's own frames (PING, PONG, ACK) and custody stay with the
 * caller (sm/server.c); the fuzz target fuzz/fuzz_sm_link.c calls this directly.
 *
 * Thread rules: the routing thread.
 */
#ifndef JABSHARD_SM_FRAME_IN_H
#define JABSHARD_SM_FRAME_IN_H

#include <stdbool.h>

#include "sm/sm.h"
#include "smproto/frame.h"

/* Hands f to the core. false when f is malformed for its type, or a type a front never sends
 * (AUTH_ANSWER, BOUND, STATE): a protocol error, the caller closes the link. */
bool sm_frame_in(sm *core, sm_link *link, const smproto_frame *f);

#endif
