/* tests/unit/test_s2s_stream.c — one server-to-server stream (s2s/s2s_stream.c) played by hand
 * from the remote server's side: incoming streams with STARTTLS, SASL EXTERNAL and dialback (the
 * check sent to the owner and its answer), the authoritative side's db:verify, the from/to check
 * of every stanza and the stream errors for what is wrong; outgoing streams through STARTTLS,
 * SASL EXTERNAL, its failure and dialback, and the policy that wants a valid certificate;
 * bidirectional streams (XEP-0288) both ways; the dialback key itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"
#include "s2s/dialback.h"
#include "s2s/s2s_stream.h"

#define SECRET "a dialback secret for tests"
#define HDR(from, to, extra) "<stream:stream xmlns='jabber:server' " \
    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' " \
    "from='" from "' to='" to "' version='1.0'" extra ">"
#define TLS_NS "urn:ietf:params:xml:ns:xmpp-tls"
#define SASL_NS "urn:ietf:params:xml:ns:xmpp-sasl"

typedef struct fixture {
    s2s_stream_config cfg;
    s2s_stream *st;
    bool cert_valid, allow_dialback, require_tls, require_cert;
    char out[16384];
    char authed[256];
    char verify[512];     /* the last db_verify_request: "local remote id key" */
    char answer[256];     /* the last db_verify_answer: "local remote id valid" */
    unsigned stanzas, ready;
} fixture;

static fixture F;

static bool is_local(void *ctx, const char *domain) { return strcmp(domain, "a.test") == 0; }

static void policy(void *ctx, const char *remote, s2s_policy *out)
{
    *out = (s2s_policy){.require_tls = F.require_tls, .allow_dialback = F.allow_dialback,
                        .require_valid_cert = F.require_cert,
                        .blocked = strcmp(remote, "blocked.test") == 0};
}

static bool cert_valid(void *ctx, const char *domain) { return F.cert_valid; }

static void authed(void *ctx, const char *local, const char *remote, const char *how)
{
    snprintf(F.authed, sizeof F.authed, "%s %s %s", local, remote, how);
}

static void ready(void *ctx) { F.ready++; }

static void verify_request(void *ctx, const char *local, const char *remote, const char *id,
                           const char *key)
{
    snprintf(F.verify, sizeof F.verify, "%s %s %s %s", local, remote, id, key);
}

static void verify_answer(void *ctx, const char *local, const char *remote, const char *id,
                          bool valid)
{
    snprintf(F.answer, sizeof F.answer, "%s %s %s %d", local, remote, id, valid);
}

static void stanza(void *ctx, xml_node *st, xml_arena *arena)
{
    F.stanzas++;
    xml_arena_free(arena);
}

static const s2s_stream_ops ops = {is_local, policy, cert_valid, authed, ready, verify_request,
                                   verify_answer, stanza};

static int setup(void **state)
{
    memset(&F, 0, sizeof F);
    F.cfg.secret = SECRET;
    xmlstream_limits_default(&F.cfg.limits);
    F.allow_dialback = F.require_tls = true;
    return 0;
}

static int teardown(void **state)
{
    s2s_stream_free(F.st);
    return 0;
}

/* What the stream wrote since the last call, as a string. */
static const char *taken(void)
{
    buf *o = s2s_stream_out(F.st);
    size_t n = buf_len(o) < sizeof F.out - 1 ? buf_len(o) : sizeof F.out - 1;
    memcpy(F.out, buf_data(o), n);
    F.out[n] = '\0';
    buf_consume(o, buf_len(o));
    return F.out;
}

static s2s_stream_status feed(const char *s) { return s2s_stream_feed(F.st, s, strlen(s)); }

#define HAS(text) assert_non_null(strstr(F.out, text))
#define LACKS(text) assert_null(strstr(F.out, text))

