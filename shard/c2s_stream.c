/* shard/c2s_stream.c — the client stream state machine (see c2s_stream.h). */
#include "shard/c2s_stream.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/base64.h"
#include "core/jid.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "shard/sasl.h"
#include "shard/server_caps.h"
#include "shard/smacks.h"

#define NS_CLIENT "jabber:client"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_REGISTER "jabber:iq:register"
#define NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define NS_ROSTERVER "urn:xmpp:features:rosterver"
#define NS_CSI "urn:xmpp:csi:0"

/* Stanzas parsed while an answer is awaited; a client that sends more than this without waiting
 * for its answers is misbehaving (the connection stops reading meanwhile, so only what one read
 * delivered can pile up). */
#define C2S_MAX_PENDING 64

typedef enum { ST_HEADER, ST_OPEN, ST_CLOSED } c2s_state;
typedef enum { W_NONE, W_CREDS, W_VERIFY, W_BIND, W_ENABLE, W_RESUME } c2s_wait;

typedef struct pending_stanza {
    struct pending_stanza *next;
    xml_node *node;
    xml_arena *arena;
} pending_stanza;

struct c2s_stream {
    const c2s_env *env;
    uint64_t sid;
    xmlstream *xs;
    c2s_state state;
    c2s_wait wait;
    bool tls;                  /* the stream runs over TLS */
    bool has_exporter;
    uint8_t exporter[32];
    bool header_sent;          /* our stream header went out (for errors before it) */
    bool authenticated, bound, bind_requested, end_sent;
    bool in_feed;              /* inside xmlstream_feed: a restart must go through xmlstream_stop */
    bool restart;              /* restart the parser once feed returns STOPPED */
    bool starttls;             /* <proceed/> sent: the rest of the input is discarded */
    bool csi_inactive;         /* XEP-0352: the client's last nonza was <inactive/> */
    unsigned actions;          /* accumulated for the current call */
    unsigned auth_failures;          /* wrong passwords */
    unsigned sasl_exchanges_failed;  /* failed exchanges of any kind */
    const char *host;          /* the served host (the config's string): set by the first stream
                                * header and never changed (on_header), so SASL, bind and
                                * registration all act on the one domain */
    char *user;                /* nodeprep'd authentication identity, after SASL */
    jid full;                  /* bound JID */
    sasl_session *sasl;
    const char *mech;          /* the name of sasl's mechanism, or NULL */
    c2s_auth_failure failure;  /* the last failed attempt; its user is failed_user */
    char *failed_user;
    unsigned register_sets;    /* account creations asked for on this connection */
    bool plus_offered;
    bool have_creds;
    smproto_creds creds;
    char *bind_id;             /* id of the bind iq awaiting BOUND */
    char *bind_resource;       /* the prepared resource asked for ("": the SM picks), until BOUND */
    char *presence;            /* the last presence broadcast (from-stamped XML) while available:
                                * re-announced in a resync (docs/smproto.md §5) */
    uint8_t *sm_state;         /* the STATE record the SM last gave the session (opaque to the
                                * front), kept for a resync; sm_state_len bytes */
    size_t sm_state_len;
    pending_stanza *pending, **pending_tail;
    unsigned npending;
    smacks *smacks;            /* XEP-0198, from <enable/> or <resume/> on (NULL before) */
    char *resume_previd;       /* the <resume/> awaiting the SM's answer, and its h */
    uint32_t resume_h;
    buf out;
};

static const front_limits *limits_of(const c2s_env *env)
{
    return env->limits ? env->limits : &env->cfg->limits;
}

static void on_header(void *ctx, const xml_node *root, const char *content_ns);
static void on_stanza(void *ctx, xml_node *stanza, xml_arena *arena);
static void on_close(void *ctx);

/* ---- output ---------------------------------------------------------------------------------- */

static void send_header(c2s_stream *s)
{
    char id[21];
    random_token(id, 20);
    xml_stream_attrs a = {
        .content_ns = NS_CLIENT,
        .from = s->host ? s->host : s->env->cfg->hosts[0],
        .id = id,
        .version = "1.0",
        .lang = "en",
    };
    xml_write_stream_open(&s->out, &a);
    s->header_sent = true;
}

static void smacks_frame(c2s_stream *s, const smacks_msg *m);

/* The session is over for this connection: the SM hears what the client acknowledged last
 * (stream management reports it in batches), then END. */
static void send_end(c2s_stream *s, uint8_t reason)
{
    if (s->bind_requested && !s->end_sent) {
        smacks_msg m;
        if (s->smacks && smacks_ack_unreported(s->smacks, &m))
            smacks_frame(s, &m);
        smproto_put_end(s->env->frames, s->sid, reason, "");
        s->end_sent = true;
    }
}

static void free_pending(c2s_stream *s)
{
    while (s->pending) {
        pending_stanza *p = s->pending;
        s->pending = p->next;
        xml_arena_free(p->arena);
        free(p);
    }
    s->pending_tail = &s->pending;
    s->npending = 0;
}

/* The stream error is written: the stream closes. */
static void stream_closed(c2s_stream *s)
{
    xml_write_stream_close(&s->out);
    send_end(s, SMPROTO_END_GONE);
    s->state = ST_CLOSED;
    s->wait = W_NONE;
    free_pending(s);
    if (s->in_feed)
        xmlstream_stop(s->xs);
    s->actions |= C2S_ACT_CLOSE;
}

static void stream_fail(c2s_stream *s, const char *condition, const char *text)
{
    if (s->state == ST_CLOSED)
        return;
    if (!s->header_sent)
        send_header(s);
    xml_write_stream_error(&s->out, condition, text);
    stream_closed(s);
}

unsigned c2s_stream_error(c2s_stream *s, const char *condition, const char *text)
{
    s->actions = 0;
    stream_fail(s, condition, text);
    return s->actions;
}

/* A stanza went to the client (from the SM, or made here): XEP-0198 counts it, and asks for an
 * acknowledgement when none is pending and <smacks><request_stanzas> are unacknowledged; fewer
 * wait for the connection's tick (c2s_stream_ack_due). An inactive client (XEP-0352) is asked at
 * once: its radio is up for this write, a later <r/> alone would wake it again. Too many
 * unacknowledged close the stream. */
