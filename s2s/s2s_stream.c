/* s2s/s2s_stream.c — the server-to-server stream protocol (see s2s_stream.h). */
#include "s2s/s2s_stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/jid.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/xml_write.h"
#include "s2s/dialback.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_DB_FEATURE "urn:xmpp:features:dialback"
#define NS_BIDI_FEATURE "urn:xmpp:features:bidi"
#define NS_BIDI "urn:xmpp:bidi"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define STREAM_ID_MAX 128
#define KEY_MAX 256

static bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

typedef enum {
    ST_HEADER,      /* waiting for the peer's stream header */
    ST_FEATURES,    /* outgoing: waiting for its features */
    ST_TLS_ASKED,   /* outgoing: <starttls/> sent, waiting for <proceed/> */
    ST_TLS,         /* the owner runs the handshake */
    ST_SASL,        /* outgoing: <auth/> sent */
    ST_DIALBACK,    /* outgoing: db:result sent */
    ST_OPEN,        /* features exchanged: stanzas, dialback and SASL as the state allows */
    ST_CLOSED,
} stream_state;

typedef struct pair {
    char *local, *remote;
} pair;

struct s2s_stream {
    s2s_direction dir;
    stream_state state;
    const s2s_stream_config *cfg;
    const s2s_stream_ops *ops;
    void *ctx;
    xmlstream *xs;
    buf out;
    char *local, *remote;          /* outgoing: the pair; incoming: the header's to / from */
    char stream_id[STREAM_ID_MAX + 1];
    bool tls, authed, sasl_tried, sasl_ok, restart, ready_told;
    bool header_out;               /* our header of the current stream is written */
    bool bidi;                     /* XEP-0288: stanzas go both ways on this stream */
    pair pairs[S2S_PAIRS_MAX];     /* incoming: authenticated pairs */
    unsigned npairs;
    unsigned pending_db;           /* incoming: db:result checks waiting */
    char why[160];
    bool stop_tls;                 /* feed: the rest of the input is pre-TLS, drop it */
};

static const xmlstream_handlers handlers;

/* ---- output ---------------------------------------------------------------------------------- */

static void attr(buf *b, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    buf_appendf(b, " %s='", name);
    xml_write_attr_value(b, value, strlen(value));
    buf_append(b, "'", 1);
}

static void write_header(s2s_stream *st, const char *from, const char *to, const char *id)
{
    buf_appendf(&st->out, "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' "
                "xmlns:db='%s'", S2S_NS_SERVER, XML_NS_STREAMS, S2S_NS_DIALBACK);
    attr(&st->out, "from", from);
    attr(&st->out, "to", to);
    attr(&st->out, "id", id);
    buf_appendf(&st->out, " version='1.0'>");
    st->header_out = true;
}

