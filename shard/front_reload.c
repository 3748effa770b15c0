/* shard/front_reload.c — SIGHUP on the front (front_reload.h). A configuration that does not load
 * changes nothing (its error is logged with file, line and element). One that does: its limits
 * are published to the IO threads (each takes them at its next iteration; the configuration
 * read stays allocated until exit, since a thread may still read the one before), the log level
 * is set, the certificate file is read again (a renewed certificate serves the next connections;
 * a failure keeps the current one), and what differs otherwise is named: it needs a restart. */
#include "shard/front_reload.h"

#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

typedef struct kept {
    front_config cfg;
    struct kept *next;
} kept;

struct front_reload {
    const char *path;
    const front_config *current;    /* the one in force: the program's, or a kept one */
    tls_server *tls;
    _Atomic(const front_limits *) *limits;
    kept *kept;
};

front_reload *front_reload_new(const char *path, const front_config *cfg, tls_server *tls,
                               _Atomic(const front_limits *) *limits)
{
    front_reload *r = mem_zalloc(sizeof *r);
    r->path = path;
    r->current = cfg;
    r->tls = tls;
    r->limits = limits;
    return r;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_sms(const front_config *a, const front_config *b)
{
    if (a->nsms != b->nsms)
        return false;
    for (size_t i = 0; i < a->nsms; i++)
        if (strcmp(a->sms[i].host, b->sms[i].host) != 0 || a->sms[i].port != b->sms[i].port)
            return false;
    return true;
}

static bool same_hosts(const front_config *a, const front_config *b)
{
    if (a->nhosts != b->nhosts)
        return false;
    for (size_t i = 0; i < a->nhosts; i++)
        if (strcmp(a->hosts[i], b->hosts[i]) != 0)
            return false;
    return true;
}

/* The settings read only at start: each that changed is named. */
static bool same_http(const front_http *a, const front_http *b)
{
    if (a->on != b->on || !a->on)
        return a->on == b->on;
    bool same = same_str(a->ip, b->ip) && a->port == b->port && a->tls_port == b->tls_port &&
                same_str(a->public_url, b->public_url) && same_str(a->ws_path, b->ws_path) &&
                a->max_message == b->max_message && a->norigins == b->norigins &&
                same_str(a->bosh.path, b->bosh.path) && a->bosh.wait_max == b->bosh.wait_max &&
                a->bosh.hold_max == b->bosh.hold_max &&
                a->bosh.inactivity == b->bosh.inactivity &&
                a->bosh.polling == b->bosh.polling && a->bosh.maxpause == b->bosh.maxpause &&
                a->upload.on == b->upload.on;
    for (size_t i = 0; same && i < a->norigins; i++)
        same = same_str(a->origins[i], b->origins[i]);
    if (same && a->upload.on)
        same = same_str(a->upload.path, b->upload.path) && same_str(a->upload.dir, b->upload.dir) &&
               same_str(a->upload.secret, b->upload.secret) &&
               a->upload.max_file_size == b->upload.max_file_size &&
               a->upload.expire_after == b->upload.expire_after;
    return same;
}

static void name_restart_needed(const front_config *was, const front_config *now)
{
    const struct {
        const char *what;
        bool same;
    } fixed[] = {
        {"<sm> (the link to the SM)", same_sms(was, now) &&
                                          same_str(was->sm_secret, now->sm_secret) &&
                                          same_str(was->sm_id, now->sm_id)},
        {"<local><id> (the hosts)", same_hosts(was, now)},
        {"<local><ip> and the ports", same_str(was->ip, now->ip) && was->port == now->port &&
                                          was->ssl_port == now->ssl_port},
        {"<local><ssl><pemfile> (its path; the file itself is read again)",
         same_str(was->pemfile, now->pemfile)},
        {"<max_fds> and <threads>", was->max_fds == now->max_fds && was->threads == now->threads},
        {"<csi>", !memcmp(&was->csi, &now->csi, sizeof was->csi)},
        {"<smacks>", !memcmp(&was->smacks, &now->smacks, sizeof was->smacks)},
        {"<metrics>", same_str(was->metrics_ip, now->metrics_ip) &&
                          was->metrics_port == now->metrics_port},
        {"<http> (the web listener)", same_http(&was->http, &now->http)},
        {"<log><target> and <path>", was->log_target == now->log_target &&
                                         same_str(was->log_path, now->log_path)},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!fixed[i].same)
            log_warn("SIGHUP: %s changed: it takes effect at the next restart", fixed[i].what);
}

void front_reload_run(front_reload *r)
{
    kept *k = mem_zalloc(sizeof *k);
    config_error err;
    if (front_config_load(r->path, &k->cfg, &err) != 0) {
        log_error("SIGHUP: %s: nothing changed", err.text);
        free(k);
        return;
    }
    name_restart_needed(r->current, &k->cfg);
    k->next = r->kept;
    r->kept = k;
    r->current = &k->cfg;
    atomic_store_explicit(r->limits, &k->cfg.limits, memory_order_release);
    log_set_level(k->cfg.log_level);
    tls_error terr;
    if (tls_server_reload(r->tls, &terr) != 0)
        log_warn("SIGHUP: the certificate could not be read again, the current one stays: %s",
                 terr.text);
    if (log_reopen() != 0)
        log_warn("SIGHUP: cannot reopen the log: %s", strerror(errno));
    log_notice("SIGHUP: %s read again: limits, log level and certificate in force, log reopened",
               r->path);
}

void front_reload_free(front_reload *r)
{
    if (!r)
        return;
    while (r->kept) {
        kept *k = r->kept;
        r->kept = k->next;
        front_config_free(&k->cfg);
        free(k);
    }
    free(r);
}
