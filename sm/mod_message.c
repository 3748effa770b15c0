/* sm/mod_message.c — offline messages (XEP-0160): a normal or chat message for a user with no
 * available resource is stored (up to the configured quota; past it, or for no such account, the
 * sender gets <service-unavailable/>; when storage fails, as while the database is down, a
 * <wait/> <resource-constraint/> so the sender knows to try again), and handed out at the user's
 * next initial presence with a <delay/> (XEP-0203) saying when the server received it; a delay
 * that a client's message claims is from one of our hosts is removed on its way in. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "smproto/frame.h"

#define NS_DELAY "urn:xmpp:delay"

typedef struct store_ctx {
    sm *s;
    sm_stanza *st;
} store_ctx;

static void stored(xdb_request *r, void *ctx)
{
    store_ctx *c = ctx;
    if (r->status == XDB_OK) {
        sm_stanza_free(c->st);
    } else if (r->status == XDB_ERROR) {
        /* Not stored, so not acknowledged: the sender hears it (RFC 6120 §8.3.3.18). */
        log_warn("sm: storing an offline message for %s@%s failed: %s", r->user, r->host,
                 r->error);
        sm_bounce(c->s, c->st, "wait", "resource-constraint");
    } else {
        sm_bounce(c->s, c->st, "cancel", "service-unavailable");
    }
    free(c);
}

static bool message_offline(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    long long quota = sm_module_int(s, &mod_message, "offline_quota");
    if (quota <= 0)
        return false;   /* offline storage is off: the core answers service-unavailable */
    /* What is stored goes back out in a frame at the next login. */
    char *xml = sm_xml_string(st->node, SMPROTO_MAX_PAYLOAD, NULL);
    if (!xml) {
        sm_bounce_too_big(s, sm_stanza_take(st));
        return true;
    }
    xdb_request *r = sm_user_request(XDB_OFFLINE_STORE, &st->to);
    xdb_request_set_xml(r, xml);
    free(xml);
    r->quota = quota;
    store_ctx *c = mem_zalloc(sizeof(*c));
    c->s = s;
    c->st = sm_stanza_take(st);
    sm_submit(s, r, stored, c);
    return true;
}

/* Whether this server already stamped st: a message stored, handed out and handed back by the
 * front (UNDELIVERED) keeps the time it first arrived. */
/* A client's message must not carry what only this server may say: a <delay/> from one of its
 * hosts would pass for the time the server stored it (and keep the server from stamping its own).
 * What a client says about itself (a delay from its own JID, XEP-0203's example) stays. */
static bool strip_forged_delays(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!ev->session || !xml_is(st->node, SM_NS_CLIENT, "message"))
        return false;
    xml_node *d = xml_child(st->node, NS_DELAY, "delay");
    while (d) {
        xml_node *next = xml_next(d, NS_DELAY, "delay");
        const char *from = xml_attr_get(d, "from");
        jid j;
        if (from && jid_parse(from, strlen(from), &j) == JID_OK) {
            size_t dlen;
            const char *domain = jid_domain(&j, &dlen);
            if (jid_is_bare(&j) && !jid_node(&j, NULL) && sm_is_local_host(s, domain, dlen))
                xml_node_detach(d);
            jid_free(&j);
        }
        d = next;
    }
    return false;
}

typedef struct fetch_ctx {
    sm *s;
    uint64_t link_serial, sid;
} fetch_ctx;

static void fetched(xdb_request *r, void *ctx)
{
    fetch_ctx *c = ctx;
    sm *s = c->s;
    if (r->status != XDB_OK && r->noffline == 0) {
        if (r->status == XDB_ERROR)
            log_warn("sm: fetching offline messages of %s@%s failed: %s", r->user, r->host,
                     r->error);
        free(c);
        return;
    }
    for (size_t i = 0; i < r->noffline; i++) {
        sm_stanza *st = sm_parse(s, r->offline[i].xml, strlen(r->offline[i].xml));
        if (!st)
            continue;
        if (!sm_delayed_by(st->node, r->host)) {
            char stamp[32];
            sm_format_time(r->offline[i].stamp_ms, stamp);
            xml_node *d = xml_element_new(st->arena, st->node, NS_DELAY, "delay");
            xml_attr_set(st->arena, d, NULL, "from", r->host);
            xml_attr_set(st->arena, d, NULL, "stamp", stamp);
        }
        /* Fetched is deleted: if the session went meanwhile, route the message again so it
         * reaches another resource or goes back to storage. */
        sm_session *sess = sm_session_lookup(s, c->link_serial, c->sid);
        if (sess)
            sm_deliver(s, sess, st);
        else
            sm_route(s, st);
    }
    free(c);
}

static bool session_available(sm *s, sm_event *ev)
{
    sm_session *sess = ev->session;
    if (sess->priority < 0)
        return false;   /* XEP-0160 §3: not for negative priority */
    fetch_ctx *c = mem_zalloc(sizeof(*c));
    *c = (fetch_ctx){s, sm_link_serial(sess->link), sess->sid};
    sm_submit(s, sm_user_request(XDB_OFFLINE_FETCH, &sess->jid), fetched, c);
    return false;
}

/* offline_quota: the most messages kept for an offline user; 0 keeps none. */
static const sm_int_option message_options[] = {
    {"offline_quota", 100, 0, 1000000},
    {NULL},
};

static const sm_handler message_handlers[] = {
    {"outbound", .hook = strip_forged_delays},
    {"message-offline", .hook = message_offline},
    {"session-available", .hook = session_available},
    {NULL},
};

const sm_module mod_message = {
    .name = "message",
    .int_options = message_options,
    .handlers = message_handlers,
    .features = (const char *const[]){"msgoffline", NULL},
};