static void set_why(s2s_stream *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_why(s2s_stream *st, const char *fmt, ...)
{
    if (st->why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof st->why, fmt, ap);
    va_end(ap);
}

void s2s_stream_close(s2s_stream *st, const char *condition, const char *text)
{
    if (st->state == ST_CLOSED)
        return;
    if (!st->header_out)
        write_header(st, NULL, NULL, NULL);   /* RFC 6120 §4.9.1.1: open before the error */
    if (condition) {
        xml_write_stream_error(&st->out, condition, text);
        set_why(st, "sent <%s/>: %s", condition, text ? text : "");
    } else {
        set_why(st, "closed");
    }
    xml_write_stream_close(&st->out);
    st->state = ST_CLOSED;
    xmlstream_stop(st->xs);
}

static void fail(s2s_stream *st, const char *condition, const char *text)
{
    s2s_stream_close(st, condition, text);
}

/* <db:result/> or <db:verify/> with a type, from, to, optional id and optional error. */
static void db_answer(s2s_stream *st, const char *name, const char *from, const char *to,
                      const char *id, const char *type, const char *error)
{
    buf_appendf(&st->out, "<db:%s", name);
    attr(&st->out, "from", from);
    attr(&st->out, "to", to);
    attr(&st->out, "id", id);
    attr(&st->out, "type", type);
    if (error)
        buf_appendf(&st->out, "><error type='cancel'><%s xmlns='%s'/></error></db:%s>", error,
                    NS_STANZAS, name);
    else
        buf_append(&st->out, "/>", 2);
}

/* ---- helpers --------------------------------------------------------------------------------- */

/* A domain as a peer wrote it, when it is a valid JID domainpart (nothing else). */
static bool valid_domain(const char *d)
{
    if (!d || !*d || strlen(d) > S2S_DOMAIN_MAX || strpbrk(d, "@/"))
        return false;
    jid j;
    if (jid_parse(d, strlen(d), &j) != JID_OK)
        return false;
    jid_free(&j);
    return true;
}

static bool has_pair(const s2s_stream *st, const char *local, const char *remote)
{
    for (unsigned i = 0; i < st->npairs; i++)
        if (strcasecmp(st->pairs[i].local, local) == 0 &&
            strcasecmp(st->pairs[i].remote, remote) == 0)
            return true;
    return false;
}

static void add_pair(s2s_stream *st, const char *local, const char *remote, const char *how)
{
    if (has_pair(st, local, remote))
        return;
    if (st->npairs == S2S_PAIRS_MAX) {
        fail(st, "policy-violation", "too many domains on one stream");
        return;
    }
    st->pairs[st->npairs].local = mem_strdup(local);
    st->pairs[st->npairs].remote = mem_strdup(remote);
    st->npairs++;
    if (st->ops->authed)
        st->ops->authed(st->ctx, local, remote, how);
}

static void policy_of(s2s_stream *st, const char *remote, s2s_policy *p)
{
    *p = (s2s_policy){.require_tls = true, .allow_dialback = true};
    if (st->ops->policy)
        st->ops->policy(st->ctx, remote, p);
}

static bool cert_valid(s2s_stream *st, const char *domain)
{
    return st->tls && st->ops->peer_cert_valid && st->ops->peer_cert_valid(st->ctx, domain);
}

/* ---- the header ------------------------------------------------------------------------------ */

static void incoming_features(s2s_stream *st);
static void outgoing_authed(s2s_stream *st, const char *how);

static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    s2s_stream *st = ctx;
    const char *version = xml_attr_get(root, "version");
    if (strcmp(content_ns, S2S_NS_SERVER) != 0) {
        fail(st, "invalid-namespace", "the stream is not jabber:server");
        return;
    }
    if (st->dir == S2S_OUTGOING) {
        const char *id = xml_attr_get(root, "id");
        if (!id || !*id || strlen(id) > STREAM_ID_MAX) {
            fail(st, "invalid-id", "the stream header has no usable id");
            return;
        }
        snprintf(st->stream_id, sizeof st->stream_id, "%s", id);
        if (!version || strcmp(version, "1.0") != 0) {
            fail(st, "unsupported-version", "only XMPP 1.0 streams (with features) are spoken");
            return;
        }
        st->state = ST_FEATURES;
        return;
    }
    /* Incoming. RFC 6120 §4.7.2: 'to' names one of our domains; 'from' is optional but needed
     * for SASL EXTERNAL. */
    const char *to = xml_attr_get(root, "to"), *from = xml_attr_get(root, "from");
    if (!st->local) {
        if (!to || !valid_domain(to) || !st->ops->is_local(st->ctx, to)) {
            char t[128];
            snprintf(t, sizeof t, "%.100s is not served here", to ? to : "(no 'to')");
            fail(st, "host-unknown", t);
            return;
        }
        st->local = mem_strdup(to);
    } else if (!to || strcasecmp(to, st->local) != 0) {
        fail(st, "host-unknown", "the restarted stream names another domain");
        return;
    }
    if (from && valid_domain(from) && !st->remote)
        st->remote = mem_strdup(from);
    random_token(st->stream_id, 32);
    write_header(st, st->local, st->remote, st->stream_id);
    if (!version || strcmp(version, "1.0") != 0) {
        fail(st, "unsupported-version", "only XMPP 1.0 streams (with features) are spoken");
        return;
    }
    if (st->remote) {
        s2s_policy p;
        policy_of(st, st->remote, &p);
        if (p.blocked) {
            fail(st, "policy-violation", "this domain is blocked here");
            return;
        }
    }
    st->state = ST_OPEN;
    incoming_features(st);
}

