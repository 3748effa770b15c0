/* s2s/s2s_check.c — `jabshard-s2s --check` (s2s_check.h). The configuration has loaded (its
 * errors name file, line and element before this runs); then: the certificate loads as the
 * program loads it (with the trust anchors), is valid now and for 30 more days and names every
 * <local><id> by the rules other servers apply (s2s/cert_id.h); a name it lacks, or its being
 * self-signed, is a warning, not an error: dialback still authenticates us to most servers. The
 * listening ports; the SM link, made as s2s/s2s_link.c makes it (stream header to <sm><id>,
 * XEP-0114 handshake with <sm><secret>) and closed; secrets left at the example's values; and
 * what other servers find in DNS for the first <local><id> (s2s/resolve.h). */
#include "s2s/s2s_check.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/check.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "s2s/cert_id.h"
#include "s2s/resolve.h"
#include "s2s/s2s_tls.h"
#include "smproto/handshake.h"

#define SM_TIMEOUT_MS 5000          /* the SM's whole answer */
#define SM_QUIET_MS 500             /* no stream error that long after the header: id known */
#define DNS_TIMEOUT_MS 5000
#define EXAMPLE_DIALBACK_SECRET "change this dialback secret"
#define EXAMPLE_LINK_SECRET "change this s2s link secret"

/* ---- the certificate ------------------------------------------------------------------------ */

static void check_cert(check_list *l, const s2s_config *cfg)
{
    tls_error err;
    s2s_tls *t = s2s_tls_new(cfg->pemfile, NULL, cfg->cafile, cfg->capath,
                             (const char *const *)cfg->hosts, &err);
    if (!t) {
        check_error(l, "TLS: %s", err.text);
        return;
    }
    s2s_tls_free(t);
    check_certificate(l, cfg->pemfile, NULL, NULL);
    FILE *f = fopen(cfg->pemfile, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!cert)
        return;
    for (size_t i = 0; i < cfg->nhosts; i++) {
        if (s2s_cert_names_domain(cert, cfg->hosts[i]))
            check_ok(l, "certificate %s: names %s", cfg->pemfile, cfg->hosts[i]);
        else
            check_warn(l, "certificate %s: does not name %s: other servers authenticate %s by "
                          "dialback only, and those that require a valid certificate refuse it",
                       cfg->pemfile, cfg->hosts[i], cfg->hosts[i]);
    }
    if (X509_check_issued(cert, cert) == X509_V_OK)
        check_warn(l, "certificate %s: self-signed: other servers authenticate us by dialback "
                      "only (a certificate from a public CA lets them check it)", cfg->pemfile);
    X509_free(cert);
}

/* ---- the SM link ------------------------------------------------------------------------------ */

typedef enum { PROBE_HEADER, PROBE_HANDSHAKE, PROBE_ACCEPTED, PROBE_REFUSED } probe_state;

typedef struct sm_probe {
    int fd;
    const s2s_config *cfg;
    xmlstream *xs;
    bool handshake;     /* false: only whether the SM knows the service id */
    probe_state state;
    char why[160];      /* PROBE_REFUSED: what the SM said */
} sm_probe;

/* A few hundred bytes on a fresh connection: one send. A failure is not reported here: what the
 * SM said before closing (a stream error) is the reason, and is read next. */
static void probe_send(sm_probe *p, const char *text)
{
    (void)!send(p->fd, text, strlen(text), MSG_NOSIGNAL);
}

static void probe_header(void *ctx, const xml_node *root, const char *content_ns)
{
    sm_probe *p = ctx;
    const char *id = xml_attr_get(root, "id");
    if (strcmp(content_ns, SMPROTO_NS_ACCEPT) != 0 || !id || !*id) {
        p->state = PROBE_REFUSED;
        snprintf(p->why, sizeof p->why, "its answer is not an XEP-0114 stream header");
        xmlstream_stop(p->xs);
        return;
    }
    p->state = PROBE_HANDSHAKE;
    if (p->handshake) {
        char digest[SMPROTO_DIGEST_LEN + 1], out[SMPROTO_DIGEST_LEN + 32];
        smproto_handshake_digest(id, p->cfg->sm_secret, digest);
        snprintf(out, sizeof out, "<handshake>%s</handshake>", digest);
        probe_send(p, out);
    }
}

