/* sm/metrics.c — the SM's Prometheus endpoint (metrics.h): sessions, users, links, stanzas and
 * bytes, the routing latency, custody, storage (xdbsql_metrics), what each module counts (the
 * "metrics" event) and the process. Everything is read when scraped: nothing here costs a
 * stanza anything but the core's counters and one clock read on each side of a frame's work. */
#include "sm/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_server.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "sm/module.h"

struct sm_metrics {
    http_server *http;
    sm_server *srv;
    xdbsql *xdb;
};

static void core_metrics(sm *s, buf *b)
{
    sm_stats st;
    sm_get_stats(s, &st);
    metrics_family(b, "jabshard_sm_sessions", "gauge",
                   "Bound sessions, by state: attached to a connection, or detached (XEP-0198 "
                   "hibernation).");
    metrics_sample(b, "jabshard_sm_sessions", "state=\"attached\"", st.sessions - st.detached);
    metrics_sample(b, "jabshard_sm_sessions", "state=\"detached\"", st.detached);
    metrics_family(b, "jabshard_sm_users", "gauge", "Accounts in memory (with a session, or work).");
    metrics_sample(b, "jabshard_sm_users", "", st.users);
    metrics_family(b, "jabshard_sm_account_loads", "gauge",
                   "Accounts loading or waiting to load (after a restart, those whose sessions "
                   "were restored before their load).");
    metrics_sample(b, "jabshard_sm_account_loads", "", st.loads_pending);
    metrics_family(b, "jabshard_sm_links_up", "gauge", "Links up, by role.");
    metrics_sample(b, "jabshard_sm_links_up", "role=\"front\"", st.fronts_up);
    metrics_sample(b, "jabshard_sm_links_up", "role=\"component\"", st.components_up);
    metrics_family(b, "jabshard_sm_stanzas_in_total", "counter",
                   "Stanzas from sessions, by kind.");
    static const char *const kinds[SM_KINDS] = {"message", "presence", "iq", "other"};
    for (int k = 0; k < SM_KINDS; k++) {
        char label[32];
        snprintf(label, sizeof label, "kind=\"%s\"", kinds[k]);
        metrics_sample(b, "jabshard_sm_stanzas_in_total", label, st.stanzas_in[k]);
    }
    metrics_family(b, "jabshard_sm_stanza_bytes_in_total", "counter", "Bytes of those stanzas.");
    metrics_sample(b, "jabshard_sm_stanza_bytes_in_total", "", st.bytes_in);
    metrics_family(b, "jabshard_sm_stanzas_out_total", "counter", "Stanzas sent to sessions.");
    metrics_sample(b, "jabshard_sm_stanzas_out_total", "", st.stanzas_out);
    metrics_family(b, "jabshard_sm_stanza_bytes_out_total", "counter", "Bytes of those stanzas.");
    metrics_sample(b, "jabshard_sm_stanza_bytes_out_total", "", st.bytes_out);
    metrics_family(b, "jabshard_sm_dropped_total", "counter",
                   "Stanzas dropped, by why: for a session that is gone, not parsing, too big "
                   "for a frame.");
    metrics_sample(b, "jabshard_sm_dropped_total", "why=\"stale\"", st.dropped_stale);
    metrics_sample(b, "jabshard_sm_dropped_total", "why=\"bad\"", st.dropped_bad);
    metrics_sample(b, "jabshard_sm_dropped_total", "why=\"too_big\"", st.dropped_too_big);
    metrics_family(b, "jabshard_sm_route_seconds", "histogram",
                   "The SM's work for a session's stanza, from its frame to routed (its thread's "
                   "time, storage not included).");
    metrics_histogram_write(b, "jabshard_sm_route_seconds", "", &st.route_us);
    if (!sm_cfg(s)->partitions.npeers)
        return;
    metrics_family(b, "jabshard_sm_peer_stanzas_total", "counter",
                   "<partitions>: stanzas sent to peer SMs (out), taken from them (in), bounced "
                   "while the peer's link was down, refused from a peer (outside its partitions).");
    metrics_sample(b, "jabshard_sm_peer_stanzas_total", "way=\"out\"", st.peer_out);
    metrics_sample(b, "jabshard_sm_peer_stanzas_total", "way=\"in\"", st.peer_in);
    metrics_sample(b, "jabshard_sm_peer_stanzas_total", "way=\"bounced\"", st.peer_bounced);
    metrics_sample(b, "jabshard_sm_peer_stanzas_total", "way=\"refused\"", st.peer_refused);
}

static void handle(void *ctx, const http_request *req, http_response *resp)
{
    sm_metrics *m = ctx;
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        buf_appendf(&resp->body, "404 Not Found: the metrics are at /metrics\n");
        return;
    }
    resp->content_type = METRICS_CONTENT_TYPE;
    sm *s = sm_server_core(m->srv);
    core_metrics(s, &resp->body);
    sm_server_metrics(m->srv, &resp->body);
    xdbsql_metrics(m->xdb, &resp->body);
    sm_event ev = {.out = &resp->body};
    sm_fire(s, SM_EV_METRICS, &ev);
    metrics_process(&resp->body);
}

sm_metrics *sm_metrics_open(evloop *loop, sm_server *srv, xdbsql *xdb, const char *ip, int port,
                            char *err, size_t errlen)
{
    sm_metrics *m = mem_zalloc(sizeof *m);
    m->srv = srv;
    m->xdb = xdb;
    if (!(m->http = http_server_new(loop, ip, port, handle, m, err, errlen))) {
        free(m);
        return NULL;
    }
    return m;
}

void sm_metrics_close(sm_metrics *m)
{
    if (!m)
        return;
    http_server_free(m->http);
    free(m);
}