static void count_out(c2s_stream *s, bool from_sm)
{
    if (!s->smacks || s->state == ST_CLOSED)
        return;
    if (!smacks_out(s->smacks, from_sm)) {
        stream_fail(s, "policy-violation", "too many unacknowledged stanzas");
        return;
    }
    if (smacks_want_r(s->smacks, s->csi_inactive ? 1 : s->env->cfg->smacks.request_stanzas))
        smacks_put_r(&s->out);
}

/* Writes el (a tree built here) to the client. */
static void send_node(c2s_stream *s, const xml_node *el)
{
    xml_write_node(&s->out, el, NS_CLIENT, true);
}

/* Writes a stanza made here to the client. */
static void send_stanza(c2s_stream *s, const xml_node *el)
{
    send_node(s, el);
    count_out(s, false);
}

/* An <iq/> result or error for the client, built in a scratch arena. */
static xml_node *reply_iq(xml_arena *a, const xml_node *iq, const char *type)
{
    xml_node *r = xml_element_new(a, NULL, NS_CLIENT, "iq");
    xml_attr_set(a, r, NULL, "type", type);
    const char *id = xml_attr_get(iq, "id");
    if (id)
        xml_attr_set(a, r, NULL, "id", id);
    return r;
}

/* A stanza error for what the client sent (RFC 6120 §8.3): never for an error itself. */
static void stanza_error(c2s_stream *s, const xml_node *stanza, const char *type, const char *cond)
{
    const char *stype = xml_attr_get(stanza, "type");
    if (stype && strcmp(stype, "error") == 0)
        return;
    xml_arena *a = xml_arena_new(512);
    xml_node *r = xml_element_new(a, NULL, NS_CLIENT, stanza->name);
    xml_attr_set(a, r, NULL, "type", "error");
    const char *id = xml_attr_get(stanza, "id");
    if (id)
        xml_attr_set(a, r, NULL, "id", id);
    const char *to = xml_attr_get(stanza, "to");
    if (to && strcmp(cond, "jid-malformed") != 0)
        xml_attr_set(a, r, NULL, "from", to);
    if (s->bound)
        xml_attr_set(a, r, NULL, "to", jid_full(&s->full));
    xml_node *e = xml_element_new(a, r, NS_CLIENT, "error");
    xml_attr_set(a, e, NULL, "type", type);
    xml_element_new(a, e, NS_STANZAS, cond);
    send_stanza(s, r);
    xml_arena_free(a);
}

static void send_features(c2s_stream *s)
{
    const front_config *cfg = s->env->cfg;
    buf *o = &s->out;
    buf_append(o, "<stream:features>", 17);
    if (!s->authenticated) {
        bool offer_tls = !s->tls && s->env->tls_available;
        bool tls_first = offer_tls && cfg->starttls_required;
        if (offer_tls)
            buf_appendf(o, "<starttls xmlns='%s'>%s</starttls>", NS_TLS,
                        tls_first ? "<required/>" : "");
        if (!tls_first) {
            buf_appendf(o, "<mechanisms xmlns='%s'>", NS_SASL);
            s->plus_offered = s->tls && s->has_exporter;
            if (s->plus_offered)
                buf_appendf(o, "<mechanism>%s</mechanism><mechanism>%s</mechanism>",
                            sasl_mech_name(SASL_SCRAM_SHA256_PLUS),
                            sasl_mech_name(SASL_SCRAM_SHA1_PLUS));
            buf_appendf(o, "<mechanism>%s</mechanism><mechanism>%s</mechanism>",
                        sasl_mech_name(SASL_SCRAM_SHA256), sasl_mech_name(SASL_SCRAM_SHA1));
            if (s->tls)
                buf_appendf(o, "<mechanism>%s</mechanism>", sasl_mech_name(SASL_PLAIN));
            buf_append(o, "</mechanisms>", 13);
            if (s->plus_offered)
                buf_appendf(o, "<sasl-channel-binding xmlns='%s'>"
                            "<channel-binding type='tls-exporter'/></sasl-channel-binding>",
                            NS_SASL_CB);
            buf_appendf(o, "<register xmlns='%s'/>", NS_REGISTER_FEATURE);
        }
    } else {
        /* Roster versioning (RFC 6121 §2.6.1) is the SM's, which every front speaks to. */
        buf_appendf(o, "<bind xmlns='%s'/><session xmlns='%s'><optional/></session>"
                    "<ver xmlns='%s'/><sm xmlns='%s'/>", NS_BIND, NS_SESSION, NS_ROSTERVER, NS_SM);
        if (cfg->csi.max_stanzas)
            buf_appendf(o, "<csi xmlns='%s'/>", NS_CSI);
    }
    char ver[SERVER_CAPS_VER_MAX];
    if (s->host && server_caps_ver(s->env->caps, s->host, ver, sizeof ver))
        buf_appendf(o, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/>",
                    CAPS_SERVER_NODE, ver);
    buf_append(o, "</stream:features>", 18);
}

/* ---- the parser's callbacks ------------------------------------------------------------------ */

/* A restart (after SASL success): the new stream starts right after the triggering element. */
static void restart_stream(c2s_stream *s)
{
    s->state = ST_HEADER;
    s->header_sent = false;   /* the new stream gets a header of its own, even before an error */
    free_pending(s);
    if (s->in_feed) {
        xmlstream_stop(s->xs);
        s->restart = true;
    } else {
        xmlstream_reset(s->xs);
    }
}

/* The domain of a connection is fixed by its first stream header: a restart (after STARTTLS or
 * SASL) that names another one is refused, so what was authenticated for one served host can never
 * be bound, read or changed on another (RFC 6120 §4.3.1 asks for the same 'to'; Prosody closes
 * with <not-authorized/> too). */
static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    c2s_stream *s = ctx;
    const char *to = xml_attr_get(root, "to");
    const char *version = xml_attr_get(root, "version");
    const char *host = NULL;
    if (to) {
        jid j;
        if (jid_parse(to, strlen(to), &j) == JID_OK && jid_is_bare(&j) && !jid_node(&j, NULL))
            host = front_config_host(s->env->cfg, jid_full(&j));
        jid_free(&j);
        if (!host) {
            stream_fail(s, "host-unknown", "this server does not serve that domain");
            return;
        }
    } else {
        host = s->host ? s->host : s->env->cfg->hosts[0];
    }
    if (s->host && host != s->host) {
        stream_fail(s, "not-authorized", "a restarted stream must be to the same domain");
        return;
    }
    s->host = host;
    if (strcmp(content_ns, NS_CLIENT) != 0) {
        stream_fail(s, "invalid-namespace", "the content namespace must be jabber:client");
        return;
    }
    if (!version || strtol(version, NULL, 10) != 1 || strncmp(version, "1.", 2) != 0) {
        stream_fail(s, "unsupported-version", "only XMPP 1.0 streams are served");
        return;
    }
    send_header(s);
    send_features(s);
    s->state = ST_OPEN;
}