/* ---- incoming -------------------------------------------------------------------------------- */

static void incoming_features(s2s_stream *st)
{
    s2s_policy p;
    policy_of(st, st->remote ? st->remote : "", &p);
    buf *o = &st->out;
    buf_append(o, "<stream:features>", 17);
    if (st->authed) {
        buf_append(o, "</stream:features>", 18);
        return;
    }
    if (!st->tls) {
        buf_appendf(o, "<starttls xmlns='%s'>%s</starttls>", NS_TLS,
                    p.require_tls ? "<required/>" : "");
    }
    if (st->tls || !p.require_tls) {
        if (st->remote && cert_valid(st, st->remote))
            buf_appendf(o, "<mechanisms xmlns='%s'><mechanism>EXTERNAL</mechanism></mechanisms>",
                        NS_SASL);
        if (p.allow_dialback)
            buf_appendf(o, "<dialback xmlns='%s'><errors/></dialback>", NS_DB_FEATURE);
        buf_appendf(o, "<bidi xmlns='%s'/>", NS_BIDI_FEATURE);
    }
    buf_append(o, "</stream:features>", 18);
}

static void incoming_starttls(s2s_stream *st)
{
    if (st->tls) {
        buf_appendf(&st->out, "<failure xmlns='%s'/>", NS_TLS);
        fail(st, "policy-violation", "TLS is already on");
        return;
    }
    buf_appendf(&st->out, "<proceed xmlns='%s'/>", NS_TLS);
    st->state = ST_TLS;
    st->stop_tls = true;
    xmlstream_stop(st->xs);
}

static void sasl_failure(s2s_stream *st, const char *condition)
{
    buf_appendf(&st->out, "<failure xmlns='%s'><%s/></failure>", NS_SASL, condition);
}

/* SASL EXTERNAL (RFC 6120 §6, XEP-0178): the authorization identity is the domain, or "=" for
 * the header's 'from'; the certificate must be valid for it. */
static void incoming_auth(s2s_stream *st, const xml_node *el, xml_arena *arena)
{
    const char *mech = xml_attr_get(el, "mechanism");
    if (!st->tls || st->authed || !mech || strcmp(mech, "EXTERNAL") != 0) {
        sasl_failure(st, !mech || strcmp(mech, "EXTERNAL") ? "invalid-mechanism" : "not-authorized");
        return;
    }
    const char *text = xml_text(arena, el);
    char domain[S2S_DOMAIN_MAX + 1] = "";
    if (text && *text && strcmp(text, "=") != 0) {
        uint8_t *d;
        long n = base64_decode(text, &d);
        if (n <= 0 || n > S2S_DOMAIN_MAX || memchr(d, 0, (size_t)n)) {
            free(d);
            sasl_failure(st, "incorrect-encoding");
            return;
        }
        memcpy(domain, d, (size_t)n);
        domain[n] = '\0';
        free(d);
    } else if (st->remote) {
        snprintf(domain, sizeof domain, "%s", st->remote);
    }
    s2s_policy p;
    policy_of(st, domain, &p);
    if (!valid_domain(domain) || (st->remote && strcasecmp(domain, st->remote) != 0) ||
        st->ops->is_local(st->ctx, domain) || p.blocked || !cert_valid(st, domain)) {
        sasl_failure(st, "not-authorized");
        return;
    }
    if (!st->remote)
        st->remote = mem_strdup(domain);
    buf_appendf(&st->out, "<success xmlns='%s'/>", NS_SASL);
    st->authed = true;
    add_pair(st, st->local, domain, "sasl");
    st->restart = true;
    st->state = ST_HEADER;
    xmlstream_stop(st->xs);
}

