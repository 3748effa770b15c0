/* sm/domains.c — domains that modules serve inside the SM (a group chat service, XEP-0045):
 * registering them, and handing over the stanzas addressed to them or to JIDs at them. While the
 * SM's start waits for the fronts' resync and the modules' storage (sm/restart_wait.c), those
 * stanzas wait too: what a service serves may still be loading. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/core.h"

struct served_domain {
    char *domain;
    sm_domain_fn fn;
    void *ctx;
    served_domain *next;
};

static served_domain *find(const sm *s, const char *domain, size_t len)
{
    for (served_domain *d = s->domains; d; d = d->next)
        if (strlen(d->domain) == len && strncasecmp(d->domain, domain, len) == 0)
            return d;
    return NULL;
}

bool sm_service_domain(const sm_config *c, const char *what, const char *host,
                       const char *domain, jid *out)
{
    memset(out, 0, sizeof *out);
    jid dj;
    if (jid_parse(domain, strlen(domain), &dj) != JID_OK || !jid_is_bare(&dj) ||
        jid_node(&dj, &(size_t){0})) {
        log_error("sm: %s: '%s' is not a domain for a service", what, domain);
        return false;
    }
    for (int i = 0; i < c->nservices; i++)
        if (c->services[i].id && strcasecmp(c->services[i].id, jid_full(&dj)) == 0) {
            log_notice("sm: %s: %s is a configured component's: no built-in service for %s",
                       what, jid_full(&dj), host);
            jid_free(&dj);
            return true;
        }
    *out = dj;
    return true;
}

bool sm_serve_domain(sm *s, const char *domain, sm_domain_fn fn, void *ctx)
{
    size_t len = strlen(domain);
    if (find(s, domain, len) || sm_is_local_host(s, domain, len)) {
        log_error("sm: %s is served already (a host, or another service)", domain);
        return false;
    }
    for (int i = 0; i < s->cfg->nservices; i++) {
        const char *id = s->cfg->services[i].id;
        if (id && strcasecmp(id, domain) == 0) {
            log_error("sm: %s is a configured component's or front's id, not a service's",
                      domain);
            return false;
        }
    }
    served_domain *d = mem_zalloc(sizeof *d);
    d->domain = mem_strdup(domain);
    d->fn = fn;
    d->ctx = ctx;
    d->next = s->domains;
    s->domains = d;
    return true;
}

bool sm_is_served_domain(const sm *s, const char *domain, size_t len)
{
    return find(s, domain, len) != NULL;
}

bool smc_domain_dispatch(sm *s, sm_stanza *st, const char *domain, size_t len)
{
    served_domain *d = find(s, domain, len);
    if (!d)
        return false;
    if (!smc_restart_wait_hold_any(s, st))
        d->fn(s, st, d->ctx);
    return true;
}

void smc_domains_free(sm *s)
{
    while (s->domains) {
        served_domain *d = s->domains;
        s->domains = d->next;
        free(d->domain);
        free(d);
    }
}
