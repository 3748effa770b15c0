/* s2s/s2s_link.c — the link from a jabshard-s2s box to the SM (see s2s_server.h). It opens like
 * an XEP-0114 component (the stream header to the <sm><id> service, the handshake with its
 * secret) and keeps speaking XML in jabber:component:accept: the SM gives it the role 's2s',
 * routes to it stanzas for domains it does not serve, and takes from it stanzas from remote
 * domains to its own (sm/route.c checks both). While the link is down or its output is over
 * 16 MiB, incoming connections stop reading (s2s_conns_pause): remote servers wait in TCP rather
 * than anything being dropped. It reconnects after 1, 2, 4 ... s, at most 30 s apart. Stanzas
 * are written in batches: once per loop iteration (s2s_link_flush), or at once past 256 KiB. */
#include "s2s/s2s_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/jid.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tcp_connect.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "smproto/handshake.h"

#define HIGH_WATER (16u << 20)
#define LOW_WATER (4u << 20)
#define FLUSH_AT (256u << 10)   /* written at once past this; otherwise once per loop iteration */

typedef enum { LK_DOWN, LK_CONNECTING, LK_HEADER, LK_HANDSHAKE, LK_UP } link_state;

struct s2s_link {
    s2s_server *srv;
    link_state state;
    int fd;
    evloop_io io;
    xmlstream *xs;
    buf out;
    timer retry;
    unsigned attempts;
    bool congested;
    uint64_t dropped;
};

static void try_connect(timer *t, void *arg);

static void set_open(s2s_link *l)
{
    bool was = s2s_link_open(l);
    l->congested = l->congested ? buf_len(&l->out) > LOW_WATER : buf_len(&l->out) > HIGH_WATER;
    if (was != s2s_link_open(l))
        s2s_conns_pause(l->srv, !s2s_link_open(l));
}

bool s2s_link_open(const s2s_link *l) { return l->state == LK_UP && !l->congested; }

static void link_down(s2s_link *l, const char *why)
{
    if (l->fd >= 0) {
        evloop_io_set(l->srv->loop, &l->io, 0);
        close(l->fd);
        l->fd = -1;
    }
    if (l->state == LK_UP)
        log_warn("SM link: down: %s", why);
    else
        log_info("SM link: attempt failed: %s", why);
    bool was_up = l->state == LK_UP;
    l->state = LK_DOWN;
    buf_truncate(&l->out, 0);
    set_open(l);
    if (was_up)
        l->attempts = 0;
    unsigned n = l->attempts++;
    uint64_t delay = n < l->srv->cfg->sm_retries && n < 5 ? 1000u << n : 30000;
    evloop_timer_after(l->srv->loop, &l->retry, was_up ? 1000 : delay);
}

static void flush(s2s_link *l)
{
    while (buf_len(&l->out) && l->fd >= 0) {
        ssize_t w = write(l->fd, buf_data(&l->out), buf_len(&l->out));
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (w <= 0) {
            link_down(l, w < 0 ? strerror(errno) : "write failed");
            return;
        }
        buf_consume(&l->out, (size_t)w);
    }
    if (l->fd < 0)
        return;
    if (!buf_len(&l->out))
        buf_compact(&l->out);
    evloop_io_set(l->srv->loop, &l->io, EVLOOP_READ | (buf_len(&l->out) ? EVLOOP_WRITE : 0));
    set_open(l);
}

/* ---- the stream from the SM ------------------------------------------------------------------ */

static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    s2s_link *l = ctx;
    const char *id = xml_attr_get(root, "id");
    if (l->state != LK_HEADER || strcmp(content_ns, SMPROTO_NS_ACCEPT) != 0 || !id || !*id) {
        xmlstream_stop(l->xs);
        return;
    }
    char digest[SMPROTO_DIGEST_LEN + 1];
    smproto_handshake_digest(id, l->srv->cfg->sm_secret, digest);
    buf_appendf(&l->out, "<handshake>%s</handshake>", digest);
    l->state = LK_HANDSHAKE;
}

static void from_sm(s2s_link *l, xml_node *st, xml_arena *arena)
{
    s2s_server *srv = l->srv;
    char local[S2S_DOMAIN_MAX + 1], remote[S2S_DOMAIN_MAX + 1];
    if (!jid_domain_of(xml_attr_get(st, "from"), local, sizeof local) ||
        !jid_domain_of(xml_attr_get(st, "to"), remote, sizeof remote)) {
        log_warn("SM link: a <%s/> without a valid from and to: dropped", st->name);
        xml_arena_free(arena);
        return;
    }
    xml_rename_ns(st, SMPROTO_NS_ACCEPT, S2S_NS_SERVER);
    if (!s2s_config_is_local(srv->cfg, local) || s2s_config_is_local(srv->cfg, remote)) {
        log_warn("SM link: a <%s/> from %s to %s: %s is not among this box's <local><id>s",
                 st->name, local, remote, s2s_config_is_local(srv->cfg, local) ? remote : local);
        xml_arena_free(arena);
        return;
    }
    s2s_route_stanza(srv, local, remote, st, arena);
}

