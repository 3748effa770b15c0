/* sm/iq_out.h — iq requests the SM itself sends (a get or set from a served host to a JID) and
 * the answer each waits for: the module asks, the core sends, matches the result or error that
 * comes back, and calls the module back once, with the answer, or with NULL when none came in
 * time or the SM stops.
 *
 * An answer matches a request when it is an iq result or error addressed to the host or account
 * the request came from (its domain or bare JID alone), with the request's id, from the
 * very JID the request went to (the SM stamps where a stanza comes from: nobody else can answer
 * for that JID). Answers that match nothing are dropped, as before.
 *
 * Thread rules: the routing thread.
 */
#ifndef JABSHARD_SM_IQ_OUT_H
#define JABSHARD_SM_IQ_OUT_H

#include <stdbool.h>

#include "core/jid.h"
#include "core/xml.h"
#include "sm/sm.h"

/* The most requests outstanding at once, for the whole SM: a request past it is refused. Each
 * costs a few hundred bytes until its answer or its timeout. */
#define SM_IQ_OUT_MAX 4096

/* reply is the answer (type 'result' or 'error'), valid only during the call (the core frees it);
 * NULL when none came within the timeout or the SM stops (sm_free): either way, the last call for
 * that request, after which ctx is the module's to free. */
typedef void (*sm_iq_reply_fn)(sm *s, const sm_stanza *reply, void *ctx);

/* Sends <iq type=type from=from_host to=to id=(fresh)> with a copy of payload, and calls fn(s,
 * answer, ctx) once when it is answered, or with NULL after timeout_s seconds (checked on sm_tick)
 * or when the SM stops. type is "get" or "set"; from_host a served host, or a local account's
 * bare JID (a request on the account's behalf, as XEP-0357's notifications: the answer comes to
 * the account). Returns false, without
 * sending anything or calling fn, when SM_IQ_OUT_MAX requests are outstanding or the SM is
 * stopping. fn may run before this returns (an immediate error: the JID has no session). */
bool sm_iq_request(sm *s, const char *type, const char *from_host, const jid *to,
                   const xml_node *payload, int timeout_s, sm_iq_reply_fn fn, void *ctx);

/* Forgets the outstanding requests made with fn and ctx: fn is not called for them, and their
 * answers, if any come, are dropped. */
void sm_iq_cancel(sm *s, sm_iq_reply_fn fn, void *ctx);

#endif
