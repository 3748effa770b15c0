/* tests/bench/sm_scale/scale_main.c — sm_scale: one jabshard-sm driven by synthetic fronts at
 * scale (README.md). The phases, each printing its figures with the machine's load average:
 *   logins    every user logs in (AUTH_QUERY, BIND, roster get, initial presence), --concurrency in
 *             flight over all fronts: logins/s, login latency, the SM's CPU per login;
 *   memory    the SM's resident memory with everyone online, per session;
 *   fan-out   each hub (200 online contacts) logs in alone: the SM's CPU and stanzas per login;
 *   messages  --rate chat messages a second between random online users for --duration seconds:
 *             delivered, latency p50/p99, the SM's routing thread's CPU;
 *   restart   (--restart) the SM is killed, started again, and every front resyncs: the time
 *             until every session is back (routable), then until every account has loaded,
 *             and the latency of messages sent meanwhile.
 * With --partitions P (docs/scaling.md, "Past one SM"), P SMs share the users: the CPU figures
 * are summed over them and given per SM, and the messages phase says how many crossed. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "tests/bench/benchlib.h"
#include "tests/bench/sm_scale/scale.h"
#include "tests/support/xorshift.h"

scale_options scale_opt = {
    .users = 100000, .fronts = 10, .partitions = 1, .crossing = -1, .concurrency = 2000,
    .rate = 50000,
    .duration = 10,
    .hubs = 20, .driver = "sqlite", .max_rss_mib = 12288,
    .resync_presence = true,
};

static xorshift rng_gen = {88172645463325252ull};
static uint64_t rng(void) { return xorshift_next(&rng_gen); }

static const char *load(void)
{
    static char text[64];
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
            a = b = c = 0;
        fclose(f);
    }
    snprintf(text, sizeof(text), "load %.2f %.2f %.2f", a, b, c);
    return text;
}

/* SM k's routing thread (its main thread) CPU-seconds so far. */
static double sm_k_thread_cpu(int k)
{
    return bench_thread_cpu_s(scale_sm_pids[k], scale_sm_pids[k]);
}

/* Over every SM: all threads, the routing threads. */
static double sm_cpu(void)
{
    double s = 0;
    for (int k = 0; k < scale_opt.partitions; k++)
        s += bench_cpu_s(scale_sm_pids[k]);
    return s;
}

static double sm_thread_cpu(void)
{
    double s = 0;
    for (int k = 0; k < scale_opt.partitions; k++)
        s += sm_k_thread_cpu(k);
    return s;
}

static long sm_rss_kib(void)
{
    long s = 0;
    for (int k = 0; k < scale_opt.partitions; k++)
        s += bench_rss_kib(scale_sm_pids[k]);
    return s;
}

static long sm_stat(const char *key)
{
    long s = 0;
    for (int k = 0; k < scale_opt.partitions; k++)
        s += scale_sm_stat(k, key);
    return s;
}

/* With partitions: each SM's routing thread CPU-seconds d[k], times per, as " [... SM 0 x, SM 1
 * y]" (two buffers in turn: two calls may share a printf). */
static const char *per_sm(const double *d, double per)
{
    static char texts[2][256];
    static int turn;
    char *text = texts[turn ^= 1];
    size_t n = 0;
    text[0] = '\0';
    if (scale_opt.partitions == 1)
        return text;
    for (int k = 0; k < scale_opt.partitions && n < sizeof texts[0] - 40; k++)
        n += (size_t)snprintf(text + n, sizeof texts[0] - n, "%sSM %d %.2f", k ? ", " : " [routing "
                              "thread per SM: ", k, d[k] * per);
    snprintf(text + n, sizeof texts[0] - n, "]");
    return text;
}

static void thread_cpus(double *th)
{
    for (int k = 0; k < scale_opt.partitions; k++)
        th[k] = sm_k_thread_cpu(k);
}

/* th0[k] becomes each SM's routing thread CPU since th0[k]. */
static void thread_cpus_since(double *th0)
{
    for (int k = 0; k < scale_opt.partitions; k++)
        th0[k] = sm_k_thread_cpu(k) - th0[k];
}

static void figure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void figure(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("sm_scale ");
    vprintf(fmt, ap);
    printf(" (%s)\n", load());
    fflush(stdout);
    va_end(ap);
}