/* db:result on an incoming stream (XEP-0220 §2.1.2): remote wants to send as from to local. */
static void incoming_db_result(s2s_stream *st, const xml_node *el, xml_arena *arena)
{
    const char *from = xml_attr_get(el, "from"), *to = xml_attr_get(el, "to");
    const char *key = xml_text(arena, el);
    if (xml_attr_get(el, "type")) {
        fail(st, "unsupported-stanza-type", "a typed db:result on an incoming stream");
        return;
    }
    if (!valid_domain(from) || !valid_domain(to) || !key || !*key || strlen(key) > KEY_MAX) {
        fail(st, "improper-addressing", "db:result without a valid from, to and key");
        return;
    }
    if (!st->ops->is_local(st->ctx, to)) {
        db_answer(st, "result", to, from, NULL, "error", "item-not-found");
        return;
    }
    s2s_policy p;
    policy_of(st, from, &p);
    if (st->ops->is_local(st->ctx, from) || p.blocked || (p.require_tls && !st->tls)) {
        db_answer(st, "result", to, from, NULL, "error", "policy-violation");
        return;
    }
    if (has_pair(st, to, from)) {
        db_answer(st, "result", to, from, NULL, "valid", NULL);
        return;
    }
    /* XEP-0344 §2.3: a certificate valid for the domain proves it without asking back. */
    if (cert_valid(st, from)) {
        db_answer(st, "result", to, from, NULL, "valid", NULL);
        add_pair(st, to, from, "certificate");
        return;
    }
    if (!p.allow_dialback || p.require_valid_cert) {
        db_answer(st, "result", to, from, NULL, "error", "not-authorized");
        return;
    }
    if (st->pending_db >= S2S_PENDING_DB_MAX) {
        db_answer(st, "result", to, from, NULL, "error", "resource-constraint");
        return;
    }
    st->pending_db++;
    st->ops->db_verify_request(st->ctx, to, from, st->stream_id, key);
}

void s2s_stream_db_result(s2s_stream *st, const char *local, const char *remote, bool valid)
{
    if (st->state == ST_CLOSED)
        return;
    if (st->pending_db)
        st->pending_db--;
    db_answer(st, "result", local, remote, NULL, valid ? "valid" : "invalid", NULL);
    if (valid)
        add_pair(st, local, remote, "dialback");
}

/* db:verify on an incoming stream (XEP-0220 §2.1.3): we are the authoritative server. */
static void incoming_db_verify(s2s_stream *st, const xml_node *el, xml_arena *arena)
{
    const char *from = xml_attr_get(el, "from"), *to = xml_attr_get(el, "to");
    const char *id = xml_attr_get(el, "id"), *key = xml_text(arena, el);
    if (!valid_domain(from) || !valid_domain(to) || !id || !*id || strlen(id) > STREAM_ID_MAX ||
        !key || strlen(key) > KEY_MAX || xml_attr_get(el, "type")) {
        fail(st, "improper-addressing", "db:verify without a valid from, to, id and key");
        return;
    }
    if (!st->ops->is_local(st->ctx, to)) {
        db_answer(st, "verify", to, from, id, "error", "item-not-found");
        return;
    }
    bool ok = dialback_key_check(st->cfg->secret, from, to, id, key);
    db_answer(st, "verify", to, from, id, ok ? "valid" : "invalid", NULL);
}

static bool is_stanza(const xml_node *el)
{
    return streq(el->ns, S2S_NS_SERVER) &&
           (streq(el->name, "message") || streq(el->name, "presence") || streq(el->name, "iq"));
}

