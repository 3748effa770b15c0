/* tests/bench/loadgen/lg_report.c — the machine-readable lines on stdout (see lg_report.h). */
#include "tests/bench/loadgen/lg_report.h"

#include <inttypes.h>

void lg_report_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* Rates are given as whole numbers in practice: print them so ("2000", not "2000.0"), and any
 * fraction as it was given. */
static void put_rate(FILE *out, const char *key, double rate)
{
    fprintf(out, " %s=%.15g", key, rate);
}

void lg_report_login(FILE *out, const lg_login_result *r)
{
    fprintf(out,
            "login users=%" PRIu32 " ok=%" PRIu32 " failed=%" PRIu32 " seconds=%.3f rate=%.1f"
            " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
            r->users, r->ok, r->failed, r->seconds, r->seconds > 0 ? r->ok / r->seconds : 0.0,
            r->latency.p50_ms, r->latency.p99_ms, r->latency.max_ms);
}

void lg_report_hold(unsigned seconds, uint32_t connected, uint64_t dropped)
{
    printf("hold seconds=%u connected=%" PRIu32 " dropped=%" PRIu64 "\n", seconds, connected,
           dropped);
}

void lg_report_round(double offered, unsigned seconds, const lg_round_result *res,
                     double send_seconds, uint32_t connected)
{
    fputs("round", stdout);
    put_rate(stdout, "offered", offered);
    printf(" seconds=%u sent=%" PRIu64 " skipped=%" PRIu64 " delivered=%" PRIu64 " rate=%.1f"
           " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f lost=%" PRIu64 " lost_stable=%" PRIu64
           " lost_dropped=%" PRIu64 " errored=%" PRIu64 " dup=%" PRIu64 " connected=%" PRIu32 "\n",
           seconds, res->sent, res->skipped, res->received,
           send_seconds > 0 ? res->received / send_seconds : 0.0, res->latency.p50_ms,
           res->latency.p99_ms, res->latency.max_ms, res->lost, res->lost_stable, res->lost_dropped,
           res->errored, res->dup, connected);
}

void lg_report_tick(uint64_t t, uint32_t connected, uint64_t sent, uint64_t received,
                    uint64_t errored, uint64_t reconnected, double worst_ms)
{
    printf("tick t=%" PRIu64 " connected=%" PRIu32 " sent=%" PRIu64 " received=%" PRIu64
           " errored=%" PRIu64 " reconnected=%" PRIu64 " worst_ms=%.2f\n",
           t, connected, sent, received, errored, reconnected, worst_ms);
}

void lg_report_done(size_t rounds, double best_rate)
{
    printf("done rounds=%zu", rounds);
    put_rate(stdout, "best_rate", best_rate);
    putchar('\n');
}

void lg_report_cut(uint32_t users, int return_ms)
{
    printf("cut users=%" PRIu32 " return_ms=%d\n", users, return_ms);
}

void lg_report_sm(lg_sm_stats *st, uint64_t cut_ns)
{
    lg_summary lat = lg_samples_summarize(&st->resume_latency);
    double last = cut_ns && st->last_resumed_ns > cut_ns
                      ? (double)(st->last_resumed_ns - cut_ns) / 1e9 : 0.0;
    printf("sm enabled=%" PRIu64 " unsupported=%" PRIu64 " enable_failed=%" PRIu64
           " resumed=%" PRIu64 " resume_failed=%" PRIu64 " resent=%" PRIu64 " bad_acks=%" PRIu64
           " requests=%" PRIu64 " resume_p50_ms=%.2f resume_p99_ms=%.2f resume_max_ms=%.2f last_resume_s=%.3f\n",
           st->enabled, st->unsupported, st->enable_failed, st->resumed, st->resume_failed,
           st->resent, st->bad_acks, st->requests, lat.p50_ms, lat.p99_ms, lat.max_ms, last);
}

void lg_report_pep(double offered, unsigned seconds, const lg_pep_result *res, double send_seconds,
                   uint32_t connected)
{
    fputs("pep", stdout);
    put_rate(stdout, "offered", offered);
    printf(" seconds=%u published=%" PRIu64 " skipped=%" PRIu64 " rate=%.1f publish_ok=%" PRIu64
           " publish_errors=%" PRIu64 " expected=%" PRIu64 " notified=%" PRIu64 " self=%" PRIu64
           " self_dup=%" PRIu64 " dup=%" PRIu64 " misrouted=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f"
           " answer_p50_ms=%.2f answer_p99_ms=%.2f connected=%" PRIu32 "\n",
           seconds, res->published, res->skipped,
           send_seconds > 0 ? (double)res->published / send_seconds : 0.0, res->ok, res->errors,
           res->expected, res->notified, res->self, res->self_dup, res->dup, res->misrouted, res->latency.p50_ms,
           res->latency.p99_ms, res->latency.max_ms, res->answer.p50_ms, res->answer.p99_ms,
           connected);
}

void lg_report_linger(unsigned seconds, uint32_t connected)
{
    printf("linger seconds=%u connected=%" PRIu32 "\n", seconds, connected);
}

void lg_report_join(const lg_muc_join_result *r)
{
    printf("join users=%" PRIu32 " rooms=%" PRIu32 " joined=%" PRIu32 " failed=%" PRIu32
           " created=%" PRIu32 " config_errors=%" PRIu32 " seconds=%.3f rate=%.1f p50_ms=%.2f"
           " p99_ms=%.2f max_ms=%.2f\n",
           r->users, r->rooms, r->joined, r->failed, r->created, r->config_errors, r->seconds,
           r->seconds > 0 ? r->joined / r->seconds : 0.0, r->latency.p50_ms, r->latency.p99_ms,
           r->latency.max_ms);
}

void lg_report_muc(double offered, unsigned seconds, const lg_muc_result *res, double send_seconds,
                   uint32_t connected)
{
    fputs("muc", stdout);
    put_rate(stdout, "offered", offered);
    printf(" seconds=%u sent=%" PRIu64 " skipped=%" PRIu64 " rate=%.1f expected=%" PRIu64
           " delivered=%" PRIu64 " deliveries_per_s=%.1f lost=%" PRIu64 " dup=%" PRIu64
           " misrouted=%" PRIu64 " unexpected=%" PRIu64 " errored=%" PRIu64
           " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f connected=%" PRIu32 "\n",
           seconds, res->sent, res->skipped, send_seconds > 0 ? (double)res->sent / send_seconds : 0.0,
           res->expected, res->delivered,
           send_seconds > 0 ? (double)res->delivered / send_seconds : 0.0,
           res->expected - res->delivered, res->dup, res->misrouted, res->unexpected, res->errored,
           res->latency.p50_ms, res->latency.p99_ms, res->latency.max_ms, connected);
}
