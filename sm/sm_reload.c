/* sm/sm_reload.c — SIGHUP on the SM (sm_reload.h). A configuration that does not load changes
 * nothing (its error is logged, with file, line and element). One that does gives its <limits>,
 * the modules' integer options and the log level to the running SM (the loop's thread is the
 * only reader); the rest is compared, and what differs is named as needing a restart, since the
 * links, storage and the modules' other settings were set up at start. */
#include "sm/sm_reload.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "sm/module.h"
#include "sm/modules.h"

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_services(const sm_config *a, const sm_config *b)
{
    if (a->nservices != b->nservices)
        return false;
    for (int i = 0; i < a->nservices; i++) {
        const sm_service *x = &a->services[i], *y = &b->services[i];
        if (!same_str(x->id, y->id) || !same_str(x->ip, y->ip) || x->port != y->port ||
            !same_str(x->secret, y->secret) || x->role != y->role)
            return false;
    }
    return true;
}

static bool same_hosts(const sm_config *a, const sm_config *b)
{
    if (a->nhosts != b->nhosts)
        return false;
    for (int i = 0; i < a->nhosts; i++)
        if (strcmp(a->hosts[i].name, b->hosts[i].name) != 0)
            return false;
    return true;
}

static bool same_partitions(const sm_config *a, const sm_config *b)
{
    const sm_partitions *x = &a->partitions, *y = &b->partitions;
    if (x->npeers != y->npeers || x->index != y->index || !same_str(x->id, y->id) ||
        !same_str(x->ip, y->ip) || x->port != y->port || x->key.k0 != y->key.k0 ||
        x->key.k1 != y->key.k1)
        return false;
    for (int i = 0; i < x->npeers; i++) {
        const sm_peer *p = &x->peers[i], *q = &y->peers[i];
        if (p->index != q->index || !same_str(p->id, q->id) || !same_str(p->host, q->host) ||
            p->port != q->port || !same_str(p->secret, q->secret))
            return false;
    }
    return true;
}

static bool same_modules(const sm_config *a, const sm_config *b)
{
    if (!a->modules || !b->modules)
        return !a->modules && !b->modules;
    size_t i = 0;
    for (; a->modules[i] && b->modules[i]; i++)
        if (strcmp(a->modules[i], b->modules[i]) != 0)
            return false;
    return !a->modules[i] && !b->modules[i];
}

void sm_reload(sm *s, sm_config *cfg, const char *path)
{
    sm_config fresh;
    config_error err;
    if (sm_config_load(path, sm_builtin_modules, &fresh, &err) != 0) {
        log_error("sm: SIGHUP: %s: nothing changed", err.text);
        return;
    }
    const db_settings *x = &cfg->storage.db, *y = &fresh.storage.db;
    const struct {
        const char *what;
        bool same;
    } fixed[] = {
        {"<service> (the links)", same_services(cfg, &fresh)},
        {"<host> (the hosts, and their modules' settings)", same_hosts(cfg, &fresh)},
        {"<storage>", same_str(x->driver, y->driver) && same_str(x->path, y->path) &&
                          same_str(x->host, y->host) && x->port == y->port &&
                          same_str(x->user, y->user) && same_str(x->password, y->password) &&
                          same_str(x->database, y->database) &&
                          cfg->storage.workers == fresh.storage.workers},
        {"<modules>", same_modules(cfg, &fresh)},
        {"<partitions>", same_partitions(cfg, &fresh)},
        {"<admin><socket>", same_str(cfg->admin_socket, fresh.admin_socket)},
        {"<metrics>", same_str(cfg->metrics_ip, fresh.metrics_ip) &&
                          cfg->metrics_port == fresh.metrics_port},
        {"<log><target> and <path>", cfg->log_target == fresh.log_target &&
                                         same_str(cfg->log_path, fresh.log_path)},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!fixed[i].same)
            log_warn("sm: SIGHUP: %s changed: it takes effect at the next restart", fixed[i].what);
    cfg->limits = fresh.limits;
    sm_reload_ints(s, fresh.cfg);
    log_set_level(fresh.log_level);
    sm_config_free(&fresh);
    if (log_reopen() != 0)
        log_warn("sm: SIGHUP: cannot reopen the log: %s", strerror(errno));
    log_notice("sm: SIGHUP: %s read again: limits, the modules' options and the log level in "
               "force, log reopened", path);
}
