/* s2s/s2s_config.c — reading etc/s2s.xml (see s2s_config.h). */
#include "s2s/s2s_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/jid.h"
#include "core/mem.h"

static const char *const vocabulary[] = {
    "sm/host", "sm/port", "sm/secret", "sm/id", "sm/retries",
    "local/id", "local/ip", "local/port", "local/tls_port", "local/pemfile", "local/cafile",
    "local/capath", "dialback_secret", "dialback_secret_file",
    "dns/resolv_conf", "dns/hosts", "dns/forward",
    "policy/require_tls", "policy/require_valid_cert", "policy/dialback",
    "policy/domain", "policy/domain/block", "policy/domain/require_tls",
    "policy/domain/require_valid_cert", "policy/domain/dialback",
    "limits/stanza_size", "limits/queue_stanzas", "limits/queue_bytes", "limits/connect_timeout",
    "limits/idle_timeout", "limits/keepalive", "limits/max_bps", "limits/bps_burst",
    "limits/max_connections", "limits/domain_streams", "limits/output_max", "limits/max_routes",
    "metrics/ip", "metrics/port", "log/target", "log/path", "log/level", NULL,
};

/* A domain name as a JID domainpart, normalized; NULL (and an error kept) otherwise. */
static char *read_domain(config *cfg, xml_node *el, const char *text)
{
    jid j;
    jid_err e = jid_parse(text, strlen(text), &j);
    if (e != JID_OK || !jid_is_bare(&j) || jid_node(&j, NULL)) {
        config_fail(cfg, el, "'%s' is not a domain name: %s", text,
                    e != JID_OK ? jid_strerror(e) : "a node or resource is given");
        if (e == JID_OK)
            jid_free(&j);
        return NULL;
    }
    char *d = mem_strdup(jid_full(&j));
    jid_free(&j);
    return d;
}

static void read_hosts(s2s_config *sc, config *cfg)
{
    size_t n = 0;
    for (xml_node *el = config_first(cfg, NULL, "local/id"); el; el = config_next(el))
        n++;
    if (n == 0) {
        config_require(cfg, NULL, "local/id");
        return;
    }
    sc->hosts = mem_array(n + 1, sizeof(char *));
    for (xml_node *el = config_first(cfg, NULL, "local/id"); el; el = config_next(el)) {
        char *d = read_domain(cfg, el, config_str(cfg, el, NULL, ""));
        if (d && s2s_config_is_local(sc, d)) {
            config_fail(cfg, el, "domain '%s' is listed twice", d);
            free(d);
        } else if (d) {
            sc->hosts[sc->nhosts++] = d;
        }
    }
}

static void read_policy(config *cfg, xml_node *node, s2s_policy *p, const s2s_policy *def)
{
    p->require_tls = config_bool(cfg, node, node ? "require_tls" : "policy/require_tls",
                                 def->require_tls);
    p->require_valid_cert = config_bool(cfg, node, node ? "require_valid_cert"
                                                        : "policy/require_valid_cert",
                                        def->require_valid_cert);
    p->allow_dialback = config_bool(cfg, node, node ? "dialback" : "policy/dialback",
                                    def->allow_dialback);
    p->blocked = node ? config_bool(cfg, node, "block", false) : false;
    if (!p->allow_dialback && !p->require_valid_cert && !p->blocked)
        p->require_valid_cert = true;   /* without dialback, only certificates authenticate */
}

static void read_domains(s2s_config *sc, config *cfg)
{
    size_t n = 0;
    for (xml_node *el = config_first(cfg, NULL, "policy/domain"); el; el = config_next(el))
        n++;
    sc->domains = mem_array(n + 1, sizeof *sc->domains);
    for (xml_node *el = config_first(cfg, NULL, "policy/domain"); el; el = config_next(el)) {
        config_require(cfg, el, "@name");
        char *d = read_domain(cfg, el, config_str(cfg, el, "@name", ""));
        if (!d)
            continue;
        s2s_domain_policy *dp = &sc->domains[sc->ndomains++];
        dp->domain = d;
        read_policy(cfg, el, &dp->policy, &sc->policy);
        if (s2s_config_is_local(sc, d))
            config_fail(cfg, el, "'%s' is one of our own domains", d);
    }
}

