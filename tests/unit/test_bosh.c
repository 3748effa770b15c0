/* tests/unit/test_bosh.c — one BOSH session (shard/bosh.c): creation and its refusals, payloads
 * both ways, hold and wait, the rid window (out of order, repeats, too far), restart, terminate
 * from either side, pause, inactivity, the size bounds, malformed and foreign bodies, overactivity,
 * connections that go away. The c2s stream is played by hand: what it would write goes to
 * bosh_output as framing_out cuts it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/bosh.h"
#include "shard/c2s_stream.h"
#include "shard/front_config.h"
#include "shard/xmpp_framing.h"

#define SID "0123456789abcdef0123456789abcdef"
#define OPEN_EL "<open xmlns='" XMPP_FRAMING_NS "' from='example.com' id='stream1' version='1.0'/>"
#define FEATURES "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>" \
                 "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>"
#define MSG "<message xmlns='jabber:client' to='a@example.com'><body>hi</body></message>"

typedef struct fixture {
    bosh_limits lim;
    bosh *b;
    buf stream;
    uint64_t now;
    /* the last answer popped */
    uint64_t id;
    int status;
    buf body;
} fixture;

static const char *cstr(buf *b)
{
    *buf_reserve(b, 1) = '\0';
    return buf_data(b) ? buf_data(b) : "";
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    bosh_limits_default(&f->lim, 65536);
    f->now = 1000000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    bosh_free(f->b);
    buf_free(&f->stream);
    buf_free(&f->body);
    free(f);
    return 0;
}

static bool pop(fixture *f)
{
    return bosh_next_answer(f->b, &f->id, &f->status, &f->body);
}

/* Pops the next answer, which must be for request id with status. */
static const char *expect(fixture *f, uint64_t id, int status)
{
    assert_true(pop(f));
    assert_int_equal(f->id, id);
    assert_int_equal(f->status, status);
    return cstr(&f->body);
}

static void out_el(fixture *f, const char *el)
{
    bosh_output(f->b, FRAMING_OUT_ELEMENT, el, strlen(el), f->now);
}