/* Failed exchanges of any kind a connection may have, however they failed: a client that cannot
 * bind a channel tries each -PLUS mechanism and is refused before it falls back (RFC 6120 §6.4.5
 * asks for at least two retries). */
#define C2S_MAX_SASL_EXCHANGES 10

/* Remembers how an attempt failed, for c2s_stream_auth_failure(). */
static void note_failure(c2s_stream *s, const char *condition, bool guess)
{
    const char *user = s->sasl ? sasl_authcid(s->sasl) : NULL;
    free(s->failed_user);
    s->failed_user = user ? mem_strdup(user) : NULL;
    s->failure = (c2s_auth_failure){
        .mech = s->mech,
        .user = s->failed_user,
        .reason = !guess ? condition : s->have_creds ? "wrong-password" : "unknown-user",
        .guess = guess,
    };
    s->actions |= C2S_ACT_AUTH_FAILED;
}

static void sasl_failed(c2s_stream *s, const char *condition)
{
    /* Only a wrong password (or user) is a guess: it counts toward the connection's and the
     * address's limits. A protocol failure (a channel-binding type we do not offer) does not. */
    bool guess = s->sasl && sasl_password_rejected(s->sasl);
    buf_appendf(&s->out, "<failure xmlns='%s'><%s/></failure>", NS_SASL, condition);
    note_failure(s, condition, guess);
    sasl_free(s->sasl);
    s->sasl = NULL;
    s->mech = NULL;
    s->wait = W_NONE;
    s->have_creds = false;
    if (guess)
        s->auth_failures++;
    if (s->auth_failures >= limits_of(s->env)->auth_failures ||
        ++s->sasl_exchanges_failed >= C2S_MAX_SASL_EXCHANGES)
        stream_fail(s, "policy-violation", "too many failed authentication attempts");
}

/* Acts on what the mechanism said. */
static void sasl_result_apply(c2s_stream *s, sasl_result r, buf *data, sasl_failure why)
{
    switch (r) {
    case SASL_CHALLENGE:
        buf_appendf(&s->out, "<challenge xmlns='%s'>", NS_SASL);
        base64_append(&s->out, buf_data(data), buf_len(data));
        buf_append(&s->out, "</challenge>", 12);
        break;
    case SASL_NEED_CREDS: {
        const char *authcid = sasl_authcid(s->sasl);
        jid j;
        if (authcid && jid_make(authcid, strlen(authcid), s->host, strlen(s->host), NULL, 0, &j) == JID_OK) {
            size_t len;
            const char *node = jid_node(&j, &len);
            free(s->user);
            s->user = mem_strndup(node, len);
            const char *authzid = sasl_authzid(s->sasl);
            bool authz_ok = true;
            if (authzid) {
                jid z;
                authz_ok = jid_parse(authzid, strlen(authzid), &z) == JID_OK && jid_is_bare(&z) &&
                           jid_equal_bare(&z, &j);
                jid_free(&z);
            }
            jid_free(&j);
            if (!authz_ok) {
                sasl_failed(s, "invalid-authzid");
                return;
            }
            if (s->env->link_congested && s->env->link_congested(s->env->link_arg)) {
                sasl_failed(s, "temporary-auth-failure");
                return;
            }
            smproto_put_auth_query(s->env->frames, s->sid, s->host, s->user);
            s->wait = W_CREDS;
        } else {
            /* Not a possible username: carry on as for an unknown user, failing at the end. */
            buf tmp = BUF_INIT;
            sasl_failure w;
            sasl_result r2 = sasl_creds(s->sasl, NULL, NULL, &tmp, &w);
            sasl_result_apply(s, r2, &tmp, w);
            buf_free(&tmp);
        }
        break;
    }
    case SASL_NEED_VERIFY:
        s->wait = W_VERIFY;
        s->actions |= C2S_ACT_VERIFY;
        break;
    case SASL_SUCCESS:
        if (!s->user) {   /* cannot happen with a well-behaved mechanism; never authenticate NULL */
            sasl_failed(s, "temporary-auth-failure");
            return;
        }
        buf_appendf(&s->out, "<success xmlns='%s'>", NS_SASL);
        if (buf_len(data))
            base64_append(&s->out, buf_data(data), buf_len(data));
        buf_append(&s->out, "</success>", 10);
        sasl_free(s->sasl);
        s->sasl = NULL;
        s->mech = NULL;
        s->wait = W_NONE;
        s->authenticated = true;
        s->actions |= C2S_ACT_AUTHED;
        restart_stream(s);
        break;
    case SASL_FAILURE:
        sasl_failed(s, sasl_failure_name(why));
        break;
    }
}

static void handle_sasl(c2s_stream *s, xml_node *el, xml_arena *a)
{
    if (s->authenticated) {
        stream_fail(s, "policy-violation", "already authenticated");
        return;
    }
    if (!s->tls && s->env->tls_available && s->env->cfg->starttls_required) {
        stream_fail(s, "policy-violation", "STARTTLS is required before authentication");
        return;
    }
    buf data = BUF_INIT;
    sasl_failure why = SASL_MALFORMED_REQUEST;
    if (strcmp(el->name, "abort") == 0) {
        if (s->sasl)
            sasl_failed(s, "aborted");
        return;
    }
    const char *text = xml_text(a, el);
    uint8_t *in = NULL;
    long inlen = 0;
    bool is_auth = strcmp(el->name, "auth") == 0;
    /* "=" is an empty initial response, which no mechanism here accepts (len 0 would mean "no
     * initial response" to sasl_step). */
    if (is_auth && strcmp(text, "=") == 0) {
        sasl_failed(s, "malformed-request");
        return;
    }
    if (strcmp(text, "=") != 0 && (inlen = base64_decode(text, &in)) < 0) {
        sasl_failed(s, "incorrect-encoding");
        return;
    }
    if (is_auth) {
        if (s->sasl) {
            sasl_free(s->sasl);
            s->sasl = NULL;
            s->mech = NULL;
        }
        const char *name = xml_attr_get(el, "mechanism");
        int mech = name ? sasl_mech_parse(name) : -1;
        bool plus = mech == SASL_SCRAM_SHA1_PLUS || mech == SASL_SCRAM_SHA256_PLUS;
        if (mech < 0 || (plus && !s->plus_offered)) {
            free(in);
            sasl_failed(s, "invalid-mechanism");
            return;
        }
        if (mech == SASL_PLAIN && !s->tls) {
            free(in);
            sasl_failed(s, "encryption-required");
            return;
        }
        s->sasl = sasl_new((sasl_mech)mech, s->has_exporter ? s->exporter : NULL, s->plus_offered);
        s->mech = sasl_mech_name((sasl_mech)mech);
        if (!s->sasl) {
            free(in);
            sasl_failed(s, "invalid-mechanism");
            return;
        }
        free(s->user);
        s->user = NULL;
    } else if (strcmp(el->name, "response") == 0) {
        if (!s->sasl) {
            free(in);
            sasl_failed(s, "malformed-request");
            return;
        }
    } else {
        free(in);
        stream_fail(s, "unsupported-stanza-type", NULL);
        return;
    }
    sasl_result r = sasl_step(s->sasl, in ? in : (const uint8_t *)"", (size_t)inlen, &data, &why);
    free(in);
    sasl_result_apply(s, r, &data, why);
    buf_free(&data);
}

