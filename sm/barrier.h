/* sm/barrier.h — what a subscription change makes visible waits until the change is stored.
 *
 * A subscription stanza changes the state of two rosters, in storage, asynchronously. If a contact
 * saw the change (the stanza forwarded, a 'subscribed' answered) before it was stored and the SM
 * died, the fronts would send again the frames the SM had not acknowledged, each front in its own
 * order, and the replays could meet a roster from before the change: states would drift apart
 * (docs/smproto.md §3). So while a barrier is current, the storage requests the core submits are
 * counted, and the stanzas it would route or deliver after the first of them are held, in order,
 * until every counted request is answered. Then a replay only meets stored state, which the
 * subscription rules (RFC 6121 §3) absorb as a duplicate. Barriers nest: what an outer barrier
 * routes after an inner one that still waits, waits behind it, so order is kept.
 *
 * Thread rules: the SM's routing thread only.
 */
#ifndef JABSHARD_SM_BARRIER_H
#define JABSHARD_SM_BARRIER_H

#include <stdbool.h>
#include <stdint.h>

#include "sm/sm.h"

/* Opens a barrier, current until sm_barrier_end; it holds the current custody ticket. */
sm_barrier *sm_barrier_begin(sm *s);
/* Makes the previous barrier current again. What b holds goes out once its requests are answered
 * (at once if there are none); then b is freed. */
void sm_barrier_end(sm *s, sm_barrier *b);

/* For the core. A storage request submitted under b: call sm_barrier_answered when it is. */
void sm_barrier_submitted(sm_barrier *b);
void sm_barrier_answered(sm_barrier *b);
/* Takes st if b holds what is routed now (true); sess NULL: routed by its 'to'. */
bool sm_barrier_hold(sm_barrier *b, sm_session *sess, sm_stanza *st);

#endif
