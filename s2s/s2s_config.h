/* s2s/s2s_config.h — reading etc/s2s.xml, the configuration of a jabshard-s2s box: its link to
 * the SM (as a front's: host, port, id, secret, retries), the domains it speaks for, its
 * listeners and certificate, the dialback secret, DNS, the federation policy (global and per
 * remote domain) and the limits. docs/deployment.md, "Federation", describes every element.
 *
 * Thread rules: loaded and read on the main thread; the program has one.
 */
#ifndef JABSHARD_S2S_S2S_CONFIG_H
#define JABSHARD_S2S_S2S_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include "core/config.h"
#include "core/log.h"
#include "s2s/s2s_stream.h"

typedef struct s2s_domain_policy {
    const char *domain;
    s2s_policy policy;
} s2s_domain_policy;

typedef struct s2s_limits {
    size_t stanza_size;          /* largest stanza in or out (262144) */
    unsigned queue_stanzas;      /* held per remote domain while connecting (1000) */
    size_t queue_bytes;          /* ... and their bytes (1 MiB) */
    unsigned connect_timeout;    /* s: resolve + connect + TLS + authenticate, all targets (30) */
    unsigned idle_timeout;       /* s: a stream with no traffic either way is closed (600) */
    unsigned keepalive;          /* s: whitespace on an outgoing stream idle that long (60) */
    size_t max_bps;              /* bytes/s read from one connection, sustained (1 MiB) */
    size_t bps_burst;            /* ... at once (4 MiB; at least stanza_size) */
    unsigned max_connections;    /* incoming connections at once (2000) */
    unsigned domain_streams;     /* incoming streams one remote domain may hold (8) */
    size_t output_max;           /* bytes waiting to be written on one connection (8 MiB) */
    unsigned max_routes;         /* remote domains we connect to at once (10000) */
} s2s_limits;

typedef struct s2s_config {
    config *cfg;
    const char *sm_host;
    int sm_port;
    const char *sm_id, *sm_secret;
    unsigned sm_retries;
    char **hosts;                /* the domains we speak for, NULL-terminated */
    size_t nhosts;
    const char *ip;
    int port, tls_port;          /* 5269; direct TLS (XEP-0368) 5270, 0 = none */
    const char *pemfile, *cafile, *capath;
    char *dialback_secret;       /* from <dialback_secret> or <dialback_secret_file> */
    const char *resolv_conf, *hosts_file, *forward;
    s2s_policy policy;           /* for every remote domain without its own <domain> */
    s2s_domain_policy *domains;
    size_t ndomains;
    s2s_limits limits;
    const char *metrics_ip;      /* <metrics>: NULL when absent */
    int metrics_port;            /* 9130 */
    log_target log_target;
    const char *log_path;
    log_level log_level;
} s2s_config;

/* Loads path; -1 with err filled (file, line, element) on any error. */
int s2s_config_load(const char *path, s2s_config *out, config_error *err);
void s2s_config_free(s2s_config *sc);
bool s2s_config_is_local(const s2s_config *sc, const char *domain);
void s2s_config_policy(const s2s_config *sc, const char *remote, s2s_policy *out);

#endif
