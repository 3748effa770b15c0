/* sm/link_sm.c — the SM's acceptor and per-link state (see link_sm.h). */
#include "sm/link_sm.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/jid.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tcp_connect.h"
#include "core/tcp_listen.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "smproto/handshake.h"


typedef enum {
    L_HEADER,       /* waiting for the peer's stream header */
    L_HANDSHAKE,    /* our header is out; waiting for <handshake/> */
    L_AUTHED,       /* handshake done: a front's <smproto/>, or a component's first stanza */
    L_FRAMES,       /* a front speaking frames */
    L_XML,          /* an XEP-0114 component, or a peer SM */
    L_C_CONNECTING, /* our connection to a peer SM: waiting for the TCP connect */
    L_C_HEADER,     /* our header is out; waiting for the peer's, with its stream id */
    L_C_HANDSHAKE,  /* our digest is out; waiting for <handshake/> */
    L_DEAD,
} link_state;

typedef struct listener {
    evloop_io io;
    int fd;
    link_sm_server *srv;
    char name[80];
} listener;

struct link_sm_server {
    evloop *loop;
    const sm_service *services;
    int nservices;
    link_sm_handlers h;
    void *ctx;
    listener *listeners;
    int nlisteners;
    link_sm *links;         /* live */
    link_sm *dead;          /* closed, freed by the next flush */
    bool stopping;          /* freeing: no callbacks any more */
};

struct link_sm {
    link_sm_server *srv;
    link_sm *next;
    evloop_io io;
    int fd;
    link_state state;
    bool up;
    const sm_service *svc;
    xmlstream *xs;
    char stream_id[SMPROTO_STREAM_ID_LEN + 1];
    buf in, out;
    timer keepalive;
    uint64_t last_rx;
    uint64_t ping_token;
    const char *close_why;  /* set from a parser callback: close once the feed returns */
    const char *self_id;    /* a link we opened: the service id we announce (link_sm_connect) */
    link_sm_closed_fn closed;   /* ...and who hears that it closed, up or not */
    void *closed_ctx;
    void *data;
    char peer[64];
};

const char *link_sm_service(const link_sm *l) { return l->svc ? l->svc->id : NULL; }
sm_role link_sm_role(const link_sm *l) { return l->svc ? l->svc->role : 0; }
void link_sm_set_data(link_sm *l, void *data) { l->data = data; }
void *link_sm_data(const link_sm *l) { return l->data; }
buf *link_sm_out(link_sm *l) { return &l->out; }

