/* sm/main.c — jabshard-sm, the session manager: configuration, logging, storage, the event loop
 * and signals. Everything else is sm/server.c and what it wires together. It tells systemd
 * (core/notify.h) READY once storage is open and the link listeners (every <service><accept>)
 * and the admin socket are up, and STOPPING when a signal asks it to stop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/signals.h"
#include "sm/admin.h"
#include "sm/config.h"
#include "sm/metrics.h"
#include "sm/modules.h"
#include "sm/server.h"
#include "sm/sm_check.h"
#include "sm/sm_reload.h"
#include "xdbsql/breaker.h"
#include "xdbsql/xdbsql.h"

typedef struct signals {
    sm_config *cfg;
    const char *path;
    evloop_io io;
    int fd;
    sm_server *srv;
    bool stop;
} signals;

static void on_signal(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    signals *sg = arg;
    struct signalfd_siginfo si;
    while (read(sg->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            sm_reload(sm_server_core(sg->srv), sg->cfg, sg->path);
        } else if (!sg->stop) {
            log_notice("sm: SIG%s: shutting down", sigabbrev_np((int)si.ssi_signo));
            notify_stopping();
            sg->stop = true;
            sm_server_shutdown(sg->srv);
            evloop_stop(loop);
        }
    }
}

static void wake(void *ctx)
{
    evloop_wake(ctx);
}

/* What jabshardctl status and stats say of storage. */
typedef struct storage_probe {
    const char *driver;
    xdbsql *xdb;
    db_breaker *breaker;
} storage_probe;

static void storage_state(void *ctx, sm_admin_storage *out)
{
    storage_probe *p = ctx;
    breaker_stats bs = {0};
    if (p->breaker)
        breaker_stats_get(p->breaker, &bs);
    *out = (sm_admin_storage){.driver = p->driver, .workers = xdbsql_workers(p->xdb),
                              .pending = xdbsql_pending(p->xdb), .down = bs.open,
                              .outages = bs.outages};
}

/* Every STATUS_EVERY_MS under systemd (NOTIFY_SOCKET set): the STATUS line `systemctl status`
 * shows, from the core's counts (counting the detached walks the sessions: not done otherwise). */
#define STATUS_EVERY_MS 10000

typedef struct status_line {
    timer t;
    evloop *loop;
    sm_server *srv;
} status_line;

static void on_status(timer *t, void *arg)
{
    status_line *st = arg;
    sm_stats s;
    sm_get_stats(sm_server_core(st->srv), &s);
    notify_status("%llu sessions (%llu detached), %llu accounts in memory; %llu front link(s) up",
                  (unsigned long long)s.sessions, (unsigned long long)s.detached,
                  (unsigned long long)s.users, (unsigned long long)s.fronts_up);
    evloop_timer_after(st->loop, &st->t, STATUS_EVERY_MS);
}

