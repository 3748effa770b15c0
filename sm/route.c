/* sm/route.c — the router (RFC 6121 §8): stanzas from sessions, components and the server to
 * local users, hosts and components, with the modules' events along the way; sending to sessions
 * within a frame's size; bounces; and what comes back undelivered from a front. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/barrier.h"
#include "sm/core.h"
#include "smproto/frame.h"

/* The wire buffer is kept between stanzas unless one made it grow past this. */
#define SM_WIRE_KEEP_BYTES (64 * 1024)

/* Serializes node into s->wire as a link carries it (a front's STANZA frame, a component's
 * stream). false, with nothing kept and a log line, when it would not fit in one frame
 * (SMPROTO_MAX_PAYLOAD): a size a client may provoke must never reach a frame encoder. */
static bool wire_put(sm *s, const xml_node *node)
{
    buf_consume(&s->wire, buf_len(&s->wire));
    if (xml_write_node_max(&s->wire, node, SM_NS_CLIENT, false, SMPROTO_MAX_PAYLOAD))
        return true;
    const char *to = xml_attr_get(node, "to"), *from = xml_attr_get(node, "from");
    log_notice("sm: a <%s/> from %s to %s is larger than a frame carries: not sent", node->name,
               from ? from : "the server", to ? to : "?");
    buf_free(&s->wire);
    return false;
}

/* The wire buffer after a send: its memory stays for the next one unless a large stanza grew it. */
static void wire_done(sm *s)
{
    if (s->wire.cap > SM_WIRE_KEEP_BYTES)
        buf_free(&s->wire);
}

/* The serialized stanza in s->wire to sess: modules see it (a module keeping custody of what a
 * session is sent takes its copy, or keeps it from the connection), then the front gets it
 * unless the session is detached. */
static void wire_to_session(sm *s, sm_session *sess)
{
    if (s->nhooks[SM_EV_SESSION_SENT]) {
        sm_event ev = {.session = sess, .user = sess->user, .xml = buf_data(&s->wire),
                       .len = buf_len(&s->wire)};
        if (sm_fire(s, SM_EV_SESSION_SENT, &ev))
            return;
    }
    if (sess->link) {
        s->stats.stanzas_out++;
        s->stats.bytes_out += buf_len(&s->wire);
        s->t.stanza(s->tctx, sess->link->handle, sess->sid, buf_data(&s->wire),
                    buf_len(&s->wire));
    }
}

bool smc_send_session(sm *s, sm_session *sess, const xml_node *node)
{
    if (!wire_put(s, node))
        return false;
    wire_to_session(s, sess);
    wire_done(s);
    return true;
}

void sm_session_send_raw(sm *s, sm_session *sess, const char *xml, size_t len)
{
    if (sess->link)
        s->t.stanza(s->tctx, sess->link->handle, sess->sid, xml, len);
}

void sm_bounce_too_big(sm *s, sm_stanza *st)
{
    st->node->children = st->node->last_child = NULL;
    if (sm_stanza_error(st, "modify", "policy-violation", SM_NS_ERRORS, "stanza-too-big"))
        sm_route(s, st);
    else
        sm_stanza_free(st);
}