/* An incoming stream from b.test, through STARTTLS, up to the features after TLS. */
static void incoming_to_tls(void)
{
    F.st = s2s_stream_new(S2S_INCOMING, NULL, NULL, &F.cfg, &ops, NULL);
    assert_int_equal(feed(HDR("b.test", "a.test", "")), S2S_STREAM_OK);
    taken();
    HAS("<starttls xmlns='" TLS_NS "'><required/></starttls>");
    LACKS("dialback xmlns");
    assert_int_equal(feed("<starttls xmlns='" TLS_NS "'/><message>plaintext after</message>"),
                     S2S_STREAM_TLS);
    taken();
    HAS("<proceed");
    assert_int_equal(s2s_stream_tls_done(F.st, true), S2S_STREAM_OK);
    assert_int_equal(feed(HDR("b.test", "a.test", "")), S2S_STREAM_OK);
    taken();
    LACKS("starttls");
}

static void test_incoming_dialback(void **state)
{
    incoming_to_tls();
    HAS("<dialback xmlns='urn:xmpp:features:dialback'>");
    LACKS("EXTERNAL");
    /* A stanza before authentication ends the stream... later; first the dialback. */
    assert_int_equal(feed("<db:result from='b.test' to='a.test'>k3y</db:result>"), S2S_STREAM_OK);
    assert_non_null(strstr(F.verify, "a.test b.test "));
    assert_non_null(strstr(F.verify, " k3y"));
    s2s_stream_db_result(F.st, "a.test", "b.test", true);
    taken();
    HAS("<db:result from='a.test' to='b.test' type='valid'/>");
    assert_string_equal(F.authed, "a.test b.test dialback");
    assert_int_equal(feed("<message from='u@b.test/r' to='v@a.test'><body>hi</body></message>"),
                     S2S_STREAM_OK);
    assert_int_equal(F.stanzas, 1);
    /* From a domain it did not authenticate: <invalid-from/>, nothing delivered. */
    assert_int_equal(feed("<message from='u@c.test' to='v@a.test'/>"), S2S_STREAM_CLOSED);
    taken();
    HAS("<invalid-from");
    assert_int_equal(F.stanzas, 1);
}

static void test_incoming_dialback_refused(void **state)
{
    incoming_to_tls();
    feed("<db:result from='b.test' to='a.test'>bad</db:result>");
    s2s_stream_db_result(F.st, "a.test", "b.test", false);
    taken();
    HAS("type='invalid'");
    assert_string_equal(F.authed, "");
    assert_int_equal(feed("<message from='u@b.test' to='v@a.test'/>"), S2S_STREAM_CLOSED);
    taken();
    HAS("<not-authorized");
    assert_int_equal(F.stanzas, 0);
}

static void test_incoming_sasl(void **state)
{
    F.cert_valid = true;
    incoming_to_tls();
    HAS("<mechanism>EXTERNAL</mechanism>");
    /* base64("b.test") */
    assert_int_equal(feed("<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>Yi50ZXN0</auth>"),
                     S2S_STREAM_OK);
    assert_string_equal(F.authed, "a.test b.test sasl");
    assert_int_equal(feed(HDR("b.test", "a.test", "")), S2S_STREAM_OK);
    taken();
    HAS("<success");
    HAS("<stream:features></stream:features>");
    feed("<presence from='u@b.test/r' to='v@a.test'/>");
    assert_int_equal(F.stanzas, 1);
    /* To a domain that is not ours: <host-unknown/>. */
    assert_int_equal(feed("<message from='u@b.test' to='v@elsewhere.test'/>"),
                     S2S_STREAM_CLOSED);
    taken();
    HAS("<host-unknown");
}

static void test_incoming_sasl_refused(void **state)
{
    incoming_to_tls();
    /* Without a valid certificate EXTERNAL is not offered, and refused when tried. */
    feed("<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>=</auth>");
    taken();
    HAS("<failure xmlns='" SASL_NS "'><not-authorized/></failure>");
    feed("<auth xmlns='" SASL_NS "' mechanism='PLAIN'>AGEAYg==</auth>");
    taken();
    HAS("<invalid-mechanism/>");
    F.cert_valid = true;
    /* Valid certificate, but for another domain than the header's: refused. */
    feed("<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>Yy50ZXN0</auth>");
    taken();
    HAS("<not-authorized/>");
    feed("<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>not base64!</auth>");
    taken();
    HAS("<incorrect-encoding/>");
    assert_string_equal(F.authed, "");
}

