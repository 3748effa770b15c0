/* tests/bench/loadgen/lg_rounds.h — message rounds: a fixed offered rate for --round-seconds,
 * then a drain, with every message accounted for (lg_account.h).
 *
 * Sending: the round's clock (lg_pace.h) gives exactly rate x seconds sending turns. Turn k goes to sender k mod N, which writes to user (sender + 1) mod N (bare JID, chat):
 *     <message to='USER@DOMAIN' type='chat' id='RUN-ROUND-SEQ'><body>lg ROUND SENDER SEQ T_NS</body></message>
 * RUN is random per process (messages stored offline by an earlier run are recognised as foreign),
 * ROUND counts from 1, SENDER is the sender's user index (0-based), SEQ the message's number in the
 * round (unique in it), T_NS the send time on CLOCK_MONOTONIC. A turn whose sender is down or whose
 * output is backed up (LG_CONN_TX_LIMIT) is skipped: counted, not sent, not made up later.
 *
 * Receiving: a message's body identifies it; its latency is arrival time minus T_NS. An error
 * message back to a sender is matched by its id. Messages from earlier rounds still count for
 * their own round's duplicate detection, and as late on stderr.
 *
 * Draining: after the sending time, the round waits up to --drain-seconds, and ends as soon as
 * every message sent has been delivered or bounced.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_ROUNDS_H
#define JABSHARD_LOADGEN_LG_ROUNDS_H

#include <stdbool.h>

#include "core/evloop.h"
#include "tests/bench/loadgen/lg_account.h"
#include "tests/bench/loadgen/lg_options.h"
#include "tests/bench/loadgen/lg_pace.h"
#include "tests/bench/loadgen/lg_pool.h"

typedef struct lg_rounds lg_rounds;

/* Takes over the pool's message hook. */
lg_rounds *lg_rounds_new(const lg_options *o, evloop *loop, lg_pool *pool);
void lg_rounds_free(lg_rounds *r);

/* Runs one round at rate messages per second, event loop included, and prints its tick lines.
 * Fills res and send_seconds (how long sending took). */
void lg_rounds_run(lg_rounds *r, double rate, lg_round_result *res, double *send_seconds);

/* Logs to stderr what arrived outside the rounds' figures: late deliveries, foreign and
 * unrecognised messages, conflicting outcomes. */
void lg_rounds_log_extras(const lg_rounds *r);

#endif
