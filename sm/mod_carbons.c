/* sm/mod_carbons.c — Message Carbons (XEP-0280): a resource that enables carbons gets a copy of
 * the user's chat messages that other resources send (<sent/>) or receive (<received/>), wrapped
 * in <forwarded xmlns='urn:xmpp:forward:0'/> (XEP-0297). Which messages are copied is §6's rule;
 * <private/> (§7) and <no-copy/> (XEP-0334) keep a message out. <private/> travels with the
 * message to the recipient's server, which removes it before delivery (§7) and makes no
 * <received/> copies either. */
#include <string.h>

#include "sm/module.h"
#include "sm/modules.h"

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"

/* Per session: whether it enabled carbons. */
typedef struct carbons_session {
    bool enabled;
} carbons_session;

static bool carbons_on(sm *s, const sm_session *x)
{
    return ((const carbons_session *)sm_session_state(s, x, &mod_carbons))->enabled;
}

static void carbons_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (!sm_stanza_to_self(st)) {
        sm_bounce(s, st, "cancel", st->origin ? "forbidden" : "service-unavailable");
        return;
    }
    bool enable = strcmp(payload->name, "enable") == 0;
    if (strcmp(sm_stanza_type(st), "set") != 0 || (!enable && strcmp(payload->name, "disable") != 0)) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    carbons_session *cs = sm_session_state(s, st->origin, &mod_carbons);
    if (cs->enabled != enable) {
        cs->enabled = enable;
        sm_session_state_changed(s, st->origin);
    }
    sm_iq_result(s, st, NULL);
}

/* Payloads that make a normal message a conversation even without a body (§6: chat states,
 * receipts, markers). */
static bool carbons_im_payload(const xml_node *msg)
{
    static const char *const ns[] = {"http://jabber.org/protocol/chatstates", "urn:xmpp:receipts",
                                     "urn:xmpp:chat-markers:0", NULL};
    for (int i = 0; ns[i]; i++)
        if (xml_child(msg, ns[i], NULL))
            return true;
    return false;
}

static bool carbons_eligible(const sm_stanza *st)
{
    const xml_node *m = st->node;
    if (!xml_is(m, SM_NS_CLIENT, "message") || xml_child(m, NS_CARBONS, NULL) ||
        xml_child(m, NS_HINTS, "no-copy"))
        return false;   /* <private/>, a carbon itself (<sent/>, <received/>), or a hint */
    const char *type = sm_stanza_type(st);
    if (strcmp(type, "chat") == 0)
        return true;
    if (*type && strcmp(type, "normal") != 0)
        return false;   /* groupchat, headline, error */
    return xml_child(m, SM_NS_CLIENT, "body") || carbons_im_payload(m);
}

/* <message from=bare to=x><how><forwarded>original</forwarded></how></message> to x. */
static void carbons_copy(sm *s, sm_user *u, sm_session *x, const sm_stanza *st, const char *how)
{
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(&u->jid, bare, sizeof(bare));
    const char *type = xml_attr_get(st->node, "type");
    sm_stanza *c = sm_stanza_make("message", bare, jid_full(&x->jid), type);
    xml_node *wrap = xml_element_new(c->arena, c->node, NS_CARBONS, how);
    xml_node *fwd = xml_element_new(c->arena, wrap, NS_FORWARD, "forwarded");
    xml_node_copy(c->arena, fwd, st->node);
    sm_deliver(s, x, c);
}

static bool carbons_sent(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!ev->session || !carbons_eligible(st))
        return false;
    for (sm_session *x = ev->user->sessions; x; x = x->next)
        if (x != ev->session && carbons_on(s, x))
            carbons_copy(s, ev->user, x, st, "sent");
    return false;
}

/* A private message for one of our users: the marker is for servers, not the recipient. */
static bool carbons_inbound(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    xml_node *priv = xml_is(st->node, SM_NS_CLIENT, "message")
                         ? xml_child(st->node, NS_CARBONS, "private") : NULL;
    if (priv) {
        xml_node_detach(priv);
        st->no_copies = true;
    }
    return false;
}

static bool carbons_received(sm *s, sm_event *ev)
{
    if (!ev->user || ev->stanza->no_copies || !carbons_eligible(ev->stanza))
        return false;
    for (sm_session *x = ev->user->sessions; x; x = x->next) {
        if (!carbons_on(s, x))
            continue;
        bool got = false;
        for (size_t i = 0; i < ev->nrecipients && !got; i++)
            got = ev->recipients[i] == x;
        if (!got)
            carbons_copy(s, ev->user, x, ev->stanza, "received");
    }
    return false;
}

/* Across an SM restart: whether the session enabled carbons. */
static void carbons_pack(const sm_session *sess, const void *state, buf *out)
{
    sm_pack_flag(out, ((const carbons_session *)state)->enabled);
}

static void carbons_restore(sm_session *sess, void *state, const uint8_t *data, size_t len)
{
    ((carbons_session *)state)->enabled = sm_unpack_flag(data, len);
}

static const sm_handler carbons_handlers[] = {
    {"iq/bare/" NS_CARBONS ":*", .iq = carbons_iq},
    {"outbound", .hook = carbons_sent},
    {"inbound", .hook = carbons_inbound},
    {"message-delivered", .hook = carbons_received},
    {NULL},
};

const sm_module mod_carbons = {
    .name = "carbons",
    .handlers = carbons_handlers,
    .features = (const char *const[]){NS_CARBONS, NULL},
    .session_state = sizeof(carbons_session),
    .pack = carbons_pack,
    .restore = carbons_restore,
};