static void on_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    s2s_link *l = ctx;
    if (l->state == LK_HANDSHAKE) {
        bool accepted = xml_is(st, SMPROTO_NS_ACCEPT, "handshake");
        xml_arena_free(arena);
        if (!accepted) {
            xmlstream_stop(l->xs);
            return;
        }
        l->state = LK_UP;
        l->attempts = 0;
        log_info("SM link: up (service '%s')", l->srv->cfg->sm_id);
        set_open(l);
        return;
    }
    if (l->state == LK_UP && (xml_is(st, SMPROTO_NS_ACCEPT, "message") ||
                              xml_is(st, SMPROTO_NS_ACCEPT, "presence") || xml_is(st, SMPROTO_NS_ACCEPT, "iq"))) {
        from_sm(l, st, arena);
        return;
    }
    xml_arena_free(arena);
}

static void on_close(void *ctx)
{
    s2s_link *l = ctx;
    xmlstream_stop(l->xs);
}

static const xmlstream_handlers handlers = {on_header, on_stanza, on_close};

static void link_io(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    (void)loop;
    (void)io;
    s2s_link *l = arg;
    if (l->state == LK_CONNECTING) {
        int err = tcp_connect_result(l->fd);
        if (err) {
            link_down(l, strerror(err));
            return;
        }
        l->state = LK_HEADER;
        xml_stream_attrs a = {.content_ns = SMPROTO_NS_ACCEPT, .to = l->srv->cfg->sm_id};
        xml_write_stream_open(&l->out, &a);
        flush(l);
        return;
    }
    if (events & EVLOOP_WRITE)
        flush(l);
    if (l->fd < 0 || !(events & EVLOOP_READ))
        return;
    char chunk[65536];
    ssize_t r = read(l->fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        link_down(l, r < 0 ? strerror(errno) : "the SM closed the connection");
        return;
    }
    xmlstream_status rc = xmlstream_feed(l->xs, chunk, (size_t)r, NULL);
    if (rc != XMLSTREAM_OK) {
        link_down(l, rc == XMLSTREAM_FAILED ? xmlstream_get_error(l->xs)->text
                     : l->state == LK_UP ? "the SM closed its stream"
                                         : "handshake refused (wrong <sm><id> or <secret>?)");
        return;
    }
    flush(l);
}

static void try_connect(timer *t, void *arg)
{
    (void)t;
    s2s_link *l = arg;
    const s2s_config *cfg = l->srv->cfg;
    char err[128];
    l->fd = tcp_connect_start(cfg->sm_host, cfg->sm_port, err, sizeof err);
    if (l->fd < 0) {
        link_down(l, err);
        return;
    }
    xmlstream_reset(l->xs);
    l->state = LK_CONNECTING;
    evloop_io_init(&l->io, l->fd, link_io, l);
    evloop_io_set(l->srv->loop, &l->io, EVLOOP_WRITE);
}

/* ---- the API --------------------------------------------------------------------------------- */

s2s_link *s2s_link_new(s2s_server *srv)
{
    s2s_link *l = mem_zalloc(sizeof *l);
    l->srv = srv;
    l->fd = -1;
    buf_init(&l->out);
    xmlstream_limits lim;
    xmlstream_limits_default(&lim);
    lim.max_stanza_bytes = lim.max_attr_bytes = lim.max_text_bytes =
        2 * srv->cfg->limits.stanza_size;
    l->xs = xmlstream_new(&handlers, l, &lim);
    timer_init(&l->retry, try_connect, l);
    evloop_timer_after(srv->loop, &l->retry, 0);
    return l;
}

void s2s_link_free(s2s_link *l)
{
    if (!l)
        return;
    evloop_timer_cancel(l->srv->loop, &l->retry);
    if (l->fd >= 0) {
        evloop_io_set(l->srv->loop, &l->io, 0);
        close(l->fd);
    }
    xmlstream_free(l->xs);
    buf_free(&l->out);
    free(l);
}

void s2s_link_send(s2s_link *l, xml_node *st, xml_arena *arena)
{
    if (l->state != LK_UP) {
        l->dropped++;
        log_warn("SM link: down: a <%s/> from %s dropped", st->name,
                 xml_attr_get(st, "from") ? xml_attr_get(st, "from") : "?");
        xml_arena_free(arena);
        return;
    }
    xml_rename_ns(st, S2S_NS_SERVER, SMPROTO_NS_ACCEPT);
    xml_write_node(&l->out, st, SMPROTO_NS_ACCEPT, true);
    xml_arena_free(arena);
    if (buf_len(&l->out) > FLUSH_AT)
        flush(l);
}

void s2s_link_flush(s2s_link *l)
{
    if (l->state == LK_UP && buf_len(&l->out))
        flush(l);
}
