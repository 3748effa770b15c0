/* s2s/main.c — jabshard-s2s, the federation front: reads s2s.xml, sets up logging, TLS and DNS,
 * listens for remote servers (5269 with STARTTLS, and XEP-0368's direct TLS port), links to the
 * SM, and runs everything on one event loop (s2s/s2s_server.h). Signals arrive on a signalfd in
 * the loop: SIGTERM/SIGINT close every stream with <system-shutdown/> and exit 0; SIGHUP reloads
 * the certificate and reopens the log. Several boxes may run it: the SM spreads remote domains
 * over the s2s links it has. */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/args.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/notify.h"
#include "core/signals.h"
#include "core/tcp_listen.h"
#include "s2s/s2s_check.h"
#include "s2s/s2s_metrics.h"
#include "s2s/s2s_server.h"

typedef struct listener {
    evloop_io io;
    int fd;
    bool direct_tls;
    s2s_server *srv;
} listener;

typedef struct signal_watch {
    evloop_io io;
    int fd;
    s2s_server *srv;
} signal_watch;

static const char usage[] =
    "usage: jabshard-s2s [-c FILE] [--check]\n"
    "  -c FILE   configuration (default ./s2s.xml)\n"
    "  --check   check the configuration, the certificate, the ports, the SM\n"
    "            link and DNS, and exit (1 when something is wrong)\n";

static void peer_name(const struct sockaddr_storage *sa, socklen_t len, char *out, size_t size)
{
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    getnameinfo((const struct sockaddr *)sa, len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, size, "%s port %s", host, port);
}

static void on_accept(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    (void)loop;
    (void)io;
    (void)events;
    listener *ls = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept4(ls->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        char peer[80];
        peer_name(&sa, len, peer, sizeof peer);
        s2s_conn_accept(ls->srv, fd, ls->direct_tls, peer);
    }
}

static void on_signal(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    (void)io;
    (void)events;
    signal_watch *w = arg;
    struct signalfd_siginfo si;
    while (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            tls_error err;
            if (s2s_tls_reload(w->srv->tls, &err) != 0)
                log_error("SIGHUP: the certificate was not reloaded: %s", err.text);
            else
                log_notice("SIGHUP: certificate reloaded");
            log_reopen();
            continue;
        }
        log_notice("%s: shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        evloop_stop(loop);
    }
}

/* Once per loop iteration: what this iteration's work gathered leaves in one write each. */
static void before_sleep(evloop *loop, void *arg)
{
    (void)loop;
    s2s_server *srv = arg;
    s2s_link_flush(srv->link);
    s2s_conns_flush_pending(srv);
}

static s2s_tls *make_tls(const s2s_config *cfg)
{
    tls_error err;
    s2s_tls *t = s2s_tls_new(cfg->pemfile, NULL, cfg->cafile, cfg->capath,
                             (const char *const *)cfg->hosts, &err);
    if (!t)
        fprintf(stderr, "jabshard-s2s: TLS: %s\n", err.text);
    return t;
}

