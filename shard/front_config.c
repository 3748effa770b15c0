/* shard/front_config.c — reading etc/jadc2s.xml (see front_config.h). */
#include "shard/front_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/jid.h"
#include "core/mem.h"

static const char *const vocabulary[] = {
    "sm/host", "sm/port", "sm/standby/host", "sm/standby/port", "sm/secret", "sm/id",
    "sm/retries", "sm/hold",
    "local/id", "local/ip", "local/port", "local/ssl/port", "local/ssl/pemfile",
    "local/ssl/required", "max_fds", "threads",
    "limits/stanza_size", "limits/max_bps", "limits/bps_burst", "limits/conn_rate",
    "limits/conn_interval", "limits/conn_burst", "limits/auth_failures", "limits/ip_auth_failures",
    "limits/ip_auth_interval", "limits/auth_delay", "limits/register_per_conn",
    "limits/register_burst", "limits/register_interval", "limits/output_queue", "limits/output_max",
    "limits/output_timeout", "limits/auth_timeout", "limits/idle_timeout", "limits/trusted/net",
    "csi/max_stanzas", "csi/max_bytes", "csi/max_hold",
    "smacks/request_stanzas", "smacks/request_wait", "metrics/ip", "metrics/port",
    "http/ip", "http/port", "http/tls_port", "http/public_url", "http/secure_from/net",
    "http/websocket/path", "http/websocket/origin", "http/max_message", "http/upload/path",
    "http/upload/dir", "http/upload/secret", "http/upload/secret_file", "http/upload/max_file_size",
    "http/upload/expire_after", "http/bosh/path", "http/bosh/wait_max", "http/bosh/hold_max",
    "http/bosh/inactivity", "http/bosh/polling", "http/bosh/maxpause",
    "log/target", "log/path", "log/level", NULL,
};

bool front_is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    if (n % 2 == 0)
        return n == 2;
    for (uint32_t d = 3; (uint64_t)d * d <= n; d += 2)
        if (n % d == 0)
            return false;
    return true;
}

uint32_t front_prime_at_least(uint32_t n)
{
    if (n <= 2)
        return 2;
    while (!front_is_prime(n))
        n++;
    return n;
}

uint32_t front_shard_slots(uint32_t max_fds, unsigned threads)
{
    if (threads == 0)
        threads = 1;
    return front_prime_at_least((max_fds + threads - 1) / threads);
}

/* <sm>'s address, then each <standby>'s: the same secret and id for all (one service, moved). */
static void read_sms(front_config *fc, config *cfg)
{
    size_t n = 1;
    for (xml_node *el = config_first(cfg, NULL, "sm/standby"); el; el = config_next(el))
        n++;
    fc->sms = mem_array(n, sizeof *fc->sms);
    fc->sms[0].host = config_str(cfg, NULL, "sm/host", "127.0.0.1");
    fc->sms[0].port = config_port(cfg, NULL, "sm/port", 5111);
    fc->nsms = 1;
    for (xml_node *el = config_first(cfg, NULL, "sm/standby"); el; el = config_next(el)) {
        config_require(cfg, el, "host");
        front_sm_addr a = {config_str(cfg, el, "host", ""), config_port(cfg, el, "port",
                                                                          fc->sms[0].port)};
        for (size_t i = 0; i < fc->nsms; i++)
            if (!strcmp(fc->sms[i].host, a.host) && fc->sms[i].port == a.port)
                config_fail(cfg, el, "%s port %d is listed twice: a standby is another SM",
                            a.host, a.port);
        fc->sms[fc->nsms++] = a;
    }
}

