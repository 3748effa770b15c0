/* tests/unit/test_shard_stream.c — the client stream state machine (shard/c2s_stream.c) driven
 * without sockets: header checks, features, STARTTLS, SASL SCRAM and PLAIN with the SM's
 * credential answer fed in, the restart, binding, from-stamping and stanza checks, and the
 * XEP-0352 feature and nonzas. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/scram.h"
#include "shard/c2s_stream.h"
#include "shard/server_caps.h"
#include "shard/sasl.h"
#include "shard/smacks.h"
#include "smproto/frame.h"
#include "smproto/smacks_msg.h"

#define HOST "example.com"
#define SID 0x0100000500000007ull

static char *test_hosts[] = {HOST, "other.example", NULL};
static front_config test_cfg;
static c2s_env env_tls;       /* TLS available, STARTTLS required */
static buf frames_buf;        /* the frames the streams produce (the IO thread's buffer) */
static bool congested;

static bool fake_congested(void *arg) { return congested; }

/* The connection layer's registration verdicts, in order, and what it was asked. */
static c2s_register_verdict verdicts[8];
static unsigned nverdicts, asked_nth[8], nasked;
static uint64_t asked_sid;

static c2s_register_verdict fake_register_verdict(void *arg, uint64_t sid, unsigned nth)
{
    asked_sid = sid;
    asked_nth[nasked] = nth;
    return nasked < nverdicts ? verdicts[nasked++] : C2S_REGISTER_OK;
}

static int setup(void **state)
{
    memset(&test_cfg, 0, sizeof test_cfg);
    test_cfg.hosts = test_hosts;
    test_cfg.nhosts = 2;
    test_cfg.starttls_required = true;
    test_cfg.limits.stanza_size = 65536;
    test_cfg.limits.auth_failures = 3;
    test_cfg.csi.max_stanzas = 100;
    buf_free(&frames_buf);
    env_tls = (c2s_env){.cfg = &test_cfg, .tls_available = true, .link_congested = fake_congested,
                        .frames = &frames_buf};
    congested = false;
    return 0;
}

/* ---- helpers --------------------------------------------------------------------------------- */

/* Takes the stream's output as a string (caller frees). */
static char *take_out(c2s_stream *s)
{
    buf *o = c2s_stream_out(s);
    char *r = strndup(buf_data(o) ? buf_data(o) : "", buf_len(o));
    buf_consume(o, buf_len(o));
    return r;
}

static void discard_out(c2s_stream *s)
{
    buf_consume(c2s_stream_out(s), buf_len(c2s_stream_out(s)));
}

static unsigned feed(c2s_stream *s, const char *text)
{
    return c2s_stream_feed(s, text, strlen(text));
}

static void expect_out(c2s_stream *s, const char *needle)
{
    char *o = take_out(s);
    if (!strstr(o, needle))
        fail_msg("output lacks %s:\n%s", needle, o);
    free(o);
}

/* Takes exactly one frame of type t from the stream; copies it into fb (for its payload). */
static smproto_frame take_frame(c2s_stream *s, smproto_type t, buf *fb)
{
    buf *frames = &frames_buf;
    smproto_frame f;
    size_t used;
    assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(frames), buf_len(frames), &f, &used),
                     SMPROTO_FRAME_OK);
    assert_int_equal(f.type, t);
    assert_int_equal(f.sid, SID);
    buf_free(fb);
    buf_append(fb, buf_data(frames), used);
    buf_consume(frames, used);
    smproto_frame_next((const uint8_t *)buf_data(fb), buf_len(fb), &f, &used);
    return f;
}

static void expect_no_frame(c2s_stream *s)
{
    assert_int_equal(buf_len(&frames_buf), 0);
}

static const char *header(const char *to)
{
    static char h[512];
    snprintf(h, sizeof h,
             "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", to);
    return h;
}

static char *b64(const void *data, size_t len)
{
    char *o = malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)o, data, (int)len);
    return o;
}

static size_t unb64(const char *text, size_t n, uint8_t *out)
{
    int len = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n);
    assert_true(len >= 0);
    while (n && text[n - 1] == '=') {
        n--;
        len--;
    }
    return (size_t)len;
}

/* The text of <name ...>TEXT</name> in the output. */
static char *element_text(const char *out, const char *name)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s ", name);
    snprintf(close, sizeof close, "</%s>", name);
    const char *p = strstr(out, open);
    if (!p)
        return NULL;
    p = strchr(p, '>') + 1;
    const char *e = strstr(p, close);
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

/* A stream over TLS (direct), optionally with a channel-binding exporter. */
static c2s_stream *open_tls_stream(const uint8_t *exporter)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, true, exporter);
    feed(s, header(HOST));
    return s;
}

static void answer_creds(c2s_stream *s, const char *password, bool exists)
{
    smproto_creds creds;
    memset(&creds, 0, sizeof creds);
    if (exists) {
        static const uint8_t salt[] = "0123456789abcdef";
        assert_int_equal(scram_derive(SCRAM_SHA1, password, salt, 16, 4096, &creds.sha1), 0);
        assert_int_equal(scram_derive(SCRAM_SHA256, password, salt, 16, 4096, &creds.sha256), 0);
    }
    buf fb = BUF_INIT;
    smproto_put_auth_answer(&fb, SID, exists ? SMPROTO_AUTH_OK : SMPROTO_AUTH_NO_USER,
                            exists ? &creds : NULL);
    smproto_frame f;
    size_t used;
    assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used),
                     SMPROTO_FRAME_OK);
    c2s_stream_frame(s, &f);
    buf_free(&fb);
}

/* Runs SCRAM as a client would, with the SM's answer fed in; returns the stream's last output. */
static char *scram_login(c2s_stream *s, scram_hash h, const char *user, const char *password,
                         const char *stored_password)
{
    const char *mech = h == SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
    char first_bare[256], auth[512];
    snprintf(first_bare, sizeof first_bare, "n=%s,r=clientnonce123", user);
    char gs2[300];
    snprintf(gs2, sizeof gs2, "n,,%s", first_bare);
    char *enc = b64(gs2, strlen(gs2));
    snprintf(auth, sizeof auth,
             "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", mech, enc);
    free(enc);
    assert_int_equal(feed(s, auth), 0);
    assert_false(c2s_stream_wants_input(s));
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_AUTH_QUERY, &fb);
    const char *qhost, *quser;
    assert_true(smproto_get_auth_query(&f, &qhost, &quser));
    assert_string_equal(qhost, HOST);
    buf_free(&fb);
    answer_creds(s, stored_password, true);
    assert_true(c2s_stream_wants_input(s));

    char *o = take_out(s);
    char *ch = element_text(o, "challenge");
    assert_non_null(ch);
    uint8_t server_first[512];
    size_t sf_len = unb64(ch, strlen(ch), server_first);
    server_first[sf_len] = 0;
    free(ch);
    free(o);
    /* r=...,s=...,i=... */
    const char *r = strstr((char *)server_first, "r=") + 2;
    const char *sp = strstr((char *)server_first, ",s=") + 3;
    const char *ip = strstr((char *)server_first, ",i=") + 3;
    char nonce[256];
    snprintf(nonce, sizeof nonce, "%.*s", (int)(strchr(r, ',') - r), r);
    uint8_t salt[64];
    size_t salt_len = unb64(sp, (size_t)(strchr(sp, ',') - sp), salt);
    unsigned iters = (unsigned)atoi(ip);

    char final_noproof[300];
    snprintf(final_noproof, sizeof final_noproof, "c=biws,r=%s", nonce);
    char authmsg[2048];
    snprintf(authmsg, sizeof authmsg, "%s,%s,%s", first_bare, (char *)server_first, final_noproof);
    size_t kl = scram_key_len(h);
    uint8_t salted[SCRAM_MAX_KEY], ckey[SCRAM_MAX_KEY], stored[SCRAM_MAX_KEY], sig[SCRAM_MAX_KEY];
    scram_salted_password(h, password, strlen(password), salt, salt_len, iters, salted);
    scram_hmac(h, salted, kl, "Client Key", 10, ckey);
    scram_digest(h, ckey, kl, stored);
    scram_hmac(h, stored, kl, authmsg, strlen(authmsg), sig);
    for (size_t i = 0; i < kl; i++)
        ckey[i] ^= sig[i];
    char *proof = b64(ckey, kl);
    char final[512];
    snprintf(final, sizeof final, "%s,p=%s", final_noproof, proof);
    free(proof);
    enc = b64(final, strlen(final));
    char resp[1024];
    snprintf(resp, sizeof resp, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>",
             enc);
    free(enc);
    unsigned acts = feed(s, resp);
    char *out = take_out(s);
    if (strstr(out, "<success"))
        assert_true(acts & C2S_ACT_AUTHED);
    return out;
}