static double ms_at(uint64_t *v, long n, double p)
{
    return (double)bench_percentile(v, (size_t)n, p) / 1e6;
}

/* ---- phases ---------------------------------------------------------------------------------- */

/* After a login: until no presence stanza has come for 200 ms (with partitions the contacts'
 * answers cross a peer link after the login's frames are acknowledged); the SMs' routing thread
 * CPU (and each SM's, into th) and the time when the last one came, so the wait adds nothing. */
static double presence_settled(double *th, double *at)
{
    double cpu = sm_thread_cpu(), last = bench_now_s();
    thread_cpus(th);
    while (bench_now_s() - last < 0.2) {
        long before = scale_got.presence;
        scale_pump(10);
        if (scale_got.presence != before) {
            last = bench_now_s();
            cpu = sm_thread_cpu();
            thread_cpus(th);
        }
    }
    *at = last;
    return cpu;
}

static void logins(void)
{
    long next = 0, n = scale_opt.users;
    double t = bench_now_s(), cpu0 = sm_cpu(), th0 = sm_thread_cpu(), last_print = t;
    double ths[SCALE_MAX_SMS], ths_start[SCALE_MAX_SMS];
    thread_cpus(ths);
    thread_cpus(ths_start);
    while (scale_got.online + scale_got.auth_failed + scale_got.bind_failed < n) {
        long failed = scale_got.auth_failed + scale_got.bind_failed;
        while (next < n && next - scale_got.online - failed < scale_opt.concurrency)
            scale_login(next++);
        scale_pump(10);
        if (bench_now_s() - last_print > 10) {
            last_print = bench_now_s();
            fprintf(stderr, "sm_scale: %ld of %ld online after %.0f s, SM RSS %ld MiB\n",
                    scale_got.online, n, last_print - t, sm_rss_kib() / 1024);
        }
        if (bench_now_s() - t > 3600)
            scale_die("logins: %ld of %ld online after an hour", scale_got.online, n);
    }
    double s = bench_now_s() - t;
    if (scale_got.online != n)
        scale_die("logins: %ld online, %ld auth failed, %ld bind failed", scale_got.online,
                  scale_got.auth_failed, scale_got.bind_failed);
    double cpu = sm_cpu() - cpu0, th = sm_thread_cpu() - th0;
    thread_cpus_since(ths);
    figure("logins: %ld in %.1f s = %.0f/s (%d in flight over %d fronts); login p50 %.1f ms, "
           "p99 %.1f ms; SM CPU %.1f s (routing thread %.1f s) = %.1f us a login%s",
           n, s, (double)n / s, scale_opt.concurrency, scale_opt.fronts,
           ms_at(scale_got.login_latency, scale_got.login_n, 50),
           ms_at(scale_got.login_latency, scale_got.login_n, 99), cpu, th, cpu / (double)n * 1e6,
           per_sm(ths, 1));
    double t1 = bench_now_s();
    if (!scale_wait_acked(600))
        scale_die("logins: the SM did not acknowledge every frame");
    double acked = bench_now_s() - t1, last, th_all[SCALE_MAX_SMS];
    /* The presence the logins caused, to its end: with partitions, what crosses comes after the
     * fronts' frames are acknowledged. The routing threads' CPU up to the last of it. */
    double th_last = presence_settled(th_all, &last) - th0;
    for (int k = 0; k < scale_opt.partitions; k++)
        th_all[k] -= ths_start[k];
    figure("logins: presence stanzas delivered %ld; every frame acknowledged %.1f s after the last "
           "login, the last presence %.1f s after it; routing thread CPU by then %.1f s = %.1f us "
           "a login%s", scale_got.presence, acked, last - t1, th_last,
           th_last / (double)n * 1e6, per_sm(th_all, 1e6 / (double)n));
}

static void memory(long rss0)
{
    /* The SM frees what the logins' bursts allocated at its own pace: let it settle, and see what
     * its routing thread does with nothing to route (its ticks). */
    double th0 = sm_thread_cpu(), t = bench_now_s();
    while (bench_now_s() - t < 5)
        scale_pump(100);
    double idle = (sm_thread_cpu() - th0) / (bench_now_s() - t);
    long rss = sm_rss_kib();
    figure("memory: SM RSS %.1f MiB with %ld sessions online (%.1f MiB before the logins) = "
           "%.2f KiB a session (rosters of %d); routing thread idle %.1f ms of CPU a second; "
           "the SM's stats: %ld sessions, %ld users in memory", rss / 1024.0, scale_got.online,
           rss0 / 1024.0, (double)(rss - rss0) / (double)scale_got.online, SCALE_CONTACTS,
           idle * 1e3, sm_stat("sessions"), sm_stat("users"));
}