static unsigned req(fixture *f, uint64_t id, const char *fmt, ...)
{
    char body[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return bosh_request(f->b, id, body, (size_t)n, f->now, &f->stream);
}

#define BODY(attrs, inner) "<body xmlns='http://jabber.org/protocol/httpbind' sid='" SID "' " \
                           attrs ">" inner "</body>"

/* A session created with rid 100 and request id 1, its creation answer popped. */
static void create(fixture *f, const char *extra)
{
    char body[1024];
    int n = snprintf(body, sizeof body,
                     "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'"
                     " rid='100' to='example.com' wait='60' hold='1' ver='1.11' xml:lang='en'"
                     " xmpp:version='1.0' content='text/xml; charset=utf-8' %s/>", extra);
    int status = 0;
    buf answer = BUF_INIT;
    f->b = bosh_new(&f->lim, SID, 1, body, (size_t)n, f->now, &f->stream, &status, &answer);
    assert_non_null(f->b);
    assert_int_equal(buf_len(&answer), 0);
    assert_non_null(strstr(cstr(&f->stream), "<stream:stream xmlns='jabber:client'"));
    assert_non_null(strstr(cstr(&f->stream), "to='example.com'"));
    assert_non_null(strstr(cstr(&f->stream), "version='1.0'"));
    assert_non_null(strstr(cstr(&f->stream), "xml:lang='en'"));
    buf_truncate(&f->stream, 0);
    /* Nothing to answer before the c2s stream wrote its features. */
    assert_false(pop(f));
    bosh_output(f->b, FRAMING_OUT_OPEN, OPEN_EL, strlen(OPEN_EL), f->now);
    assert_false(pop(f));
    out_el(f, FEATURES);
    expect(f, 1, 200);
    buf_free(&answer);
}

/* A session from a creation request of one's own (request id 1), the c2s stream's header given. */
static void open_session(fixture *f, const char *body)
{
    int status;
    buf answer = BUF_INIT;
    f->b = bosh_new(&f->lim, SID, 1, body, strlen(body), f->now, &f->stream, &status, &answer);
    assert_non_null(f->b);
    buf_free(&answer);
    bosh_output(f->b, FRAMING_OUT_OPEN, OPEN_EL, strlen(OPEN_EL), f->now);
}

static void test_creation(void **state)
{
    fixture *f = *state;
    create(f, "");
    const char *a = cstr(&f->body);
    const char *want[] = {"<body xmlns='http://jabber.org/protocol/httpbind'", "sid='" SID "'",
                          "wait='60'", "requests='2'", "hold='1'", "inactivity='60'",
                          "polling='5'", "maxpause='120'", "ver='1.11'", "from='example.com'",
                          "authid='stream1'", "secure='true'", "xmpp:version='1.0'",
                          "xmlns:xmpp='urn:xmpp:xbosh'",
                          "xmlns:stream='http://etherx.jabber.org/streams'",
                          FEATURES "</body>"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(a, want[i]))
            fail_msg("%s lacks %s", a, want[i]);
    assert_false(pop(f));
    assert_false(bosh_ended(f->b));
}

static void test_creation_negotiates(void **state)
{
    fixture *f = *state;
    f->lim.wait_max = 30;
    const char *body = "<body xmlns='http://jabber.org/protocol/httpbind' rid='5' to='example.com'"
                       " wait='45' hold='3' ver='1.6'/>";
    open_session(f, body);
    out_el(f, FEATURES);
    const char *a = expect(f, 1, 200);
    assert_non_null(strstr(a, "wait='30'"));
    assert_non_null(strstr(a, "hold='1'"));
    assert_non_null(strstr(a, "ver='1.6'"));
}

static void expect_refused(fixture *f, const char *body, int want_status, const char *want)
{
    int status = 0;
    buf answer = BUF_INIT;
    buf_truncate(&f->stream, 0);
    bosh *b = bosh_new(&f->lim, SID, 1, body, strlen(body), f->now, &f->stream, &status, &answer);
    assert_null(b);
    if (status != want_status)
        fail_msg("%s: status %d", body, status);
    if (want) {
        if (!strstr(cstr(&answer), want))
            fail_msg("%s: answer %s lacks %s", body, cstr(&answer), want);
    } else {
        assert_int_equal(buf_len(&answer), 0);
    }
    assert_int_equal(buf_len(&f->stream), 0);
    buf_free(&answer);
}

static void test_creation_refused(void **state)
{
    fixture *f = *state;
    expect_refused(f, "not xml", 400, NULL);
    expect_refused(f, "<body rid='1' to='example.com' ver='1.11'/>", 400, NULL);
    expect_refused(f, "<body xmlns='jabber:client' rid='1' to='example.com' ver='1.11'/>", 400, NULL);
    expect_refused(f, "<open xmlns='http://jabber.org/protocol/httpbind' rid='1' to='x' ver='1.11'/>",
                   400, NULL);
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' to='example.com' ver='1.11'/>",
                   200, "condition='bad-request'");
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='x1' to='example.com' ver='1.11'/>",
                   200, "condition='bad-request'");
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='9007199254740992' to='e' ver='1.11'/>",
                   200, "condition='bad-request'");
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' wait='-1' to='e' ver='1.11'/>",
                   200, "condition='bad-request'");
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' ver='1.11'/>",
                   200, "condition='improper-addressing'");
    /* A legacy client (no ver) gets the HTTP code. */
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' to='example.com'/>",
                   400, "condition='bad-request'");
    /* Restricted XML. */
    expect_refused(f, "<!DOCTYPE body [<!ENTITY a 'aaaa'>]><body xmlns='http://jabber.org/protocol/httpbind'"
                   " rid='1' to='example.com' ver='1.11'>&a;</body>", 400, NULL);
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='example.com'"
                   " ver='1.11'><!-- hi --></body>", 200, "condition='bad-request'");
    expect_refused(f, "<?xml version='1.0' encoding='ISO-8859-1'?><body xmlns='http://jabber.org/protocol/httpbind'"
                   " rid='1' to='example.com' ver='1.11'/>", 400, NULL);
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='example.com'"
                   " ver='1.11'><a>", 200, "condition='bad-request'");
    /* A sid: not a creation request. */
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' sid='x' rid='1' to='e' ver='1.11'/>",
                   200, "condition='bad-request'");
    /* Bigger than body_max. */
    f->lim.body_max = 60;
    expect_refused(f, "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='example.com' ver='1.11'/>",
                   200, "condition='bad-request'");
}