/* RFC 6120 §8.1.1.1, §4.9.3.9: a stanza from and to a pair authenticated on this stream. */
static void incoming_stanza(s2s_stream *st, xml_node *el, xml_arena *arena)
{
    char from[S2S_DOMAIN_MAX + 1], to[S2S_DOMAIN_MAX + 1];
    if (!st->npairs) {
        fail(st, "not-authorized", "a stanza before authentication");
    } else if (!jid_domain_of(xml_attr_get(el, "from"), from, sizeof from) ||
               !jid_domain_of(xml_attr_get(el, "to"), to, sizeof to)) {
        fail(st, "improper-addressing", "a stanza without a valid from and to");
    } else if (!has_pair(st, to, from)) {
        bool from_known = false;
        for (unsigned i = 0; i < st->npairs; i++)
            from_known |= strcasecmp(st->pairs[i].remote, from) == 0;
        fail(st, from_known ? "host-unknown" : "invalid-from",
             from_known ? "the stanza is to a domain not authenticated on this stream"
                        : "the stanza is from a domain not authenticated on this stream");
    } else {
        st->ops->stanza(st->ctx, el, arena);
        return;
    }
    xml_arena_free(arena);
}

/* XEP-0288 §2: the initiating server asks, before authenticating, to be sent stanzas on this
 * stream too (as it was offered: after TLS where TLS is required). */
static void incoming_bidi(s2s_stream *st)
{
    s2s_policy p;
    policy_of(st, st->remote ? st->remote : "", &p);
    if (st->npairs || (p.require_tls && !st->tls)) {
        fail(st, "policy-violation", "bidi asked after authentication or before TLS");
        return;
    }
    st->bidi = true;
}

static void incoming_element(s2s_stream *st, xml_node *el, xml_arena *arena)
{
    if (xml_is(el, NS_TLS, "starttls")) {
        incoming_starttls(st);
    } else if (xml_is(el, NS_SASL, "auth")) {
        incoming_auth(st, el, arena);
    } else if (xml_is(el, S2S_NS_DIALBACK, "result")) {
        incoming_db_result(st, el, arena);
    } else if (xml_is(el, S2S_NS_DIALBACK, "verify")) {
        incoming_db_verify(st, el, arena);
    } else if (xml_is(el, NS_BIDI, "bidi")) {
        incoming_bidi(st);
    } else if (is_stanza(el)) {
        s2s_policy p;
        policy_of(st, st->remote ? st->remote : "", &p);
        if (!p.require_tls || st->tls) {
            incoming_stanza(st, el, arena);
            return;
        }
        fail(st, "policy-violation", "TLS is required");
    } else {
        fail(st, "unsupported-stanza-type", "not a stanza this stream carries");
    }
    xml_arena_free(arena);
}

/* ---- outgoing -------------------------------------------------------------------------------- */

static void tell_ready(s2s_stream *st)
{
    if (!st->ready_told && st->state != ST_CLOSED) {
        st->ready_told = true;
        if (st->ops->ready)
            st->ops->ready(st->ctx);
    }
}

static void outgoing_authed(s2s_stream *st, const char *how)
{
    st->authed = true;
    st->state = ST_OPEN;
    if (st->ops->authed)
        st->ops->authed(st->ctx, st->local, st->remote, how);
}

static void send_db_result(s2s_stream *st)
{
    char key[DIALBACK_KEY_LEN + 1];
    dialback_key(st->cfg->secret, st->remote, st->local, st->stream_id, key);
    buf_appendf(&st->out, "<db:result");
    attr(&st->out, "from", st->local);
    attr(&st->out, "to", st->remote);
    buf_appendf(&st->out, ">%s</db:result>", key);
    st->state = ST_DIALBACK;
}

static bool offers_mechanism(const xml_node *features, const char *name, xml_arena *arena)
{
    xml_node *m = xml_child(features, NS_SASL, "mechanisms");
    for (xml_node *c = m ? xml_child(m, NS_SASL, "mechanism") : NULL; c;
         c = xml_next(c, NS_SASL, "mechanism")) {
        const char *t = xml_text(arena, c);
        if (t && strcmp(t, name) == 0)
            return true;
    }
    return false;
}