static void fanout(void)
{
    if (!scale_opt.hubs)
        return;
    long presence0 = scale_got.presence;
    double t = bench_now_s(), ths[SCALE_MAX_SMS] = {0}, th_end[SCALE_MAX_SMS], at;
    double cpu = 0, s = 0;
    for (int h = 0; h < scale_opt.hubs; h++) {
        long online0 = scale_got.online;
        double c0 = sm_thread_cpu(), t0 = bench_now_s(), c0k[SCALE_MAX_SMS];
        thread_cpus(c0k);
        scale_login(scale_opt.users + h);
        while (scale_got.online == online0 && bench_now_s() - t < 600)
            scale_pump(10);
        if (!scale_wait_acked(60))
            scale_die("fan-out: the SM did not acknowledge the hub's login");
        cpu += presence_settled(th_end, &at) - c0;
        s += at - t0;
        for (int k = 0; k < scale_opt.partitions; k++)
            ths[k] += th_end[k] - c0k[k];
    }
    long stanzas = scale_got.presence - presence0;
    figure("fan-out: %d logins with %d online contacts each, one at a time, in %.2f s: SM routing thread "
           "%.2f ms a login, %.0f presence stanzas a login (%.2f us of its CPU each)%s",
           scale_opt.hubs, SCALE_HUB_CONTACTS, s, cpu / scale_opt.hubs * 1e3,
           (double)stanzas / scale_opt.hubs, stanzas ? cpu / (double)stanzas * 1e6 : 0,
           per_sm(ths, 1e3 / scale_opt.hubs));
}

/* A recipient for a message from a: random, or (--crossing) one of another SM with that chance
 * and of a's own SM otherwise. */
static long recipient(long a)
{
    long users = scale_opt.users;
    bool cross = scale_opt.crossing >= 0 && (int)(rng() % 100) < scale_opt.crossing;
    for (;;) {
        long b = (long)(rng() % (uint64_t)(users - 1));
        b = b >= a ? b + 1 : b;
        if (scale_opt.crossing < 0 || (scale_sm_of(a) != scale_sm_of(b)) == cross)
            return b;
    }
}

static void messages(void)
{
    if (!scale_opt.rate || scale_opt.duration <= 0)
        return;
    long users = scale_opt.users, sent = 0;
    long total = (long)((double)scale_opt.rate * scale_opt.duration);
    long delivered0 = scale_got.messages, errors0 = scale_got.errors;
    long crossing0 = scale_got.crossing;
    double ths[SCALE_MAX_SMS];
    thread_cpus(ths);
    scale_got.latency_cap = total;
    scale_got.latency = mem_array((size_t)total, sizeof(uint64_t));
    double t = bench_now_s(), cpu0 = sm_cpu(), th0 = sm_thread_cpu();
    for (;;) {
        double now = bench_now_s();
        long due = (long)((now - t) * (double)scale_opt.rate);
        if (due > total)
            due = total;
        /* Paced, but never more than 64 KiB queued a link: a rate the SM cannot take shows as
         * fewer sent, not as a growing buffer here. */
        while (sent < due && scale_pending_tx() < (size_t)scale_opt.fronts * 65536) {
            long a = (long)(rng() % (uint64_t)users);
            scale_message(a, recipient(a));
            sent++;
        }
        if (now - t >= scale_opt.duration)
            break;
        scale_pump(1);
    }
    double send_s = bench_now_s() - t;
    double t_end = bench_now_s();
    while (scale_got.messages + scale_got.errors - delivered0 - errors0 < sent &&
           bench_now_s() - t_end < 60)
        scale_pump(10);
    double s = bench_now_s() - t, cpu = sm_cpu() - cpu0, th = sm_thread_cpu() - th0;
    long got = scale_got.messages - delivered0;
    thread_cpus_since(ths);
    figure("messages: offered %ld/s for %.1f s, sent %ld (%.0f/s), delivered %ld in %.1f s, "
           "errors %ld; latency p50 %.2f ms, p99 %.2f ms; SM routing thread %.1f%% of a core "
           "(%.2f us a message, %.0f messages per thread CPU-second), SM all threads %.2f us a "
           "message", scale_opt.rate, scale_opt.duration, sent, (double)sent / send_s, got, s,
           scale_got.errors - errors0, ms_at(scale_got.latency, scale_got.latency_n, 50),
           ms_at(scale_got.latency, scale_got.latency_n, 99), th / s * 100,
           got ? th / (double)got * 1e6 : 0, th > 0 ? (double)got / th : 0,
           got ? cpu / (double)got * 1e6 : 0);
    if (scale_opt.partitions > 1)
        figure("messages: %d SMs (crossing %d%%): %ld of %ld sent crossed partitions (%.1f%%); routing thread "
               "CPU-seconds%s, us a delivered message%s", scale_opt.partitions, scale_opt.crossing,
               scale_got.crossing - crossing0, sent,
               sent ? 100.0 * (double)(scale_got.crossing - crossing0) / (double)sent : 0,
               per_sm(ths, 1), per_sm(ths, got ? 1e6 / (double)got : 0));
    free(scale_got.latency);
    scale_got.latency = NULL;
    scale_got.latency_n = scale_got.latency_cap = 0;
    if (!scale_wait_acked(120))
        scale_die("messages: the SM did not acknowledge every frame");
}