void sm_deliver(sm *s, sm_session *sess, sm_stanza *st)
{
    if (s->barrier && sm_barrier_hold(s->barrier, sess, st))
        return;
    if (!smc_send_session(s, sess, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    sm_stanza_free(st);
}

sm_fanout sm_fanout_of(sm_stanza *st)
{
    return (sm_fanout){.st = st};
}

/* Serializes the stanza once, with an empty 'to': the text before its value and after it. In the
 * serialized stanza the first " to=''" is the root's attribute: it comes before any child, and no
 * attribute value holds an unescaped quote. */
static bool fanout_ready(sm *s, sm_fanout *f)
{
    if (f->state)
        return f->state > 0;
    f->state = -1;
    xml_attr_set(f->st->arena, f->st->node, NULL, "to", "");
    if (!wire_put(s, f->st->node))
        return false;
    static const char mark[] = " to=''";
    const char *w = buf_data(&s->wire);
    size_t n = buf_len(&s->wire), m = sizeof mark - 1;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(w + i, mark, m)) {
            buf_append(&f->head, w, i + m - 1);
            buf_append(&f->tail, w + i + m - 1, n - (i + m - 1));
            f->state = 1;
            break;
        }
    wire_done(s);
    return f->state > 0;
}

void sm_fanout_deliver(sm *s, sm_fanout *f, sm_session *sess)
{
    if (s->barrier) {
        sm_stanza *c = sm_stanza_copy(f->st);
        if (sm_stanza_set_to(c, jid_full(&sess->jid)))
            sm_deliver(s, sess, c);
        else
            sm_stanza_free(c);
        return;
    }
    if (!fanout_ready(s, f)) {
        s->stats.dropped_too_big++;
        return;
    }
    buf_consume(&s->wire, buf_len(&s->wire));
    buf_append(&s->wire, buf_data(&f->head), buf_len(&f->head));
    xml_write_attr_value(&s->wire, jid_full(&sess->jid), jid_full_len(&sess->jid));
    buf_append(&s->wire, buf_data(&f->tail), buf_len(&f->tail));
    if (buf_len(&s->wire) > SMPROTO_MAX_PAYLOAD) {
        s->stats.dropped_too_big++;
        buf_free(&s->wire);
        return;
    }
    wire_to_session(s, sess);
    wire_done(s);
}

void sm_fanout_free(sm_fanout *f)
{
    buf_free(&f->head);
    buf_free(&f->tail);
    sm_stanza_free(f->st);
    f->st = NULL;
}

void sm_send_unbound(sm *s, uint64_t link_serial, uint64_t sid, const xml_node *node)
{
    sm_link *l = smc_link_by_serial(s, link_serial);
    if (!l || !wire_put(s, node))
        return;
    s->t.stanza(s->tctx, l->handle, sid, buf_data(&s->wire), buf_len(&s->wire));
    wire_done(s);
}

void sm_bounce(sm *s, sm_stanza *st, const char *type, const char *condition)
{
    sm_bounce_text(s, st, type, condition, NULL);
}

void sm_bounce_text(sm *s, sm_stanza *st, const char *type, const char *condition,
                    const char *text)
{
    sm_bounce_app(s, st, type, condition, NULL, NULL, text);
}

void sm_bounce_app(sm *s, sm_stanza *st, const char *type, const char *condition,
                   const char *app_ns, const char *app_name, const char *text)
{
    if (!sm_stanza_error(st, type, condition, app_ns, app_name)) {
        sm_stanza_free(st);
        return;
    }
    if (text) {
        xml_node *t = xml_element_new(st->arena, st->node->last_child, SM_NS_STANZAS, "text");
        xml_attr_set(st->arena, t, XML_NS_XML, "lang", "en");
        xml_text_new(st->arena, t, text, strlen(text));
    }
    sm_route(s, st);
}

void sm_iq_result(sm *s, sm_stanza *st, const xml_node *payload)
{
    const char *id = xml_attr_get(st->node, "id");
    sm_stanza *r = sm_stanza_make("iq", st->to.domain_len ? jid_full(&st->to) : NULL,
                                  jid_full(&st->from), "result");
    if (id)
        xml_attr_set(r->arena, r->node, NULL, "id", id);
    if (payload)
        xml_node_copy(r->arena, r->node, payload);
    sm_stanza_free(st);
    sm_route(s, r);
}

static sm_link *component_for(const sm *s, const char *domain, size_t len)
{
    for (sm_link *l = s->links; l; l = l->next)
        if (l->component && !l->s2s && !l->peer && strlen(l->service) == len &&
            strncasecmp(l->service, domain, len) == 0)
            return l;
    return NULL;
}

/* The federation link for a remote domain: the s2s links up, one chosen by a hash of the domain
 * (the same box for a domain while the set of links stays), NULL when there is none. */
static sm_link *s2s_for(const sm *s, const char *domain, size_t len)
{
    unsigned n = 0;
    for (const sm_link *l = s->links; l; l = l->next)
        n += l->s2s;
    if (!n)
        return NULL;
    uint32_t h = 2166136261u;   /* FNV-1a over the lower-case domain */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)domain[i];
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 16777619u;
    }
    unsigned pick = h % n;
    for (sm_link *l = s->links; l; l = l->next)
        if (l->s2s && pick-- == 0)
            return l;
    return NULL;
}

/* A component <service> with this id may connect (its domain is ours to serve), connected or
 * not. (A front's or an s2s box's id is only a name.) */
static bool component_configured(const sm *s, const char *domain, size_t len)
{
    for (int i = 0; i < s->cfg->nservices; i++) {
        const char *id = s->cfg->services[i].id;
        if (s->cfg->services[i].role == SM_ROLE_COMPONENT && id && strlen(id) == len &&
            strncasecmp(id, domain, len) == 0)
            return true;
    }
    return false;
}