static void handle_starttls(c2s_stream *s, xml_node *el)
{
    if (s->tls || !s->env->tls_available || s->authenticated) {
        buf_appendf(&s->out, "<failure xmlns='%s'/>", NS_TLS);
        stream_fail(s, "policy-violation", "STARTTLS is not available here");
        return;
    }
    buf_appendf(&s->out, "<proceed xmlns='%s'/>", NS_TLS);
    s->starttls = true;
    s->state = ST_HEADER;
    s->actions |= C2S_ACT_STARTTLS;
    xmlstream_stop(s->xs);
}

static bool is_iq_with(const xml_node *el, const char *type, const char *ns, const char *name)
{
    if (!xml_is(el, NS_CLIENT, "iq"))
        return false;
    const char *t = xml_attr_get(el, "type");
    return t && strcmp(t, type) == 0 && xml_child(el, ns, name);
}

static void handle_bind(c2s_stream *s, xml_node *iq, xml_arena *a)
{
    xml_node *bind = xml_child(iq, NS_BIND, "bind");
    xml_node *res = xml_child(bind, NULL, "resource");
    const char *resource = res ? xml_text(a, res) : "";
    jid j;
    if (s->bound || s->bind_requested) {
        stanza_error(s, iq, "cancel", "not-allowed");
        return;
    }
    if (*resource) {
        if (jid_make(s->user, strlen(s->user), s->host, strlen(s->host), resource,
                     strlen(resource), &j) != JID_OK) {
            stanza_error(s, iq, "modify", "bad-request");
            return;
        }
        size_t rlen;
        const char *r = jid_resource(&j, &rlen);
        s->bind_resource = mem_strndup(r, rlen);
        jid_free(&j);
    } else {
        s->bind_resource = mem_strdup("");
    }
    smproto_put_bind(s->env->frames, s->sid, s->host, s->user, s->bind_resource, 0);
    const char *id = xml_attr_get(iq, "id");
    free(s->bind_id);
    s->bind_id = id ? mem_strdup(id) : NULL;
    s->bind_requested = true;
    s->wait = W_BIND;
}

/* Broadcast presence (no 'to') just framed (its XML is xml, len bytes): the last available one is
 * what a resync re-announces; unavailable forgets it. Other types (subscriptions, probes, errors)
 * do not change it. One too large for a RESYNC entry is not kept (a resync then restores the
 * session without presence, as for a client that never sent any). */
static void remember_presence(c2s_stream *s, const xml_node *el, const char *xml, size_t len)
{
    const char *type = xml_attr_get(el, "type");
    if (type && strcmp(type, "unavailable") != 0)
        return;
    free(s->presence);
    s->presence = NULL;
    /* Kept only if its RESYNC entry fits in a frame whatever STATE record the SM gives later. */
    smproto_resync_entry e = {s->sid, jid_full(&s->full), NULL, SMPROTO_STATE_MAX, ""};
    if (!type && smproto_resync_entry_size(&e) + len <= SMPROTO_MAX_PAYLOAD)
        s->presence = mem_strndup(xml, len);
}

/* Frames el for the SM, serialized straight after the frame's header, before the frame's other
 * payload prefix (prefix, prefix_len bytes) and followed by suffix_len bytes of suffix. When the
 * whole does not fit in a frame, nothing is framed, the client gets <policy-violation/> and false
 * is returned: a stanza that grows past a frame is the client's to fix, never a reason to stop
 * (the serializer stops writing at the bound). */
static bool frame_node(c2s_stream *s, smproto_type type, xml_node *el, const char *prefix,
                       size_t prefix_len, size_t suffix_len, size_t *start)
{
    buf *out = s->env->frames;
    *start = smproto_begin(out, type, s->sid);
    if (prefix_len)
        buf_append(out, prefix, prefix_len);
    if (xml_write_node_max(out, el, NULL, false, SMPROTO_MAX_PAYLOAD - prefix_len - suffix_len))
        return true;
    buf_truncate(out, *start);
    stanza_error(s, el, "modify", "policy-violation");
    return false;
}

/* XEP-0352 nonzas, once authenticated (the feature is offered from then on; before the bind
 * the state is only remembered, as Prosody's mod_csi does, since nothing is delivered yet). No
 * reply. Any other element of the namespace is unknown: a stream error, as Prosody answers every
 * element no module handles. */
static void handle_csi(c2s_stream *s, const xml_node *el)
{
    bool active = strcmp(el->name, "active") == 0;
    if (!s->env->cfg->csi.max_stanzas || (!active && strcmp(el->name, "inactive") != 0)) {
        stream_fail(s, "unsupported-stanza-type", NULL);
        return;
    }
    s->csi_inactive = !active;
    s->actions |= active ? C2S_ACT_CSI_ACTIVE : C2S_ACT_CSI_INACTIVE;
}

/* A stanza of a bound session: checked, from-stamped and framed for the SM. Returns whether it
 * was framed (false: answered here). */