static void restart(void)
{
    if (!scale_wait_acked(120))
        scale_die("restart: the SM did not acknowledge every frame before the kill");
    long presence0 = scale_got.presence, online = scale_got.online;
    scale_sm_kill();
    scale_links_close();
    uint64_t t0 = scale_sm_start(0);
    double up = (double)(bench_now_ns() - t0) / 1e9;
    scale_links_open(0);
    double linked = (double)(bench_now_ns() - t0) / 1e9;
    scale_resync_all();
    while (scale_pending_tx())
        scale_pump(1);
    double sent = (double)(bench_now_ns() - t0) / 1e9;
    /* Complete: the start's wait is over and every re-announced session is back, routable (the
     * wait also ends at <resync_wait>). The accounts of the restored sessions load after that, in
     * the background; meanwhile RESTART_PROBES messages a second between random sessions measure
     * what a stanza for (or from) an account not loaded yet waits: its account's load, started
     * ahead of the background's. */
    enum { RESTART_PROBES = 100, PROBE_CHECKS = 4 };
    scale_got.latency_cap = 1000000;
    scale_got.latency = mem_array((size_t)scale_got.latency_cap, sizeof(uint64_t));
    scale_got.latency_n = 0;
    long probes = 0, delivered0 = scale_got.messages;
    double restored = -1, wait_over = -1, loaded = -1, last_check = 0;
    while ((double)(bench_now_ns() - t0) / 1e9 < 900) {
        scale_pump(20);
        double now = (double)(bench_now_ns() - t0) / 1e9;
        if (now - last_check < 1.0 / PROBE_CHECKS)
            continue;
        last_check = now;
        if (wait_over < 0 && scale_sm_start_done(0))
            wait_over = now;
        if (wait_over >= 0 && restored < 0 && scale_sm_stat(0, "sessions") >= online)
            restored = now;
        if (restored >= 0 && scale_sm_stat(0, "loads_pending") == 0 &&
            scale_sm_stat(0, "storage_pending") == 0) {
            loaded = now;
            break;
        }
        for (int k = 0; restored >= 0 && k < RESTART_PROBES / PROBE_CHECKS; k++, probes++) {
            long a = (long)(rng() % (uint64_t)scale_opt.users);
            scale_message(a, recipient(a));
        }
    }
    if (loaded < 0)
        scale_die("restart: the SM had not loaded every restored account 900 s after it started");
    /* The new SM's CPU from its start: steadier than the time on a shared machine. */
    double cpu = sm_cpu(), th = sm_thread_cpu();
    /* The presence the restored sessions send again goes on after the start is over. */
    uint64_t quiet_from = bench_now_ns();
    while (bench_now_ns() - quiet_from < 1000000000ull ||
           scale_got.messages - delivered0 < probes) {
        long before = scale_got.presence + scale_got.messages;
        scale_pump(100);
        if (scale_got.presence + scale_got.messages != before)
            quiet_from = bench_now_ns();
        else if (bench_now_ns() - quiet_from > 30000000000ull)
            break;
    }
    double last = scale_got.last_stanza_ns > t0 ? (double)(scale_got.last_stanza_ns - t0) / 1e9 : 0;
    figure("restart: %ld sessions resynced from %d fronts: SM listening %.2f s after its start, "
           "links up %.2f s, every RESYNC written %.2f s, start's wait over %.2f s, every session "
           "restored %.2f s, every account loaded and storage idle %.2f s (SM CPU %.1f s, routing "
           "thread %.1f s, from its start), last presence delivered %.2f s (%ld presence stanzas); "
           "SM RSS %.1f MiB, its stats: %ld sessions, %ld users in memory, %ld storage requests "
           "pending", online, scale_opt.fronts, up, linked, sent, wait_over, restored, loaded, cpu,
           th, last, scale_got.presence - presence0, bench_rss_kib(scale_sm_pids[0]) / 1024.0,
           scale_sm_stat(0, "sessions"), scale_sm_stat(0, "users"),
           scale_sm_stat(0, "storage_pending"));
    figure("restart: %ld messages between random sessions while the accounts loaded (%d/s from "
           "every session restored), %ld delivered: latency p50 %.2f ms, p99 %.2f ms, max %.2f ms",
           probes, RESTART_PROBES, scale_got.messages - delivered0,
           ms_at(scale_got.latency, scale_got.latency_n, 50),
           ms_at(scale_got.latency, scale_got.latency_n, 99),
           ms_at(scale_got.latency, scale_got.latency_n, 100));
    free(scale_got.latency);
    scale_got.latency = NULL;
    scale_got.latency_n = scale_got.latency_cap = 0;
    if (!scale_wait_acked(300))
        scale_die("restart: the SM did not acknowledge every frame after the resync");
}

