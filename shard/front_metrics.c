/* shard/front_metrics.c — the front's Prometheus endpoint (front_metrics.h): connections and
 * authenticated streams per IO thread, logins and failures by mechanism and reason, client
 * stanzas and bytes both ways, refusals and limits hit, backpressure, XEP-0352 holds, the link to
 * the SM (up, which SM, reconnects, switches to a standby, frames, held bytes), and the
 * process. */
#include "shard/front_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_server.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

struct front_metrics {
    iothread *const *io;
    unsigned nio;
    link_front *link;
    evloop *loop;
    http_server *http;
    pthread_t thread;
};

/* One family with a sample per IO thread, from the field at offset off of iothread_stats. */
static void per_thread(buf *b, const iothread_stats *st, unsigned n, const char *name,
                       const char *type, const char *help, size_t off)
{
    metrics_family(b, name, type, help);
    for (unsigned i = 0; i < n; i++) {
        char label[32];
        snprintf(label, sizeof label, "thread=\"%u\"", i);
        metrics_sample(b, name, label, *(const uint64_t *)((const char *)&st[i] + off));
    }
}

#define PER_THREAD(b, st, n, name, type, help, field)                                              \
    per_thread(b, st, n, name, type, help, offsetof(iothread_stats, field))

static void render(front_metrics *m, buf *b)
{
    iothread_stats *st = mem_array(m->nio, sizeof *st);
    for (unsigned i = 0; i < m->nio; i++)
        iothread_get_stats(m->io[i], &st[i]);
    metrics_family(b, "jabshard_c2s_connections", "gauge", "Client connections open, per IO thread.");
    for (unsigned i = 0; i < m->nio; i++) {
        char label[32];
        snprintf(label, sizeof label, "thread=\"%u\"", i);
        metrics_sample(b, "jabshard_c2s_connections", label, st[i].accepted - st[i].closed);
    }
    PER_THREAD(b, st, m->nio, "jabshard_c2s_authenticated", "gauge",
               "Authenticated client streams open, per IO thread.", authed_now);
    PER_THREAD(b, st, m->nio, "jabshard_c2s_accepted_total", "counter",
               "Client connections accepted.", accepted);
    uint64_t logins = 0;
    for (unsigned i = 0; i < m->nio; i++)
        logins += st[i].logins;
    metrics_family(b, "jabshard_c2s_logins_total", "counter", "Successful SASL authentications.");
    metrics_sample(b, "jabshard_c2s_logins_total", "", logins);
    metrics_family(b, "jabshard_c2s_login_failures_total", "counter",
                   "Failed SASL attempts, by mechanism and reason.");
    for (unsigned k = 0; k < IOTHREAD_MECHS; k++)
        for (unsigned r = 0; r < IOTHREAD_AUTH_REASONS; r++) {
            uint64_t n = 0;
            for (unsigned i = 0; i < m->nio; i++)
                n += st[i].auth_failed[k][r];
            char label[96];
            snprintf(label, sizeof label, "mechanism=\"%s\",reason=\"%s\"", iothread_mech_names[k],
                     iothread_auth_reasons[r]);
            metrics_sample(b, "jabshard_c2s_login_failures_total", label, n);
        }
    PER_THREAD(b, st, m->nio, "jabshard_c2s_stanzas_in_total", "counter",
               "Stanzas from clients.", stanzas_in);
    PER_THREAD(b, st, m->nio, "jabshard_c2s_stanzas_out_total", "counter",
               "Stanzas from the SM queued to clients.", stanzas_out);
    PER_THREAD(b, st, m->nio, "jabshard_c2s_bytes_in_total", "counter",
               "Bytes read from clients (after TLS).", bytes_in);
    PER_THREAD(b, st, m->nio, "jabshard_c2s_bytes_out_total", "counter",
               "Bytes written to clients (before TLS).", bytes_out);
    metrics_family(b, "jabshard_c2s_limit_hits_total", "counter",
                   "Limits hit, by limit: connections refused (no free slot, per-address rate), "
                   "authentication outcomes delayed, clients cut for their output queue.");
    static const struct {
        const char *label;
        size_t off;
    } limits[] = {{"limit=\"max_fds\"", offsetof(iothread_stats, refused_full)},
                  {"limit=\"conn_rate\"", offsetof(iothread_stats, refused_rate)},
                  {"limit=\"auth_delay\"", offsetof(iothread_stats, auth_delayed)},
                  {"limit=\"output_queue\"", offsetof(iothread_stats, output_overflows)}};
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        uint64_t n = 0;
        for (unsigned i = 0; i < m->nio; i++)
            n += *(const uint64_t *)((const char *)&st[i] + limits[l].off);
        metrics_sample(b, "jabshard_c2s_limit_hits_total", limits[l].label, n);
    }
    PER_THREAD(b, st, m->nio, "jabshard_c2s_backpressure_total", "counter",
               "Times an IO thread stopped reading because its ring to the link was full.", pauses);
    PER_THREAD(b, st, m->nio, "jabshard_c2s_csi_held_total", "counter",
               "Stanzas held for inactive clients (XEP-0352).", csi_held);
    PER_THREAD(b, st, m->nio, "jabshard_c2s_duplicates_total", "counter",
               "Stanzas a restarted SM sent again, not delivered twice.", duplicates);
    static const struct {
        const char *name, *help;
        size_t opened, closed;
    } web[] = {{"jabshard_c2s_websocket_sessions", "WebSocket client sessions (RFC 7395)",
                offsetof(iothread_stats, ws_opened), offsetof(iothread_stats, ws_closed)},
               {"jabshard_c2s_bosh_sessions", "BOSH client sessions (XEP-0206)",
                offsetof(iothread_stats, bosh_opened), offsetof(iothread_stats, bosh_closed)}};
    for (size_t w = 0; w < sizeof web / sizeof web[0]; w++) {
        char name[64], help[128];
        uint64_t opened = 0, closed = 0;
        for (unsigned i = 0; i < m->nio; i++) {
            opened += *(const uint64_t *)((const char *)&st[i] + web[w].opened);
            closed += *(const uint64_t *)((const char *)&st[i] + web[w].closed);
        }
        snprintf(help, sizeof help, "%s open.", web[w].help);
        metrics_family(b, web[w].name, "gauge", help);
        metrics_sample(b, web[w].name, "", opened - closed);
        snprintf(name, sizeof name, "%s_total", web[w].name);
        snprintf(help, sizeof help, "%s begun.", web[w].help);
        metrics_family(b, name, "counter", help);
        metrics_sample(b, name, "", opened);
    }
    free(st);
    link_front_stats ls;
    link_front_get_stats(m->link, &ls);
    metrics_family(b, "jabshard_c2s_link_up", "gauge", "The link to the SM is up (1) or not (0).");
    metrics_sample(b, "jabshard_c2s_link_up", "", link_front_up(m->link));
    size_t nsms;
    const front_sm_addr *sms = link_front_sms(m->link, &nsms);
    metrics_family(b, "jabshard_c2s_link_sm", "gauge",
                   "The SM the link is on: 1 for its address while the link is up, 0 for the "
                   "others (<sm> and its standbys, in order).");
    for (size_t i = 0; i < nsms; i++) {
        char addr[280], value[300], label[340];
        snprintf(addr, sizeof addr, "%.255s:%d", sms[i].host, sms[i].port);
        metrics_label(value, sizeof value, addr);
        snprintf(label, sizeof label, "sm=\"%s\",order=\"%zu\"", value, i + 1);
        metrics_sample(b, "jabshard_c2s_link_sm", label, link_front_up(m->link) && ls.sm == i);
    }
    metrics_family(b, "jabshard_c2s_link_switches_total", "counter",
                   "Times the link came up on another SM than the link before (a standby took "
                   "over).");
    metrics_sample(b, "jabshard_c2s_link_switches_total", "", ls.switches);
    metrics_family(b, "jabshard_c2s_link_connects_total", "counter",
                   "Times the link to the SM came up (the first, and every reconnection).");
    metrics_sample(b, "jabshard_c2s_link_connects_total", "", ls.connects);
    metrics_family(b, "jabshard_c2s_link_frames_total", "counter", "Frames on the link, by direction.");
    metrics_sample(b, "jabshard_c2s_link_frames_total", "direction=\"in\"", ls.frames_in);
    metrics_sample(b, "jabshard_c2s_link_frames_total", "direction=\"out\"", ls.frames_out);
    metrics_family(b, "jabshard_c2s_link_held_bytes", "gauge",
                   "Bytes held for the SM while the link is down.");
    metrics_sample(b, "jabshard_c2s_link_held_bytes", "", ls.held_bytes);
    metrics_family(b, "jabshard_c2s_link_resent_total", "counter",
                   "Frames sent again after a reconnection (the SM had not acknowledged them).");
    metrics_sample(b, "jabshard_c2s_link_resent_total", "", ls.resent);
    metrics_family(b, "jabshard_c2s_link_ring_full_total", "counter",
                   "Frames for an IO thread that waited because its ring was full.");
    metrics_sample(b, "jabshard_c2s_link_ring_full_total", "", ls.ring_full);
    metrics_process(b);
}

