/* s2s/s2s_metrics.c — the s2s box's Prometheus endpoint (see s2s_metrics.h). */
#include "s2s/s2s_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "core/http_server.h"
#include "core/mem.h"
#include "core/metrics.h"

struct s2s_metrics {
    http_server *http;
    s2s_server *srv;
};

static void counter(buf *b, const char *name, const char *help, const char *labels,
                    uint64_t value)
{
    metrics_family(b, name, "counter", help);
    metrics_sample(b, name, labels, value);
}

static void write_metrics(const s2s_server *srv, buf *b)
{
    const s2s_counters *c = &srv->count;
    unsigned in = 0, out = 0;
    s2s_conns_count(srv, &in, &out);
    metrics_family(b, "jabshard_s2s_connections", "gauge",
                   "Connections to and from other servers, by direction.");
    metrics_sample(b, "jabshard_s2s_connections", "direction=\"in\"", in);
    metrics_sample(b, "jabshard_s2s_connections", "direction=\"out\"", out);
    metrics_family(b, "jabshard_s2s_routes", "gauge",
                   "Outgoing routes: (our domain, remote domain) pairs connected or connecting.");
    metrics_sample(b, "jabshard_s2s_routes", "", srv->nroutes);
    metrics_family(b, "jabshard_s2s_link_up", "gauge", "Whether the link to the SM is up.");
    metrics_sample(b, "jabshard_s2s_link_up", "", s2s_link_open(srv->link));
    metrics_family(b, "jabshard_s2s_connections_total", "counter",
                   "Connections made, by direction.");
    metrics_sample(b, "jabshard_s2s_connections_total", "direction=\"in\"", c->conns_in);
    metrics_sample(b, "jabshard_s2s_connections_total", "direction=\"out\"", c->conns_out);
    metrics_family(b, "jabshard_s2s_stanzas_total", "counter",
                   "Stanzas from remote servers to the SM (in) and written to them (out).");
    metrics_sample(b, "jabshard_s2s_stanzas_total", "direction=\"in\"", c->stanzas_in);
    metrics_sample(b, "jabshard_s2s_stanzas_total", "direction=\"out\"", c->stanzas_out);
    counter(b, "jabshard_s2s_bounced_total", "Stanzas returned to their senders with an error "
            "(no server, timeout, policy, a queue full).", "", c->bounced);
    metrics_family(b, "jabshard_s2s_authenticated_total", "counter",
                   "Domain pairs authenticated, by method (sasl: SASL EXTERNAL; dialback; "
                   "certificate: dialback answered by a valid certificate, XEP-0344).");
    metrics_sample(b, "jabshard_s2s_authenticated_total", "method=\"sasl\"", c->auth_sasl);
    metrics_sample(b, "jabshard_s2s_authenticated_total", "method=\"dialback\"",
                   c->auth_dialback);
    metrics_sample(b, "jabshard_s2s_authenticated_total", "method=\"certificate\"",
                   c->auth_cert);
    counter(b, "jabshard_s2s_refused_connections_total",
            "Incoming connections refused over <max_connections>.", "", c->refused_streams);
    metrics_process(b);
}

static void handle(void *ctx, const http_request *req, http_response *resp)
{
    s2s_metrics *m = ctx;
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        buf_appendf(&resp->body, "404 Not Found: the metrics are at /metrics\n");
        return;
    }
    resp->content_type = METRICS_CONTENT_TYPE;
    write_metrics(m->srv, &resp->body);
}

s2s_metrics *s2s_metrics_open(s2s_server *srv, const char *ip, int port, char *err,
                              size_t errlen)
{
    s2s_metrics *m = mem_zalloc(sizeof *m);
    m->srv = srv;
    if (!(m->http = http_server_new(srv->loop, ip, port, handle, m, err, errlen))) {
        free(m);
        return NULL;
    }
    return m;
}

void s2s_metrics_close(s2s_metrics *m)
{
    if (!m)
        return;
    http_server_free(m->http);
    free(m);
}