/* The certificate proves the domain: db:result answered at once (XEP-0344). */
static void test_incoming_dialback_by_certificate(void **state)
{
    F.cert_valid = true;
    incoming_to_tls();
    feed("<db:result from='b.test' to='a.test'>anything</db:result>");
    taken();
    HAS("type='valid'");
    assert_string_equal(F.verify, "");
    assert_string_equal(F.authed, "a.test b.test certificate");
}

static void test_incoming_authoritative(void **state)
{
    F.st = s2s_stream_new(S2S_INCOMING, NULL, NULL, &F.cfg, &ops, NULL);
    F.require_tls = false;
    feed(HDR("b.test", "a.test", ""));
    char key[DIALBACK_KEY_LEN + 1], in[512];
    dialback_key(SECRET, "b.test", "a.test", "sid1", key);
    snprintf(in, sizeof in, "<db:verify from='b.test' to='a.test' id='sid1'>%s</db:verify>", key);
    feed(in);
    taken();
    HAS("<db:verify from='a.test' to='b.test' id='sid1' type='valid'/>");
    snprintf(in, sizeof in, "<db:verify from='b.test' to='a.test' id='sid2'>%s</db:verify>", key);
    feed(in);
    taken();
    HAS("id='sid2' type='invalid'");
    feed("<db:verify from='b.test' to='x.test' id='sid3'>k</db:verify>");
    taken();
    HAS("type='error'");
    HAS("item-not-found");
}