int main(int argc, char **argv)
{
    const char *path = "./s2s.xml";
    bool check = false;
    int status = args_parse(argc, argv, usage, &path, &check);
    if (status >= 0)
        return status;
    s2s_config cfg;
    config_error cerr;
    if (s2s_config_load(path, &cfg, &cerr) != 0) {
        fprintf(stderr, "jabshard-s2s: %s\n", cerr.text);
        return 2;
    }
    if (check) {
        status = s2s_check(&cfg, path);
        s2s_config_free(&cfg);
        return status;
    }
    s2s_tls *tls = make_tls(&cfg);
    if (!tls)
        return 2;
    if (log_open("jabshard-s2s", cfg.log_target, cfg.log_path, cfg.log_level) != 0) {
        fprintf(stderr, "jabshard-s2s: cannot open the log %s: %s\n",
                cfg.log_path ? cfg.log_path : "", strerror(errno));
        return 2;
    }
    int sfd = signals_take(SFD_NONBLOCK);
    evloop *loop = sfd >= 0 ? evloop_create() : NULL;
    if (!loop) {
        log_error("cannot start: %s", strerror(errno));
        return 1;
    }
    s2s_server srv = {.loop = loop, .cfg = &cfg, .tls = tls};
    srv.stream_cfg.secret = cfg.dialback_secret;
    xmlstream_limits_default(&srv.stream_cfg.limits);
    srv.stream_cfg.limits.max_stanza_bytes = srv.stream_cfg.limits.max_attr_bytes =
        srv.stream_cfg.limits.max_text_bytes = cfg.limits.stanza_size;
    char err[512];
    srv.dns = s2s_resolver_new(loop, cfg.resolv_conf, cfg.hosts_file, err, sizeof err);
    if (srv.dns && cfg.forward && s2s_resolver_forward(srv.dns, cfg.forward) != 0) {
        snprintf(err, sizeof err, "<dns><forward> '%s': not an address[@port]", cfg.forward);
        s2s_resolver_free(srv.dns);
        srv.dns = NULL;
    }
    if (!srv.dns) {
        log_error("DNS: %s", err);
        return 1;
    }
    listener ls[2] = {{.direct_tls = false, .srv = &srv}, {.direct_tls = true, .srv = &srv}};
    int ports[2] = {cfg.port, cfg.tls_port};
    for (int i = 0; i < 2; i++) {
        ls[i].fd = -1;
        if (!ports[i])
            continue;
        ls[i].fd = tcp_listen(cfg.ip, ports[i], 1024, false, err, sizeof err);
        if (ls[i].fd < 0) {
            log_error("%s", err);
            return 1;
        }
        evloop_io_init(&ls[i].io, ls[i].fd, on_accept, &ls[i]);
        evloop_io_set(loop, &ls[i].io, EVLOOP_READ);
    }
    signal_watch sw = {.fd = sfd, .srv = &srv};
    evloop_io_init(&sw.io, sfd, on_signal, &sw);
    evloop_io_set(loop, &sw.io, EVLOOP_READ);
    srv.link = s2s_link_new(&srv);
    evloop_before_sleep(loop, before_sleep, &srv);
    s2s_metrics *metrics = NULL;
    if (cfg.metrics_ip) {
        metrics = s2s_metrics_open(&srv, cfg.metrics_ip, cfg.metrics_port, err, sizeof err);
        if (metrics)
            log_info("metrics at http://%s:%d/metrics", cfg.metrics_ip, cfg.metrics_port);
        else
            log_warn("no metrics endpoint: %s", err);
    }
    log_info("federation for %zu domain%s: listening on %s port %d (STARTTLS)%s%.0d; SM at %s "
             "port %d as '%s'", cfg.nhosts, cfg.nhosts == 1 ? "" : "s", cfg.ip, cfg.port,
             cfg.tls_port ? " and direct TLS on " : "", cfg.tls_port, cfg.sm_host, cfg.sm_port,
             cfg.sm_id);
    notify_ready("listening on %s port %d", cfg.ip, cfg.port);
    evloop_run(loop);
    notify_stopping();

    s2s_metrics_close(metrics);
    s2s_conns_shutdown(&srv);
    log_info("stanzas: %llu in, %llu out, %llu bounced; streams: %llu in, %llu out",
             (unsigned long long)srv.count.stanzas_in, (unsigned long long)srv.count.stanzas_out,
             (unsigned long long)srv.count.bounced, (unsigned long long)srv.count.conns_in,
             (unsigned long long)srv.count.conns_out);
    for (int i = 0; i < 2; i++)
        if (ls[i].fd >= 0) {
            evloop_io_set(loop, &ls[i].io, 0);
            close(ls[i].fd);
        }
    evloop_io_set(loop, &sw.io, 0);
    s2s_routes_free(&srv);
    s2s_link_free(srv.link);
    s2s_resolver_free(srv.dns);
    s2s_tls_free(tls);
    evloop_destroy(loop);
    close(sfd);
    s2s_config_free(&cfg);
    return 0;
}