/* ---- options --------------------------------------------------------------------------------- */

static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: sm_scale [options] [BIN_DIR]\n"
            "  --users N         sessions to log in (100000)\n"
            "  --fronts N        synthetic fronts, one link and service id each (10; per SM)\n"
            "  --partitions P    P SMs share the users by <partitions>, each with its own storage "
            "(1)\n"
            "  --crossing PCT[,PCT...]  with partitions: PCT%% of messages to another SM's user "
            "(default: random recipients); several: a messages phase each, in turn\n"
            "  --concurrency N   logins in flight over all fronts (2000)\n"
            "  --rate N          messages a second between random sessions (50000; 0: none)\n"
            "  --duration S      seconds of messages (10)\n"
            "  --hubs N          logins with 200 online contacts, for the fan-out (20; 0: none)\n"
            "  --restart         then kill the SM, start it again and resync every front (given "
            "twice: twice)\n"
            "  --resync-no-presence   the resync's sessions carry no presence (as if none had "
            "sent any)\n"
            "  --driver D        sqlite (default) or pgsql (with --pg)\n"
            "  --pg 'HOST PORT USER DATABASE'   the PostgreSQL database to use (emptied: no)\n"
            "  --workdir DIR     keep the storage there and reuse it next time (same --users, "
            "--hubs)\n"
            "  --sm-extra XML    elements added to the SM's sm.xml, e.g. '<modules>...</modules>'\n"
            "  --max-rss MIB     kill the SM and stop when its RSS passes this (12288)\n"
            "BIN_DIR: where jabshard-sm and jabshardctl are ($JABSHARD_BIN, else ../bin).\n");
    exit(status);
}