/* Tells the modules (message carbons) which of the user's sessions got st, and frees it. */
static void message_delivered(sm *s, sm_stanza *st, sm_user *u, sm_session *const *to, size_t n)
{
    sm_event ev = {.stanza = st, .user = u, .recipients = to, .nrecipients = n};
    sm_fire(s, SM_EV_MESSAGE_DELIVERED, &ev);
    sm_stanza_free(ev.stanza);
}

/* Offline storage, or <service-unavailable/> when the modules do not take it (as route_message
 * does for a user with no available resource). */
static void message_offline(sm *s, sm_stanza *st)
{
    sm_event ev = {.stanza = st};
    if (!sm_fire(s, SM_EV_MESSAGE_OFFLINE, &ev)) {
        sm_bounce(s, ev.stanza, "cancel", "service-unavailable");
        return;
    }
    sm_stanza_free(ev.stanza);
}

static void route_message(sm *s, sm_stanza *st)
{
    sm_msg_kind kind = sm_message_kind(st);
    if (!jid_is_bare(&st->to)) {
        sm_session *sess = sm_session_find(s, &st->to);
        if (sess && !smc_send_session(s, sess, st->node)) {
            sm_bounce_too_big(s, st);
            return;
        }
        if (sess) {
            message_delivered(s, st, sess->user, &sess, 1);
            return;
        }
        if (kind == SM_MSG_ERROR) {
            sm_stanza_free(st);
            return;
        }
        if (kind == SM_MSG_GROUPCHAT) {
            sm_bounce(s, st, "cancel", "service-unavailable");
            return;
        }
    }
    sm_user *u = sm_user_find(s, &st->to);
    int top = -1;
    for (sm_session *x = u ? u->sessions : NULL; x; x = x->next)
        if (x->available && x->priority >= 0 && x->priority > top)
            top = x->priority;
    if (kind == SM_MSG_ERROR) {
        sm_stanza_free(st);
        return;
    }
    if (kind == SM_MSG_GROUPCHAT) {
        sm_bounce(s, st, "cancel", "service-unavailable");
        return;
    }
    if (top < 0) {
        if (kind == SM_MSG_HEADLINE) {
            sm_stanza_free(st);
            return;
        }
        message_offline(s, st);
        return;
    }
    /* Serialized once for every resource it goes to. */
    if (!wire_put(s, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    size_t n = 0, cap = 4;
    sm_session **got = mem_array(cap, sizeof(*got));
    for (sm_session *x = u->sessions; x; x = x->next) {
        if (!x->available || x->priority < 0)
            continue;
        if (kind == SM_MSG_HEADLINE || x->priority == top) {
            wire_to_session(s, x);
            if (n == cap)
                got = mem_realloc(got, (cap *= 2) * sizeof(*got));
            got[n++] = x;
            if (kind == SM_MSG_NORMAL)
                break;  /* normal: one "most available" resource */
        }
    }
    wire_done(s);
    message_delivered(s, st, u, got, n);
    free(got);
}

void smc_route_local_presence(sm *s, sm_user *u, sm_stanza *st)
{
    sm_event ev = {.stanza = st, .user = u};
    sm_fire(s, SM_EV_PRESENCE_IN, &ev);
    sm_stanza_free(ev.stanza);
}

/* Whether message or iq st, for a user who is not loaded, would be stored or answered on their
 * behalf (offline storage, a bare-JID iq handler): the user must be loaded first, so that their
 * block list (XEP-0191) can refuse it. What is dropped or refused anyway is not worth a load. */
static bool inbound_needs_user(const sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    if (streq(st->node->name, "message"))
        return !streq(type, "error") && !streq(type, "groupchat") && !streq(type, "headline");
    return jid_is_bare(&st->to) && (streq(type, "get") || streq(type, "set"));
}

/* Queues st (taken: a compact copy is kept) until u is loaded. */
static void defer_stanza(sm *s, sm_user *u, sm_stanza *st)
{
    sm_deferred *d = mem_zalloc(sizeof(*d));
    if (st->origin) {
        d->from_session = true;
        d->link_serial = st->origin->link->serial;
        d->sid = st->origin->sid;
    }
    d->stanza = sm_stanza_keep(st);
    sm_stanza_free(st);
    smc_defer(s, u, d);
}

/* A message or iq for local user u (NULL when not in memory). */
void smc_route_inbound(sm *s, sm_user *u, sm_stanza *st)
{
    sm_event ev = {.stanza = st, .user = u};
    if (sm_fire(s, SM_EV_INBOUND, &ev)) {
        sm_stanza_free(ev.stanza);
        return;
    }
    if (streq(st->node->name, "message")) {
        route_message(s, st);
    } else {
        if (jid_is_bare(&st->to)) {
            smc_iq_dispatch(s, st, SM_IQ_BARE);
            return;
        }
        sm_session *sess = sm_session_find(s, &st->to);
        if (sess)
            sm_deliver(s, sess, st);
        else
            sm_bounce(s, st, "cancel", "service-unavailable");
    }
}

void smc_route_to_user(sm *s, sm_stanza *st)
{
    if (smc_restart_wait_hold(s, st))
        return;
    const char *name = st->node->name;
    sm_user *u = sm_user_find(s, &st->to);
    bool ready = u && u->loaded && !u->deferred;
    if (streq(name, "message") || streq(name, "iq")) {
        /* A session restored before its account loaded: all of it waits (its block list). */
        if (!ready && (inbound_needs_user(st) || (u && u->sessions && !u->loaded)))
            defer_stanza(s, smc_user_get(s, &st->to), st);
        else
            smc_route_inbound(s, u, st);
    } else if (streq(name, "presence")) {
        if (ready) {
            smc_route_local_presence(s, u, st);
            smc_user_maybe_free(s, u);
        } else if (s->stopping && !u && streq(sm_stanza_type(st), "unavailable")) {
            /* The shutdown's broadcast to a contact with no session here: nobody to tell, and
             * loading them would only queue work on closing storage. */
            sm_stanza_free(st);
        } else {
            defer_stanza(s, smc_user_get(s, &st->to), st);
        }
    } else {
        sm_stanza_free(st);
    }
}

/* To a user of another SM's partitions: over the link to that SM as XML, or, while it is down,
 * back to the sender as a server that does not answer (RFC 6120 §8.3.3.16): nothing is queued,
 * as nothing is for a federation link that is down (docs/scaling.md, "The prototype"). */
static void route_to_peer(sm *s, sm_stanza *st, int owner)
{
    sm_link *p = smc_peer_link(s, owner);
    if (!p) {
        s->stats.peer_bounced++;
        sm_bounce(s, st, "wait", "remote-server-timeout");
        return;
    }
    if (!wire_put(s, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    s->stats.peer_out++;
    s->t.component(s->tctx, p->handle, buf_data(&s->wire), buf_len(&s->wire));
    wire_done(s);
    sm_stanza_free(st);
}

/* The local account a stanza from a user's JID comes from: its session's (no lookup) when it came
 * from one of that account's sessions, else found by the bare JID. */
static sm_user *sender_of(const sm *s, const sm_stanza *st)
{
    const sm_user *own = st->origin ? st->origin->user : NULL;
    size_t len = jid_bare_len(&st->from);
    if (own && jid_bare_len(&own->jid) == len &&
        memcmp(jid_full(&own->jid), jid_full(&st->from), len) == 0)
        return (sm_user *)own;
    return sm_user_find(s, &st->from);
}

void sm_route(sm *s, sm_stanza *st)
{
    if (s->barrier && sm_barrier_hold(s->barrier, NULL, st))
        return;
    if (!st->node || !xml_is(st->node, SM_NS_CLIENT, NULL)) {
        sm_stanza_free(st);
        return;
    }
    if (st->bad_to) {
        sm_bounce(s, st, "modify", "jid-malformed");
        return;
    }
    if (!st->to.domain_len) {
        if (xml_is(st->node, SM_NS_CLIENT, "iq") && st->origin) {
            smc_iq_dispatch(s, st, SM_IQ_BARE);
            return;
        }
        sm_stanza_free(st);
        return;
    }
    size_t dlen, nlen;
    sm_user *sender = st->from.domain_len && jid_node(&st->from, &nlen) ? sender_of(s, st) : NULL;
    if (sender) {
        sm_event ev = {.stanza = st, .user = sender, .session = st->origin};
        if (sm_fire(s, SM_EV_OUTBOUND, &ev)) {
            sm_stanza_free(ev.stanza);
            return;
        }
    }
    const char *domain = jid_domain(&st->to, &dlen);
    if (sm_is_local_host(s, domain, dlen)) {
        int owner;
        if (jid_node(&st->to, &nlen)) {
            if (smc_partition_other(s, &st->to, &owner))
                route_to_peer(s, st, owner);
            else
                smc_route_to_user(s, st);
        } else if (xml_is(st->node, SM_NS_CLIENT, "iq")) {
            smc_iq_dispatch(s, st, SM_IQ_HOST);
        } else {
            sm_stanza_free(st);
        }
        return;
    }
    if (smc_domain_dispatch(s, st, domain, dlen))
        return;
    sm_link *c = component_for(s, domain, dlen);
    if (!c && !component_configured(s, domain, dlen))
        c = s2s_for(s, domain, dlen);
    if (c && !wire_put(s, st->node)) {
        sm_bounce_too_big(s, st);
        return;
    }
    if (c) {
        s->t.component(s->tctx, c->handle, buf_data(&s->wire), buf_len(&s->wire));
        wire_done(s);
        sm_stanza_free(st);
        return;
    }
    /* A configured component that is not connected is a local service that is down (RFC 6120
     * §10.5, §8.3.3.19); any other domain is remote, and no federation link is up. */
    sm_bounce(s, st, "cancel",
              component_configured(s, domain, dlen) ? "service-unavailable"
                                                    : "remote-server-not-found");
}

/* A stanza whose session is gone (see sm.h): messages and iqs still go where they were sent. */
static void stanza_from_gone_session(sm *s, sm_stanza *st)
{
    const char *name = st->node->name;
    if (!streq(st->node->ns, SM_NS_CLIENT) || (!streq(name, "message") && !streq(name, "iq")) ||
        !sm_is_local_user(s, &st->from) || jid_is_bare(&st->from) || st->bad_to ||
        !st->to.domain_len) {
        s->stats.dropped_stale++;
        sm_stanza_free(st);
        return;
    }
    sm_route(s, st);
}

static sm_kind kind_of(const sm_stanza *st)
{
    const char *name = st->node->name;
    return streq(name, "message") ? SM_KIND_MESSAGE : streq(name, "presence") ? SM_KIND_PRESENCE
         : streq(name, "iq") ? SM_KIND_IQ : SM_KIND_OTHER;
}

static void session_stanza(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len);

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

/* Counted and timed (the routing latency histogram): the work one frame causes on this thread. */
void sm_session_stanza(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len)
{
    uint64_t t0 = now_us();
    s->stats.bytes_in += len;
    session_stanza(s, l, sid, xml, len);
    metrics_observe(&s->stats.route_us, now_us() - t0);
}

static void session_stanza(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len)
{
    sm_session *sess = sm_session_lookup(s, l->serial, sid);
    if (sess && !sess->user->loaded) {
        /* Restored by a restart before its account loaded: it waits for the load. */
        smc_defer_session_frame(s, sess, xml, len);
        return;
    }
    if (sess)
        sess->stanzas_in++;
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st) {
        s->stats.dropped_bad++;
        log_debug("sm: %s sent a stanza that does not parse", sess ? jid_full(&sess->jid) : "?");
        return;
    }
    if (!sess && smc_defer_frame(s, l, sid, &st->from, xml, len)) {
        sm_stanza_free(st);
        return;
    }
    s->stats.stanzas_in[kind_of(st)]++;
    if (!sess) {
        stanza_from_gone_session(s, st);
        return;
    }
    const char *name = st->node->name;
    if (!streq(st->node->ns, SM_NS_CLIENT) ||
        (!streq(name, "message") && !streq(name, "presence") && !streq(name, "iq"))) {
        sm_stanza_free(st);
        return;
    }
    /* The front stamps 'from'; the session's JID is the authority all the same. */
    sm_stanza_set_from(st, jid_full(&sess->jid));
    st->origin = sess;
    if (streq(name, "presence") && !st->bad_to) {
        sm_event ev = {.stanza = st, .session = sess, .user = sess->user};
        if (!sm_fire(s, SM_EV_PRESENCE_OUT, &ev) && ev.stanza->node && ev.stanza->to.domain_len) {
            sm_route(s, ev.stanza);
            return;
        }
        sm_stanza_free(ev.stanza);
        return;
    }
    if (streq(name, "message") && !st->to.domain_len && !st->bad_to) {
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&sess->jid, bare, sizeof(bare));
        sm_stanza_set_to(st, bare);
    }
    sm_route(s, st);
}

/* The fates of a stanza that could not be delivered to a session (sm.h, sm_undelivered): st's
 * 'to' is the session's. */
static void undeliverable_fate(sm *s, sm_stanza *st)
{
    const char *name = st->node->name, *type = sm_stanza_type(st);
    bool message = streq(name, "message");
    sm_msg_kind kind = message ? sm_message_kind(st) : SM_MSG_ERROR;
    if (message && (kind == SM_MSG_NORMAL || kind == SM_MSG_CHAT))
        message_offline(s, st);
    else if ((message && kind == SM_MSG_GROUPCHAT) ||
             (streq(name, "iq") && (streq(type, "get") || streq(type, "set"))))
        sm_bounce(s, st, "cancel", "service-unavailable");
    else
        sm_stanza_free(st);
}

void sm_undelivered(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len)
{
    sm_session *sess = sm_session_lookup(s, l->serial, sid);
    if (s->nhooks[SM_EV_UNDELIVERED]) {
        sm_event ev = {.session = sess, .user = sess ? sess->user : NULL,
                       .link_serial = l->serial, .sid = sid, .xml = xml, .len = len};
        if (sm_fire(s, SM_EV_UNDELIVERED, &ev))
            return;
    }
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st) {
        s->stats.dropped_bad++;
        return;
    }
    /* The session's JID, while it is known, says whose stanza it was; after its END, the address
     * the SM gave it, which must be a local user's. */
    bool ours = sess ? jid_equal_bare(&st->to, &sess->jid) : sm_is_local_user(s, &st->to);
    if (sess && !ours && !st->bad_to) {
        sm_stanza_set_to(st, jid_full(&sess->jid));
        ours = true;
    }
    if (!ours || st->bad_to || !streq(st->node->ns, SM_NS_CLIENT)) {
        s->stats.dropped_stale++;
        sm_stanza_free(st);
        return;
    }
    undeliverable_fate(s, st);
}

void sm_undeliverable(sm *s, const jid *to, const char *xml, size_t len)
{
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st) {
        s->stats.dropped_bad++;
        return;
    }
    if (!streq(st->node->ns, SM_NS_CLIENT)) {
        sm_stanza_free(st);
        return;
    }
    if (st->bad_to || !jid_equal_bare(&st->to, to))
        sm_stanza_set_to(st, jid_full(to));
    undeliverable_fate(s, st);
}

