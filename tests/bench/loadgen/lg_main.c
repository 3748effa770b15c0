/* tests/bench/loadgen/lg_main.c — loadgen: an XMPP load generator for jabshard and its peers
 * (Prosody, ejabberd, jabberd2). One process, one thread, one epoll loop (core/evloop).
 *
 * The run, in phases, each reported on stdout (lg_report.h) as it ends:
 *   warm-up   (--warmup, SCRAM) every user logs in and out once, unmeasured, to fill the key cache
 *   login     every user connects and logs in, --login-concurrency at a time; then --ready-file
 *   join      (--muc) every user joins its group chat room (lg_muc_rounds.h)
 *   hold      (--hold) idle but for keepalives; how many connections the server dropped
 *   rounds    one per --rates entry, stepping up until one misses --stop-p99-ms or delivers
 *             less than 95% of what it offered; with --pep, publish rounds (lg_pep_rounds.h);
 *             with --muc, groupchat rounds
 *   linger    (--hold-after) idle again, still logged in
 * With --cut-after, a timer cuts connections (the test hook) during the hold or the rounds; with
 * --sm, the stream management figures close the run.
 * Exit status: 0; 2 for bad options or set-up; 1 when no user could log in. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evloop.h"
#include "core/log.h"
#include "tests/bench/loadgen/lg_muc_rounds.h"
#include "tests/bench/loadgen/lg_net.h"
#include "tests/bench/loadgen/lg_options.h"
#include "tests/bench/loadgen/lg_pep_rounds.h"
#include "tests/bench/loadgen/lg_pool.h"
#include "tests/bench/loadgen/lg_report.h"
#include "tests/bench/loadgen/lg_rounds.h"
#include "tests/bench/loadgen/lg_sasl.h"
#include "tests/bench/loadgen/lg_tls.h"

/* Descriptors beyond one per user: stdio, epoll, the loop's eventfd, the ready file, and sockets
 * a warm-up logout may still hold while the next login starts. */
#define LG_SPARE_FDS 32
/* A round passes when it delivers at least this share of what it offered. */
#define LG_PASS_DELIVERED 0.95

static void stop_loop(timer *t, void *arg)
{
    evloop_stop(arg);
}

/* Waits `seconds` with the loop running (keepalives, reconnections, stray input). */
static void idle(evloop *loop, unsigned seconds)
{
    timer t;
    timer_init(&t, stop_loop, loop);
    evloop_timer_after(loop, &t, (uint64_t)seconds * 1000);
    evloop_run(loop);
    evloop_timer_cancel(loop, &t);
}

/* The --cut-after timer: what it cuts, and when it did. */
typedef struct cut_timer {
    timer t;
    const lg_options *opt;
    lg_pool *pool;
    uint64_t at_ns;
} cut_timer;

static void on_cut(timer *t, void *arg)
{
    cut_timer *ct = arg;
    ct->at_ns = lg_now_ns();
    uint32_t k = ct->opt->cut_users ? ct->opt->cut_users : lg_pool_users(ct->pool);
    lg_report_cut(lg_pool_cut(ct->pool, k, ct->opt->cut_return_ms), ct->opt->cut_return_ms);
}

static void write_ready_file(const char *path, const lg_login_result *lr)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || (lg_report_login(f, lr), fclose(f)) != 0 || rename(tmp, path) != 0)
        log_error("cannot create --ready-file %s", path);
}

static void warmup(lg_pool *pool, evloop *loop, lg_scram_cache *cache)
{
    uint64_t t0 = lg_now_ns();
    if (lg_pool_warmup(pool))
        evloop_run(loop);
    uint32_t ok, failed;
    uint64_t derived, reused;
    lg_pool_warmup_result(pool, &ok, &failed);
    lg_scram_cache_counts(cache, &derived, &reused);
    log_notice("warm-up: %u users logged in and out, %u failed, in %.3f s (%llu key derivations)",
               ok, failed, (double)(lg_now_ns() - t0) / 1e9, (unsigned long long)derived);
}

/* The rounds, stepping through --rates; returns the best rate that passed (0: none). */
static double rounds(const lg_options *o, evloop *loop, lg_pool *pool, size_t *ran)
{
    lg_rounds *r = lg_rounds_new(o, loop, pool);
    double best = 0;
    *ran = 0;
    for (size_t i = 0; i < o->nrates; i++) {
        lg_round_result res;
        double send_seconds;
        lg_rounds_run(r, o->rates[i], &res, &send_seconds);
        (*ran)++;
        lg_report_round(o->rates[i], o->round_s, &res, send_seconds, lg_pool_connected(pool));
        double offered = o->rates[i] * o->round_s;
        bool passed = (double)res.received >= LG_PASS_DELIVERED * offered &&
                      (o->stop_p99_ms <= 0 || res.latency.p99_ms <= o->stop_p99_ms);
        if (!passed)
            break;
        if (o->rates[i] > best)
            best = o->rates[i];
    }
    lg_rounds_log_extras(r);
    lg_rounds_free(r);
    return best;
}

/* --pep: the publish rounds, each at its rate; returns the best rate whose round got at least
 * LG_PASS_DELIVERED of its expected notifications (and kept --stop-p99-ms). */
static double pep_rounds(const lg_options *o, evloop *loop, lg_pool *pool, size_t *ran)
{
    lg_pep_rounds *r = lg_pep_rounds_new(o, loop, pool);
    double best = 0;
    *ran = 0;
    for (size_t i = 0; i < o->nrates; i++) {
        lg_pep_result res;
        double send_seconds;
        lg_pep_rounds_run(r, o->rates[i], &res, &send_seconds);
        (*ran)++;
        lg_report_pep(o->rates[i], o->round_s, &res, send_seconds, lg_pool_connected(pool));
        bool passed = res.expected && (double)res.notified >= LG_PASS_DELIVERED * res.expected &&
                      (o->stop_p99_ms <= 0 || res.latency.p99_ms <= o->stop_p99_ms);
        if (!passed)
            break;
        if (o->rates[i] > best)
            best = o->rates[i];
    }
    lg_pep_rounds_log_extras(r);
    lg_pep_rounds_free(r);
    return best;
}

