/* shard/main.c — jabshard-c2s, the client front: reads jadc2s.xml, sets up logging and TLS, starts
 * the SM-link thread and the IO threads, then waits for signals on a signalfd (SIGTERM/SIGINT: every
 * client gets <system-shutdown/> and the process exits 0; SIGHUP: the certificate is reloaded and
 * the log reopened, nobody is dropped). It tells systemd (core/notify.h) READY once both client
 * listeners are bound and every IO thread runs — not waiting for the SM link, which it keeps
 * retrying while clients are held —, the link's state and the connections accepted as STATUS
 * every few seconds, and STOPPING at shutdown. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/args.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/notify.h"
#include "core/signals.h"
#include "core/tls.h"
#include "shard/front_config.h"
#include "shard/front_check.h"
#include "shard/front_metrics.h"
#include "shard/upload_files.h"
#include "shard/front_reload.h"
#include "shard/ip_limit.h"
#include "shard/iothread.h"
#include "shard/verify_pool.h"
#include "shard/link_front.h"

static const char usage[] =
    "usage: jabshard-c2s [-c FILE] [--check]\n"
    "  -c FILE   configuration (default ./jadc2s.xml)\n"
    "  --check   check the configuration, certificate, ports and SM link, and exit\n";

static void raise_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t target = want <= rl.rlim_max ? want : rl.rlim_max;
    rl.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || target < want)
        log_warn("the open-file limit is %llu, below <max_fds> %u and what the front needs: raise "
                 "it (ulimit -n)", (unsigned long long)target, want);
}

/* XEP-0352 over the process's life (shard/csi.h): what holding back cost and saved. */
static void log_csi_totals(iothread **io, unsigned n)
{
    iothread_stats t = {0};
    for (unsigned i = 0; i < n; i++) {
        iothread_stats st;
        iothread_get_stats(io[i], &st);
        t.csi_held += st.csi_held;
        t.csi_superseded += st.csi_superseded;
        t.csi_superseded_bytes += st.csi_superseded_bytes;
        t.csi_flushes += st.csi_flushes;
        t.csi_flushed_bytes += st.csi_flushed_bytes;
        t.csi_wakeups_saved += st.csi_wakeups_saved;
    }
    log_info("csi: held %llu stanzas, superseded %llu (%llu bytes never written), flushes %llu "
             "(%llu bytes held then written), writes saved %llu",
             (unsigned long long)t.csi_held, (unsigned long long)t.csi_superseded,
             (unsigned long long)t.csi_superseded_bytes, (unsigned long long)t.csi_flushes,
             (unsigned long long)t.csi_flushed_bytes, (unsigned long long)t.csi_wakeups_saved);
}

/* The STATUS line systemctl status shows: the link, the connections open and authenticated. */
static void notify_front_status(const link_front *link, iothread **io, unsigned n)
{
    uint64_t open = 0, authed = 0;
    for (unsigned i = 0; i < n; i++) {
        iothread_stats st;
        iothread_get_stats(io[i], &st);
        open += st.accepted - st.closed;
        authed += st.authed_now;
    }
    notify_status("link to the SM %s; %llu connections open, %llu authenticated",
                  link_front_up(link) ? "up" : "down (retrying)", (unsigned long long)open,
                  (unsigned long long)authed);
}

static tls_server *make_tls(const front_config *cfg)
{
    tls_error err;
    const char *pem = cfg->pemfile;
    if (access(pem, F_OK) != 0) {
        log_warn("TLS: %s does not exist; using a generated self-signed certificate for the "
                 "<local><id>s (clients will not trust it)", pem);
        pem = NULL;
    }
    tls_server *srv = tls_server_new(pem, NULL, (const char *const *)cfg->hosts, &err);
    if (!srv)
        fprintf(stderr, "jabshard-c2s: TLS: %s\n", err.text);
    return srv;
}