static void read_hosts(front_config *fc, config *cfg)
{
    size_t n = 0;
    for (xml_node *el = config_first(cfg, NULL, "local/id"); el; el = config_next(el))
        n++;
    if (n == 0) {
        config_require(cfg, NULL, "local/id");
        return;
    }
    fc->hosts = mem_array(n + 1, sizeof(char *));
    for (xml_node *el = config_first(cfg, NULL, "local/id"); el; el = config_next(el)) {
        const char *text = config_str(cfg, el, NULL, "");
        jid j;
        jid_err e = jid_parse(text, strlen(text), &j);
        if (e != JID_OK || !jid_is_bare(&j) || jid_node(&j, NULL)) {
            config_fail(cfg, el, "'%s' is not a host name: %s", text,
                        e != JID_OK ? jid_strerror(e) : "a node or resource is given");
            jid_free(&j);
            continue;
        }
        const char *host = jid_full(&j);
        if (front_config_host(fc, host))
            config_fail(cfg, el, "host '%s' is listed twice", host);
        else
            fc->hosts[fc->nhosts++] = mem_strdup(host);
        jid_free(&j);
    }
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* A list of <net>s at path (limits/trusted, http/secure_from), or loopback when the element is
 * absent (an empty one lists nothing). */
static void read_nets(ip_nets *nets, config *cfg, const char *path, const char *net_path)
{
    static const char *const loopback[] = {"127.0.0.0/8", "::1", NULL};
    const char *why;
    ip_net net;
    if (!config_first(cfg, NULL, path)) {
        for (const char *const *p = loopback; *p; p++)
            if (ip_net_parse(*p, &net, &why))
                ip_nets_add(nets, &net);
        return;
    }
    for (xml_node *el = config_first(cfg, NULL, net_path); el; el = config_next(el)) {
        const char *text = config_str(cfg, el, NULL, "");
        if (ip_net_parse(text, &net, &why))
            ip_nets_add(nets, &net);
        else
            config_fail(cfg, el, "'%s' is not a network: %s", text, why);
    }
}

/* A size in bytes at path that must be at least floor (named in the error). */
static void require_at_least(config *cfg, const char *path, size_t value, size_t floor,
                             const char *floor_name)
{
    if (value < floor)
        config_fail(cfg, config_first(cfg, NULL, path), "%zu is below %s (%zu)", value, floor_name,
                    floor);
}

static void read_limits(front_limits *l, config *cfg)
{
    long long stanza = config_int(cfg, NULL, "limits/stanza_size", 262144, 1024, 1LL << 32);
    if (stanza > FRONT_STANZA_SIZE_MAX)
        config_fail(cfg, config_first(cfg, NULL, "limits/stanza_size"),
                    "%lld is above %d: a stanza travels to the SM in one link frame of at most "
                    "1 MiB, with room kept for the front's stamping and re-escaping",
                    stanza, FRONT_STANZA_SIZE_MAX);
    l->stanza_size = (size_t)stanza;
    l->max_bps = (size_t)config_int(cfg, NULL, "limits/max_bps", 10240, 0, 1LL << 32);
    l->bps_burst = (size_t)config_int(cfg, NULL, "limits/bps_burst", 2 * stanza, 1024, 1LL << 32);
    if (l->max_bps)
        require_at_least(cfg, "limits/bps_burst", l->bps_burst, l->stanza_size,
                         "<stanza_size>: a stanza of the largest size would wait on <max_bps>");
    l->conn_rate = (unsigned)config_int(cfg, NULL, "limits/conn_rate", 5, 0, 1000000);
    l->conn_interval = (unsigned)config_int(cfg, NULL, "limits/conn_interval", 1, 1, 86400);
    l->conn_burst = (unsigned)config_int(cfg, NULL, "limits/conn_burst", 500, 1, 1000000);
    l->auth_failures = (unsigned)config_int(cfg, NULL, "limits/auth_failures", 3, 1, 1000);
    l->ip_auth_failures = (unsigned)config_int(cfg, NULL, "limits/ip_auth_failures", 10, 0, 1000000);
    l->ip_auth_interval = (unsigned)config_int(cfg, NULL, "limits/ip_auth_interval", 60, 1, 86400);
    l->auth_delay = (unsigned)config_int(cfg, NULL, "limits/auth_delay", 3000, 0, 60000);
    l->register_per_conn = (unsigned)config_int(cfg, NULL, "limits/register_per_conn", 5, 0, 1000);
    l->register_burst = (unsigned)config_int(cfg, NULL, "limits/register_burst", 10, 0, 1000000);
    l->register_interval = (unsigned)config_int(cfg, NULL, "limits/register_interval", 600, 1,
                                                86400);
    long long queue = config_int(cfg, NULL, "limits/output_queue", 262144, 4096, 1LL << 32);
    l->output_queue = (size_t)queue;
    l->output_max = (size_t)config_int(cfg, NULL, "limits/output_max", 4 * queue, 4096, 1LL << 34);
    require_at_least(cfg, "limits/output_max", l->output_max, l->output_queue, "<output_queue>");
    l->output_timeout = (unsigned)config_int(cfg, NULL, "limits/output_timeout", 60, 1, 3600);
    l->auth_timeout = (unsigned)config_int(cfg, NULL, "limits/auth_timeout", 30, 1, 86400);
    l->idle_timeout = (unsigned)config_int(cfg, NULL, "limits/idle_timeout", 300, 5, 86400 * 7);
    read_nets(&l->trusted, cfg, "limits/trusted", "limits/trusted/net");
}

static void read_csi(front_csi *c, const front_limits *l, config *cfg)
{
    c->max_stanzas = (unsigned)config_int(cfg, NULL, "csi/max_stanzas", 100, 0, 100000);
    /* The default never exceeds a small <output_queue>; a value given must not either. */
    long long def = l->output_queue < 65536 ? (long long)l->output_queue : 65536;
    c->max_bytes = (size_t)config_int(cfg, NULL, "csi/max_bytes", def, 1024, 1LL << 32);
    c->max_hold = (unsigned)config_int(cfg, NULL, "csi/max_hold", 300, 1, 86400);
    if (c->max_bytes > l->output_queue)
        config_fail(cfg, config_first(cfg, NULL, "csi/max_bytes"),
                    "%zu is above <limits><output_queue> (%zu): one flush would put the client "
                    "over it", c->max_bytes, l->output_queue);
}

/* <secret>, or the first line of <secret_file> (the file make run and the package generate for
 * the SM and the fronts alike). */
static void read_upload_secret(front_upload *u, config *cfg)
{
    const char *secret = config_str(cfg, NULL, "http/upload/secret", NULL);
    const char *file = config_str(cfg, NULL, "http/upload/secret_file", NULL);
    if (secret) {
        u->secret = mem_strdup(secret);
    } else if (file) {
        FILE *f = fopen(file, "r");
        char line[1024];
        if (!f || !fgets(line, sizeof line, f)) {
            config_fail(cfg, config_first(cfg, NULL, "http/upload/secret_file"),
                        "cannot read the secret from '%s'", file);
        } else {
            line[strcspn(line, "\r\n")] = '\0';
            u->secret = mem_strdup(line);
        }
        if (f)
            fclose(f);
    } else {
        config_fail(cfg, config_first(cfg, NULL, "http/upload"),
                    "<upload> needs a <secret> or a <secret_file> (the SM's)");
    }
    u->secret_len = u->secret ? strlen(u->secret) : 0;
    if (u->secret && u->secret_len < 16)
        config_fail(cfg, config_first(cfg, NULL, secret ? "http/upload/secret" :
                                                          "http/upload/secret_file"),
                    "the upload secret is shorter than 16 characters");
}

static void read_upload(front_upload *u, config *cfg)
{
    if (!config_first(cfg, NULL, "http/upload"))
        return;
    u->path = config_str(cfg, NULL, "http/upload/path", "/upload");
    if (u->path[0] != '/' || u->path[strlen(u->path) - 1] == '/')
        config_fail(cfg, config_first(cfg, NULL, "http/upload/path"),
                    "'%s': a path starts with '/' and does not end with one", u->path);
    config_require(cfg, NULL, "http/upload/dir");
    u->dir = config_str(cfg, NULL, "http/upload/dir", "");
    read_upload_secret(u, cfg);
    u->max_file_size = (uint64_t)config_int(cfg, NULL, "http/upload/max_file_size", 104857600, 1,
                                            1LL << 40);
    u->expire_after = config_int(cfg, NULL, "http/upload/expire_after", 2592000, 60,
                                 86400LL * 36500);
    u->on = true;
}

/* <http>: the web listener (shard/web_conn.h); off without the element. */
static void read_http(front_http *h, const front_config *fc, config *cfg)
{
    xml_node *http = config_first(cfg, NULL, "http");
    if (!http)
        return;
    h->ip = config_str(cfg, NULL, "http/ip", fc->ip);
    h->port = config_int(cfg, NULL, "http/port", 5280, 0, 65535);
    h->tls_port = config_int(cfg, NULL, "http/tls_port", 5281, 0, 65535);
    if (!h->port && !h->tls_port)
        config_fail(cfg, http, "<http> with neither <port> nor <tls_port>");
    int taken[] = {fc->port, fc->ssl_port, fc->metrics_port};
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
        if (taken[i] && (taken[i] == h->port || taken[i] == h->tls_port))
            config_fail(cfg, http, "HTTP port %d is already another listener's", taken[i]);
    if (h->port && h->port == h->tls_port)
        config_fail(cfg, http, "<port> and <tls_port> are both %d", h->port);
    h->public_url = config_str(cfg, NULL, "http/public_url", NULL);
    if (h->public_url && strncmp(h->public_url, "https://", 8) != 0 &&
        strncmp(h->public_url, "http://", 7) != 0)
        config_fail(cfg, config_first(cfg, NULL, "http/public_url"),
                    "'%s' is not an http:// or https:// URL", h->public_url);
    read_nets(&h->secure_from, cfg, "http/secure_from", "http/secure_from/net");
    h->ws_path = config_str(cfg, NULL, "http/websocket/path", "/xmpp-websocket");
    if (h->ws_path[0] != '/')
        config_fail(cfg, config_first(cfg, NULL, "http/websocket/path"), "a path starts with '/'");
    for (xml_node *el = config_first(cfg, NULL, "http/websocket/origin"); el; el = config_next(el))
        h->norigins++;
    h->origins = mem_array(h->norigins + 1, sizeof *h->origins);
    size_t i = 0;
    for (xml_node *el = config_first(cfg, NULL, "http/websocket/origin"); el; el = config_next(el))
        h->origins[i++] = config_str(cfg, el, NULL, "");
    h->max_message = (size_t)config_int(cfg, NULL, "http/max_message",
                                        (long long)fc->limits.stanza_size + 4096, 1024,
                                        FRONT_STANZA_SIZE_MAX + 4096);
    read_upload(&h->upload, cfg);
    front_bosh *b = &h->bosh;
    b->path = config_str(cfg, NULL, "http/bosh/path", "/http-bind");
    if (b->path[0] && b->path[0] != '/')
        config_fail(cfg, config_first(cfg, NULL, "http/bosh/path"), "a path starts with '/'");
    b->wait_max = (unsigned)config_int(cfg, NULL, "http/bosh/wait_max", 60, 1, 3600);
    b->hold_max = (unsigned)config_int(cfg, NULL, "http/bosh/hold_max", 1, 0, 8);
    b->inactivity = (unsigned)config_int(cfg, NULL, "http/bosh/inactivity", 60, 5, 3600);
    b->polling = (unsigned)config_int(cfg, NULL, "http/bosh/polling", 5, 0, 600);
    b->maxpause = (unsigned)config_int(cfg, NULL, "http/bosh/maxpause", 120, 0, 86400);
    const char *paths[] = {h->ws_path, b->path, h->upload.on ? h->upload.path : NULL};
    for (int p = 0; p < 3; p++)
        for (int o = p + 1; o < 3; o++)
            if (paths[p] && paths[o] && paths[p][0] && !strcmp(paths[p], paths[o]))
                config_fail(cfg, http, "two services of <http> at the path '%s'", paths[p]);
    h->on = true;
}

static void read_smacks(front_smacks *s, config *cfg)
{
    s->request_stanzas = (unsigned)config_int(cfg, NULL, "smacks/request_stanzas", 5, 1, 1000);
    s->request_wait = (unsigned)config_int(cfg, NULL, "smacks/request_wait", 4, 1, 300);
}

int front_config_load(const char *path, front_config *out, config_error *err)
{
    memset(out, 0, sizeof *out);
    config *cfg;
    if (config_load(path, &cfg, err) != 0)
        return -1;
    out->cfg = cfg;
    config_declare(cfg, "jadc2s", vocabulary);

    config_require(cfg, NULL, "sm/secret");
    read_sms(out, cfg);
    out->sm_secret = config_str(cfg, NULL, "sm/secret", "");
    out->sm_id = config_str(cfg, NULL, "sm/id", "jadc2s");
    out->sm_retries = (unsigned)config_int(cfg, NULL, "sm/retries", 5, 0, 1000);
    out->sm_hold_bytes = (size_t)config_int(cfg, NULL, "sm/hold", 4 << 20, 0, 1LL << 34);

    read_hosts(out, cfg);
    out->ip = config_str(cfg, NULL, "local/ip", "0.0.0.0");
    out->port = config_port(cfg, NULL, "local/port", 5222);
    out->ssl_port = config_port(cfg, NULL, "local/ssl/port", 5223);
    out->pemfile = config_str(cfg, NULL, "local/ssl/pemfile", "./server.pem");
    out->starttls_required = config_bool(cfg, NULL, "local/ssl/required", true);
    if (out->port == out->ssl_port)
        config_fail(cfg, config_first(cfg, NULL, "local/ssl/port"),
                    "the direct-TLS port %d is also the plain port", out->ssl_port);

    long long max_fds = config_int(cfg, NULL, "max_fds", 1023, 16, 1 << 24);
    out->ring_size = 4096;
    out->link_queue_bytes = 4u << 20;
    out->threads = (unsigned)config_int(cfg, NULL, "threads", cpu_count(), 1, 255);
    out->max_fds = front_prime_at_least((uint32_t)max_fds);
    config_error ignored;
    if (out->max_fds != max_fds && config_check(cfg, &ignored) == 0)
        log_warn("%s: <max_fds> %lld is not a prime; using %u", config_file(cfg), max_fds,
                 out->max_fds);

    read_limits(&out->limits, cfg);
    read_csi(&out->csi, &out->limits, cfg);
    /* <metrics>: the Prometheus endpoint (shard/front_metrics.c); off without the element. */
    if (config_first(cfg, NULL, "metrics")) {
        out->metrics_ip = config_str(cfg, NULL, "metrics/ip", "127.0.0.1");
        out->metrics_port = config_port(cfg, NULL, "metrics/port", 9120);
    }
    read_smacks(&out->smacks, cfg);
    read_http(&out->http, out, cfg);

    config_log(cfg, &out->log_target, &out->log_path, &out->log_level);

    if (config_check(cfg, err) != 0) {
        front_config_free(out);
        return -1;
    }
    return 0;
}

void front_config_free(front_config *fc)
{
    ip_nets_free(&fc->limits.trusted);
    ip_nets_free(&fc->http.secure_from);
    free(fc->http.origins);
    if (fc->http.upload.secret)
        explicit_bzero(fc->http.upload.secret, fc->http.upload.secret_len);
    free(fc->http.upload.secret);
    for (size_t i = 0; i < fc->nhosts; i++)
        free(fc->hosts[i]);
    free(fc->hosts);
    free(fc->sms);
    config_free(fc->cfg);
    memset(fc, 0, sizeof *fc);
}

const char *front_config_host(const front_config *fc, const char *host)
{
    for (size_t i = 0; i < fc->nhosts; i++)
        if (strcmp(fc->hosts[i], host) == 0)
            return fc->hosts[i];
    return NULL;
}