static void usage(void)
{
    fprintf(stderr, "usage: jabshard-sm [-c sm.xml] [--check]\n"
                    "  -c FILE   configuration (default ./sm.xml)\n"
                    "  --check   check the configuration, storage and ports, and exit\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = "./sm.xml";
    bool check = false;
    static const struct option longopts[] = {{"check", no_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (opt == 'c')
            path = optarg;
        else if (opt == 'k')
            check = true;
        else
            usage();
    }
    if (optind != argc)
        usage();

    sm_config cfg;
    config_error cerr;
    if (sm_config_load(path, sm_builtin_modules, &cfg, &cerr) != 0) {
        fprintf(stderr, "jabshard-sm: %s\n", cerr.text);
        return 2;
    }
    if (check) {
        int status = sm_check(&cfg, path);
        sm_config_free(&cfg);
        return status;
    }
    if (log_open("jabshard-sm", cfg.log_target, cfg.log_path, cfg.log_level) != 0) {
        fprintf(stderr, "jabshard-sm: cannot open the log %s: %s\n",
                cfg.log_path ? cfg.log_path : "", strerror(errno));
        return 2;
    }

    /* Signals arrive through a signalfd on the loop; taken before any thread starts so storage
     * workers inherit the mask. */
    int signal_fd = signals_take(SFD_NONBLOCK);
    if (signal_fd < 0) {
        fprintf(stderr, "jabshard-sm: signalfd: %s\n", strerror(errno));
        return 1;
    }

    evloop *loop = evloop_create();
    if (!loop) {
        fprintf(stderr, "jabshard-sm: cannot create the event loop: %s\n", strerror(errno));
        return 1;
    }
    char err[512];
    cfg.storage.notify = wake;
    cfg.storage.notify_ctx = loop;
    xdbsql *xdb = xdbsql_open(&cfg.storage, err, sizeof(err));
    if (!xdb) {
        fprintf(stderr, "jabshard-sm: storage (%s): %s\n", cfg.storage.db.driver, err);
        return 1;
    }
    sm_server *srv = sm_server_new(loop, &cfg, xdb);
    if (!srv) {
        /* A module refused its options (the error names file, line and element) or could not
         * start (logged). */
        if (config_check(cfg.cfg, &cerr) != 0) {
            fprintf(stderr, "jabshard-sm: %s\n", cerr.text);
            return 2;
        }
        fprintf(stderr, "jabshard-sm: a module could not start (see the log)\n");
        return 1;
    }
    if (sm_server_listen(srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "jabshard-sm: %s\n", err);
        return 1;
    }
    sm_admin *admin = sm_admin_open(loop, sm_server_core(srv), cfg.admin_socket, err, sizeof(err));
    if (!admin) {
        fprintf(stderr, "jabshard-sm: %s\n", err);
        return 1;
    }
    storage_probe probe = {.driver = cfg.storage.db.driver, .xdb = xdb,
                           .breaker = breaker_acquire(&cfg.storage.db)};
    sm_admin_set_storage(admin, storage_state, &probe);
    /* Metrics are for operators: a port taken is said, and the SM serves its users anyway. */
    sm_metrics *metrics = NULL;
    if (cfg.metrics_port) {
        metrics = sm_metrics_open(loop, srv, xdb, cfg.metrics_ip, cfg.metrics_port, err,
                                  sizeof err);
        if (metrics)
            log_info("sm: metrics at http://%s:%d/metrics", cfg.metrics_ip, cfg.metrics_port);
        else
            log_warn("sm: no metrics endpoint: %s", err);
    }
    signals sg = {.cfg = &cfg, .path = path, .fd = signal_fd, .srv = srv};
    evloop_io_init(&sg.io, sg.fd, on_signal, &sg);
    evloop_io_set(loop, &sg.io, EVLOOP_READ);
    log_notice("sm: started (%d host(s), %d service(s), storage %s)", cfg.nhosts, cfg.nservices,
               cfg.storage.db.driver);
    notify_ready("serving %d host(s) for %d service(s), storage %s", cfg.nhosts, cfg.nservices,
                 cfg.storage.db.driver);
    status_line status = {.loop = loop, .srv = srv};
    timer_init(&status.t, on_status, &status);
    if (getenv("NOTIFY_SOCKET"))
        evloop_timer_after(loop, &status.t, STATUS_EVERY_MS);

    evloop_run(loop);

    evloop_timer_cancel(loop, &status.t);
    evloop_io_set(loop, &sg.io, 0);
    close(sg.fd);
    sm_admin_close(admin);
    if (probe.breaker)
        breaker_release(probe.breaker);
    sm_metrics_close(metrics);
    /* Storage finishes what was submitted (last activity, offline stores) before we go. */
    xdbsql_close(xdb);
    sm_server_free(srv);
    evloop_destroy(loop);
    sm_config_free(&cfg);
    log_notice("sm: stopped");
    return 0;
}