static bool route_stanza(c2s_stream *s, xml_node *el, xml_arena *a)
{
    if (!xml_is(el, NS_CLIENT, "message") && !xml_is(el, NS_CLIENT, "presence") &&
        !xml_is(el, NS_CLIENT, "iq")) {
        stream_fail(s, "unsupported-stanza-type", NULL);
        return false;
    }
    s->actions |= C2S_ACT_CLIENT_STANZA;
    if (is_iq_with(el, "set", NS_SESSION, "session")) {
        xml_arena *ra = xml_arena_new(256);
        send_stanza(s, reply_iq(ra, el, "result"));
        xml_arena_free(ra);
        return false;
    }
    if (is_iq_with(el, "set", NS_BIND, "bind")) {
        stanza_error(s, el, "cancel", "not-allowed");
        return false;
    }
    const char *to = xml_attr_get(el, "to");
    if (to) {
        jid j;
        if (jid_parse(to, strlen(to), &j) != JID_OK) {
            stanza_error(s, el, "modify", "jid-malformed");
            return false;
        }
        xml_attr_set(a, el, NULL, "to", jid_full(&j));
        jid_free(&j);
    }
    xml_attr_set(a, el, NULL, "from", jid_full(&s->full));
    if (s->env->link_congested && s->env->link_congested(s->env->link_arg)) {
        stanza_error(s, el, "wait", "remote-server-timeout");
        return false;
    }
    size_t start;
    if (!frame_node(s, SMPROTO_STANZA, el, NULL, 0, 0, &start))
        return false;
    smproto_end(s->env->frames, start);
    if (xml_is(el, NS_CLIENT, "presence") && !to) {
        const char *payload = buf_data(s->env->frames) + start + SMPROTO_HEADER;
        remember_presence(s, el, payload, buf_len(s->env->frames) - start - SMPROTO_HEADER);
    }
    return true;
}

/* ---- XEP-0198 stream management (shard/smacks.h) --------------------------------------------- */

static void smacks_frame_to(c2s_stream *s, buf *out, const smacks_msg *m)
{
    buf body = BUF_INIT;
    smacks_msg_put(&body, m);
    smproto_put_module(out, s->sid, SMACKS_MODULE, buf_data(&body), buf_len(&body));
    buf_free(&body);
}

static void smacks_frame(c2s_stream *s, const smacks_msg *m)
{
    smacks_frame_to(s, s->env->frames, m);
}

static void smacks_enable(c2s_stream *s, const xml_node *el)
{
    if (!s->bound || s->smacks) {
        smacks_put_failed(&s->out, SMACKS_UNEXPECTED_REQUEST, false, 0);
        return;
    }
    const char *resume = xml_attr_get(el, "resume");
    uint32_t max = 0;
    if (!smacks_parse_h(xml_attr_get(el, "max"), &max))
        max = 0;
    s->smacks = smacks_new();
    s->smacks->resume = resume && (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0);
    s->smacks->max = max;
    smacks_msg m = {.kind = SMACKS_ENABLE, .max = max, .resume = s->smacks->resume};
    smacks_frame(s, &m);
    s->wait = W_ENABLE;
}

static void smacks_resume(c2s_stream *s, const xml_node *el)
{
    const char *previd = xml_attr_get(el, "previd");
    uint32_t h;
    if (s->bound || s->bind_requested || s->smacks) {
        smacks_put_failed(&s->out, SMACKS_UNEXPECTED_REQUEST, false, 0);
        return;
    }
    if (!previd || strlen(previd) > SMACKS_ID_MAX || !smacks_parse_h(xml_attr_get(el, "h"), &h)) {
        smacks_put_failed(&s->out, SMACKS_ITEM_NOT_FOUND, false, 0);
        return;
    }
    smacks_msg m = {.kind = SMACKS_RESUME, .host = s->host, .user = s->user, .id = previd,
                    .wire_h = h};
    smacks_frame(s, &m);
    s->bind_requested = true;   /* the SM may give this connection a session: END when it goes */
    s->wait = W_RESUME;
    s->resume_previd = mem_strdup(previd);
    s->resume_h = h;
}