static void test_body_sid(void **state)
{
    char sid[BOSH_SID_MAX + 1];
    const char *b = BODY("rid='1'", "<message/>");
    assert_true(bosh_body_sid(b, strlen(b), sid));
    assert_string_equal(sid, SID);
    b = "<body xmlns='http://jabber.org/protocol/httpbind' rid='1'/>";
    assert_true(bosh_body_sid(b, strlen(b), sid));
    assert_string_equal(sid, "");
    b = "<body xmlns='urn:other' sid='x' rid='1'/>";
    assert_false(bosh_body_sid(b, strlen(b), sid));
    b = "<body xmlns='http://jabber.org/protocol/httpbind' sid=''/>";
    assert_false(bosh_body_sid(b, strlen(b), sid));
    b = "<body";
    assert_false(bosh_body_sid(b, strlen(b), sid));
    buf o = BUF_INIT;
    assert_int_equal(bosh_unknown_sid(&o), 200);
    assert_non_null(strstr(cstr(&o), "type='terminate' condition='item-not-found'"));
    buf_free(&o);
    assert_int_equal(bosh_refusal(&o), 400);
}

static void test_payloads(void **state)
{
    fixture *f = *state;
    create(f, "");
    /* Stanzas with or without xmlns='jabber:client' reach the stream alike; other namespaces
     * and prefixes declared on <body/> stay. */
    unsigned r = req(f, 2, BODY("rid='101' xmlns:x='urn:x'",
                                "<message to='a@example.com'><body>hi &amp; bye</body></message>"
                                "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
                                "<presence><x:c/></presence>"));
    assert_true(r & BOSH_REQ_STREAM);
    assert_string_equal(cstr(&f->stream),
                        "<message to='a@example.com'><body>hi &amp; bye</body></message>"
                        "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
                        "<presence><c xmlns='urn:x'/></presence>");
    /* Held (hold 1) until output comes; several elements go in one body. */
    assert_false(pop(f));
    out_el(f, MSG);
    out_el(f, MSG);
    const char *a = expect(f, 2, 200);
    assert_string_equal(a, "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream="
                        "'http://etherx.jabber.org/streams'>" MSG MSG "</body>");
    /* Output with no request held waits for the next. */
    out_el(f, MSG);
    assert_false(pop(f));
    req(f, 3, BODY("rid='102'", ""));
    a = expect(f, 3, 200);
    assert_non_null(strstr(a, MSG));
    assert_false(pop(f));
}