static void handle(void *ctx, const http_request *req, http_response *resp)
{
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        buf_appendf(&resp->body, "404 Not Found: the metrics are at /metrics\n");
        return;
    }
    resp->content_type = METRICS_CONTENT_TYPE;
    render(ctx, &resp->body);
}

static void *metrics_main(void *arg)
{
    front_metrics *m = arg;
    evloop_run(m->loop);
    return NULL;
}

front_metrics *front_metrics_start(iothread *const *io, unsigned nio, link_front *link,
                                   const char *ip, int port, char *err, size_t errlen)
{
    front_metrics *m = mem_zalloc(sizeof *m);
    m->io = io;
    m->nio = nio;
    m->link = link;
    if (!(m->loop = evloop_create())) {
        snprintf(err, errlen, "cannot create its event loop");
        free(m);
        return NULL;
    }
    if (!(m->http = http_server_new(m->loop, ip, port, handle, m, err, errlen)) ||
        pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
        if (m->http)
            snprintf(err, errlen, "cannot start its thread");
        http_server_free(m->http);
        evloop_destroy(m->loop);
        free(m);
        return NULL;
    }
    return m;
}

static void stop_loop(evloop *loop, void *arg)
{
    evloop_stop(loop);
}

void front_metrics_stop(front_metrics *m)
{
    if (!m)
        return;
    evloop_on_wake(m->loop, stop_loop, NULL);
    evloop_wake(m->loop);
    pthread_join(m->thread, NULL);
    http_server_free(m->http);
    evloop_destroy(m->loop);
    free(m);
}