static void smacks_client_a(c2s_stream *s, const xml_node *el)
{
    uint32_t h;
    if (!smacks_parse_h(xml_attr_get(el, "h"), &h)) {
        stream_fail(s, "invalid-xml", "<a/> needs an h attribute");
        return;
    }
    smacks_msg m;
    if (!smacks_client_ack(s->smacks, h, &m)) {
        if (!s->header_sent)
            send_header(s);
        buf_appendf(&s->out, "<stream:error><undefined-condition "
                             "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
        smacks_put_too_high(&s->out, h, s->smacks->out_count);
        buf_append(&s->out, "</stream:error>", 15);
        stream_closed(s);
        return;
    }
    if (m.kind)
        smacks_frame(s, &m);
}

/* A nonza of urn:xmpp:sm:3 on an authenticated stream. */
static void handle_smacks(c2s_stream *s, const xml_node *el)
{
    if (strcmp(el->name, "enable") == 0) {
        smacks_enable(s, el);
    } else if (strcmp(el->name, "resume") == 0) {
        smacks_resume(s, el);
    } else if (!s->smacks || (strcmp(el->name, "r") != 0 && strcmp(el->name, "a") != 0)) {
        stream_fail(s, "unsupported-stanza-type", "stream management is not enabled");
    } else if (strcmp(el->name, "r") == 0) {
        smacks_msg m = {.kind = SMACKS_R, .in_count = s->smacks->in_count,
                        .in_local = s->smacks->in_local};
        smacks_frame(s, &m);
    } else {
        smacks_client_a(s, el);
    }
}

/* The SM's answer to <resume/>: this connection has the session now. */
static void smacks_on_resumed(c2s_stream *s, const smacks_msg *m)
{
    jid j;
    size_t nlen, dlen;
    const char *node, *domain;
    if (jid_parse(m->jid, strlen(m->jid), &j) != JID_OK || jid_is_bare(&j) ||
        !(node = jid_node(&j, &nlen)) || strlen(s->user) != nlen ||
        memcmp(node, s->user, nlen) != 0 || !(domain = jid_domain(&j, &dlen)) ||
        strlen(s->host) != dlen || memcmp(domain, s->host, dlen) != 0) {
        jid_free(&j);
        stream_fail(s, "internal-server-error", NULL);
        return;
    }
    jid_copy(&s->full, &j);
    jid_free(&j);
    s->bound = true;
    s->smacks = smacks_new();
    smacks_resumed(s->smacks, m->h, m->client_h, m->sm_acked);
    free(s->presence);
    s->presence = *m->presence ? mem_strdup(m->presence) : NULL;
    smacks_put_resumed(&s->out, m->h, m->id);
}

/* A MODULE frame for this stream: the SM's stream management answers. */
static void on_module(c2s_stream *s, const smproto_frame *f)
{
    const char *name;
    size_t nlen, len;
    const uint8_t *body;
    smacks_msg m;
    if (!smproto_get_module(f, &name, &nlen, &body, &len) || nlen != strlen(SMACKS_MODULE) ||
        memcmp(name, SMACKS_MODULE, nlen) != 0)
        return;
    if (!len)   /* the SM has no stream management */
        m = (smacks_msg){.kind = SMACKS_FAILED, .condition = SMACKS_FEATURE_NOT_IMPLEMENTED};
    else if (!smacks_msg_get(body, len, &m))
        return;
    switch (m.kind) {
    case SMACKS_ENABLED:
        if (s->wait != W_ENABLE)
            return;
        s->smacks->kept_from_now = true;
        smacks_put_enabled(&s->out, m.id, m.max);
        break;
    case SMACKS_FAILED:
        if (s->wait == W_ENABLE) {
            smacks_free(s->smacks);
            s->smacks = NULL;
        } else if (s->wait == W_RESUME) {
            s->bind_requested = false;
            free(s->resume_previd);
            s->resume_previd = NULL;
        } else {
            return;
        }
        smacks_put_failed(&s->out, m.condition, m.has_h, m.wire_h);
        break;
    case SMACKS_A:
        if (s->smacks)
            smacks_put_a(&s->out, m.h);
        return;
    case SMACKS_RESUMED:
        if (s->wait != W_RESUME)
            return;
        free(s->resume_previd);
        s->resume_previd = NULL;
        smacks_on_resumed(s, &m);
        break;
    default:
        return;
    }
    s->wait = W_NONE;
}

/* An account creation goes to the SM only if the connection layer allows it (the limits on
 * register_per_conn and register_burst); a refusal is answered here. Other requests (the form,
 * type get) always go. */
static bool register_admitted(c2s_stream *s, const xml_node *iq)
{
    if (!is_iq_with(iq, "set", NS_REGISTER, "query") || !s->env->register_verdict)
        return true;
    switch (s->env->register_verdict(s->env->limits_arg, s->sid, ++s->register_sets)) {
    case C2S_REGISTER_RATE:
        stanza_error(s, iq, "wait", "resource-constraint");
        return false;
    case C2S_REGISTER_CAP:
        stanza_error(s, iq, "cancel", "not-allowed");
        return false;
    default:
        return true;
    }
}

/* XEP-0077 before authentication: the SM answers with a STANZA frame for this session. */
static void forward_register(c2s_stream *s, xml_node *iq)
{
    if (!register_admitted(s, iq))
        return;
    xml_attr_remove(iq, NULL, "from");
    /* The frame carries the host and the iq, each with its NUL (as smproto_put_register). */
    size_t start;
    if (!frame_node(s, SMPROTO_REGISTER, iq, s->host, strlen(s->host) + 1, 1, &start))
        return;
    buf_append(s->env->frames, "", 1);
    smproto_end(s->env->frames, start);
}

static void process_stanza(c2s_stream *s, xml_node *el, xml_arena *a)
{
    if (xml_is(el, NS_TLS, "starttls")) {
        handle_starttls(s, el);
    } else if (el->ns && strcmp(el->ns, NS_SASL) == 0) {
        handle_sasl(s, el, a);
    } else if (!s->authenticated) {
        bool tls_ok = s->tls || !s->env->tls_available || !s->env->cfg->starttls_required;
        if (tls_ok && (is_iq_with(el, "get", NS_REGISTER, "query") ||
                       is_iq_with(el, "set", NS_REGISTER, "query")))
            forward_register(s, el);
        else
            stream_fail(s, "not-authorized", "authenticate first");
    } else if (el->ns && strcmp(el->ns, NS_SM) == 0) {
        handle_smacks(s, el);
    } else if (el->ns && strcmp(el->ns, NS_CSI) == 0) {
        handle_csi(s, el);
    } else if (!s->bound) {
        if (is_iq_with(el, "set", NS_BIND, "bind"))
            handle_bind(s, el, a);
        else
            stream_fail(s, "not-authorized", "bind a resource first");
    } else {
        bool framed = route_stanza(s, el, a);
        if (s->smacks)
            smacks_in(s->smacks, !framed);
    }
}

static void on_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    c2s_stream *s = ctx;
    if (s->state != ST_OPEN) {
        xml_arena_free(arena);
        return;
    }
    if (s->wait != W_NONE) {
        if (s->npending >= C2S_MAX_PENDING) {
            xml_arena_free(arena);
            stream_fail(s, "policy-violation", "too many stanzas sent without waiting");
            return;
        }
        pending_stanza *p = mem_alloc(sizeof *p);
        p->next = NULL;
        p->node = stanza;
        p->arena = arena;
        *s->pending_tail = p;
        s->pending_tail = &p->next;
        s->npending++;
        return;
    }
    process_stanza(s, stanza, arena);
    xml_arena_free(arena);
}

static void on_close(void *ctx)
{
    c2s_stream *s = ctx;
    if (s->state == ST_CLOSED)
        return;
    xml_write_stream_close(&s->out);
    if (s->smacks && s->bind_requested && !s->end_sent) {
        smacks_msg m = {.kind = SMACKS_CLOSE};   /* a goodbye: no hibernation */
        smacks_frame(s, &m);
    }
    send_end(s, SMPROTO_END_GONE);
    s->state = ST_CLOSED;
    s->actions |= C2S_ACT_CLOSE;
}

/* After an answer: the stanzas that arrived meanwhile, in order, until the next wait. */
static void run_pending(c2s_stream *s)
{
    while (s->pending && s->wait == W_NONE && s->state == ST_OPEN) {
        pending_stanza *p = s->pending;
        s->pending = p->next;
        if (!s->pending)
            s->pending_tail = &s->pending;
        s->npending--;
        process_stanza(s, p->node, p->arena);
        xml_arena_free(p->arena);
        free(p);
    }
}

/* ---- public ---------------------------------------------------------------------------------- */