/* Ours: a served host or a configured component's domain. */
static bool served(const sm *s, const char *domain, size_t len)
{
    return sm_is_local_host(s, domain, len) || component_configured(s, domain, len);
}

/* From a federation link (docs/deployment.md, "Federation"): a remote server may only send from
 * a domain that is not ours, and only to ours. jabshard-s2s checks this on each remote stream
 * (a stream only carries the domains it authenticated); the SM checks it again here, whatever the
 * link says. */
static void s2s_stanza(sm *s, sm_link *l, sm_stanza *st)
{
    size_t flen = 0, tlen = 0;
    const char *from = st->from.domain_len ? jid_domain(&st->from, &flen) : NULL;
    const char *to = st->to.domain_len ? jid_domain(&st->to, &tlen) : NULL;
    if (!from || !to || st->bad_to || served(s, from, flen) || !served(s, to, tlen)) {
        log_warn("sm: federation link '%s' sent a <%s/> from '%.*s' to '%.*s': refused "
                 "(from must be remote, to ours)", l->service, st->node->name, (int)flen,
                 from ? from : "", (int)tlen, to ? to : "");
        s->stats.dropped_bad++;
        sm_stanza_free(st);
        return;
    }
    sm_route(s, st);
}

void sm_component_stanza(sm *s, sm_link *l, xml_node *node, xml_arena *arena)
{
    /* Component streams carry stanzas in jabber:component:accept; inside the SM every stanza
     * is in jabber:client, so modules and the serializer see one namespace. */
    xml_rename_ns(node, SM_NS_COMPONENT, SM_NS_CLIENT);
    sm_stanza *st = sm_stanza_new(arena, node);
    if (l->s2s) {
        s2s_stanza(s, l, st);
        return;
    }
    if (l->peer) {
        smc_peer_stanza(s, l, st);
        return;
    }
    size_t dlen = 0;
    const char *d = st->from.domain_len ? jid_domain(&st->from, &dlen) : NULL;
    if (!d || strlen(l->service) != dlen || strncasecmp(d, l->service, dlen) != 0) {
        log_debug("sm: component '%s' sent a stanza from outside its domain", l->service);
        s->stats.dropped_bad++;
        sm_stanza_free(st);
        return;
    }
    sm_route(s, st);
}