static void flush(link_sm *l)
{
    while (buf_len(&l->out)) {
        ssize_t w = send(l->fd, buf_data(&l->out), buf_len(&l->out), MSG_NOSIGNAL);
        if (w > 0) {
            buf_consume(&l->out, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (buf_len(&l->out) > LINK_SM_MAX_OUT) {
                link_sm_close(l, "the peer does not read what it is sent");
                return;
            }
            evloop_io_set(l->srv->loop, &l->io, EVLOOP_READ | EVLOOP_WRITE);
            return;
        }
        link_sm_close(l, w < 0 ? strerror(errno) : "write failed");
        return;
    }
    /* Written out: the allocation is kept for the next batch (freeing it made every loop
     * iteration grow a fresh one by doubling, each growth faulting in new pages), unless a
     * backlog made it large. */
    if (l->out.cap > LINK_SM_KEEP_OUT)
        buf_free(&l->out);
    if (l->state != L_DEAD && (evloop_io_interest(&l->io) & EVLOOP_WRITE))
        evloop_io_set(l->srv->loop, &l->io, EVLOOP_READ);
}

void link_sm_close(link_sm *l, const char *why)
{
    if (l->state == L_DEAD)
        return;
    link_sm_server *srv = l->srv;
    log_info("link %s (%s): closed: %s", l->svc ? l->svc->id : "?", l->peer, why);
    bool was_up = l->up;
    l->up = false;
    if (was_up && srv->h.down)
        srv->h.down(srv->ctx, l);
    if (l->closed && !srv->stopping)
        l->closed(l->closed_ctx, l, was_up);
    /* Best effort for what is queued (a stream error, END frames): the socket closes now. */
    if (buf_len(&l->out))
        (void)!send(l->fd, buf_data(&l->out), buf_len(&l->out), MSG_NOSIGNAL | MSG_DONTWAIT);
    l->state = L_DEAD;
    evloop_io_set(srv->loop, &l->io, 0);
    evloop_timer_cancel(srv->loop, &l->keepalive);
    close(l->fd);
    l->fd = -1;
    for (link_sm **pp = &srv->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    l->next = srv->dead;
    srv->dead = l;
}

static void link_free(link_sm *l)
{
    xmlstream_free(l->xs);
    buf_free(&l->in);
    buf_free(&l->out);
    free(l);
}

/* A stream error in the XML phase (RFC 6120 §4.9), then the close. */
static void stream_error(link_sm *l, const char *condition, const char *why)
{
    xml_write_stream_error(&l->out, condition, NULL);
    xml_write_stream_close(&l->out);
    l->close_why = why;
}

static const sm_service *service_by_id(const link_sm_server *srv, const char *id)
{
    for (int i = 0; id && i < srv->nservices; i++)
        if (srv->services[i].id && strcmp(srv->services[i].id, id) == 0)
            return &srv->services[i];
    return NULL;
}

/* The answer to our header on a link we opened: its stream id, which our digest covers. */
static void client_header(link_sm *l, const xml_node *root, const char *content_ns)
{
    const char *id = xml_attr_get(root, "id");
    if (strcmp(content_ns, SMPROTO_NS_ACCEPT) != 0 || !id || !*id) {
        l->close_why = "the peer's stream header has no id or another namespace";
        xmlstream_stop(l->xs);
        return;
    }
    char digest[SMPROTO_DIGEST_LEN + 1];
    smproto_handshake_digest(id, l->svc->secret, digest);
    buf_appendf(&l->out, "<handshake>%s</handshake>", digest);
    l->state = L_C_HANDSHAKE;
}

static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    link_sm *l = ctx;
    if (l->state == L_C_HEADER) {
        client_header(l, root, content_ns);
        return;
    }
    const char *to = xml_attr_get(root, "to");
    const sm_service *svc = service_by_id(l->srv, to);
    smproto_handshake_stream_id(l->stream_id);
    xml_stream_attrs a = {.content_ns = SMPROTO_NS_ACCEPT, .from = svc ? svc->id : NULL, .id = l->stream_id};
    xml_write_stream_open(&l->out, &a);
    if (strcmp(content_ns, SMPROTO_NS_ACCEPT) != 0) {
        stream_error(l, "invalid-namespace", "the stream is not jabber:component:accept");
    } else if (!svc) {
        log_warn("link (%s): unknown service id '%s'", l->peer, to ? to : "");
        stream_error(l, "host-unknown", "unknown service id");
    } else {
        l->svc = svc;
        l->state = L_HANDSHAKE;
    }
    if (l->close_why)
        xmlstream_stop(l->xs);
}

static void handshake(link_sm *l, xml_node *st, xml_arena *arena)
{
    const char *digest = xml_is(st, SMPROTO_NS_ACCEPT, "handshake") ? xml_text(arena, st) : NULL;
    if (!digest || !smproto_handshake_check(l->stream_id, l->svc->secret, digest)) {
        log_warn("link %s (%s): handshake refused: wrong secret", l->svc->id, l->peer);
        stream_error(l, "not-authorized", "handshake refused");
        return;
    }
    /* One live link per service id: the newcomer wins (a front that reconnected, a component
     * restarted while its old connection is half open). A component is told why, with XEP-0114's
     * <conflict/>; a front's link speaks frames, not XML. */
    for (link_sm *o = l->srv->links; o; o = o->next)
        if (o != l && o->svc == l->svc && o->state != L_HEADER && o->state != L_HANDSHAKE) {
            if (o->state != L_FRAMES) {
                xml_write_stream_error(&o->out, "conflict", "replaced by a new connection");
                xml_write_stream_close(&o->out);
            }
            link_sm_close(o, "replaced by a new link with the same id");
            break;
        }
    buf_append(&l->out, "<handshake/>", 12);
    l->state = L_AUTHED;
    log_info("link %s (%s): handshake accepted", l->svc->id, l->peer);
    /* XEP-0114 §3: from now on a component may be sent stanzas, and many (biboumi, slixmpp's)
     * never speak first. A front is up once it has asked for frames (on_stanza). */
    if (l->svc->role != SM_ROLE_FRONT) {
        l->up = true;
        if (l->srv->h.up)
            l->srv->h.up(l->srv->ctx, l, NULL);
    }
}

/* XEP-0114 §3: a component's stanzas are from its own domain, 'from' being required. */
static bool from_own_domain(const link_sm *l, const xml_node *st)
{
    const char *from = xml_attr_get(st, "from");
    jid j;
    if (!from || jid_parse(from, strlen(from), &j) != JID_OK)
        return false;
    size_t dlen;
    const char *d = jid_domain(&j, &dlen);
    bool ok = strlen(l->svc->id) == dlen && strncasecmp(d, l->svc->id, dlen) == 0;
    jid_free(&j);
    return ok;
}

/* instance: 1 to SMPROTO_INSTANCE_MAX lower-case hex digits; acked: a decimal u64. */
static bool hello_parse(const xml_node *st, link_sm_hello *out)
{
    const char *inst = xml_attr_get(st, "instance"), *acked = xml_attr_get(st, "acked");
    size_t n = inst ? strlen(inst) : 0;
    if (n == 0 || n > SMPROTO_INSTANCE_MAX || strspn(inst, "0123456789abcdef") != n || !acked ||
        !*acked || strspn(acked, "0123456789") != strlen(acked) || strlen(acked) > 20)
        return false;
    errno = 0;
    unsigned long long v = strtoull(acked, NULL, 10);
    if (errno)
        return false;
    out->instance = inst;
    out->acked = v;
    return true;
}

/* A front's <smproto/>: the switch to frames (docs/smproto.md §1). */
static void hello(link_sm *l, const xml_node *st)
{
    link_sm_server *srv = l->srv;
    const char *v = xml_attr_get(st, "version");
    link_sm_hello h;
    if (!smproto_version_is_ours(v)) {
        stream_error(l, "unsupported-version", "smproto version not supported");
        return;
    }
    if (!hello_parse(st, &h)) {
        stream_error(l, "bad-format", "smproto request without a valid instance or acked");
        return;
    }
    uint64_t received = srv->h.up ? srv->h.up(srv->ctx, l, &h) : h.acked;
    buf_appendf(&l->out, "<smproto xmlns='%s' version='%d' received='%llu'/>", SMPROTO_NS,
                SMPROTO_VERSION, (unsigned long long)received);
    l->state = L_FRAMES;
    l->up = true;
    xmlstream_stop(l->xs);  /* the next byte is the first frame */
}

static void on_stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    link_sm *l = ctx;
    link_sm_server *srv = l->srv;
    if (l->close_why) {
        xml_arena_free(arena);
        return;
    }
    switch (l->state) {
    case L_HANDSHAKE:
        handshake(l, st, arena);
        break;
    case L_C_HANDSHAKE:
        if (!xml_is(st, SMPROTO_NS_ACCEPT, "handshake")) {
            log_warn("link %s (%s): handshake refused (wrong id or secret?)", l->svc->id, l->peer);
            l->close_why = "handshake refused";
            break;
        }
        log_info("link %s (%s): handshake accepted by the peer", l->svc->id, l->peer);
        l->state = L_XML;
        l->up = true;
        if (srv->h.up)
            srv->h.up(srv->ctx, l, NULL);
        break;
    case L_AUTHED:
        /* The role is the configuration's, never the peer's choice: a component that could
         * switch to frames would read any user's credentials and bind as anyone. */
        if (l->svc->role == SM_ROLE_FRONT) {
            if (xml_is(st, SMPROTO_NS, "smproto")) {
                hello(l, st);
            } else {
                log_warn("link %s (%s): a front sent <%s/> instead of asking for frames",
                         l->svc->id, l->peer, st->name);
                stream_error(l, "not-authorized", "a front speaks frames, not XML stanzas");
            }
            break;
        }
        if (xml_is(st, SMPROTO_NS, "smproto")) {
            log_warn("link %s (%s): a component asked for frames: refused", l->svc->id, l->peer);
            stream_error(l, "not-authorized", "frames are for fronts, this is a component");
            break;
        }
        l->state = L_XML;   /* the first stanza of a component, up since its handshake */
        __attribute__((fallthrough));
    case L_XML:
        /* A federation link speaks for remote domains: the SM checks each stanza's from and to
         * against what it serves (sm_component_stanza). */
        if (l->svc->role == SM_ROLE_COMPONENT && !from_own_domain(l, st)) {
            log_warn("link %s (%s): <%s/> from '%s', outside the component's domain", l->svc->id,
                     l->peer, st->name, xml_attr_get(st, "from") ? xml_attr_get(st, "from") : "");
            stream_error(l, "invalid-from", "a stanza from outside the component's domain");
            break;
        }
        if (srv->h.stanza) {
            srv->h.stanza(srv->ctx, l, st, arena);
            return;
        }
        break;
    default:
        break;
    }
    xml_arena_free(arena);
    if (l->close_why)
        xmlstream_stop(l->xs);
}