static void parse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"users", 1, 0, 'u'}, {"fronts", 1, 0, 'f'}, {"partitions", 1, 0, 'p'},
        {"crossing", 1, 0, 'X'}, {"concurrency", 1, 0, 'c'},
        {"rate", 1, 0, 'r'}, {"duration", 1, 0, 'd'}, {"hubs", 1, 0, 'H'},
        {"restart", 0, 0, 'R'}, {"resync-no-presence", 0, 0, 'N'}, {"driver", 1, 0, 'D'}, {"pg", 1, 0, 'P'},
        {"workdir", 1, 0, 'w'}, {"sm-extra", 1, 0, 'x'}, {"max-rss", 1, 0, 'M'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': scale_opt.users = atol(optarg); break;
        case 'f': scale_opt.fronts = atoi(optarg); break;
        case 'p': scale_opt.partitions = atoi(optarg); break;
        case 'X':
            for (char *p = optarg; *p && scale_opt.ncrossings < 8; p += strcspn(p, ","), p += !!*p)
                if ((scale_opt.crossings[scale_opt.ncrossings++] = atoi(p)) > 100)
                    usage(2);
            scale_opt.crossing = scale_opt.crossings[0];
            break;
        case 'c': scale_opt.concurrency = atoi(optarg); break;
        case 'r': scale_opt.rate = atol(optarg); break;
        case 'd': scale_opt.duration = atof(optarg); break;
        case 'H': scale_opt.hubs = atoi(optarg); break;
        case 'R': scale_opt.restart++; break;
        case 'N': scale_opt.resync_presence = false; break;
        case 'D': scale_opt.driver = optarg; break;
        case 'P': scale_opt.pg = optarg; break;
        case 'w': scale_opt.workdir = optarg; break;
        case 'x': scale_opt.sm_extra = optarg; break;
        case 'M': scale_opt.max_rss_mib = atol(optarg); break;
        case 'h': usage(0); break;
        default: usage(2);
        }
    }
    if (scale_opt.fronts < 1 || scale_opt.fronts > 255 || scale_opt.concurrency < 1 ||
        scale_opt.users < 2L * SCALE_CONTACTS ||
        scale_opt.users / scale_opt.fronts >= (1L << 24) ||
        (long)scale_opt.hubs * SCALE_HUB_CONTACTS > scale_opt.users ||
        (strcmp(scale_opt.driver, "sqlite") != 0 && strcmp(scale_opt.driver, "pgsql") != 0) ||
        scale_opt.partitions < 1 || scale_opt.partitions > SCALE_MAX_SMS ||
        scale_opt.crossing > 100 || (scale_opt.crossing >= 0 && scale_opt.partitions == 1) ||
        (scale_opt.partitions > 1 && (scale_opt.restart || strcmp(scale_opt.driver, "sqlite"))))
        usage(2);   /* partitions: one SQLite database each, no restart phase */
}

static void on_exit_cleanup(void)
{
    scale_cleanup();
}

int main(int argc, char **argv)
{
    static char bin_dir[PATH_MAX];
    parse(argc, argv);
    /* bench_bin_dir reads argv[1]: hand it what is left after the options. */
    argv[optind - 1] = argv[0];
    bench_bin_dir(argc - optind + 1, argv + optind - 1, bin_dir);
    scale_opt.bin_dir = bin_dir;
    signal(SIGPIPE, SIG_IGN);
    atexit(on_exit_cleanup);

    scale_got.login_latency = mem_array((size_t)(scale_opt.users + scale_opt.hubs),
                                        sizeof(uint64_t));
    scale_setup();
    for (int k = 0; k < scale_opt.partitions; k++)
        scale_sm_start(k);
    /* Every SM's peer links up before the first login: each counts them as components. */
    for (double t = bench_now_s(); scale_opt.partitions > 1;) {
        int up = 0;
        for (int k = 0; k < scale_opt.partitions; k++)
            up += scale_sm_stat(k, "components_up") == scale_opt.partitions - 1;
        if (up == scale_opt.partitions)
            break;
        if (bench_now_s() - t > 30)
            scale_die("the SMs' peer links are not all up after 30 s");
        usleep(100000);
    }
    for (int k = 0; k < scale_opt.partitions; k++)
        scale_links_open(k);
    scale_resync_all();   /* none yet: each front's empty RESYNC, as a front's first link says */
    if (!scale_wait_acked(30))
        scale_die("the SM did not settle after the links opened");
    for (int i = 0; i < 10; i++)
        scale_pump(100);
    long rss0 = sm_rss_kib();

    logins();
    memory(rss0);
    fanout();
    messages();
    for (int i = 1; i < scale_opt.ncrossings; i++) {
        scale_opt.crossing = scale_opt.crossings[i];
        messages();
    }
    for (int i = 0; i < scale_opt.restart; i++)
        restart();
    if (scale_got.ends)
        fprintf(stderr, "sm_scale: the SM ended %ld sessions during the run\n", scale_got.ends);
    scale_sm_stop();
    scale_links_close();
    scale_links_free();
    free(scale_got.login_latency);
    return 0;
}