c2s_stream *c2s_stream_new(const c2s_env *env, uint64_t sid, bool direct_tls,
                           const uint8_t *exporter)
{
    c2s_stream *s = mem_zalloc(sizeof *s);
    s->env = env;
    s->sid = sid;
    s->tls = direct_tls;
    if (exporter) {
        memcpy(s->exporter, exporter, 32);
        s->has_exporter = true;
    }
    xmlstream_limits limits;
    xmlstream_limits_default(&limits);
    limits.max_stanza_bytes = limits_of(env)->stanza_size;
    limits.max_attr_bytes = limits.max_text_bytes = limits.max_stanza_bytes;
    xmlstream_handlers h = {.header = on_header, .stanza = on_stanza, .close = on_close};
    s->xs = xmlstream_new(&h, s, &limits);
    s->pending_tail = &s->pending;
    return s;
}

void c2s_stream_free(c2s_stream *s)
{
    if (!s)
        return;
    free_pending(s);
    xmlstream_free(s->xs);
    sasl_free(s->sasl);
    free(s->user);
    free(s->bind_id);
    free(s->bind_resource);
    free(s->presence);
    free(s->sm_state);
    free(s->failed_user);
    smacks_free(s->smacks);
    free(s->resume_previd);
    jid_free(&s->full);
    OPENSSL_cleanse(&s->creds, sizeof s->creds);
    buf_free(&s->out);
    free(s);
}

unsigned c2s_stream_feed(c2s_stream *s, const void *data, size_t len)
{
    s->actions = 0;
    const char *p = data;
    while (len && s->state != ST_CLOSED && !s->starttls) {
        size_t used = 0;
        s->in_feed = true;
        xmlstream_status st = xmlstream_feed(s->xs, p, len, &used);
        s->in_feed = false;
        p += used;
        len -= used;
        if (st == XMLSTREAM_OK)
            break;
        if (st == XMLSTREAM_STOPPED) {
            if (s->restart) {
                s->restart = false;
                xmlstream_reset(s->xs);
                continue;
            }
            break;   /* STARTTLS (the rest is discarded) or a stream error */
        }
        if (st == XMLSTREAM_CLOSED)
            break;
        const xmlstream_error *e = xmlstream_get_error(s->xs);
        stream_fail(s, xmlstream_condition_name(e->condition), e->text);
        break;
    }
    return s->actions;
}

bool c2s_stream_wants_input(const c2s_stream *s)
{
    return s->state != ST_CLOSED && !s->starttls && s->wait == W_NONE;
}

unsigned c2s_stream_tls_started(c2s_stream *s, const uint8_t *exporter)
{
    s->actions = 0;
    s->starttls = false;
    s->tls = true;
    if (exporter) {
        memcpy(s->exporter, exporter, 32);
        s->has_exporter = true;
    }
    s->header_sent = false;
    xmlstream_reset(s->xs);
    return 0;
}

static unsigned on_auth_answer(c2s_stream *s, const smproto_frame *f)
{
    uint8_t status;
    smproto_creds creds;
    if (!smproto_get_auth_answer(f, &status, &creds)) {
        log_warn("smproto: malformed AUTH_ANSWER for session %016llx", (unsigned long long)s->sid);
        status = SMPROTO_AUTH_ERROR;
    }
    buf data = BUF_INIT;
    sasl_failure why = SASL_TEMPORARY_AUTH_FAILURE;
    s->wait = W_NONE;
    if (status == SMPROTO_AUTH_ERROR) {
        sasl_failed(s, "temporary-auth-failure");
    } else {
        s->have_creds = status == SMPROTO_AUTH_OK;
        if (s->have_creds)
            s->creds = creds;
        sasl_result r = s->have_creds ? sasl_creds(s->sasl, &creds.sha1, &creds.sha256, &data, &why)
                                      : sasl_creds(s->sasl, NULL, NULL, &data, &why);
        sasl_result_apply(s, r, &data, why);
    }
    OPENSSL_cleanse(&creds, sizeof creds);
    buf_free(&data);
    return 0;
}

static void on_bound(c2s_stream *s, const smproto_frame *f)
{
    uint8_t status;
    const char *full = NULL;
    xml_arena *a = xml_arena_new(512);
    xml_node *fake = xml_element_new(a, NULL, NS_CLIENT, "iq");
    if (s->bind_id)
        xml_attr_set(a, fake, NULL, "id", s->bind_id);
    s->wait = W_NONE;
    if (!smproto_get_bound(f, &status, &full))
        status = SMPROTO_BOUND_CONSTRAINT;
    jid j = {0};
    if (status == SMPROTO_BOUND_OK && jid_parse(full, strlen(full), &j) != JID_OK)
        status = SMPROTO_BOUND_CONSTRAINT;
    switch (status) {
    case SMPROTO_BOUND_OK: {
        jid_copy(&s->full, &j);
        s->bound = true;
        xml_node *r = reply_iq(a, fake, "result");
        xml_node *b = xml_element_new(a, r, NS_BIND, "bind");
        xml_node *je = xml_element_new(a, b, NS_BIND, "jid");
        xml_text_new(a, je, jid_full(&s->full), jid_full_len(&s->full));
        send_node(s, r);
        break;
    }
    case SMPROTO_BOUND_CONFLICT:
        s->bind_requested = false;
        stanza_error(s, fake, "cancel", "conflict");
        break;
    case SMPROTO_BOUND_NOT_ALLOWED:
        s->bind_requested = false;
        stanza_error(s, fake, "cancel", "not-allowed");
        break;
    default:
        s->bind_requested = false;
        stanza_error(s, fake, "wait", "resource-constraint");
        break;
    }
    jid_free(&j);
    xml_arena_free(a);
}