static void on_close(void *ctx)
{
    link_sm *l = ctx;
    xml_write_stream_close(&l->out);
    l->close_why = "the peer closed its stream";
}

static void frames(link_sm *l)
{
    link_sm_server *srv = l->srv;
    while (l->state == L_FRAMES && buf_len(&l->in)) {
        smproto_frame f;
        size_t used;
        smproto_frame_status rc =
            smproto_frame_next((const uint8_t *)buf_data(&l->in), buf_len(&l->in), &f, &used);
        if (rc == SMPROTO_FRAME_PARTIAL)
            break;
        if (rc == SMPROTO_FRAME_BAD) {
            link_sm_close(l, "protocol error: bad frame header");
            return;
        }
        if (f.type == SMPROTO_PING || f.type == SMPROTO_PONG) {
            uint64_t token;
            if (!smproto_get_ping(&f, &token)) {
                link_sm_close(l, "protocol error: bad PING/PONG payload");
                return;
            }
            if (f.type == SMPROTO_PING)
                smproto_put_ping(&l->out, SMPROTO_PONG, token);
        } else if (srv->h.frame) {
            srv->h.frame(srv->ctx, l, &f);
        }
        if (l->state == L_DEAD)
            return;
        buf_consume(&l->in, used);
    }
}

static void process(link_sm *l)
{
    if (l->state != L_FRAMES && l->state != L_DEAD && buf_len(&l->in)) {
        size_t used = 0;
        xmlstream_status rc = xmlstream_feed(l->xs, buf_data(&l->in), buf_len(&l->in), &used);
        if (rc == XMLSTREAM_FAILED) {
            const xmlstream_error *e = xmlstream_get_error(l->xs);
            stream_error(l, xmlstream_condition_name(e->condition), e->text);
            used = buf_len(&l->in);
        }
        buf_consume(&l->in, rc == XMLSTREAM_OK ? buf_len(&l->in) : used);
        if (l->close_why) {
            flush(l);
            link_sm_close(l, l->close_why);
            return;
        }
    }
    if (l->state == L_FRAMES)
        frames(l);
}