static void outgoing_features(s2s_stream *st, const xml_node *f, xml_arena *arena)
{
    s2s_policy p;
    policy_of(st, st->remote, &p);
    if (st->sasl_ok) {   /* the stream restarted after SASL: ready for stanzas */
        if (!st->authed)
            outgoing_authed(st, "sasl");
        tell_ready(st);
        return;
    }
    if (!st->tls) {
        if (xml_child(f, NS_TLS, "starttls")) {
            buf_appendf(&st->out, "<starttls xmlns='%s'/>", NS_TLS);
            st->state = ST_TLS_ASKED;
            return;
        }
        if (p.require_tls) {
            fail(st, "policy-violation", "TLS is required and the server does not offer it");
            return;
        }
    }
    /* RFC 6120 §13.7.2.1: where the policy wants it, the receiving server proves its domain by
     * its certificate before we authenticate to it at all. */
    if (p.require_valid_cert && !cert_valid(st, st->remote)) {
        fail(st, "policy-violation", "the server's certificate is not valid for its domain");
        return;
    }
    /* XEP-0288: where offered, the receiving server may send us its stanzas on this stream. */
    if (xml_child(f, NS_BIDI_FEATURE, "bidi") && !st->bidi) {
        buf_appendf(&st->out, "<bidi xmlns='%s'/>", NS_BIDI);
        st->bidi = true;
    }
    st->state = ST_OPEN;
    tell_ready(st);
    if (st->state == ST_CLOSED)
        return;
    if (st->tls && offers_mechanism(f, "EXTERNAL", arena) && !st->sasl_tried) {
        st->sasl_tried = true;
        buf_appendf(&st->out, "<auth xmlns='%s' mechanism='EXTERNAL'>", NS_SASL);
        base64_append(&st->out, st->local, strlen(st->local));
        buf_append(&st->out, "</auth>", 7);
        st->state = ST_SASL;
        return;
    }
    if (!p.allow_dialback) {
        fail(st, "policy-violation", "no authentication method left (dialback not allowed)");
        return;
    }
    send_db_result(st);
}

/* XEP-0288 §3: on a bidirectional outgoing stream the receiving server sends as its domain to
 * ours; it is authenticated as we found it (DNS, and its certificate where the policy wants one,
 * checked before we authenticated). */
static void outgoing_bidi_stanza(s2s_stream *st, xml_node *el, xml_arena *arena)
{
    char from[S2S_DOMAIN_MAX + 1], to[S2S_DOMAIN_MAX + 1];
    if (!jid_domain_of(xml_attr_get(el, "from"), from, sizeof from) ||
        !jid_domain_of(xml_attr_get(el, "to"), to, sizeof to))
        fail(st, "improper-addressing", "a stanza without a valid from and to");
    else if (strcasecmp(from, st->remote) != 0)
        fail(st, "invalid-from", "the stanza is not from the domain this stream reached");
    else if (strcasecmp(to, st->local) != 0)
        fail(st, "host-unknown", "the stanza is to another domain than this stream's");
    else {
        st->ops->stanza(st->ctx, el, arena);
        return;
    }
    xml_arena_free(arena);
}