/* --muc: the groupchat rounds, each at its rate; returns the best rate whose round delivered at
 * least LG_PASS_DELIVERED of its expected deliveries (and kept --stop-p99-ms). */
static double muc_rounds(const lg_options *o, lg_muc *m, lg_pool *pool, size_t *ran)
{
    double best = 0;
    *ran = 0;
    for (size_t i = 0; i < o->nrates; i++) {
        lg_muc_result res;
        double send_seconds;
        lg_muc_rounds_run(m, o->rates[i], &res, &send_seconds);
        (*ran)++;
        lg_report_muc(o->rates[i], o->round_s, &res, send_seconds, lg_pool_connected(pool));
        bool passed = res.expected && (double)res.delivered >= LG_PASS_DELIVERED * res.expected &&
                      (o->stop_p99_ms <= 0 || res.latency.p99_ms <= o->stop_p99_ms);
        if (!passed)
            break;
        if (o->rates[i] > best)
            best = o->rates[i];
    }
    lg_muc_log_extras(m);
    return best;
}

/* The phases, once the network and TLS are set up. Returns the exit status. */
static int run(const lg_options *o, lg_net *net, SSL_CTX *tls, evloop *loop)
{
    lg_scram_cache *cache = lg_scram_cache_new(o->users);
    lg_sm_stats sm_stats = {0};
    lg_env env = {.opt = o, .loop = loop, .net = net, .tls = tls, .scram = cache,
                  .sm_stats = o->sm ? &sm_stats : NULL};
    lg_pool *pool = lg_pool_new(&env);
    cut_timer cut = {.opt = o, .pool = pool};
    lg_muc *muc = NULL;
    timer_init(&cut.t, on_cut, &cut);
    if (o->warmup)
        warmup(pool, loop, cache);
    if (lg_pool_login(pool))
        evloop_run(loop);
    lg_login_result lr;
    lg_pool_login_result(pool, &lr);
    lg_report_login(stdout, &lr);
    if (lr.ok > 0) {
        if (o->ready_file)
            write_ready_file(o->ready_file, &lr);
        lg_pool_shrink(pool);
        if (o->cut_after_s >= 0)
            evloop_timer_after(loop, &cut.t, (uint64_t)o->cut_after_s * 1000);
        if (o->muc) {
            muc = lg_muc_new(o, loop, pool);
            lg_muc_join_result jr;
            lg_muc_join_all(muc, &jr);
            lg_report_join(&jr);
        }
        if (o->hold_s) {
            uint64_t drops = lg_pool_drops(pool);
            idle(loop, o->hold_s);
            lg_report_hold(o->hold_s, lg_pool_connected(pool), lg_pool_drops(pool) - drops);
        }
        size_t ran;
        double best = o->pep   ? pep_rounds(o, loop, pool, &ran)
                      : muc       ? muc_rounds(o, muc, pool, &ran)
                                  : rounds(o, loop, pool, &ran);
        if (o->hold_after_s) {
            idle(loop, o->hold_after_s);
            lg_report_linger(o->hold_after_s, lg_pool_connected(pool));
        }
        if (o->sm)
            lg_report_sm(&sm_stats, cut.at_ns);
        lg_report_done(ran, best);
    }
    evloop_timer_cancel(loop, &cut.t);
    lg_muc_free(muc);
    lg_sm_stats_free(&sm_stats);
    lg_pool_free(pool);
    lg_scram_cache_free(cache);
    return lr.ok > 0 ? 0 : 1;
}

/* Checks what the options need from the system and sets up the network, TLS and the loop;
 * returns the exit status. */
static int setup_and_run(lg_options *o)
{
    uint64_t fds = lg_net_raise_fd_limit();
    if ((uint64_t)o->users + LG_SPARE_FDS > fds) {
        fprintf(stderr, "loadgen: %u users need %u open files; the limit is %llu (ulimit -n)\n",
                o->users, o->users + LG_SPARE_FDS, (unsigned long long)fds);
        return 2;
    }
    if (o->warmup && o->mech != LG_MECH_SCRAM_SHA1) {
        log_warn("--warmup only matters for SCRAM-SHA-1: skipped");
        o->warmup = false;
    }
    lg_net net;
    if (lg_net_init(&net, o) != 0)
        return 2;
    int status = 2;
    SSL_CTX *tls = o->tls != LG_TLS_NONE ? lg_tls_ctx_new() : NULL;
    evloop *loop = evloop_create();
    if (!loop)
        fprintf(stderr, "loadgen: cannot create the event loop: %s\n", strerror(errno));
    else if (o->tls == LG_TLS_NONE || tls)
        status = run(o, &net, tls, loop);
    if (loop)
        evloop_destroy(loop);
    if (tls)
        SSL_CTX_free(tls);
    lg_net_free(&net);
    return status;
}

int main(int argc, char **argv)
{
    lg_options o;
    int parsed = lg_options_parse(argc, argv, &o);
    int status = parsed > 0 ? 0 : 2;
    if (parsed == 0) {
        signal(SIGPIPE, SIG_IGN);   /* OpenSSL writes with write(2): a closed peer must not kill us */
        lg_report_init();
        log_open("loadgen", LOG_TO_STDERR, NULL, LL_INFO);
        status = setup_and_run(&o);
    }
    lg_options_free(&o);
    return status;
}