/* Our connection to a peer is made (or failed): our stream header, as a component's. */
static void client_connected(link_sm *l)
{
    int err = tcp_connect_result(l->fd);
    if (err) {
        link_sm_close(l, strerror(err));
        return;
    }
    l->state = L_C_HEADER;
    xml_stream_attrs a = {.content_ns = SMPROTO_NS_ACCEPT, .to = l->self_id};
    xml_write_stream_open(&l->out, &a);
    evloop_io_set(l->srv->loop, &l->io, EVLOOP_READ);
    flush(l);
}

static void on_io(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    link_sm *l = arg;
    if (l->state == L_C_CONNECTING) {
        client_connected(l);
        return;
    }
    if (events & EVLOOP_WRITE)
        flush(l);
    if (l->state == L_DEAD || !(events & EVLOOP_READ))
        return;
    char *room = buf_reserve(&l->in, 65536);
    ssize_t r = recv(l->fd, room, buf_avail(&l->in), 0);
    if (r == 0) {
        link_sm_close(l, "the peer closed the connection");
        return;
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            link_sm_close(l, strerror(errno));
        return;
    }
    buf_commit(&l->in, (size_t)r);
    l->last_rx = evloop_now(loop);
    process(l);
}

static void on_keepalive(timer *t, void *arg)
{
    link_sm *l = arg;
    uint64_t now = evloop_now(l->srv->loop);
    uint64_t silence = now - l->last_rx;
    if (l->up && l->state != L_FRAMES) {
        /* A component owes us no traffic (XEP-0114 has no keepalive) and may stay quiet for
         * hours: a whitespace keepalive (RFC 6120 §4.6.1) makes a dead peer's socket fail. */
        if (silence >= LINK_SM_PING_MS)
            buf_append(&l->out, " ", 1);
        evloop_timer_after(l->srv->loop, &l->keepalive, LINK_SM_PING_MS);
        return;
    }
    if (silence >= LINK_SM_DEAD_MS) {
        link_sm_close(l, "no traffic for 90 s");
        return;
    }
    if (silence >= LINK_SM_PING_MS && l->state == L_FRAMES)
        smproto_put_ping(&l->out, SMPROTO_PING, ++l->ping_token);
    evloop_timer_after(l->srv->loop, &l->keepalive, LINK_SM_PING_MS);
}

static link_sm *link_new(link_sm_server *srv, int fd, const char *peer, link_state state,
                         unsigned interest);

link_sm *link_sm_adopt(link_sm_server *srv, int fd, const char *peer)
{
    return link_new(srv, fd, peer, L_HEADER, EVLOOP_READ);
}