/* Authenticated, restarted and bound as user@example.com/res. */
/* Authenticated as user, restarted, not bound. */
static c2s_stream *authed_stream(void)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    free(scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil"));
    feed(s, header(HOST));
    expect_out(s, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
                  "<ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='urn:xmpp:sm:3'/>");
    return s;
}

static c2s_stream *bound_stream(void)
{
    c2s_stream *s = authed_stream();
    feed(s, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>res</resource></bind></iq>");
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_BIND, &fb);
    const char *host, *user, *resource;
    uint8_t flags;
    assert_true(smproto_get_bind(&f, &host, &user, &resource, &flags));
    assert_string_equal(host, HOST);
    assert_string_equal(user, "user");
    assert_string_equal(resource, "res");
    buf_free(&fb);
    smproto_put_bound(&fb, SID, SMPROTO_BOUND_OK, "user@example.com/res");
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    c2s_stream_frame(s, &f);
    buf_free(&fb);
    expect_out(s, "<jid>user@example.com/res</jid>");
    assert_string_equal(c2s_stream_jid(s), "user@example.com/res");
    return s;
}

/* ---- header checks --------------------------------------------------------------------------- */

static void test_host_unknown(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    unsigned acts = feed(s, header("nowhere.example"));
    assert_true(acts & C2S_ACT_CLOSE);
    char *o = take_out(s);
    /* Our header goes first, then the error, then the close. */
    assert_non_null(strstr(o, "<stream:stream"));
    assert_non_null(strstr(o, "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    assert_non_null(strstr(o, "</stream:stream>"));
    assert_true(c2s_stream_closed(s));
    assert_false(c2s_stream_wants_input(s));
    free(o);
    c2s_stream_free(s);
}

static void test_second_host_served(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    assert_int_equal(feed(s, header("OTHER.example")), 0);   /* nameprep'd before matching */
    expect_out(s, "from='other.example'");
    c2s_stream_free(s);
}

/* Finding 1 of the security review: authenticated for one served host, a restart to another
 * must not make the session that host's (it was bound as victim@other.example). */
static void test_restart_to_other_host_refused(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    char *o = scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil");
    assert_non_null(strstr(o, "<success"));
    free(o);
    unsigned acts = feed(s, header("other.example"));
    assert_true(acts & C2S_ACT_CLOSE);
    /* A header for the new stream comes first (RFC 6120 §4.9.1.1), then the error. */
    char *out = take_out(s);
    char *error = strstr(out, "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    assert_non_null(error);
    char *hdr = strstr(out, "<stream:stream");
    assert_true(hdr && hdr < error);
    free(out);
    assert_true(c2s_stream_closed(s));
    assert_null(c2s_stream_jid(s));
    expect_no_frame(s);
    c2s_stream_free(s);
}

/* The same before authentication: the domain of the first header is the connection's, whatever
 * the header after STARTTLS says; a restart without 'to' keeps it. */
static void test_restart_keeps_domain(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    feed(s, header(HOST));
    discard_out(s);
    feed(s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    discard_out(s);
    c2s_stream_tls_started(s, NULL);
    unsigned acts = feed(s, header("other.example"));
    assert_true(acts & C2S_ACT_CLOSE);
    expect_out(s, "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    c2s_stream_free(s);

    s = open_tls_stream(NULL);
    discard_out(s);
    free(scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil"));
    assert_int_equal(feed(s, "<stream:stream xmlns='jabber:client' "
                             "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"), 0);
    expect_out(s, "from='" HOST "'");
    feed(s, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_BIND, &fb);
    const char *host, *user, *resource;
    uint8_t flags;
    assert_true(smproto_get_bind(&f, &host, &user, &resource, &flags));
    assert_string_equal(host, HOST);
    buf_free(&fb);
    c2s_stream_free(s);
}

static void test_bad_namespace(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    unsigned acts = feed(s, "<stream:stream xmlns='jabber:server' "
                            "xmlns:stream='http://etherx.jabber.org/streams' to='example.com' "
                            "version='1.0'>");
    assert_true(acts & C2S_ACT_CLOSE);
    expect_out(s, "<invalid-namespace");
    c2s_stream_free(s);

    s = c2s_stream_new(&env_tls, SID, false, NULL);
    acts = feed(s, "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' "
                   "to='example.com' version='1.0'>");
    assert_true(acts & C2S_ACT_CLOSE);
    expect_out(s, "<invalid-namespace");
    c2s_stream_free(s);
}

static void test_bad_version(void **state)
{
    const char *versions[] = {NULL, "0.9", "2.0"};
    for (int i = 0; i < 3; i++) {
        char h[512];
        snprintf(h, sizeof h, "<stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' to='example.com'%s%s%s>",
                 versions[i] ? " version='" : "", versions[i] ? versions[i] : "",
                 versions[i] ? "'" : "");
        c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
        assert_true(feed(s, h) & C2S_ACT_CLOSE);
        expect_out(s, "<unsupported-version");
        c2s_stream_free(s);
    }
}

static void test_not_well_formed_before_header(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    assert_true(feed(s, "<stream:stream xmlns='jabber:client' <<>") & C2S_ACT_CLOSE);
    char *o = take_out(s);
    assert_non_null(strstr(o, "<stream:stream"));   /* a header before the error */
    assert_non_null(strstr(o, "<not-well-formed"));
    free(o);
    c2s_stream_free(s);
}

static void test_restricted_xml(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    feed(s, header(HOST));
    discard_out(s);
    assert_true(feed(s, "<!-- comment -->") & C2S_ACT_CLOSE);
    expect_out(s, "<restricted-xml");
    c2s_stream_free(s);
}

/* ---- features, STARTTLS ---------------------------------------------------------------------- */

static void test_features_plain_port(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    assert_int_equal(feed(s, header(HOST)), 0);
    char *o = take_out(s);
    assert_non_null(strstr(o, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"));
    assert_null(strstr(o, "<mechanisms"));
    free(o);
    c2s_stream_free(s);
}

static void test_features_optional_tls(void **state)
{
    test_cfg.starttls_required = false;
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    feed(s, header(HOST));
    char *o = take_out(s);
    assert_non_null(strstr(o, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>"));
    assert_non_null(strstr(o, "<mechanism>SCRAM-SHA-256</mechanism>"));
    assert_null(strstr(o, "PLAIN"));   /* never without TLS */
    free(o);
    /* PLAIN refused on a plain stream even if the client tries it. */
    feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHUAcA==</auth>");
    expect_out(s, "<encryption-required/>");
    c2s_stream_free(s);
}

/* The server's entity capabilities, as the SM announced them for the stream's host, are in its
 * features (XEP-0115 §6.3); a host the SM announced none for has none; a malformed announcement
 * changes nothing. */
static void test_features_caps(void **state)
{
    server_caps *caps = server_caps_new();
    static const char body[] = HOST "\0QgayPKawpkPSDYmwT/WM94uAlu0=\0other.org\0x=\0";
    assert_true(server_caps_update(caps, (const uint8_t *)body, sizeof body - 1));
    static const char bad[] = HOST "\0not base64!\0";
    assert_false(server_caps_update(caps, (const uint8_t *)bad, sizeof bad - 1));
    c2s_env env = env_tls;
    env.caps = caps;
    c2s_stream *s = c2s_stream_new(&env, SID, false, NULL);
    feed(s, header(HOST));
    char *o = take_out(s);
    assert_non_null(strstr(o, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
                              "node='https://jabshard.org/caps' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>"
                              "</stream:features>"));
    free(o);
    c2s_stream_free(s);
    static const char none[] = "other.org\0x=\0";
    assert_true(server_caps_update(caps, (const uint8_t *)none, sizeof none - 1));
    s = c2s_stream_new(&env, SID, false, NULL);
    feed(s, header(HOST));
    o = take_out(s);
    assert_null(strstr(o, "protocol/caps"));
    free(o);
    c2s_stream_free(s);
    server_caps_free(caps);
}

static void test_sasl_before_starttls(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    feed(s, header(HOST));
    discard_out(s);
    assert_true(feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                        "AHUAcA==</auth>") & C2S_ACT_CLOSE);
    expect_out(s, "<policy-violation");
    expect_no_frame(s);
    c2s_stream_free(s);
}

static void test_starttls(void **state)
{
    c2s_stream *s = c2s_stream_new(&env_tls, SID, false, NULL);
    feed(s, header(HOST));
    discard_out(s);
    /* Bytes after <starttls/> came before TLS: they are never parsed. */
    unsigned acts = feed(s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='get'/>");
    assert_int_equal(acts, C2S_ACT_STARTTLS);
    expect_out(s, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_false(c2s_stream_wants_input(s));
    c2s_stream_tls_started(s, NULL);
    assert_true(c2s_stream_wants_input(s));
    assert_int_equal(feed(s, header(HOST)), 0);
    char *o = take_out(s);
    assert_null(strstr(o, "starttls"));
    assert_non_null(strstr(o, "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
                              "<mechanism>PLAIN</mechanism>"));
    assert_null(strstr(o, "-PLUS"));
    assert_non_null(strstr(o, "<register xmlns='http://jabber.org/features/iq-register'/>"));
    free(o);
    c2s_stream_free(s);
}

static void test_plus_with_exporter(void **state)
{
    uint8_t exporter[32];
    memset(exporter, 7, sizeof exporter);
    c2s_stream *s = open_tls_stream(exporter);
    char *o = take_out(s);
    assert_non_null(strstr(o, "<mechanism>SCRAM-SHA-256-PLUS</mechanism>"
                              "<mechanism>SCRAM-SHA-1-PLUS</mechanism>"));
    assert_non_null(strstr(o, "<channel-binding type='tls-exporter'/>"));
    free(o);
    c2s_stream_free(s);

    /* Without an exporter -PLUS is refused even if asked for. */
    s = open_tls_stream(NULL);
    discard_out(s);
    feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>"
            "cD10bHMtZXhwb3J0ZXIsLG49dSxyPWFiYw==</auth>");
    expect_out(s, "<invalid-mechanism/>");
    expect_no_frame(s);
    c2s_stream_free(s);
}

static void test_stanza_before_auth(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    assert_true(feed(s, "<message to='a@example.com'><body>hi</body></message>") & C2S_ACT_CLOSE);
    expect_out(s, "<not-authorized");
    expect_no_frame(s);
    c2s_stream_free(s);
}

static void test_register_forwarded(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    assert_int_equal(feed(s, "<iq type='get' id='r1' from='evil@x'><query xmlns='jabber:iq:register'/></iq>"), 0);
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_REGISTER, &fb);
    const char *host, *iq;
    assert_true(smproto_get_register(&f, &host, &iq));
    assert_string_equal(host, HOST);
    assert_non_null(strstr(iq, "jabber:iq:register"));
    assert_null(strstr(iq, "evil"));
    buf_free(&fb);
    /* The SM's answer is delivered although the session is not bound. */
    smproto_put(&fb, SMPROTO_STANZA, SID, "<iq type='result' id='r1'/>", 26);
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    assert_true(c2s_stream_frame(s, &f) & C2S_ACT_DELIVER);
    buf_free(&fb);
    c2s_stream_free(s);
}

/* Account creations (type set) go to the SM only with the connection layer's consent; the form
 * (type get) always goes. A refusal is a stanza error built here: <resource-constraint/> (wait)
 * for the address's rate, <not-allowed/> (cancel) for the connection's cap. */
static void test_register_throttled(void **state)
{
    c2s_env env = env_tls;
    env.register_verdict = fake_register_verdict;
    verdicts[0] = C2S_REGISTER_OK;
    verdicts[1] = C2S_REGISTER_RATE;
    verdicts[2] = C2S_REGISTER_CAP;
    nverdicts = 3;
    nasked = 0;
    c2s_stream *s = c2s_stream_new(&env, SID, true, NULL);
    feed(s, header(HOST));
    discard_out(s);
    buf fb = BUF_INIT;
    feed(s, "<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>");
    take_frame(s, SMPROTO_REGISTER, &fb);
    assert_int_equal(nasked, 0);
#define SET "<iq type='set' id='s%d'><query xmlns='jabber:iq:register'>" \
            "<username>u</username><password>p</password></query></iq>"
    char iq[256];
    snprintf(iq, sizeof iq, SET, 1);
    feed(s, iq);
    take_frame(s, SMPROTO_REGISTER, &fb);
    assert_int_equal(asked_sid, SID);
    snprintf(iq, sizeof iq, SET, 2);
    assert_int_equal(feed(s, iq), 0);
    expect_no_frame(s);
    char *o = take_out(s);
    assert_non_null(strstr(o, "id='s2'"));
    assert_non_null(strstr(o, "<error type='wait'><resource-constraint "));
    free(o);
    snprintf(iq, sizeof iq, SET, 3);
    feed(s, iq);
    expect_no_frame(s);
    o = take_out(s);
    assert_non_null(strstr(o, "id='s3'"));
    assert_non_null(strstr(o, "<error type='cancel'><not-allowed "));
    free(o);
    assert_int_equal(nasked, 3);
    assert_int_equal(asked_nth[0], 1);
    assert_int_equal(asked_nth[1], 2);
    assert_int_equal(asked_nth[2], 3);
    assert_false(c2s_stream_closed(s));
#undef SET
    buf_free(&fb);
    c2s_stream_free(s);
}

/* ---- SASL ------------------------------------------------------------------------------------ */

static void test_scram_sha256_success(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    char *o = scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil");
    assert_non_null(strstr(o, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"));
    free(o);
    assert_true(c2s_stream_authenticated(s));
    feed(s, header(HOST));
    o = take_out(s);
    assert_non_null(strstr(o, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
    assert_non_null(strstr(o, "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/>"));
    assert_null(strstr(o, "mechanisms"));
    free(o);
    c2s_stream_free(s);
}

static void test_scram_sha1_success(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    char *o = scram_login(s, SCRAM_SHA1, "user", "pencil", "pencil");
    assert_non_null(strstr(o, "<success"));
    free(o);
    c2s_stream_free(s);
}

static void test_scram_wrong_password(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    char *o = scram_login(s, SCRAM_SHA256, "user", "wrong", "pencil");
    assert_non_null(strstr(o, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"));
    free(o);
    assert_false(c2s_stream_authenticated(s));
    assert_false(c2s_stream_closed(s));
    c2s_stream_free(s);
}

static void test_auth_failures_limit(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    for (int i = 0; i < 3; i++) {
        char *o = scram_login(s, SCRAM_SHA256, "user", "wrong", "pencil");
        assert_non_null(strstr(o, "<not-authorized/>"));
        if (i < 2)
            assert_false(c2s_stream_closed(s));
        else
            assert_non_null(strstr(o, "<policy-violation"));
        free(o);
    }
    assert_true(c2s_stream_closed(s));
    c2s_stream_free(s);
}

static void test_auth_storage_error(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
            "biwsbj11c2VyLHI9YWJjZGVmZ2g=</auth>");
    buf fb = BUF_INIT;
    take_frame(s, SMPROTO_AUTH_QUERY, &fb);
    buf_free(&fb);
    smproto_put_auth_answer(&fb, SID, SMPROTO_AUTH_ERROR, NULL);
    smproto_frame f;
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    c2s_stream_frame(s, &f);
    buf_free(&fb);
    expect_out(s, "<temporary-auth-failure/>");
    assert_true(c2s_stream_wants_input(s));
    c2s_stream_free(s);
}

static void test_bad_base64_and_mechanism(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>!!!</auth>");
    expect_out(s, "<incorrect-encoding/>");
    feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
    expect_out(s, "<invalid-mechanism/>");
    expect_no_frame(s);
    c2s_stream_free(s);
}

static void plain_login(c2s_stream *s, const char *pw_sent, bool exists, const char *pw_stored)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%cuser%c%s", 0, 0, pw_sent);
    char *enc = b64(msg, (size_t)n);
    char auth[256];
    snprintf(auth, sizeof auth,
             "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", enc);
    free(enc);
    feed(s, auth);
    buf fb = BUF_INIT;
    take_frame(s, SMPROTO_AUTH_QUERY, &fb);
    buf_free(&fb);
    answer_creds(s, pw_stored, exists);
}

static void test_plain_success(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    plain_login(s, "pencil", true, "pencil");
    /* The PBKDF2 is the caller's job, off the IO thread. */
    assert_false(c2s_stream_wants_input(s));
    char *pw = NULL;
    scram_hash h;
    scram_credentials cr;
    assert_true(c2s_stream_verify_job(s, &pw, &h, &cr));
    assert_string_equal(pw, "pencil");
    bool ok = sasl_plain_verify(pw, h, &cr);
    free(pw);
    assert_true(ok);
    unsigned acts = c2s_stream_verified(s, ok);
    assert_true(acts & C2S_ACT_AUTHED);
    expect_out(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></success>");
    assert_true(c2s_stream_authenticated(s));
    c2s_stream_free(s);
}

static void test_plain_wrong_and_unknown(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    plain_login(s, "wrong", true, "pencil");
    char *pw = NULL;
    scram_hash h;
    scram_credentials cr;
    if (c2s_stream_verify_job(s, &pw, &h, &cr)) {
        bool ok = sasl_plain_verify(pw, h, &cr);
        free(pw);
        assert_false(ok);
        c2s_stream_verified(s, ok);
    }
    expect_out(s, "<not-authorized/>");
    assert_false(c2s_stream_authenticated(s));
    /* No such user: refused as well, never authenticated. */
    plain_login(s, "pencil", false, "");
    if (c2s_stream_verify_job(s, &pw, &h, &cr)) {
        bool ok = sasl_plain_verify(pw, h, &cr);
        free(pw);
        c2s_stream_verified(s, ok);
    }
    expect_out(s, "<not-authorized/>");
    assert_false(c2s_stream_authenticated(s));
    c2s_stream_free(s);
}

/* What the log and the limits learn of each failure: the mechanism, the user name sent, why;
 * only wrong passwords and unknown users are guesses. */
static void test_auth_failure_reported(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    free(scram_login(s, SCRAM_SHA256, "user", "wrong", "pencil"));
    const c2s_auth_failure *f = c2s_stream_auth_failure(s);
    assert_string_equal(f->mech, "SCRAM-SHA-256");
    assert_string_equal(f->user, "user");
    assert_string_equal(f->reason, "wrong-password");
    assert_true(f->guess);
    plain_login(s, "pencil", false, "");
    char *pw = NULL;
    scram_hash h;
    scram_credentials cr;
    if (c2s_stream_verify_job(s, &pw, &h, &cr)) {
        bool ok = sasl_plain_verify(pw, h, &cr);
        free(pw);
        c2s_stream_verified(s, ok);
    }
    discard_out(s);
    f = c2s_stream_auth_failure(s);
    assert_string_equal(f->mech, "PLAIN");
    assert_string_equal(f->user, "user");
    assert_string_equal(f->reason, "unknown-user");
    assert_true(f->guess);
    unsigned acts = feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-EVIL'/>");
    assert_true(acts & C2S_ACT_AUTH_FAILED);
    f = c2s_stream_auth_failure(s);
    assert_null(f->mech);
    assert_null(f->user);
    assert_string_equal(f->reason, "invalid-mechanism");
    assert_false(f->guess);
    c2s_stream_free(s);
}

static void test_pipelined_while_waiting(void **state)
{
    /* Stanzas that arrive while credentials are awaited are held and handled in order after. */
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    feed(s, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
            "biwsbj11c2VyLHI9YWJjZGVmZ2g=</auth><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    char *o = take_out(s);
    assert_null(strstr(o, "aborted"));
    free(o);
    answer_creds(s, "pencil", true);
    o = take_out(s);
    assert_non_null(strstr(o, "<challenge"));
    assert_non_null(strstr(o, "<aborted/>"));
    assert_true(strstr(o, "<challenge") < strstr(o, "<aborted/>"));
    free(o);
    c2s_stream_free(s);
}

/* ---- binding and stanzas --------------------------------------------------------------------- */

static void test_bind_and_stamp(void **state)
{
    c2s_stream *s = bound_stream();
    /* Legacy session: an empty result, nothing to the SM. */
    feed(s, "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    expect_out(s, "<iq type='result' id='s1'/>");
    expect_no_frame(s);
    /* A spoofed from is replaced, the to normalised. */
    feed(s, "<message from='admin@example.com' to='Friend@Example.COM' id='m1'><body>hi</body></message>");
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_STANZA, &fb);
    char *p = strndup((const char *)f.payload, f.len);
    assert_non_null(strstr(p, "from='user@example.com/res'"));
    assert_non_null(strstr(p, "to='friend@example.com'"));
    assert_non_null(strstr(p, "xmlns='jabber:client'"));
    assert_null(strstr(p, "admin"));
    free(p);
    buf_free(&fb);
    /* A malformed to: jid-malformed back, nothing to the SM. */
    feed(s, "<message to='a@b@c' id='m2'><body>x</body></message>");
    expect_out(s, "<jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
    expect_no_frame(s);
    /* Not a stanza: a stream error. */
    assert_true(feed(s, "<foo xmlns='urn:x'/>") & C2S_ACT_CLOSE);
    expect_out(s, "<unsupported-stanza-type");
    /* The SM learns the session is over. */
    f = take_frame(s, SMPROTO_END, &fb);
    buf_free(&fb);
    c2s_stream_free(s);
}

static void test_congested_link(void **state)
{
    c2s_stream *s = bound_stream();
    congested = true;
    feed(s, "<message to='friend@example.com' id='m1'><body>hi</body></message>");
    expect_out(s, "<remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
    expect_no_frame(s);
    congested = false;
    c2s_stream_free(s);
}

static void test_bind_conflict(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    free(scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil"));
    feed(s, header(HOST));
    discard_out(s);
    /* A stanza before binding is refused. */
    c2s_stream *s2 = open_tls_stream(NULL);
    discard_out(s2);
    free(scram_login(s2, SCRAM_SHA256, "user", "pencil", "pencil"));
    feed(s2, header(HOST));
    discard_out(s2);
    assert_true(feed(s2, "<presence/>") & C2S_ACT_CLOSE);
    expect_out(s2, "<not-authorized");
    c2s_stream_free(s2);

    feed(s, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_BIND, &fb);
    buf_free(&fb);
    smproto_put_bound(&fb, SID, SMPROTO_BOUND_CONFLICT, NULL);
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    c2s_stream_frame(s, &f);
    buf_free(&fb);
    expect_out(s, "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
    assert_null(c2s_stream_jid(s));
    c2s_stream_free(s);
}

static void test_end_from_sm(void **state)
{
    c2s_stream *s = bound_stream();
    buf fb = BUF_INIT;
    smproto_put_end(&fb, SID, SMPROTO_END_REPLACED, "");
    smproto_frame f;
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    assert_true(c2s_stream_frame(s, &f) & C2S_ACT_CLOSE);
    buf_free(&fb);
    expect_out(s, "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    expect_no_frame(s);   /* the SM ended it: no END back */
    c2s_stream_free(s);
}

static void test_client_close_and_gone(void **state)
{
    c2s_stream *s = bound_stream();
    assert_true(feed(s, "</stream:stream>") & C2S_ACT_CLOSE);
    expect_out(s, "</stream:stream>");
    buf fb = BUF_INIT;
    take_frame(s, SMPROTO_END, &fb);
    buf_free(&fb);
    c2s_stream_gone(s);   /* no second END */
    expect_no_frame(s);
    c2s_stream_free(s);

    s = bound_stream();
    c2s_stream_gone(s);
    take_frame(s, SMPROTO_END, &fb);
    buf_free(&fb);
    c2s_stream_free(s);
}

static void test_stanza_limit(void **state)
{
    c2s_stream *s = bound_stream();
    test_cfg.limits.stanza_size = 1024;
    c2s_stream_free(s);
    s = open_tls_stream(NULL);
    discard_out(s);
    char big[4096];
    memset(big, 'a', sizeof big);
    feed(s, "<iq type='get' id='r1'><query xmlns='jabber:iq:register'>");
    assert_true(c2s_stream_feed(s, big, sizeof big) & C2S_ACT_CLOSE);
    expect_out(s, "<policy-violation");
    test_cfg.limits.stanza_size = 65536;
    c2s_stream_free(s);
}

/* An iq whose children all use a namespace bound to a prefix once (the shape of security issue
 * 12's findings 3 and 5): uri_len bytes of URI, children <p:x/>. */
static char *prefixed_iq(const char *type_and_ns, size_t uri_len, int children)
{
    char *xml = malloc(uri_len + (size_t)children * 8 + 512), *p = xml;
    p += sprintf(p, "<iq type='get' id='big'><query xmlns='%s' xmlns:p='urn:", type_and_ns);
    memset(p, 'u', uri_len);
    p += uri_len;
    p += sprintf(p, "'>");
    for (int i = 0; i < children; i++)
        p += sprintf(p, "<p:x/>");
    strcpy(p, "</query></iq>");
    return xml;
}

/* Finding 3: before authentication, a 20 KB registration iq that used to serialize to 2 MB and
 * abort the front is framed at about its own size. */
static void test_register_not_amplified(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    char *xml = prefixed_iq("jabber:iq:register", 20000, 100);
    size_t in = strlen(xml);
    assert_int_equal(feed(s, xml), 0);
    free(xml);
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_REGISTER, &fb);
    assert_true(f.len < 2 * in);
    buf_free(&fb);
    assert_true(c2s_stream_wants_input(s));
    c2s_stream_free(s);
}

/* Finding 5: a bound client's 11 KB iq that became a 1 MB frame (and 150-300 MB of front memory)
 * is framed at about its own size; a stanza larger than a frame can carry gets <policy-violation/>,
 * and the stream goes on. */
static void test_stanza_not_amplified(void **state)
{
    c2s_stream *s = bound_stream();
    char *xml = prefixed_iq("jabber:iq:version", 1000, 1030);
    size_t in = strlen(xml);
    assert_int_equal(feed(s, xml), C2S_ACT_CLIENT_STANZA);
    free(xml);
    buf fb = BUF_INIT;
    smproto_frame f = take_frame(s, SMPROTO_STANZA, &fb);
    assert_true(f.len < 2 * in);
    buf_free(&fb);

    test_cfg.limits.stanza_size = 2 << 20;
    c2s_stream_free(s);
    s = bound_stream();
    size_t body = SMPROTO_MAX_PAYLOAD + 10;
    char *big = malloc(body + 128);
    int n = sprintf(big, "<message to='a@example.com' id='huge'><body>");
    memset(big + n, 'b', body);
    strcpy(big + n + body, "</body></message>");
    assert_int_equal(feed(s, big), C2S_ACT_CLIENT_STANZA);
    free(big);
    expect_no_frame(s);
    expect_out(s, "<policy-violation");
    assert_true(c2s_stream_wants_input(s));
    assert_int_equal(feed(s, "<message to='a@example.com' id='small'><body>hi</body></message>"),
                     C2S_ACT_CLIENT_STANZA);
    take_frame(s, SMPROTO_STANZA, &fb);
    buf_free(&fb);
    test_cfg.limits.stanza_size = 65536;
    c2s_stream_free(s);
}

/* The STATE record the SM gives a session comes back byte for byte in its RESYNC entry, and the
 * entry always fits in a frame: a presence too large to sit beside the largest record is framed
 * for the SM but not kept for a resync. */
/* ---- XEP-0198 stream management ------------------------------------------------------------ */

/* The SM says m to the stream (a MODULE frame); returns the stream's actions. */
static unsigned sm_says(c2s_stream *s, const smacks_msg *m)
{
    buf body = BUF_INIT, fb = BUF_INIT;
    if (m)
        smacks_msg_put(&body, m);
    assert_true(smproto_put_module(&fb, SID, SMACKS_MODULE, buf_data(&body), buf_len(&body)));
    smproto_frame f;
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    unsigned acts = c2s_stream_frame(s, &f);
    buf_free(&body);
    buf_free(&fb);
    return acts;
}

/* The next frame is the stream's smacks message to the SM. */
static smacks_msg front_said(c2s_stream *s, buf *fb)
{
    smproto_frame f = take_frame(s, SMPROTO_MODULE, fb);
    const char *name;
    size_t nl, len;
    const uint8_t *body;
    assert_true(smproto_get_module(&f, &name, &nl, &body, &len));
    assert_int_equal(nl, 6);
    assert_memory_equal(name, "smacks", 6);
    smacks_msg m;
    assert_true(smacks_msg_get(body, len, &m));
    return m;
}

/* A stanza from the SM reaches the client's queue (as the IO thread delivers it). */
static unsigned sm_delivers(c2s_stream *s, const char *xml)
{
    buf fb = BUF_INIT;
    assert_true(smproto_put(&fb, SMPROTO_STANZA, SID, xml, strlen(xml)));
    smproto_frame f;
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    unsigned acts = c2s_stream_frame(s, &f);
    buf_free(&fb);
    assert_true(acts & C2S_ACT_DELIVER);
    return c2s_stream_delivered(s);
}

static c2s_stream *enabled_stream(void)
{
    c2s_stream *s = bound_stream();
    feed(s, "<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>");
    buf fb = BUF_INIT;
    smacks_msg m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_ENABLE);
    assert_true(m.resume);
    assert_int_equal(m.max, 60);
    buf_free(&fb);
    assert_false(c2s_stream_wants_input(s));   /* until the SM answers */
    smacks_msg en = {.kind = SMACKS_ENABLED, .id = "ABCdef123", .max = 60};
    sm_says(s, &en);
    expect_out(s, "<enabled xmlns='urn:xmpp:sm:3' id='ABCdef123' resume='true' max='60'/>");
    assert_true(c2s_stream_wants_input(s));
    return s;
}

static void test_smacks_enable(void **state)
{
    c2s_stream *s = enabled_stream();
    /* Twice: refused, nothing asked of the SM. */
    feed(s, "<enable xmlns='urn:xmpp:sm:3'/>");
    expect_out(s, "<failed xmlns='urn:xmpp:sm:3'><unexpected-request "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    expect_no_frame(s);
    c2s_stream_free(s);

    /* Before bind: refused. */
    s = authed_stream();
    feed(s, "<enable xmlns='urn:xmpp:sm:3'/>");
    expect_out(s, "<unexpected-request");
    expect_no_frame(s);
    c2s_stream_free(s);

    /* An SM without the module: <feature-not-implemented/>, and the stream goes on. */
    s = bound_stream();
    feed(s, "<enable xmlns='urn:xmpp:sm:3'/>");
    buf fb = BUF_INIT;
    front_said(s, &fb);
    buf_free(&fb);
    sm_says(s, NULL);
    expect_out(s, "<feature-not-implemented");
    assert_true(c2s_stream_wants_input(s));
    feed(s, "<r xmlns='urn:xmpp:sm:3'/>");   /* not enabled: a stream error */
    expect_out(s, "<unsupported-stanza-type");
    c2s_stream_free(s);
}

static void test_smacks_counts_and_acks(void **state)
{
    c2s_stream *s = enabled_stream();
    /* Three from the SM: one <r/> asks for them (one at a time). */
    sm_delivers(s, "<message><body>1</body></message>");
    sm_delivers(s, "<message><body>2</body></message>");
    char *o = take_out(s);
    assert_non_null(strstr(o, "<r xmlns='urn:xmpp:sm:3'/>"));
    assert_null(strstr(strstr(o, "<r ") + 1, "<r "));
    free(o);
    /* One made here (a jid-malformed error) counts too, but is not the SM's. */
    feed(s, "<message to='@@' id='x'/>");
    expect_out(s, "jid-malformed");
    sm_delivers(s, "<message><body>3</body></message>");
    /* The client acknowledges the first three (two were the SM's): the SM hears it in a batch. */
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    expect_no_frame(s);
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    expect_no_frame(s);
    /* More than was sent: a stream error saying so; the SM hears what was acknowledged, then END. */
    unsigned acts = feed(s, "<a xmlns='urn:xmpp:sm:3' h='9'/>");
    assert_true(acts & C2S_ACT_CLOSE);
    o = take_out(s);
    assert_non_null(strstr(o, "<undefined-condition"));
    assert_non_null(strstr(o, "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='9' send-count='4'/>"));
    free(o);
    buf fb = BUF_INIT;
    smacks_msg m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_ACK);
    assert_true(m.client_h == 3 && m.sm_acked == 2 && m.in_local == 1);
    take_frame(s, SMPROTO_END, &fb);
    buf_free(&fb);
    c2s_stream_free(s);

    /* A batch of SMACKS_ACK_BATCH of the SM's stanzas acknowledged is told at once. */
    s = enabled_stream();
    for (int i = 0; i < SMACKS_ACK_BATCH + 2; i++)
        sm_delivers(s, "<message><body>n</body></message>");
    discard_out(s);
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='5'/>");
    expect_no_frame(s);
    char a[64];
    snprintf(a, sizeof a, "<a xmlns='urn:xmpp:sm:3' h='%d'/>", SMACKS_ACK_BATCH + 1);
    feed(s, a);
    m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_ACK);
    assert_true(m.sm_acked == SMACKS_ACK_BATCH + 1);
    buf_free(&fb);
    c2s_stream_free(s);
}

/* The server's <r/>: once <smacks><request_stanzas> are unacknowledged (one pending at a time),
 * fewer wait for the connection layer's tick (c2s_stream_ack_due, then c2s_stream_request_ack);
 * an inactive client (XEP-0352) is asked after each write. */
static bool has_r(const char *o) { return strstr(o, "<r xmlns='urn:xmpp:sm:3'/>") != NULL; }

static void expect_out_empty(c2s_stream *s) { assert_int_equal(buf_len(c2s_stream_out(s)), 0); }

static void test_smacks_request_policy(void **state)
{
    test_cfg.smacks.request_stanzas = 3;
    c2s_stream *s = enabled_stream();
    assert_false(c2s_stream_ack_due(s));   /* nothing written yet */
    c2s_stream_request_ack(s);
    expect_out_empty(s);
    sm_delivers(s, "<message><body>1</body></message>");
    sm_delivers(s, "<message><body>2</body></message>");
    char *o = take_out(s);
    assert_false(has_r(o));
    free(o);
    assert_true(c2s_stream_ack_due(s));
    /* The third: asked at once, and no longer due by time. */
    sm_delivers(s, "<message><body>3</body></message>");
    o = take_out(s);
    assert_true(has_r(o));
    free(o);
    assert_false(c2s_stream_ack_due(s));
    /* One at a time: more while it is pending ask nothing. */
    for (int i = 0; i < 4; i++)
        sm_delivers(s, "<message><body>n</body></message>");
    o = take_out(s);
    assert_false(has_r(o));
    free(o);
    assert_false(c2s_stream_ack_due(s));
    /* The answer covers three of seven: four left, past the count, but it asks on the next write
     * or by time (an <a/> writes nothing by itself). */
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    expect_out_empty(s);
    assert_true(c2s_stream_ack_due(s));
    c2s_stream_request_ack(s);             /* the tick: the oldest waited long enough */
    o = take_out(s);
    assert_true(has_r(o));
    free(o);
    assert_false(c2s_stream_ack_due(s));
    c2s_stream_request_ack(s);             /* asked already: nothing more */
    expect_out_empty(s);
    /* Everything acknowledged: nothing due. */
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='7'/>");
    assert_false(c2s_stream_ack_due(s));
    c2s_stream_request_ack(s);
    expect_out_empty(s);
    /* Inactive: an <r/> after the first stanza of a write, as before. */
    feed(s, "<inactive xmlns='urn:xmpp:csi:0'/>");
    discard_out(s);
    sm_delivers(s, "<message><body>8</body></message>");
    o = take_out(s);
    assert_true(has_r(o));
    free(o);
    c2s_stream_free(s);

    /* request_stanzas 1: an <r/> after every stanza when none is pending. */
    test_cfg.smacks.request_stanzas = 1;
    s = enabled_stream();
    sm_delivers(s, "<message><body>1</body></message>");
    o = take_out(s);
    assert_true(has_r(o));
    free(o);
    c2s_stream_free(s);
}

static void test_smacks_client_r(void **state)
{
    c2s_stream *s = enabled_stream();
    buf fb = BUF_INIT;
    feed(s, "<message to='a@example.com'><body>x</body></message>");
    take_frame(s, SMPROTO_STANZA, &fb);
    feed(s, "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    discard_out(s);
    feed(s, "<r xmlns='urn:xmpp:sm:3'/>");
    smacks_msg m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_R);
    assert_true(m.in_count == 2 && m.in_local == 1);
    buf_free(&fb);
    /* The <a/> is written when the SM has them. */
    char *o = take_out(s);
    assert_null(strstr(o, "<a "));
    free(o);
    smacks_msg a = {.kind = SMACKS_A, .h = 2};
    sm_says(s, &a);
    expect_out(s, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    c2s_stream_free(s);
}

static void test_smacks_resume(void **state)
{
    c2s_stream *s = authed_stream();
    feed(s, "<resume xmlns='urn:xmpp:sm:3' previd='ABCdef123' h='4294967295'/>");
    buf fb = BUF_INIT;
    smacks_msg m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_RESUME);
    assert_string_equal(m.host, HOST);
    assert_string_equal(m.user, "user");
    assert_string_equal(m.id, "ABCdef123");
    assert_true(m.wire_h == 4294967295u);
    buf_free(&fb);
    smacks_msg r = {.kind = SMACKS_RESUMED, .jid = "user@example.com/res", .id = "ABCdef123",
                    .h = 7, .client_h = 4294967295u, .sm_acked = 12, .max = 300,
                    .presence = "<presence/>"};
    sm_says(s, &r);
    expect_out(s, "<resumed xmlns='urn:xmpp:sm:3' h='7' previd='ABCdef123'/>");
    assert_string_equal(c2s_stream_jid(s), "user@example.com/res");
    /* Counting goes on across the 32-bit wrap. */
    sm_delivers(s, "<message><body>replayed</body></message>");
    sm_delivers(s, "<message><body>new</body></message>");
    discard_out(s);
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    expect_no_frame(s);
    /* A resync carries the presence the SM gave. */
    smproto_resync_entry e;
    assert_true(c2s_stream_resync_entry(s, &e));
    assert_string_equal(e.presence, "<presence/>");
    /* The client closes its stream: the SM hears a goodbye and the last acknowledgement (across
     * the 32-bit wrap) before the END. */
    feed(s, "</stream:stream>");
    m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_CLOSE);
    m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_ACK);
    assert_true(m.client_h == 4294967297ull && m.sm_acked == 14);
    buf_free(&fb);
    take_frame(s, SMPROTO_END, &fb);
    buf_free(&fb);
    c2s_stream_free(s);
}

/* After the link came back: a stream with stream management tells the SM where it stands; one
 * waiting for the SM's answer to <enable/> asks again. */
static void test_smacks_reissue(void **state)
{
    c2s_stream *s = enabled_stream();
    sm_delivers(s, "<message><body>1</body></message>");
    sm_delivers(s, "<message><body>2</body></message>");
    feed(s, "<message to='a@example.com'><body>x</body></message>");
    buf fb = BUF_INIT;
    take_frame(s, SMPROTO_STANZA, &fb);
    buf_free(&fb);
    feed(s, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    buf out = BUF_INIT;
    c2s_stream_reissue(s, &out);
    smproto_frame f;
    size_t used;
    assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&out), buf_len(&out), &f, &used),
                     SMPROTO_FRAME_OK);
    const char *name;
    size_t nl, len;
    const uint8_t *body;
    smacks_msg m;
    assert_true(smproto_get_module(&f, &name, &nl, &body, &len) && smacks_msg_get(body, len, &m));
    assert_int_equal(m.kind, SMACKS_SYNC);
    assert_true(m.sm_received == 2 && m.sm_acked == 1 && m.in_count == 1 && m.in_local == 0);
    buf_free(&out);
    /* A duplicate dropped by the IO thread: the SM's next number is skipped. */
    c2s_stream_duplicate(s);
    m = front_said(s, &fb);
    assert_int_equal(m.kind, SMACKS_SKIP);
    assert_true(m.seq == 3);
    buf_free(&fb);
    c2s_stream_free(s);

    s = bound_stream();
    c2s_stream_duplicate(s);      /* without stream management: nothing to tell */
    expect_no_frame(s);
    feed(s, "<enable xmlns='urn:xmpp:sm:3' max='30'/>");
    front_said(s, &fb);
    buf_free(&fb);
    c2s_stream_reissue(s, &out);
    assert_int_equal(smproto_frame_next((const uint8_t *)buf_data(&out), buf_len(&out), &f, &used),
                     SMPROTO_FRAME_OK);
    assert_true(smproto_get_module(&f, &name, &nl, &body, &len) && smacks_msg_get(body, len, &m));
    assert_int_equal(m.kind, SMACKS_ENABLE);
    assert_false(m.resume);
    assert_int_equal(m.max, 30);
    buf_free(&out);
    c2s_stream_free(s);
}

static void test_smacks_resume_failed(void **state)
{
    c2s_stream *s = authed_stream();
    feed(s, "<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>");
    buf fb = BUF_INIT;
    front_said(s, &fb);
    buf_free(&fb);
    smacks_msg f = {.kind = SMACKS_FAILED, .condition = SMACKS_ITEM_NOT_FOUND, .has_h = true,
                    .wire_h = 5};
    sm_says(s, &f);
    expect_out(s, "<failed xmlns='urn:xmpp:sm:3' h='5'><item-not-found");
    /* The client binds as usual. */
    feed(s, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    take_frame(s, SMPROTO_BIND, &fb);
    buf_free(&fb);
    c2s_stream_free(s);
    /* Malformed: no previd, a bad h; after bind: refused. */
    s = authed_stream();
    feed(s, "<resume xmlns='urn:xmpp:sm:3' h='1'/>");
    expect_out(s, "<item-not-found");
    feed(s, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='-1'/>");
    expect_out(s, "<item-not-found");
    feed(s, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='4294967296'/>");
    expect_out(s, "<item-not-found");
    expect_no_frame(s);
    c2s_stream_free(s);
    s = bound_stream();
    feed(s, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='1'/>");
    expect_out(s, "<unexpected-request");
    expect_no_frame(s);
    c2s_stream_free(s);
    /* Before authentication, any of it is a stream error. */
    s = open_tls_stream(NULL);
    discard_out(s);
    assert_true(feed(s, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='1'/>") & C2S_ACT_CLOSE);
    expect_out(s, "<not-authorized");
    c2s_stream_free(s);
}

static void test_resync_entry(void **state)
{
    test_cfg.limits.stanza_size = 2 << 20;   /* a stanza near a frame's size (the parser's limits
                                              * are the stream's from its start) */
    c2s_stream *s = bound_stream();
    static const uint8_t record[] = "\6roster\1\1\0\0";
    buf fb = BUF_INIT;
    smproto_put_state(&fb, SID, record, sizeof record - 1);
    smproto_frame f;
    size_t used;
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    c2s_stream_frame(s, &f);
    buf_free(&fb);
    assert_int_equal(feed(s, "<presence><show>away</show></presence>"), C2S_ACT_CLIENT_STANZA);
    take_frame(s, SMPROTO_STANZA, &fb);
    buf_free(&fb);
    smproto_resync_entry e;
    assert_true(c2s_stream_resync_entry(s, &e));
    assert_int_equal(e.state_len, sizeof record - 1);
    assert_memory_equal(e.state, record, e.state_len);
    assert_non_null(strstr(e.presence, "<show>away</show>"));

    size_t status = SMPROTO_MAX_PAYLOAD - 3000;
    char *big = malloc(status + 64);
    int n = sprintf(big, "<presence><status>");
    memset(big + n, 's', status);
    strcpy(big + n + status, "</status></presence>");
    assert_int_equal(feed(s, big), C2S_ACT_CLIENT_STANZA);
    free(big);
    take_frame(s, SMPROTO_STANZA, &fb);     /* the SM still gets it */
    buf_free(&fb);
    uint8_t *largest = calloc(1, SMPROTO_STATE_MAX);
    smproto_put_state(&fb, SID, largest, SMPROTO_STATE_MAX);
    free(largest);
    smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
    c2s_stream_frame(s, &f);
    buf_free(&fb);
    assert_true(c2s_stream_resync_entry(s, &e));
    assert_int_equal(e.state_len, SMPROTO_STATE_MAX);
    assert_string_equal(e.presence, "");
    assert_true(smproto_resync_entry_size(&e) <= SMPROTO_MAX_PAYLOAD);
    test_cfg.limits.stanza_size = 65536;
    c2s_stream_free(s);
}

/* ---- XEP-0352 --------------------------------------------------------------------------------- */

#define CSI_INACTIVE "<inactive xmlns='urn:xmpp:csi:0'/>"
#define CSI_ACTIVE "<active xmlns='urn:xmpp:csi:0'/>"

/* Offered once authenticated; the nonzas get no reply and reach nothing but the stream's state;
 * any stanza says the client is awake. */
static void test_csi_nonzas(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    char *o = take_out(s);
    assert_null(strstr(o, "urn:xmpp:csi:0"));
    free(o);
    c2s_stream_free(s);

    s = bound_stream();   /* its features had <csi/>: */
    assert_false(c2s_stream_csi_inactive(s));
    assert_int_equal(feed(s, CSI_INACTIVE), C2S_ACT_CSI_INACTIVE);
    assert_true(c2s_stream_csi_inactive(s));
    assert_int_equal(buf_len(c2s_stream_out(s)), 0);
    expect_no_frame(s);
    assert_int_equal(feed(s, CSI_ACTIVE), C2S_ACT_CSI_ACTIVE);
    assert_false(c2s_stream_csi_inactive(s));
    /* Both in one read: both said, the last one holds. */
    assert_int_equal(feed(s, CSI_ACTIVE CSI_INACTIVE), C2S_ACT_CSI_ACTIVE | C2S_ACT_CSI_INACTIVE);
    assert_true(c2s_stream_csi_inactive(s));
    /* Content is ignored, as Prosody does. */
    assert_int_equal(feed(s, "<active xmlns='urn:xmpp:csi:0' x='1'><y/></active>"), C2S_ACT_CSI_ACTIVE);
    assert_int_equal(buf_len(c2s_stream_out(s)), 0);
    expect_no_frame(s);
    /* A stanza: the client is awake (and it goes to the SM as ever). */
    assert_true(feed(s, "<presence/>") & C2S_ACT_CLIENT_STANZA);
    buf fb = BUF_INIT;
    take_frame(s, SMPROTO_STANZA, &fb);
    buf_free(&fb);
    assert_true(feed(s, "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
                        "</iq>") & C2S_ACT_CLIENT_STANZA);
    discard_out(s);
    /* Anything else in the namespace is an element nobody handles. */
    assert_true(feed(s, "<csi xmlns='urn:xmpp:csi:0'/>") & C2S_ACT_CLOSE);
    expect_out(s, "<unsupported-stanza-type");
    take_frame(s, SMPROTO_END, &fb);
    buf_free(&fb);
    c2s_stream_free(s);

    s = bound_stream();
    assert_true(feed(s, "<flush xmlns='urn:xmpp:csi:0'/>") & C2S_ACT_CLOSE);
    expect_out(s, "<unsupported-stanza-type");
    c2s_stream_free(s);
}

/* Before authentication a nonza is refused as any element is; between authentication and bind
 * the state is taken (the feature is offered there, and Prosody takes it), to apply once bound. */
static void test_csi_before_bind(void **state)
{
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    assert_true(feed(s, CSI_INACTIVE) & C2S_ACT_CLOSE);
    expect_out(s, "<not-authorized");
    c2s_stream_free(s);

    s = open_tls_stream(NULL);
    discard_out(s);
    free(scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil"));
    feed(s, header(HOST));
    expect_out(s, "<csi xmlns='urn:xmpp:csi:0'/>");
    assert_int_equal(feed(s, CSI_INACTIVE), C2S_ACT_CSI_INACTIVE);
    assert_true(c2s_stream_csi_inactive(s));
    expect_no_frame(s);
    assert_false(c2s_stream_closed(s));
    c2s_stream_free(s);
}

/* <csi><max_stanzas>0: the feature is off, neither offered nor understood. */
static void test_csi_off(void **state)
{
    test_cfg.csi.max_stanzas = 0;
    c2s_stream *s = open_tls_stream(NULL);
    discard_out(s);
    free(scram_login(s, SCRAM_SHA256, "user", "pencil", "pencil"));
    feed(s, header(HOST));
    char *o = take_out(s);
    assert_non_null(strstr(o, "<bind xmlns="));
    assert_null(strstr(o, "urn:xmpp:csi:0"));
    free(o);
    assert_true(feed(s, CSI_INACTIVE) & C2S_ACT_CLOSE);
    expect_out(s, "<unsupported-stanza-type");
    c2s_stream_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_host_unknown, setup),
        cmocka_unit_test_setup(test_second_host_served, setup),
        cmocka_unit_test_setup(test_restart_to_other_host_refused, setup),
        cmocka_unit_test_setup(test_restart_keeps_domain, setup),
        cmocka_unit_test_setup(test_bad_namespace, setup),
        cmocka_unit_test_setup(test_bad_version, setup),
        cmocka_unit_test_setup(test_not_well_formed_before_header, setup),
        cmocka_unit_test_setup(test_restricted_xml, setup),
        cmocka_unit_test_setup(test_features_plain_port, setup),
        cmocka_unit_test_setup(test_features_optional_tls, setup),
        cmocka_unit_test_setup(test_features_caps, setup),
        cmocka_unit_test_setup(test_sasl_before_starttls, setup),
        cmocka_unit_test_setup(test_starttls, setup),
        cmocka_unit_test_setup(test_plus_with_exporter, setup),
        cmocka_unit_test_setup(test_stanza_before_auth, setup),
        cmocka_unit_test_setup(test_register_forwarded, setup),
        cmocka_unit_test_setup(test_register_not_amplified, setup),
        cmocka_unit_test_setup(test_stanza_not_amplified, setup),
        cmocka_unit_test_setup(test_resync_entry, setup),
        cmocka_unit_test_setup(test_smacks_enable, setup),
        cmocka_unit_test_setup(test_smacks_counts_and_acks, setup),
        cmocka_unit_test_setup(test_smacks_request_policy, setup),
        cmocka_unit_test_setup(test_smacks_client_r, setup),
        cmocka_unit_test_setup(test_smacks_resume, setup),
        cmocka_unit_test_setup(test_smacks_resume_failed, setup),
        cmocka_unit_test_setup(test_smacks_reissue, setup),
        cmocka_unit_test_setup(test_register_throttled, setup),
        cmocka_unit_test_setup(test_auth_failure_reported, setup),
        cmocka_unit_test_setup(test_scram_sha256_success, setup),
        cmocka_unit_test_setup(test_scram_sha1_success, setup),
        cmocka_unit_test_setup(test_scram_wrong_password, setup),
        cmocka_unit_test_setup(test_auth_failures_limit, setup),
        cmocka_unit_test_setup(test_auth_storage_error, setup),
        cmocka_unit_test_setup(test_bad_base64_and_mechanism, setup),
        cmocka_unit_test_setup(test_plain_success, setup),
        cmocka_unit_test_setup(test_plain_wrong_and_unknown, setup),
        cmocka_unit_test_setup(test_pipelined_while_waiting, setup),
        cmocka_unit_test_setup(test_bind_and_stamp, setup),
        cmocka_unit_test_setup(test_congested_link, setup),
        cmocka_unit_test_setup(test_bind_conflict, setup),
        cmocka_unit_test_setup(test_end_from_sm, setup),
        cmocka_unit_test_setup(test_client_close_and_gone, setup),
        cmocka_unit_test_setup(test_stanza_limit, setup),
        cmocka_unit_test_setup(test_csi_nonzas, setup),
        cmocka_unit_test_setup(test_csi_before_bind, setup),
        cmocka_unit_test_setup(test_csi_off, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