static void test_incoming_errors(void **state)
{
    static const struct {
        const char *in, *condition;
    } cases[] = {
        {HDR("b.test", "nothere.test", ""), "host-unknown"},
        {"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "to='a.test' version='1.0'>", "invalid-namespace"},
        {HDR("b.test", "a.test", "") "<message from='u@b.test' to='v@a.test'/>", "policy-violation"},
        {HDR("b.test", "a.test", "") "<foo/>", "unsupported-stanza-type"},
        {HDR("b.test", "a.test", "") "<a><</b>", "not-well-formed"},
        {HDR("blocked.test", "a.test", ""), "policy-violation"},
        {"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
         "to='a.test'>", "unsupported-version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        F.st = s2s_stream_new(S2S_INCOMING, NULL, NULL, &F.cfg, &ops, NULL);
        assert_int_equal(feed(cases[i].in), S2S_STREAM_CLOSED);
        taken();
        char want[96];
        snprintf(want, sizeof want, "<%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
                 cases[i].condition);
        if (!strstr(F.out, want))
            fail_msg("case %zu: want %s, got %s", i, want, F.out);
        /* Exactly one stream header, then the error and the close. */
        assert_non_null(strstr(F.out, "<stream:stream"));
        assert_null(strstr(strstr(F.out, "<stream:stream") + 1, "<stream:stream"));
        HAS("</stream:stream>");
        /* Nothing more is taken. */
        assert_int_equal(feed("<message/>"), S2S_STREAM_CLOSED);
        assert_int_equal(F.stanzas, 0);
        s2s_stream_free(F.st);
        F.st = NULL;
    }
}

/* ---- outgoing -------------------------------------------------------------------------------- */

static void outgoing_to_tls(void)
{
    F.st = s2s_stream_new(S2S_OUTGOING, "a.test", "b.test", &F.cfg, &ops, NULL);
    taken();
    HAS("from='a.test' to='b.test' version='1.0'>");
    feed(HDR("b.test", "a.test", " id='rs1'") "<stream:features><starttls xmlns='" TLS_NS
         "'><required/></starttls></stream:features>");
    taken();
    HAS("<starttls xmlns='" TLS_NS "'/>");
    assert_int_equal(feed("<proceed xmlns='" TLS_NS "'/>"), S2S_STREAM_TLS);
    assert_int_equal(s2s_stream_tls_done(F.st, true), S2S_STREAM_OK);
    taken();
    HAS("from='a.test' to='b.test' version='1.0'>");
}

static void test_outgoing_sasl(void **state)
{
    outgoing_to_tls();
    feed(HDR("b.test", "a.test", " id='rs2'") "<stream:features><mechanisms xmlns='" SASL_NS
         "'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>");
    taken();
    HAS("mechanism='EXTERNAL'>YS50ZXN0</auth>");   /* base64("a.test") */
    assert_int_equal(F.ready, 1);
    feed("<success xmlns='" SASL_NS "'/>");
    assert_string_equal(F.authed, "");   /* not before the new stream's features */
    taken();
    HAS("<stream:stream");
    feed(HDR("b.test", "a.test", " id='rs3'") "<stream:features/>");
    assert_string_equal(F.authed, "a.test b.test sasl");
    assert_true(s2s_stream_authed(F.st));
    xml_arena *a = xml_arena_new(256);
    xml_node *m = xml_element_new(a, NULL, S2S_NS_SERVER, "message");
    xml_attr_set(a, m, NULL, "from", "u@a.test");
    xml_attr_set(a, m, NULL, "to", "v@b.test");
    assert_true(s2s_stream_send(F.st, m, 65536));
    assert_false(s2s_stream_send(F.st, m, 10));
    xml_arena_free(a);
    taken();
    assert_string_equal(F.out, "<message from='u@a.test' to='v@b.test'/>");
}

static void test_outgoing_dialback(void **state)
{
    outgoing_to_tls();
    /* EXTERNAL offered, refused: dialback follows (XEP-0178 §4). */
    feed(HDR("b.test", "a.test", " id='rs2'") "<stream:features><mechanisms xmlns='" SASL_NS
         "'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:"
         "dialback'/></stream:features>");
    taken();
    feed("<failure xmlns='" SASL_NS "'><not-authorized/></failure>");
    taken();
    char key[DIALBACK_KEY_LEN + 1], want[256];
    dialback_key(SECRET, "b.test", "a.test", "rs2", key);
    snprintf(want, sizeof want, "<db:result from='a.test' to='b.test'>%s</db:result>", key);
    HAS(want);
    /* A db:verify for an incoming stream rides along, and its answer comes back. */
    s2s_stream_db_verify(F.st, "a.test", "b.test", "in7", "k7");
    taken();
    HAS("<db:verify from='a.test' to='b.test' id='in7'>k7</db:verify>");
    feed("<db:verify from='b.test' to='a.test' id='in7' type='valid'/>");
    assert_string_equal(F.answer, "a.test b.test in7 1");
    feed("<db:result from='b.test' to='a.test' type='valid'/>");
    assert_string_equal(F.authed, "a.test b.test dialback");
}

static void test_outgoing_policy(void **state)
{
    F.require_cert = true;
    outgoing_to_tls();
    assert_int_equal(feed(HDR("b.test", "a.test", " id='rs2'") "<stream:features><mechanisms "
                          "xmlns='" SASL_NS "'><mechanism>EXTERNAL</mechanism></mechanisms>"
                          "</stream:features>"), S2S_STREAM_CLOSED);
    taken();
    HAS("<policy-violation");
    LACKS("<auth");
    assert_string_equal(F.authed, "");
}

static void test_outgoing_no_tls(void **state)
{
    F.st = s2s_stream_new(S2S_OUTGOING, "a.test", "b.test", &F.cfg, &ops, NULL);
    assert_int_equal(feed(HDR("b.test", "a.test", " id='x'") "<stream:features/>"),
                     S2S_STREAM_CLOSED);
    taken();
    HAS("<policy-violation");
    s2s_stream_free(F.st);
    /* A stream header without an id cannot carry dialback. */
    F.st = s2s_stream_new(S2S_OUTGOING, "a.test", "b.test", &F.cfg, &ops, NULL);
    assert_int_equal(feed(HDR("b.test", "a.test", "")), S2S_STREAM_CLOSED);
    taken();
    HAS("<invalid-id");
}

/* XEP-0288 on an incoming stream: offered after TLS, asked before authentication. */
static void test_incoming_bidi(void **state)
{
    incoming_to_tls();
    HAS("<bidi xmlns='urn:xmpp:features:bidi'/>");
    feed("<bidi xmlns='urn:xmpp:bidi'/>");
    assert_true(s2s_stream_bidi(F.st));
    feed("<db:result from='b.test' to='a.test'>k</db:result>");
    s2s_stream_db_result(F.st, "a.test", "b.test", true);
    /* Too late now: */
    assert_int_equal(feed("<bidi xmlns='urn:xmpp:bidi'/>"), S2S_STREAM_CLOSED);
    taken();
    HAS("<policy-violation");
}

/* XEP-0288 on an outgoing stream: asked where offered; then the peer's stanzas from its domain to
 * ours come back on it, and nothing else. */
static void test_outgoing_bidi(void **state)
{
    outgoing_to_tls();
    feed(HDR("b.test", "a.test", " id='rs2'") "<stream:features><bidi xmlns='urn:xmpp:features:"
         "bidi'/><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    taken();
    HAS("<bidi xmlns='urn:xmpp:bidi'/>");
    assert_true(strstr(F.out, "<bidi") < strstr(F.out, "<db:result"));
    feed("<db:result from='b.test' to='a.test' type='valid'/>");
    assert_int_equal(feed("<message from='u@b.test/r' to='v@a.test'><body>back</body></message>"),
                     S2S_STREAM_OK);
    assert_int_equal(F.stanzas, 1);
    assert_int_equal(feed("<message from='u@c.test' to='v@a.test'/>"), S2S_STREAM_CLOSED);
    taken();
    HAS("<invalid-from");
    assert_int_equal(F.stanzas, 1);
}

/* Without bidi, a stanza on our outgoing stream is refused. */
static void test_outgoing_no_bidi(void **state)
{
    outgoing_to_tls();
    feed(HDR("b.test", "a.test", " id='rs2'") "<stream:features/>");
    feed("<db:result from='b.test' to='a.test' type='valid'/>");
    taken();
    LACKS("<bidi");
    assert_int_equal(feed("<message from='u@b.test' to='v@a.test'/>"), S2S_STREAM_CLOSED);
    taken();
    HAS("<unsupported-stanza-type");
    assert_int_equal(F.stanzas, 0);
}

static void test_dialback_key(void **state)
{
    char k1[DIALBACK_KEY_LEN + 1], k2[DIALBACK_KEY_LEN + 1];
    /* hex(HMAC-SHA256(hex(SHA-256(secret)), "example.net example.com D60000229F")) */
    dialback_key("s3cr3tf0rd14lb4ck", "example.net", "example.com", "D60000229F", k1);
    assert_string_equal(k1, "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc");
    assert_true(dialback_key_check("s3cr3tf0rd14lb4ck", "example.net", "example.com",
                                   "D60000229F", k1));
    dialback_key("s3cr3tf0rd14lb4ck", "example.com", "example.net", "D60000229F", k2);
    assert_string_not_equal(k1, k2);
    assert_false(dialback_key_check("another secret", "example.net", "example.com",
                                    "D60000229F", k1));
    assert_false(dialback_key_check("s3cr3tf0rd14lb4ck", "example.net", "example.com",
                                    "D60000229F", "008c"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_incoming_dialback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_dialback_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_sasl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_sasl_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_dialback_by_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_authoritative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_sasl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_dialback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_no_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_bidi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_bidi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_no_bidi, setup, teardown),
        cmocka_unit_test(test_dialback_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