static void test_hold_and_wait(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    assert_false(pop(f));
    /* A second request pushes the first out (hold 1). */
    req(f, 3, BODY("rid='102'", "<presence/>"));
    assert_string_equal(expect(f, 2, 200), "<body xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_false(pop(f));
    /* Its wait passes: an empty answer. */
    uint64_t next = bosh_tick(f->b, f->now + 1000);
    assert_int_equal(next, f->now + 60000);
    assert_false(pop(f));
    bosh_tick(f->b, f->now + 60000);
    assert_string_equal(expect(f, 3, 200), "<body xmlns='http://jabber.org/protocol/httpbind'/>");
    /* Then inactivity counts from that answer. */
    assert_int_equal(bosh_tick(f->b, f->now + 60001), f->now + 120000);
    assert_false(bosh_ended(f->b));
}

static void test_rid_out_of_order(void **state)
{
    fixture *f = *state;
    create(f, "");
    /* 102 before 101: it waits, unread, until 101 comes. */
    req(f, 3, BODY("rid='102'", "<message id='2'/>"));
    assert_int_equal(buf_len(&f->stream), 0);
    assert_false(pop(f));
    req(f, 2, BODY("rid='101'", "<message id='1'/>"));
    assert_string_equal(cstr(&f->stream), "<message id='1'/><message id='2'/>");
    /* Answers in rid order: 101 pushed out by 102. */
    expect(f, 2, 200);
    assert_false(pop(f));
    out_el(f, MSG);
    expect(f, 3, 200);
}

static void test_rid_gap_never_fills(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 3, BODY("rid='102'", ""));
    uint64_t next = bosh_tick(f->b, f->now);
    assert_int_equal(next, f->now + 60000);
    bosh_tick(f->b, f->now + 60000);
    assert_true(bosh_ended(f->b));
    assert_non_null(strstr(expect(f, 3, 200), "condition='item-not-found'"));
    assert_true(bosh_finished(f->b));
}

static void test_repeated_rid(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    out_el(f, MSG);
    char first[1024];
    snprintf(first, sizeof first, "%s", expect(f, 2, 200));
    /* The connection broke: the same rid again gets the same answer. */
    req(f, 5, BODY("rid='101'", ""));
    assert_string_equal(expect(f, 5, 200), first);
    /* So does the creation request's (within the window kept). */
    req(f, 6, BODY("rid='100'", ""));
    assert_non_null(strstr(expect(f, 6, 200), "authid='stream1'"));
    /* A rid received again while held: the old connection gets a recoverable error. */
    req(f, 7, BODY("rid='102'", ""));
    req(f, 8, BODY("rid='102'", ""));
    assert_string_equal(expect(f, 7, 200),
                        "<body xmlns='http://jabber.org/protocol/httpbind' type='error'/>");
    out_el(f, MSG);
    assert_non_null(strstr(expect(f, 8, 200), MSG));
    assert_false(bosh_ended(f->b));
    /* Asked for again and again: past BOSH_REPEATS_MAX, policy-violation. */
    for (unsigned i = 1; i < BOSH_REPEATS_MAX; i++) {
        req(f, 20 + i, BODY("rid='101'", ""));
        assert_string_equal(expect(f, 20 + i, 200), first);
    }
    req(f, 30, BODY("rid='101'", ""));
    assert_non_null(strstr(expect(f, 30, 200), "condition='policy-violation'"));
    assert_true(bosh_ended(f->b));
}

static void test_repeated_rid_window(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    out_el(f, MSG);
    expect(f, 2, 200);
    req(f, 7, BODY("rid='102'", ""));
    out_el(f, MSG);
    expect(f, 7, 200);
    /* One no longer kept (requests = 2: 101 and 102 are) ends the session. */
    req(f, 9, BODY("rid='100'", ""));
    assert_non_null(strstr(expect(f, 9, 200), "type='terminate' condition='item-not-found'"));
    assert_true(bosh_ended(f->b));
}

static void test_rid_beyond_window(void **state)
{
    fixture *f = *state;
    create(f, "");
    unsigned r = req(f, 2, BODY("rid='103'", "<message/>"));
    assert_true(r & BOSH_REQ_ENDED);
    assert_true(r & BOSH_REQ_REFUSED);
    assert_string_equal(expect(f, 2, 200), "<body xmlns='http://jabber.org/protocol/httpbind'"
                        " type='terminate' condition='item-not-found'/>");
    assert_int_equal(buf_len(&f->stream), 0);
    assert_true(bosh_ended(f->b));
    assert_true(bosh_finished(f->b));
    /* Later requests: as for an unknown session. */
    req(f, 3, BODY("rid='101'", ""));
    assert_non_null(strstr(expect(f, 3, 200), "item-not-found"));
}