unsigned c2s_stream_frame(c2s_stream *s, const smproto_frame *f)
{
    s->actions = 0;
    if (s->state == ST_CLOSED)
        return 0;
    switch (f->type) {
    case SMPROTO_STANZA:
        if (s->header_sent)
            s->actions |= C2S_ACT_DELIVER;
        return s->actions;
    case SMPROTO_AUTH_ANSWER:
        if (s->wait != W_CREDS || !s->sasl)
            return 0;
        on_auth_answer(s, f);
        break;
    case SMPROTO_BOUND:
        if (s->wait != W_BIND)
            return 0;
        free(s->bind_resource);
        s->bind_resource = NULL;
        on_bound(s, f);
        break;
    case SMPROTO_MODULE:
        on_module(s, f);
        break;
    case SMPROTO_STATE: {
        const uint8_t *state;
        size_t len;
        free(s->sm_state);
        s->sm_state = NULL;
        s->sm_state_len = 0;
        if (smproto_get_state(f, &state, &len) && len) {
            s->sm_state = mem_alloc(len);
            memcpy(s->sm_state, state, len);
            s->sm_state_len = len;
        }
        return 0;
    }
    case SMPROTO_END: {
        uint8_t reason = SMPROTO_END_ERROR;
        const char *text = NULL;
        if (!smproto_get_end(f, &reason, &text))
            reason = SMPROTO_END_ERROR;
        s->end_sent = true;   /* the SM ended it: no END back */
        static const char *const conditions[] = {
            [SMPROTO_END_GONE] = "undefined-condition", [SMPROTO_END_REPLACED] = "conflict",
            [SMPROTO_END_KICKED] = "policy-violation", [SMPROTO_END_SHUTDOWN] = "system-shutdown",
            [SMPROTO_END_ERROR] = "undefined-condition",
        };
        stream_fail(s, reason <= SMPROTO_END_ERROR ? conditions[reason] : "undefined-condition",
                    text && *text ? text : NULL);
        return s->actions;
    }
    default:
        return 0;
    }
    run_pending(s);
    return s->actions;
}

bool c2s_stream_verify_job(c2s_stream *s, char **password, scram_hash *hash,
                           scram_credentials *creds)
{
    if (s->wait != W_VERIFY || !s->sasl)
        return false;
    const char *pw = sasl_plain_password(s->sasl);
    *password = mem_strdup(pw ? pw : "");
    /* SCRAM-SHA-256 credentials when the user has them, else SHA-1's. */
    if (s->have_creds && s->creds.sha256.salt_len) {
        *hash = SCRAM_SHA256;
        *creds = s->creds.sha256;
    } else if (s->have_creds) {
        *hash = SCRAM_SHA1;
        *creds = s->creds.sha1;
    } else {
        /* No such user: the same work against credentials that match nothing. */
        *hash = SCRAM_SHA256;
        memset(creds, 0, sizeof *creds);
        random_bytes(creds->salt, SCRAM_SALT_LEN);
        creds->salt_len = SCRAM_SALT_LEN;
        creds->iterations = SCRAM_ITERATIONS;
        random_bytes(creds->stored_key, sizeof creds->stored_key);
    }
    return true;
}

unsigned c2s_stream_verified(c2s_stream *s, bool ok)
{
    s->actions = 0;
    if (s->wait != W_VERIFY || !s->sasl)
        return 0;
    s->wait = W_NONE;
    buf data = BUF_INIT;
    sasl_failure why = SASL_NOT_AUTHORIZED;
    sasl_result r = sasl_verified(s->sasl, ok && s->have_creds, &data, &why);
    sasl_result_apply(s, r, &data, why);
    buf_free(&data);
    run_pending(s);
    return s->actions;
}

void c2s_stream_gone(c2s_stream *s)
{
    send_end(s, SMPROTO_END_GONE);
    s->state = ST_CLOSED;
}

bool c2s_stream_shrink(c2s_stream *s)
{
    if (s->in_feed || s->state == ST_CLOSED)
        return false;
    /* Only what is empty goes: the caller takes out and frames after every call. */
    if (!buf_len(&s->out))
        buf_free(&s->out);
    return xmlstream_shrink(s->xs);
}

const c2s_auth_failure *c2s_stream_auth_failure(const c2s_stream *s) { return &s->failure; }
buf *c2s_stream_out(c2s_stream *s) { return &s->out; }
bool c2s_stream_authenticated(const c2s_stream *s) { return s->authenticated; }
const char *c2s_stream_jid(const c2s_stream *s) { return s->bound ? jid_full(&s->full) : NULL; }

bool c2s_stream_resync_entry(const c2s_stream *s, smproto_resync_entry *e)
{
    if (!s->bound || s->state == ST_CLOSED)
        return false;
    *e = (smproto_resync_entry){s->sid, jid_full(&s->full), s->sm_state, s->sm_state_len,
                                s->presence ? s->presence : ""};
    /* The presence was kept only if it fit beside a record of any size (remember_presence); the
     * check stays here too, since an entry that does not fit in a frame cannot be sent. */
    if (smproto_resync_entry_size(e) > SMPROTO_MAX_PAYLOAD)
        e->presence = "";
    return true;
}

void c2s_stream_reissue(c2s_stream *s, buf *out)
{
    if (s->state == ST_CLOSED)
        return;
    smacks_msg m;
    if (s->wait == W_CREDS) {
        smproto_put_auth_query(out, s->sid, s->host, s->user);
    } else if (s->wait == W_BIND && s->bind_resource) {
        smproto_put_bind(out, s->sid, s->host, s->user, s->bind_resource, 0);
    } else if (s->wait == W_ENABLE) {
        m = (smacks_msg){.kind = SMACKS_ENABLE, .resume = s->smacks->resume, .max = s->smacks->max};
        smacks_frame_to(s, out, &m);
    } else if (s->wait == W_RESUME && s->resume_previd) {
        m = (smacks_msg){.kind = SMACKS_RESUME, .host = s->host, .user = s->user,
                         .id = s->resume_previd, .wire_h = s->resume_h};
        smacks_frame_to(s, out, &m);
    } else if (s->smacks && s->bound && s->smacks->kept_from_now) {
        /* The SM may be a new one, or have lost what was in flight on the old link. */
        smacks_sync(s->smacks, &m);
        smacks_frame_to(s, out, &m);
    }
}
bool c2s_stream_closed(const c2s_stream *s) { return s->state == ST_CLOSED; }
void c2s_stream_duplicate(c2s_stream *s)
{
    uint64_t seq = s->smacks ? smacks_kept_next(s->smacks) : 0;
    if (seq) {
        smacks_msg m = {.kind = SMACKS_SKIP, .seq = seq};
        smacks_frame(s, &m);
    }
}

unsigned c2s_stream_delivered(c2s_stream *s)
{
    s->actions = 0;
    count_out(s, true);
    return s->actions;
}

bool c2s_stream_ack_due(const c2s_stream *s)
{
    return s->smacks && s->state != ST_CLOSED && smacks_ask_later(s->smacks);
}

void c2s_stream_request_ack(c2s_stream *s)
{
    if (c2s_stream_ack_due(s) && smacks_ask_now(s->smacks))
        smacks_put_r(&s->out);
}

bool c2s_stream_csi_inactive(const c2s_stream *s) { return s->csi_inactive; }