static void probe_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    sm_probe *p = ctx;
    if (p->state == PROBE_HANDSHAKE && p->handshake && xml_is(st, SMPROTO_NS_ACCEPT, "handshake")) {
        p->state = PROBE_ACCEPTED;
    } else {
        p->state = PROBE_REFUSED;
        const xml_node *cond = st->children;
        while (cond && cond->kind != XML_ELEMENT)
            cond = cond->next;
        if (xml_is(st, XML_NS_STREAMS, "error") && cond)
            snprintf(p->why, sizeof p->why, "stream error <%s/>", cond->name);
        else
            snprintf(p->why, sizeof p->why, "it answered <%s/>", st->name);
    }
    xml_arena_free(arena);
    xmlstream_stop(p->xs);
}

static void probe_close(void *ctx)
{
    sm_probe *p = ctx;
    p->state = PROBE_REFUSED;
    snprintf(p->why, sizeof p->why, "it closed the stream");
    xmlstream_stop(p->xs);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP connection to host:port within SM_TIMEOUT_MS: the socket, -1 when nothing accepts, -2
 * when host does not resolve. */
static int probe_connect(const char *host, int port)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -2;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            continue;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int err = -1;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || poll(&pf, 1, SM_TIMEOUT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Runs the exchange until the SM accepts, refuses, or SM_TIMEOUT_MS passes (the state stays
 * below PROBE_ACCEPTED). */
static void probe_run(sm_probe *p)
{
    buf open = BUF_INIT;
    xml_write_stream_open(&open, &(xml_stream_attrs){.content_ns = SMPROTO_NS_ACCEPT,
                                                     .to = p->cfg->sm_id});
    buf_append(&open, "", 1);
    probe_send(p, buf_data(&open));
    buf_free(&open);
    long long end = now_ms() + SM_TIMEOUT_MS;
    while (p->state < PROBE_ACCEPTED) {
        long long left = end - now_ms();
        bool quiet_wait = !p->handshake && p->state == PROBE_HANDSHAKE;
        if (quiet_wait && left > SM_QUIET_MS)
            left = SM_QUIET_MS;
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        int r = left > 0 ? poll(&pf, 1, (int)left) : 0;
        if (r == 0 && quiet_wait)
            p->state = PROBE_ACCEPTED;
        if (r <= 0)
            return;
        char chunk[4096];
        ssize_t n = read(p->fd, chunk, sizeof chunk);
        if (n <= 0) {
            p->state = PROBE_REFUSED;
            snprintf(p->why, sizeof p->why, "it closed the connection");
            return;
        }
        if (xmlstream_feed(p->xs, chunk, (size_t)n, NULL) == XMLSTREAM_FAILED) {
            p->state = PROBE_REFUSED;
            snprintf(p->why, sizeof p->why, "%s", xmlstream_get_error(p->xs)->text);
        }
    }
}

/* The handshake is made only when this box's jabshard-s2s does not seem to run (its port does
 * not accept): the SM keeps one link per service id, the newest, and would drop the running
 * one for ours. */
static void check_sm(check_list *l, const s2s_config *cfg)
{
    const char *host = cfg->sm_host;
    int port = cfg->sm_port;
    int fd = probe_connect(host, port);
    if (fd == -2) {
        check_warn(l, "the SM link: cannot resolve '%s'", host);
        return;
    }
    if (fd < 0) {
        check_warn(l, "the SM link: nothing accepts connections on %s port %d (not started yet?)",
                   host, port);
        return;
    }
    static const xmlstream_handlers handlers = {probe_header, probe_stanza, probe_close};
    sm_probe p = {.fd = fd, .cfg = cfg, .handshake = check_accepts(cfg->ip, cfg->port) != 1};
    p.xs = xmlstream_new(&handlers, &p, NULL);
    probe_run(&p);
    probe_send(&p, "</stream:stream>");
    xmlstream_free(p.xs);
    close(fd);
    if (p.state == PROBE_ACCEPTED && p.handshake)
        check_ok(l, "the SM link: %s port %d accepts service '%s' and its <secret>", host, port,
                 cfg->sm_id);
    else if (p.state == PROBE_ACCEPTED)
        check_ok(l, "the SM link: %s port %d knows service '%s' (its <secret> not tried: "
                    "jabshard-s2s seems to run here, and the SM would drop its link for ours)",
                 host, port, cfg->sm_id);
    else if (p.state == PROBE_REFUSED)
        check_error(l, "the SM link: %s port %d refuses service '%s': %s (sm.xml's <service "
                       "id='%s' role='s2s'> and its <secret> must be this file's <sm><id> and "
                       "<secret>)", host, port, cfg->sm_id, p.why, cfg->sm_id);
    else
        check_warn(l, "the SM link: %s port %d accepts connections but did not answer the "
                      "handshake in %d s", host, port, SM_TIMEOUT_MS / 1000);
}

/* ---- DNS ------------------------------------------------------------------------------------ */

typedef struct dns_probe {
    evloop *loop;
    int status;
    s2s_target targets[S2S_TARGETS_MAX];
    size_t n;
} dns_probe;

static void dns_answer(void *arg, int status, const s2s_target *targets, size_t n)
{
    dns_probe *d = arg;
    d->status = status;
    d->n = n;
    memcpy(d->targets, targets, n * sizeof *targets);
    evloop_stop(d->loop);
}

static void dns_report(check_list *l, const s2s_config *cfg, const char *domain,
                       const dns_probe *d)
{
    const s2s_target *t = d->targets;
    if (d->status == S2S_RESOLVE_NO_SERVICE) {
        check_warn(l, "DNS: %s's SRV records say it offers no federation (target \".\")", domain);
    } else if (d->status != S2S_RESOLVE_OK) {
        check_warn(l, "DNS: the SRV lookup for %s failed (no DNS here? <dns>): other servers may "
                      "not find this one either", domain);
    } else if (d->n == 1 && !t[0].direct_tls && t[0].port == S2S_DEFAULT_PORT &&
               !strcasecmp(t[0].host, domain)) {
        if (cfg->port == S2S_DEFAULT_PORT)
            check_ok(l, "DNS: no _xmpp-server._tcp SRV record for %s: other servers connect to "
                        "%s port %d (RFC 6120's fallback)", domain, domain, S2S_DEFAULT_PORT);
        else
            check_warn(l, "DNS: no _xmpp-server._tcp SRV record for %s: other servers connect "
                          "to %s port %d, but <local><port> is %d", domain, domain,
                       S2S_DEFAULT_PORT, cfg->port);
    } else {
        char list[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < d->n && i < 4 && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s port %u%s",
                                     i ? ", " : "", t[i].host, t[i].port,
                                     t[i].direct_tls ? " (direct TLS)" : "");
        check_ok(l, "DNS: other servers looking up %s find %zu target(s): %s%s", domain, d->n,
                 list, d->n > 4 ? ", ..." : "");
    }
}

static void check_dns(check_list *l, const s2s_config *cfg)
{
    dns_probe d = {.loop = evloop_create(), .status = S2S_RESOLVE_FAILED};
    char err[256] = "";
    s2s_resolver *r = d.loop ? s2s_resolver_new(d.loop, cfg->resolv_conf, cfg->hosts_file, err,
                                                sizeof err)
                             : NULL;
    if (r && cfg->forward && s2s_resolver_forward(r, cfg->forward) != 0) {
        check_error(l, "DNS: <dns><forward> '%s': not an address[@port]", cfg->forward);
    } else if (!r) {
        check_error(l, "DNS: %s", d.loop ? err : "cannot make an event loop");
    } else {
        s2s_resolver_set_timeout(r, DNS_TIMEOUT_MS);
        if (s2s_resolve_srv(r, cfg->hosts[0], dns_answer, &d))
            evloop_run(d.loop);
        dns_report(l, cfg, cfg->hosts[0], &d);
    }
    if (r)
        s2s_resolver_free(r);
    if (d.loop)
        evloop_destroy(d.loop);
}

int s2s_check(const s2s_config *cfg, const char *path)
{
    check_list l = {.program = "jabshard-s2s"};
    check_ok(&l, "%s: configuration read: %zu domain(s), SM at %s port %d as '%s'", path,
             cfg->nhosts, cfg->sm_host, cfg->sm_port, cfg->sm_id);
    check_cert(&l, cfg);
    check_listen(&l, cfg->ip, cfg->port, "other servers (STARTTLS)");
    if (cfg->tls_port)
        check_listen(&l, cfg->ip, cfg->tls_port, "other servers (direct TLS)");
    check_sm(&l, cfg);
    if (!strcmp(cfg->dialback_secret, EXAMPLE_DIALBACK_SECRET))
        check_warn(&l, "<dialback_secret> is the example's: anyone may forge dialback keys for "
                       "our domains");
    if (!strcmp(cfg->sm_secret, EXAMPLE_LINK_SECRET))
        check_warn(&l, "<sm><secret> is the example's: anyone who reaches the SM's port can "
                       "speak for every remote domain");
    check_dns(&l, cfg);
    return check_finish(&l, path);
}