int main(int argc, char **argv)
{
    const char *path = "./jadc2s.xml";
    bool check = false;
    int status = args_parse(argc, argv, usage, &path, &check);
    if (status >= 0)
        return status;

    front_config cfg;
    config_error cerr;
    if (front_config_load(path, &cfg, &cerr) != 0) {
        fprintf(stderr, "jabshard-c2s: %s\n", cerr.text);
        return 2;
    }
    if (check) {
        status = front_check(&cfg, path);
        front_config_free(&cfg);
        return status;
    }
    if (log_open("jabshard-c2s", cfg.log_target, cfg.log_path, cfg.log_level) != 0) {
        fprintf(stderr, "jabshard-c2s: cannot open the log %s: %s\n",
                cfg.log_path ? cfg.log_path : "", strerror(errno));
        return 2;
    }

    /* Signals: handled here through a signalfd; every thread inherits the mask. */
    int sfd = signals_take(0);
    if (sfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }

    uint32_t slots = front_shard_slots(cfg.max_fds, cfg.threads);
    raise_fd_limit(slots * cfg.threads + 64);
    tls_server *tls = make_tls(&cfg);
    if (!tls)
        return 2;

    link_front *link = link_front_new(&cfg, cfg.threads);
    verify_pool *verify = verify_pool_new(cfg.threads > 1 ? cfg.threads / 2 : 1, iothread_verify_done);
    if (!verify) {
        log_error("cannot start the verification workers: %s", strerror(errno));
        return 1;
    }
    /* 16384 slots (128 KiB) each: few collisions between the addresses whose buckets are not
     * full at one time. */
    _Atomic(const front_limits *) limits = &cfg.limits;
    front_reload *reload = front_reload_new(path, &cfg, tls, &limits);
    iothread_shared shared = {.cfg = &cfg, .limits = &limits, .tls = tls, .link = link,
                              .verify = verify,
                              .conn_ips = ip_limit_new(16384), .auth_ips = ip_limit_new(16384),
                              .reg_ips = ip_limit_new(16384), .log_ips = ip_limit_new(16384)};
    iothread **io = mem_array(cfg.threads, sizeof *io);
    for (unsigned i = 0; i < cfg.threads; i++) {
        char err[256];
        io[i] = iothread_new(&shared, i, slots, err, sizeof err);
        if (!io[i]) {
            log_error("%s", err);
            return 1;
        }
        link_front_attach(link, i, iothread_loop(io[i]));
    }
    shared.threads = io;
    shared.nthreads = cfg.threads;
    log_info("max_fds %u over %u IO threads: %u connection slots each (a prime); listening on "
             "%s port %d (STARTTLS) and %d (direct TLS)", cfg.max_fds, cfg.threads, slots, cfg.ip,
             cfg.port, cfg.ssl_port);
    const front_http *http = &cfg.http;
    if (http->on)
        log_info("web clients: WebSocket at %s%s%s%s (plain HTTP port %d, HTTPS port %d; 0: "
                 "none)%s%s", http->public_url ? http->public_url : "", http->ws_path,
                 http->bosh.path[0] ? ", BOSH at " : "", http->bosh.path, http->port,
                 tls ? http->tls_port : 0, http->upload.on ? ", uploads under " : "",
                 http->upload.on ? http->upload.path : "");
    upload_sweeper *sweeper = NULL;
    if (http->upload.on) {
        if (mkdir(http->upload.dir, 0750) != 0 && errno != EEXIST) {
            log_error("%s: <http><upload><dir> '%s': %s", path, http->upload.dir,
                      strerror(errno));
            return 1;
        }
        sweeper = upload_sweeper_start(&http->upload);
    }
    if (link_front_start(link) != 0) {
        log_error("cannot start the SM-link thread: %s", strerror(errno));
        return 1;
    }
    for (unsigned i = 0; i < cfg.threads; i++) {
        if (iothread_start(io[i]) != 0) {
            log_error("cannot start IO thread %u: %s", i, strerror(errno));
            return 1;
        }
    }

    /* Metrics are for operators: a port taken is said, and the front serves clients anyway. */
    front_metrics *metrics = NULL;
    if (cfg.metrics_port) {
        char err[256];
        metrics = front_metrics_start(io, cfg.threads, link, cfg.metrics_ip, cfg.metrics_port, err,
                                      sizeof err);
        if (metrics)
            log_info("metrics at http://%s:%d/metrics", cfg.metrics_ip, cfg.metrics_port);
        else
            log_warn("no metrics endpoint: %s", err);
    }

    notify_ready("listening on %s port %d (STARTTLS) and %d (direct TLS); link to the SM "
                 "connecting", cfg.ip, cfg.port, cfg.ssl_port);

    for (;;) {
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        int ready = poll(&pfd, 1, 5000);
        if (ready == 0) {
            notify_front_status(link, io, cfg.threads);
            continue;
        }
        struct signalfd_siginfo si;
        ssize_t r = ready < 0 ? -1 : read(sfd, &si, sizeof si);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof si) {
            log_error("signalfd read: %s", strerror(errno));
            break;
        }
        if (si.ssi_signo == SIGHUP) {
            front_reload_run(reload);
            continue;
        }
        log_notice("%s: shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    notify_stopping();
    front_metrics_stop(metrics);
    upload_sweeper_stop(sweeper);

    for (unsigned i = 0; i < cfg.threads; i++)
        iothread_shutdown(io[i]);
    for (unsigned i = 0; i < cfg.threads; i++)
        iothread_join(io[i]);
    log_csi_totals(io, cfg.threads);
    link_front_stop(link);
    verify_pool_free(verify);
    for (unsigned i = 0; i < cfg.threads; i++)
        iothread_free(io[i]);
    free(io);
    front_reload_free(reload);
    link_front_free(link);
    ip_limit_free(shared.conn_ips);
    ip_limit_free(shared.auth_ips);
    ip_limit_free(shared.reg_ips);
    ip_limit_free(shared.log_ips);
    tls_server_free(tls);
    close(sfd);
    front_config_free(&cfg);
    return 0;
}