static void outgoing_element(s2s_stream *st, xml_node *el, xml_arena *arena)
{
    if (xml_is(el, XML_NS_STREAMS, "features") && st->state == ST_FEATURES) {
        outgoing_features(st, el, arena);
    } else if (xml_is(el, NS_TLS, "proceed") && st->state == ST_TLS_ASKED) {
        st->state = ST_TLS;
        st->stop_tls = true;
        xmlstream_stop(st->xs);
    } else if (xml_is(el, NS_TLS, "failure") && st->state == ST_TLS_ASKED) {
        fail(st, "undefined-condition", "the server refused STARTTLS");
    } else if (xml_is(el, NS_SASL, "success") && st->state == ST_SASL) {
        st->sasl_ok = true;
        st->state = ST_HEADER;     /* RFC 6120 §6.4.6: a new stream */
        st->restart = true;
        xmlstream_stop(st->xs);
    } else if (xml_is(el, NS_SASL, "failure") && st->state == ST_SASL) {
        /* XEP-0178 §4: fall back to dialback where allowed. */
        s2s_policy p;
        policy_of(st, st->remote, &p);
        if (p.allow_dialback && !p.require_valid_cert)
            send_db_result(st);
        else
            fail(st, "not-authorized", "SASL EXTERNAL failed and dialback is not allowed");
    } else if (xml_is(el, S2S_NS_DIALBACK, "result") && st->state == ST_DIALBACK) {
        const char *type = xml_attr_get(el, "type");
        const char *from = xml_attr_get(el, "from"), *to = xml_attr_get(el, "to");
        if (!from || !to || strcasecmp(from, st->remote) || strcasecmp(to, st->local)) {
            fail(st, "improper-addressing", "a db:result for another pair");
        } else if (type && strcmp(type, "valid") == 0) {
            outgoing_authed(st, "dialback");
            tell_ready(st);
        } else {
            fail(st, "not-authorized", "dialback refused by the receiving server");
        }
    } else if (xml_is(el, S2S_NS_DIALBACK, "verify")) {
        const char *type = xml_attr_get(el, "type"), *id = xml_attr_get(el, "id");
        const char *from = xml_attr_get(el, "from"), *to = xml_attr_get(el, "to");
        if (!type || !id || !valid_domain(from) || !valid_domain(to)) {
            fail(st, "improper-addressing", "a db:verify answer without type, id, from or to");
        } else if (st->ops->db_verify_answer) {
            st->ops->db_verify_answer(st->ctx, to, from, id, strcmp(type, "valid") == 0);
        }
    } else if (is_stanza(el) && st->bidi && st->authed) {
        outgoing_bidi_stanza(st, el, arena);
        return;
    } else if (is_stanza(el)) {
        fail(st, "unsupported-stanza-type", "stanzas on our outgoing stream before it is "
             "authenticated, or without bidi");
    } else {
        fail(st, "unsupported-stanza-type", "unexpected element on an outgoing stream");
    }
    xml_arena_free(arena);
}

/* ---- the parser's callbacks ------------------------------------------------------------------ */

static void on_stanza(void *ctx, xml_node *el, xml_arena *arena)
{
    s2s_stream *st = ctx;
    if (st->state == ST_CLOSED) {
        xml_arena_free(arena);
        return;
    }
    if (xml_is(el, XML_NS_STREAMS, "error")) {
        const char *cond = "";
        for (xml_node *c = el->children; c; c = c->next)
            if (c->kind == XML_ELEMENT && streq(c->ns, XML_NS_STREAM_ERRORS) &&
                !streq(c->name, "text"))
                cond = c->name;
        snprintf(st->why, sizeof st->why, "received <%.60s/>", cond);
        xml_arena_free(arena);
        s2s_stream_close(st, NULL, NULL);
        return;
    }
    if (st->dir == S2S_OUTGOING)
        outgoing_element(st, el, arena);
    else
        incoming_element(st, el, arena);
}

static void on_close(void *ctx)
{
    s2s_stream *st = ctx;
    set_why(st, "the peer closed its stream");
    s2s_stream_close(st, NULL, NULL);
}

static const xmlstream_handlers handlers = {on_header, on_stanza, on_close};

/* ---- the API --------------------------------------------------------------------------------- */

s2s_stream *s2s_stream_new(s2s_direction dir, const char *local, const char *remote,
                           const s2s_stream_config *cfg, const s2s_stream_ops *ops, void *ctx)
{
    s2s_stream *st = mem_zalloc(sizeof *st);
    st->dir = dir;
    st->cfg = cfg;
    st->ops = ops;
    st->ctx = ctx;
    st->xs = xmlstream_new(&handlers, st, &cfg->limits);
    buf_init(&st->out);
    st->state = ST_HEADER;
    if (dir == S2S_OUTGOING) {
        st->local = mem_strdup(local);
        st->remote = mem_strdup(remote);
        write_header(st, local, remote, NULL);
    }
    return st;
}