link_sm *link_sm_connect(link_sm_server *srv, int fd, const sm_service *svc, const char *self_id,
                         link_sm_closed_fn closed, void *ctx)
{
    char peer[96];
    snprintf(peer, sizeof peer, "peer %s", svc->id);
    link_sm *l = link_new(srv, fd, peer, L_C_CONNECTING, EVLOOP_WRITE);
    if (!l)
        return NULL;
    l->svc = svc;
    l->self_id = self_id;
    l->closed = closed;
    l->closed_ctx = ctx;
    return l;
}

static link_sm *link_new(link_sm_server *srv, int fd, const char *peer, link_state state,
                         unsigned interest)
{
    link_sm *l = mem_zalloc(sizeof(*l));
    l->srv = srv;
    l->fd = fd;
    l->state = state;
    snprintf(l->peer, sizeof(l->peer), "%s", peer ? peer : "?");
    xmlstream_handlers h = {.header = on_header, .stanza = on_stanza, .close = on_close};
    l->xs = xmlstream_new(&h, l, NULL);
    evloop_io_init(&l->io, fd, on_io, l);
    if (evloop_io_set(srv->loop, &l->io, interest) != 0) {
        log_error("link (%s): cannot watch the socket: %s", l->peer, strerror(errno));
        close(fd);
        link_free(l);
        return NULL;
    }
    l->last_rx = evloop_now(srv->loop);
    timer_init(&l->keepalive, on_keepalive, l);
    evloop_timer_after(srv->loop, &l->keepalive, LINK_SM_PING_MS);
    l->next = srv->links;
    srv->links = l;
    return l;
}

static void on_accept(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    listener *ls = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_warn("link: accept on %s: %s", ls->name, strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char host[64] = "?", port[16] = "";
        getnameinfo((struct sockaddr *)&ss, slen, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        char peer[96];
        snprintf(peer, sizeof(peer), "%s:%s", host, port);
        link_sm_adopt(ls->srv, fd, peer);
    }
}

link_sm_server *link_sm_server_new(evloop *loop, const sm_service *services, int n,
                                   const link_sm_handlers *h, void *ctx)
{
    link_sm_server *srv = mem_zalloc(sizeof(*srv));
    srv->loop = loop;
    srv->services = services;
    srv->nservices = n;
    srv->h = *h;
    srv->ctx = ctx;
    return srv;
}

int link_sm_listen(link_sm_server *srv, char *err, size_t errlen)
{
    srv->listeners = mem_array((size_t)srv->nservices + 1, sizeof(listener));
    for (int i = 0; i < srv->nservices; i++) {
        const sm_service *svc = &srv->services[i];
        const char *ip = svc->ip && *svc->ip ? svc->ip : NULL;
        bool shared = false;
        for (int j = 0; j < i; j++) {
            const sm_service *o = &srv->services[j];
            const char *oip = o->ip && *o->ip ? o->ip : NULL;
            if (o->port == svc->port && ((!ip && !oip) || (ip && oip && strcmp(ip, oip) == 0)))
                shared = true;
        }
        if (shared || svc->port == 0)   /* 0: a peer SM we connect to (link_sm_connect) */
            continue;
        char why[256];
        int fd = tcp_listen(ip, svc->port, 128, false, why, sizeof why);
        if (fd < 0) {
            snprintf(err, errlen, "service '%s': %s", svc->id, why);
            return -1;
        }
        listener *ls = &srv->listeners[srv->nlisteners++];
        ls->fd = fd;
        ls->srv = srv;
        snprintf(ls->name, sizeof(ls->name), "%s:%d", ip ? ip : "*", svc->port);
        evloop_io_init(&ls->io, fd, on_accept, ls);
        if (evloop_io_set(srv->loop, &ls->io, EVLOOP_READ) != 0) {
            snprintf(err, errlen, "cannot watch the listener %s: %s", ls->name, strerror(errno));
            return -1;
        }
        log_info("link: listening on %s", ls->name);
    }
    return 0;
}

void link_sm_flush_all(link_sm_server *srv)
{
    for (link_sm *l = srv->links, *next; l; l = next) {
        next = l->next;
        if (buf_len(&l->out))
            flush(l);
    }
    while (srv->dead) {
        link_sm *l = srv->dead;
        srv->dead = l->next;
        link_free(l);
    }
}

void link_sm_server_free(link_sm_server *srv)
{
    if (!srv)
        return;
    srv->h.down = NULL;
    srv->stopping = true;
    while (srv->links) {
        srv->links->up = false;
        link_sm_close(srv->links, "shutting down");
    }
    link_sm_flush_all(srv);
    for (int i = 0; i < srv->nlisteners; i++) {
        evloop_io_set(srv->loop, &srv->listeners[i].io, 0);
        close(srv->listeners[i].fd);
    }
    free(srv->listeners);
    free(srv);
}
