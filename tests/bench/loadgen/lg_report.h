/* tests/bench/loadgen/lg_report.h — the load generator's stdout: one line per event, each a word
 * then key=value fields, line-buffered, and nothing else on stdout (diagnostics go to stderr).
 * The format is what `make bench-peers` and the fault-injection tests parse: README.md beside this
 * file documents every field; change the two together. */
#ifndef JABSHARD_LOADGEN_LG_REPORT_H
#define JABSHARD_LOADGEN_LG_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tests/bench/loadgen/lg_account.h"
#include "tests/bench/loadgen/lg_muc_rounds.h"
#include "tests/bench/loadgen/lg_pep_rounds.h"
#include "tests/bench/loadgen/lg_pool.h"
#include "tests/bench/loadgen/lg_sm.h"

/* Makes stdout line-buffered. */
void lg_report_init(void);

/* Writes the login line to out (stdout, or the ready file). */
void lg_report_login(FILE *out, const lg_login_result *r);
void lg_report_hold(unsigned seconds, uint32_t connected, uint64_t dropped);
/* send_seconds: how long the sending part actually took (for rate=). */
void lg_report_round(double offered, unsigned seconds, const lg_round_result *res,
                     double send_seconds, uint32_t connected);
void lg_report_tick(uint64_t t, uint32_t connected, uint64_t sent, uint64_t received,
                    uint64_t errored, uint64_t reconnected, double worst_ms);
void lg_report_done(size_t rounds, double best_rate);
/* --pep: one publish round (instead of a round line). */
void lg_report_pep(double offered, unsigned seconds, const lg_pep_result *res, double send_seconds,
                   uint32_t connected);
/* --muc: the join phase (after the login line), and one groupchat round (instead of a round line). */
void lg_report_join(const lg_muc_join_result *res);
void lg_report_muc(double offered, unsigned seconds, const lg_muc_result *res, double send_seconds,
                   uint32_t connected);
/* --hold-after: the idle time after the rounds is over. */
void lg_report_linger(unsigned seconds, uint32_t connected);
/* The cut test hook ran: how many connections it cut, and when they come back (-1: never). */
void lg_report_cut(uint32_t users, int return_ms);
/* --sm: the stream management figures; cut_ns: when the last cut ran (0: none). */
void lg_report_sm(lg_sm_stats *st, uint64_t cut_ns);

#endif