static void test_legacy_codes(void **state)
{
    fixture *f = *state;
    const char *body = "<body xmlns='http://jabber.org/protocol/httpbind' rid='5' to='example.com'/>";
    open_session(f, body);
    out_el(f, FEATURES);
    assert_null(strstr(expect(f, 1, 200), "ver="));
    req(f, 2, BODY("rid='50'", ""));
    expect(f, 2, 404);
}

static void test_restart(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"));
    assert_non_null(strstr(cstr(&f->stream), "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"));
    out_el(f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    expect(f, 2, 200);
    buf_truncate(&f->stream, 0);
    req(f, 3, "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' sid='"
        SID "' rid='102' to='example.com' xml:lang='de' xmpp:restart='true'><message/></body>");
    const char *s = cstr(&f->stream);
    assert_non_null(strstr(s, "<stream:stream xmlns='jabber:client'"));
    assert_non_null(strstr(s, "xml:lang='de'"));
    assert_null(strstr(s, "<message"));
    /* The new header is not an answer; the features after it are. */
    const char *open2 = "<open xmlns='" XMPP_FRAMING_NS "' from='example.com' id='stream2' version='1.0'/>";
    bosh_output(f->b, FRAMING_OUT_OPEN, open2, strlen(open2), f->now);
    assert_false(pop(f));
    out_el(f, FEATURES);
    const char *a = expect(f, 3, 200);
    assert_non_null(strstr(a, FEATURES));
    assert_null(strstr(a, "sid="));
}

static void test_client_terminates(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    unsigned r = req(f, 3, BODY("rid='102' type='terminate'", "<presence type='unavailable'/>"));
    assert_true(r & BOSH_REQ_ENDED);
    assert_string_equal(cstr(&f->stream), "<presence type='unavailable'/></stream:stream>");
    assert_non_null(strstr(expect(f, 2, 200), "type='terminate'"));
    assert_string_equal(expect(f, 3, 200),
                        "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>");
    assert_true(bosh_ended(f->b));
    assert_true(bosh_finished(f->b));
    /* The c2s stream's goodbye is dropped. */
    bosh_output(f->b, FRAMING_OUT_CLOSE, "", 0, f->now);
    assert_false(pop(f));
}

static void test_server_terminates(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    out_el(f, "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns="
              "'urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    bosh_output(f->b, FRAMING_OUT_CLOSE, "", 0, f->now);
    assert_true(bosh_ended(f->b));
    const char *a = expect(f, 2, 200);
    assert_non_null(strstr(a, "type='terminate' condition='remote-stream-error'"));
    assert_non_null(strstr(a, "<conflict"));
    assert_true(bosh_finished(f->b));
}

static void test_server_terminates_between_requests(void **state)
{
    fixture *f = *state;
    create(f, "");
    bosh_output(f->b, FRAMING_OUT_CLOSE, "", 0, f->now);
    assert_true(bosh_ended(f->b));
    assert_false(bosh_finished(f->b));
    assert_false(pop(f));
    req(f, 2, BODY("rid='101'", "<message/>"));
    assert_int_equal(buf_len(&f->stream), 0);
    assert_string_equal(expect(f, 2, 200),
                        "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>");
    assert_true(bosh_finished(f->b));
}

static void test_host_unknown(void **state)
{
    fixture *f = *state;
    const char *body = "<body xmlns='http://jabber.org/protocol/httpbind' rid='5' to='nowhere' ver='1.11'/>";
    open_session(f, body);
    out_el(f, "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns="
              "'urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    bosh_output(f->b, FRAMING_OUT_CLOSE, "", 0, f->now);
    assert_non_null(strstr(expect(f, 1, 200), "condition='host-unknown'"));
    assert_true(bosh_finished(f->b));
}

static void test_pause(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    out_el(f, MSG);     /* not popped yet: the pause answers carry it, the oldest first */
    req(f, 3, BODY("rid='102' pause='100'", ""));
    assert_non_null(strstr(expect(f, 2, 200), MSG));
    assert_string_equal(expect(f, 3, 200), "<body xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_int_equal(bosh_tick(f->b, f->now + 61000), f->now + 100000);
    assert_false(bosh_ended(f->b));
    /* A pause answer is not kept for a repeat. */
    req(f, 4, BODY("rid='102'", ""));
    assert_non_null(strstr(expect(f, 4, 200), "item-not-found"));
}

static void test_pause_clamped_and_ends(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101' pause='100000'", ""));
    expect(f, 2, 200);
    assert_int_equal(bosh_tick(f->b, f->now), f->now + 120000);
    bosh_tick(f->b, f->now + 120000);
    assert_true(bosh_ended(f->b));
    assert_true(bosh_finished(f->b));
    assert_false(pop(f));
}

static void test_inactivity(void **state)
{
    fixture *f = *state;
    create(f, "");
    assert_int_equal(bosh_tick(f->b, f->now + 59999), f->now + 60000);
    assert_false(bosh_ended(f->b));
    assert_int_equal(bosh_tick(f->b, f->now + 60000), UINT64_MAX);
    assert_true(bosh_ended(f->b));
    assert_true(bosh_finished(f->b));
    /* A held request keeps it alive. */
    fixture g = {.lim = f->lim, .now = f->now};
    create(&g, "");
    req(&g, 2, BODY("rid='101'", ""));
    bosh_tick(g.b, g.now + 59999);
    assert_false(bosh_ended(g.b));
    bosh_free(g.b);
    buf_free(&g.stream);
    buf_free(&g.body);
}

static void test_body_max(void **state)
{
    fixture *f = *state;
    f->lim.body_max = 400;
    create(f, "");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    unsigned r = req(f, 2, BODY("rid='101'", "<message><body>%s</body></message>"), big);
    assert_true(r & BOSH_REQ_ENDED);
    assert_non_null(strstr(expect(f, 2, 200), "condition='bad-request'"));
    assert_int_equal(buf_len(&f->stream), 0);
}

static void test_queue_max(void **state)
{
    fixture *f = *state;
    f->lim.queue_max = 3 * strlen(MSG);
    create(f, "");
    out_el(f, MSG);
    out_el(f, MSG);
    out_el(f, MSG);
    assert_false(bosh_ended(f->b));
    out_el(f, MSG);
    assert_true(bosh_ended(f->b));
    req(f, 2, BODY("rid='101'", ""));
    assert_string_equal(expect(f, 2, 200), "<body xmlns='http://jabber.org/protocol/httpbind'"
                        " type='terminate' condition='policy-violation'/>");
    assert_true(bosh_finished(f->b));
}

static void test_malformed_in_session(void **state)
{
    const char *bad[] = {
        BODY("rid='101'", "<message>"),
        BODY("rid='101'", "<message/><!-- c -->"),
        BODY("rid='101'", "<?pi x?>"),
        BODY("", ""),
        BODY("rid='0'", ""),
        "<body xmlns='http://jabber.org/protocol/httpbind' sid='" SID "' rid='101'/><x/>",
        "<!DOCTYPE body><body xmlns='http://jabber.org/protocol/httpbind' sid='" SID "' rid='101'/>",
        "<body xmlns='urn:wrong' sid='" SID "' rid='101'/>",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fixture *f = *state;
        create(f, "");
        unsigned r = req(f, 2, "%s", bad[i]);
        assert_true(r & BOSH_REQ_ENDED);
        if (!strstr(expect(f, 2, 200), "condition='bad-request'"))
            fail_msg("%s: %s", bad[i], cstr(&f->body));
        assert_int_equal(buf_len(&f->stream), 0);
        bosh_free(f->b);
        f->b = NULL;
    }
    /* Deep nesting is refused, not recursed into. */
    fixture *f = *state;
    create(f, "");
    buf deep = BUF_INIT;
    for (int i = 0; i < BOSH_DEPTH_MAX; i++)
        buf_appendf(&deep, "<a>");
    for (int i = 0; i < BOSH_DEPTH_MAX; i++)
        buf_appendf(&deep, "</a>");
    req(f, 2, BODY("rid='101'", "%s"), cstr(&deep));
    assert_non_null(strstr(expect(f, 2, 200), "condition='bad-request'"));
    buf_free(&deep);
}

static void test_wrong_sid(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, "<body xmlns='http://jabber.org/protocol/httpbind' sid='other' rid='101'/>");
    assert_non_null(strstr(expect(f, 2, 200), "condition='item-not-found'"));
}

static void test_overactivity(void **state)
{
    fixture *f = *state;
    create(f, "");
    f->now += 10000;
    /* Two at once (requests = 2): one pushes the other out. */
    req(f, 2, BODY("rid='101'", "<message/>"));
    req(f, 3, BODY("rid='102'", "<message/>"));
    expect(f, 2, 200);
    /* 102 held, 104 ahead of a gap, and a terminate may come on top of the window. */
    req(f, 4, BODY("rid='104'", "<message/>"));
    assert_false(bosh_ended(f->b));
    unsigned r = req(f, 5, BODY("rid='103' type='terminate'", ""));
    assert_true(r & BOSH_REQ_ENDED);
    assert_null(strstr(cstr(&f->body), "policy-violation"));
    /* A third request while two are unanswered is too many. */
    fixture g = {.lim = f->lim, .now = f->now};
    create(&g, "");
    g.now += 10000;
    req(&g, 2, BODY("rid='101'", "<message/>"));
    req(&g, 3, BODY("rid='103'", "<message/>"));
    assert_false(pop(&g));
    r = req(&g, 4, BODY("rid='102'", "<message/>"));
    assert_true(r & BOSH_REQ_ENDED);
    assert_non_null(strstr(expect(&g, 2, 200), "condition='policy-violation'"));
    assert_non_null(strstr(expect(&g, 3, 200), "condition='policy-violation'"));
    assert_non_null(strstr(expect(&g, 4, 200), "condition='policy-violation'"));
    assert_true(bosh_finished(g.b));
    bosh_free(g.b);
    buf_free(&g.stream);
    buf_free(&g.body);
}

static void test_polling_too_often(void **state)
{
    fixture *f = *state;
    const char *body = "<body xmlns='http://jabber.org/protocol/httpbind' rid='5' to='example.com'"
                       " wait='0' hold='0' ver='1.11'/>";
    open_session(f, body);
    out_el(f, FEATURES);
    assert_non_null(strstr(expect(f, 1, 200), "hold='0'"));
    f->now += 6000;
    req(f, 2, BODY("rid='6'", ""));
    assert_string_equal(expect(f, 2, 200), "<body xmlns='http://jabber.org/protocol/httpbind'/>");
    f->now += 6000;
    req(f, 3, BODY("rid='7'", ""));
    expect(f, 3, 200);
    assert_false(bosh_ended(f->b));
    f->now += 1000;
    req(f, 4, BODY("rid='8'", ""));
    assert_non_null(strstr(expect(f, 4, 200), "condition='policy-violation'"));
    assert_true(bosh_ended(f->b));
}

static void test_request_gone(void **state)
{
    fixture *f = *state;
    create(f, "");
    req(f, 2, BODY("rid='101'", ""));
    bosh_request_gone(f->b, 2);
    out_el(f, MSG);
    assert_false(pop(f));
    /* The client sends 101 again: the answer was kept. */
    req(f, 3, BODY("rid='101'", ""));
    assert_non_null(strstr(expect(f, 3, 200), MSG));
    /* An answer ready but not popped is dropped with its connection. */
    req(f, 4, BODY("rid='102'", ""));
    out_el(f, MSG);
    bosh_request_gone(f->b, 4);
    assert_false(pop(f));
}

/* ---- with the real c2s stream ---------------------------------------------------------------- */

static void emit_to_bosh(void *ctx, framing_out_kind kind, const char *data, size_t len)
{
    fixture *f = ctx;
    bosh_output(f->b, kind, data, len, f->now);
}

/* What the stream wrote goes through framing_out into the session. */
static void pump(fixture *f, c2s_stream *c)
{
    c2s_stream_feed(c, buf_data(&f->stream), buf_len(&f->stream));
    buf_truncate(&f->stream, 0);
    buf *o = c2s_stream_out(c);
    buf_consume(o, framing_out(buf_data(o), buf_len(o), emit_to_bosh, f));
}

static void test_with_c2s_stream(void **state)
{
    fixture *f = *state;
    static char *hosts[] = {"example.com", NULL};
    front_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hosts = hosts;
    cfg.nhosts = 1;
    cfg.limits.stanza_size = 65536;
    cfg.limits.auth_failures = 3;
    cfg.csi.max_stanzas = 100;
    buf frames = BUF_INIT;
    c2s_env env = {.cfg = &cfg, .frames = &frames};
    const char *creation[] = {
        "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='7'"
        " to='example.com' wait='60' hold='1' ver='1.11' xmpp:version='1.0'/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' rid='7' to='nowhere.example' ver='1.11'/>",
    };
    for (int i = 0; i < 2; i++) {
        c2s_stream *c = c2s_stream_new(&env, 42, true, NULL);
        int status;
        buf answer = BUF_INIT;
        f->b = bosh_new(&f->lim, SID, 1, creation[i], strlen(creation[i]), f->now, &f->stream,
                        &status, &answer);
        pump(f, c);
        const char *a = expect(f, 1, 200);
        if (i == 0) {
            assert_non_null(strstr(a, "from='example.com'"));
            assert_non_null(strstr(a, "authid='"));
            assert_non_null(strstr(a, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"));
            assert_non_null(strstr(a, "<mechanism>PLAIN</mechanism>"));
            assert_false(bosh_ended(f->b));
            /* The client leaves: the stream sees its closing tag. */
            req(f, 2, BODY("rid='8' type='terminate'", ""));
            pump(f, c);
            assert_true(c2s_stream_closed(c));
            assert_non_null(strstr(expect(f, 2, 200), "type='terminate'"));
        } else {
            assert_non_null(strstr(a, "type='terminate' condition='host-unknown'"));
            assert_non_null(strstr(a, "<host-unknown"));
        }
        assert_true(bosh_finished(f->b));
        bosh_free(f->b);
        f->b = NULL;
        c2s_stream_free(c);
        buf_free(&answer);
    }
    buf_free(&frames);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_creation), T(test_creation_negotiates), T(test_creation_refused), T(test_body_sid),
        T(test_payloads), T(test_hold_and_wait), T(test_rid_out_of_order),
        T(test_rid_gap_never_fills), T(test_repeated_rid), T(test_repeated_rid_window),
        T(test_rid_beyond_window),
        T(test_legacy_codes), T(test_restart), T(test_client_terminates),
        T(test_server_terminates), T(test_server_terminates_between_requests),
        T(test_host_unknown), T(test_pause), T(test_pause_clamped_and_ends), T(test_inactivity),
        T(test_body_max), T(test_queue_max), T(test_malformed_in_session), T(test_wrong_sid),
        T(test_overactivity), T(test_polling_too_often), T(test_request_gone), T(test_with_c2s_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
