/* tests/bench/loadgen/lg_pep_rounds.h — publish rounds (--pep): at a fixed offered rate for
 * --round-seconds, a random user publishes one item (lg_pep.h) to LG_PEP_NODE; then a drain. Every
 * client counts the notifications it gets, checked against the contact ring: a notification is
 * expected at each of the publisher's K contacts that was logged in when it published (all of
 * them announce NODE+notify); one at the publisher itself is counted apart (`self`: servers differ
 * in whether the publishing session gets its own item), one anywhere else is misrouted. Latency
 * runs from the publish's send time (carried in the item) to the notification's arrival.
 *
 * Publishing runs on the message rounds' clock (lg_pace.h). A turn whose publisher is down or backed up
 * (LG_CONN_TX_LIMIT) is skipped. The drain waits up to --drain-seconds and ends early once every
 * publish has its answer and every expected notification has arrived.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_PEP_ROUNDS_H
#define JABSHARD_LOADGEN_LG_PEP_ROUNDS_H

#include <stdint.h>

#include "core/evloop.h"
#include "tests/bench/loadgen/lg_options.h"
#include "tests/bench/loadgen/lg_pace.h"
#include "tests/bench/loadgen/lg_pool.h"
#include "tests/bench/loadgen/lg_stats.h"

typedef struct lg_pep_result {
    uint64_t published, skipped;          /* publishes sent; turns skipped */
    uint64_t ok, errors;                  /* publish answers: result, error (before the close) */
    uint64_t expected, notified;          /* notifications expected at contacts; arrived there */
    uint64_t self, self_dup;              /* at the publisher: first arrivals; later ones */
    uint64_t dup, misrouted;              /* second arrivals at contacts; at non-contacts */
    lg_summary latency;                   /* publish to notification, over `notified` */
    lg_summary answer;                    /* publish to its result */
} lg_pep_result;

typedef struct lg_pep_rounds lg_pep_rounds;

/* Takes over the pool's message hook. */
lg_pep_rounds *lg_pep_rounds_new(const lg_options *o, evloop *loop, lg_pool *pool);
void lg_pep_rounds_free(lg_pep_rounds *r);
/* Runs one round at rate publishes per second, event loop included; fills res and send_seconds. */
void lg_pep_rounds_run(lg_pep_rounds *r, double rate, lg_pep_result *res, double *send_seconds);
/* Logs to stderr what arrived outside the rounds' figures (late, foreign, unknown). */
void lg_pep_rounds_log_extras(const lg_pep_rounds *r);

#endif