static void read_secret(s2s_config *sc, config *cfg)
{
    const char *text = config_str(cfg, NULL, "dialback_secret", NULL);
    const char *file = config_str(cfg, NULL, "dialback_secret_file", NULL);
    if (text && file) {
        config_fail(cfg, config_first(cfg, NULL, "dialback_secret_file"),
                    "give <dialback_secret> or <dialback_secret_file>, not both");
        return;
    }
    if (file) {
        FILE *f = fopen(file, "r");
        char line[512] = "";
        if (!f || !fgets(line, sizeof line, f)) {
            config_fail(cfg, config_first(cfg, NULL, "dialback_secret_file"),
                        "cannot read '%s'", file);
            if (f)
                fclose(f);
            return;
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        sc->dialback_secret = mem_strdup(line);
    } else if (text) {
        sc->dialback_secret = mem_strdup(text);
    } else {
        config_require(cfg, NULL, "dialback_secret");
        return;
    }
    if (strlen(sc->dialback_secret) < 16)
        config_fail(cfg, config_first(cfg, NULL, file ? "dialback_secret_file" : "dialback_secret"),
                    "the dialback secret must have at least 16 characters");
}

static void read_limits(s2s_limits *l, config *cfg)
{
    l->stanza_size = (size_t)config_int(cfg, NULL, "limits/stanza_size", 262144, 4096, 16 << 20);
    l->queue_stanzas = (unsigned)config_int(cfg, NULL, "limits/queue_stanzas", 1000, 1, 1000000);
    l->queue_bytes = (size_t)config_int(cfg, NULL, "limits/queue_bytes", 1 << 20, 4096, 1LL << 32);
    l->connect_timeout = (unsigned)config_int(cfg, NULL, "limits/connect_timeout", 30, 1, 3600);
    l->idle_timeout = (unsigned)config_int(cfg, NULL, "limits/idle_timeout", 600, 10, 86400);
    l->keepalive = (unsigned)config_int(cfg, NULL, "limits/keepalive", 60, 1, 86400);
    l->max_bps = (size_t)config_int(cfg, NULL, "limits/max_bps", 1 << 20, 1024, 1LL << 34);
    l->bps_burst = (size_t)config_int(cfg, NULL, "limits/bps_burst", 4 << 20, 1024, 1LL << 34);
    l->max_connections = (unsigned)config_int(cfg, NULL, "limits/max_connections", 2000, 1, 1000000);
    l->domain_streams = (unsigned)config_int(cfg, NULL, "limits/domain_streams", 8, 1, 1000);
    l->output_max = (size_t)config_int(cfg, NULL, "limits/output_max", 8 << 20, 65536, 1LL << 34);
    l->max_routes = (unsigned)config_int(cfg, NULL, "limits/max_routes", 10000, 1, 10000000);
    if (l->bps_burst < l->stanza_size)
        config_fail(cfg, config_first(cfg, NULL, "limits/bps_burst"),
                    "<bps_burst> below <stanza_size>: a stanza of the largest size would wait "
                    "forever");
}

int s2s_config_load(const char *path, s2s_config *out, config_error *err)
{
    memset(out, 0, sizeof *out);
    config *cfg;
    if (config_load(path, &cfg, err) != 0)
        return -1;
    out->cfg = cfg;
    config_declare(cfg, "s2s", vocabulary);

    config_require(cfg, NULL, "sm/secret");
    out->sm_host = config_str(cfg, NULL, "sm/host", "127.0.0.1");
    out->sm_port = config_port(cfg, NULL, "sm/port", 5111);
    out->sm_secret = config_str(cfg, NULL, "sm/secret", "");
    out->sm_id = config_str(cfg, NULL, "sm/id", "s2s");
    out->sm_retries = (unsigned)config_int(cfg, NULL, "sm/retries", 5, 0, 1000);

    read_hosts(out, cfg);
    out->ip = config_str(cfg, NULL, "local/ip", "0.0.0.0");
    out->port = config_port(cfg, NULL, "local/port", 5269);
    out->tls_port = (int)config_int(cfg, NULL, "local/tls_port", 5270, 0, 65535);
    if (out->port == out->tls_port)
        config_fail(cfg, config_first(cfg, NULL, "local/tls_port"),
                    "the direct-TLS port %d is also the plain port", out->tls_port);
    out->pemfile = config_str(cfg, NULL, "local/pemfile", "./server.pem");
    out->cafile = config_str(cfg, NULL, "local/cafile", NULL);
    out->capath = config_str(cfg, NULL, "local/capath", NULL);
    read_secret(out, cfg);

    out->resolv_conf = config_str(cfg, NULL, "dns/resolv_conf", NULL);
    out->hosts_file = config_str(cfg, NULL, "dns/hosts", NULL);
    out->forward = config_str(cfg, NULL, "dns/forward", NULL);

    const s2s_policy defaults = {.require_tls = true, .allow_dialback = true};
    read_policy(cfg, NULL, &out->policy, &defaults);
    read_domains(out, cfg);
    read_limits(&out->limits, cfg);

    /* <metrics>: the Prometheus endpoint (s2s/s2s_metrics.c); off without the element. */
    if (config_first(cfg, NULL, "metrics")) {
        out->metrics_ip = config_str(cfg, NULL, "metrics/ip", "127.0.0.1");
        out->metrics_port = config_port(cfg, NULL, "metrics/port", 9130);
    }
    config_log(cfg, &out->log_target, &out->log_path, &out->log_level);

    if (config_check(cfg, err) != 0) {
        s2s_config_free(out);
        return -1;
    }
    return 0;
}

void s2s_config_free(s2s_config *sc)
{
    for (size_t i = 0; i < sc->nhosts; i++)
        free(sc->hosts[i]);
    free(sc->hosts);
    for (size_t i = 0; i < sc->ndomains; i++)
        free((char *)sc->domains[i].domain);
    free(sc->domains);
    free(sc->dialback_secret);
    config_free(sc->cfg);
    memset(sc, 0, sizeof *sc);
}

bool s2s_config_is_local(const s2s_config *sc, const char *domain)
{
    for (size_t i = 0; i < sc->nhosts; i++)
        if (strcasecmp(sc->hosts[i], domain) == 0)
            return true;
    return false;
}

void s2s_config_policy(const s2s_config *sc, const char *remote, s2s_policy *out)
{
    for (size_t i = 0; i < sc->ndomains; i++)
        if (strcasecmp(sc->domains[i].domain, remote) == 0) {
            *out = sc->domains[i].policy;
            return;
        }
    *out = sc->policy;
}