void s2s_stream_free(s2s_stream *st)
{
    if (!st)
        return;
    xmlstream_free(st->xs);
    buf_free(&st->out);
    for (unsigned i = 0; i < st->npairs; i++) {
        free(st->pairs[i].local);
        free(st->pairs[i].remote);
    }
    free(st->local);
    free(st->remote);
    free(st);
}

s2s_stream_status s2s_stream_feed(s2s_stream *st, const void *data, size_t len)
{
    const char *p = data;
    while (st->state != ST_CLOSED && st->state != ST_TLS) {
        size_t used = 0;
        xmlstream_status rc = xmlstream_feed(st->xs, p, len, &used);
        if (rc == XMLSTREAM_FAILED) {
            const xmlstream_error *e = xmlstream_get_error(st->xs);
            fail(st, xmlstream_condition_name(e->condition), e->text);
            break;
        }
        if (rc == XMLSTREAM_OK || rc == XMLSTREAM_CLOSED)
            break;
        /* STOPPED: a restart (after SASL), STARTTLS, or the stream's end. */
        p += used;
        len -= used;
        if (st->state == ST_CLOSED || st->state == ST_TLS)
            break;
        if (st->restart) {
            st->restart = false;
            st->header_out = false;
            xmlstream_reset(st->xs);
            if (st->dir == S2S_OUTGOING)
                write_header(st, st->local, st->remote, NULL);
        }
    }
    if (st->state == ST_CLOSED)
        return S2S_STREAM_CLOSED;
    if (st->state == ST_TLS && st->stop_tls) {
        st->stop_tls = false;
        return S2S_STREAM_TLS;
    }
    return S2S_STREAM_OK;
}

s2s_stream_status s2s_stream_tls_done(s2s_stream *st, bool ok)
{
    if (st->state != ST_TLS)
        return st->state == ST_CLOSED ? S2S_STREAM_CLOSED : S2S_STREAM_OK;
    if (!ok) {
        set_why(st, "TLS handshake failed");
        st->state = ST_CLOSED;
        return S2S_STREAM_CLOSED;
    }
    st->tls = true;
    st->header_out = false;
    xmlstream_reset(st->xs);
    st->state = ST_HEADER;
    if (st->dir == S2S_OUTGOING)
        write_header(st, st->local, st->remote, NULL);
    return S2S_STREAM_OK;
}

void s2s_stream_direct_tls(s2s_stream *st) { st->tls = true; }

buf *s2s_stream_out(s2s_stream *st) { return &st->out; }

bool s2s_stream_send(s2s_stream *st, const xml_node *stanza, size_t max_bytes)
{
    if (st->state == ST_CLOSED)
        return true;
    return xml_write_node_max(&st->out, stanza, S2S_NS_SERVER, true, max_bytes);
}

void s2s_stream_db_verify(s2s_stream *st, const char *local, const char *remote, const char *id,
                          const char *key)
{
    if (st->state == ST_CLOSED)
        return;
    buf_appendf(&st->out, "<db:verify");
    attr(&st->out, "from", local);
    attr(&st->out, "to", remote);
    attr(&st->out, "id", id);
    buf_append(&st->out, ">", 1);
    xml_write_text(&st->out, key, strlen(key));
    buf_append(&st->out, "</db:verify>", 12);
}

void s2s_stream_keepalive(s2s_stream *st)
{
    if (st->state != ST_CLOSED && st->state != ST_TLS)
        buf_append(&st->out, " ", 1);
}

bool s2s_stream_closed(const s2s_stream *st) { return st->state == ST_CLOSED; }
bool s2s_stream_is_tls(const s2s_stream *st) { return st->tls; }
bool s2s_stream_bidi(const s2s_stream *st) { return st->bidi; }
bool s2s_stream_authed(const s2s_stream *st) { return st->authed && st->state == ST_OPEN; }
const char *s2s_stream_peer(const s2s_stream *st) { return st->remote ? st->remote : ""; }
const char *s2s_stream_why(const s2s_stream *st) { return st->why; }
