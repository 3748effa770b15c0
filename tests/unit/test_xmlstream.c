/* tests/unit/test_xmlstream.c — the XMPP stream parser: chunking, restricted XML, limits, errors,
 * restarts, shrinking, renewal, and the parse -> serialize -> parse round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/xml.h"
#include "core/xml_write.h"
#include "core/xmlmem.h"
#include "core/xmlstream.h"

#define HDR "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

/* The contents of b as a string: a NUL goes into the reserved space after the data. */
static const char *cstr(buf *b)
{
    *buf_reserve(b, 1) = '\0';
    return buf_data(b);
}

static void put(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* ---- a recorder: every event the parser reports, as one transcript string --------------------- */

typedef struct recorder {
    xmlstream *stream;
    buf log;
    char content_ns[256];
    const char *stop_on;   /* stop after a stanza with this local name */
    bool stop_on_header;
    bool shrink_always;    /* xmlstream_shrink after every feed */
    size_t pos;            /* index of the last byte of the current chunk, in the whole input */
    size_t event_pos[64];  /* pos at each header/stanza/close event */
    size_t nevents;
    size_t stanzas;
    xml_arena *last_arena; /* the last stanza, kept when keep_last */
    xml_node *last;
    bool keep_last;
} recorder;

static void note_event(recorder *r)
{
    if (r->nevents < sizeof(r->event_pos) / sizeof(r->event_pos[0]))
        r->event_pos[r->nevents] = r->pos;
    r->nevents++;
}

static void on_header(void *ctx, const xml_node *root, const char *content_ns)
{
    recorder *r = ctx;
    char line[32];
    snprintf(line, sizeof(line), "H%u:", (unsigned)root->line);
    put(&r->log, line);
    xml_write_node(&r->log, root, "", false);
    put(&r->log, " content=");
    put(&r->log, content_ns);
    put(&r->log, "\n");
    snprintf(r->content_ns, sizeof(r->content_ns), "%s", content_ns);
    note_event(r);
    if (r->stop_on_header)
        xmlstream_stop(r->stream);
}

static void on_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    recorder *r = ctx;
    char line[32];
    snprintf(line, sizeof(line), "S%u:", (unsigned)stanza->line);
    put(&r->log, line);
    xml_write_node(&r->log, stanza, r->content_ns, true);
    put(&r->log, "\n");
    note_event(r);
    r->stanzas++;
    if (r->stop_on && strcmp(stanza->name, r->stop_on) == 0)
        xmlstream_stop(r->stream);
    if (r->keep_last) {
        xml_arena_free(r->last_arena);
        r->last_arena = arena;
        r->last = stanza;
    } else {
        xml_arena_free(arena);
    }
}

static void on_close(void *ctx)
{
    recorder *r = ctx;
    put(&r->log, "C\n");
    note_event(r);
}

static const xmlstream_handlers handlers = {on_header, on_stanza, on_close};

static void recorder_init(recorder *r, const xmlstream_limits *limits)
{
    memset(r, 0, sizeof(*r));
    r->stream = xmlstream_new(&handlers, r, limits);
}

static void recorder_free(recorder *r)
{
    xmlstream_free(r->stream);
    buf_free(&r->log);
    xml_arena_free(r->last_arena);
}

static void log_end(recorder *r, xmlstream_status st)
{
    if (st == XMLSTREAM_FAILED) {
        put(&r->log, "E:");
        put(&r->log, xmlstream_condition_name(xmlstream_get_error(r->stream)->condition));
        put(&r->log, "\n");
    } else if (st == XMLSTREAM_CLOSED) {
        put(&r->log, "END\n");
    }
}

/* Feeds one chunk; a stop is answered with a reset and the rest of the chunk, as a server
 * answering a restart would. Returns OK, CLOSED or FAILED. */
static xmlstream_status feed_chunk(recorder *r, const char *data, size_t n)
{
    for (;;) {
        size_t used = 12345;
        xmlstream_status st = xmlstream_feed(r->stream, data, n, &used);
        if (r->shrink_always)
            xmlstream_shrink(r->stream);
        if (st == XMLSTREAM_OK)
            assert_int_equal(used, n);
        if (st != XMLSTREAM_STOPPED)
            return st;
        assert_true(used <= n);
        put(&r->log, "R\n");
        xmlstream_reset(r->stream);
        data += used;
        n -= used;
        if (!n)
            return XMLSTREAM_OK;
    }
}

/* Feeds input in chunks of step bytes (0: all at once) and ends the transcript. */
static xmlstream_status feed_steps(recorder *r, const char *in, size_t len, size_t step)
{
    xmlstream_status st = XMLSTREAM_OK;
    for (size_t off = 0; off < len && st == XMLSTREAM_OK;) {
        size_t n = step && step < len - off ? step : len - off;
        r->pos = off + n - 1;
        st = feed_chunk(r, in + off, n);
        off += n;
    }
    log_end(r, st);
    return st;
}

static xmlstream_status feed_split(recorder *r, const char *in, size_t len, size_t cut)
{
    xmlstream_status st = XMLSTREAM_OK;
    if (cut) {
        r->pos = cut - 1;
        st = feed_chunk(r, in, cut);
    }
    if (st == XMLSTREAM_OK && cut < len) {
        r->pos = len - 1;
        st = feed_chunk(r, in + cut, len - cut);
    }
    log_end(r, st);
    return st;
}

/* One parse of input: the status and the transcript (caller frees). */
static char *transcript(const char *in, size_t len, size_t step, const xmlstream_limits *limits,
                        const char *stop_on, xmlstream_status *status)
{
    recorder r;
    recorder_init(&r, limits);
    r.stop_on = stop_on;
    xmlstream_status st = feed_steps(&r, in, len, step);
    if (status)
        *status = st;
    char *out = strdup(cstr(&r.log));
    recorder_free(&r);
    return out;
}

static xmlstream_condition condition_of(const char *in, size_t len, size_t step, const xmlstream_limits *limits)
{
    recorder r;
    recorder_init(&r, limits);
    xmlstream_status st = feed_steps(&r, in, len, step);
    xmlstream_condition c = st == XMLSTREAM_FAILED ? xmlstream_get_error(r.stream)->condition : XMLSTREAM_ERR_NONE;
    if (st == XMLSTREAM_FAILED) {
        assert_true(xmlstream_get_error(r.stream)->text[0] != '\0');
        assert_non_null(xmlstream_condition_name(c));
    }
    recorder_free(&r);
    return c;
}

/* The condition (NONE when the input is accepted) must not depend on chunking. */
static void expect_condition(const char *in, size_t len, const xmlstream_limits *limits, xmlstream_condition want)
{
    xmlstream_condition whole = condition_of(in, len, 0, limits);
    xmlstream_condition bytes = condition_of(in, len, 1, limits);
    if (whole != want || bytes != want)
        fail_msg("input '%.*s': want %s, got %s whole and %s one byte at a time", (int)(len > 300 ? 300 : len),
                 in, xmlstream_condition_name(want) ? xmlstream_condition_name(want) : "no error",
                 xmlstream_condition_name(whole) ? xmlstream_condition_name(whole) : "no error",
                 xmlstream_condition_name(bytes) ? xmlstream_condition_name(bytes) : "no error");
}

static void expect_str(const char *in, const xmlstream_limits *limits, xmlstream_condition want)
{
    expect_condition(in, strlen(in), limits, want);
}

/* HDR + body, as a heap string. */
static char *in_stream(const char *body)
{
    size_t n = strlen(HDR) + strlen(body) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%s%s", HDR, body);
    return s;
}

static void expect_in_stream(const char *body, const xmlstream_limits *limits, xmlstream_condition want)
{
    char *s = in_stream(body);
    expect_str(s, limits, want);
    free(s);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- a realistic session: every split gives the same result ------------------------------------ */

static const char session[] =
    "<?xml version='1.0'?>\n"
    "<stream:stream to='example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>\n"
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>"
    "<stream:stream to='example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\n"
    "<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>balcony</resource></bind></iq>\n"
    "<presence><show>away</show><status>Quo&apos;te &quot;&amp;&quot; &lt;b&gt; ]]&gt; "
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x89</status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' "
    "ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence> \t \r\n \n"
    "<message to='romeo@example.net' type=\"chat\" id='m1'>"
    "<body>line1\r\nline2&#13;&#x10348;<![CDATA[<not a tag> & ]]></body>"
    "<p:thread xmlns:p='jabber:client'>t1</p:thread>"
    "<x:y xmlns:x='urn:x' x:a='1' b='&#9;tab&#10;' xmlns=''><z/></x:y></message>"
    "<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>\n"
    "</stream:stream>";

static const char session_expected[] =
    "H2:<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' "
    "xml:lang='en'/> content=jabber:client\n"
    "S3:<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>\n"
    "R\n"
    "H1:<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'/> "
    "content=jabber:client\n"
    "S2:<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>balcony</resource></bind></iq>\n"
    "S3:<presence><show>away</show><status>Quo'te \"&amp;\" &lt;b&gt; ]]&gt; "
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x89</status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' "
    "ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>\n"
    "S5:<message to='romeo@example.net' type='chat' id='m1'>"
    "<body>line1\nline2&#13;\xf0\x90\x8d\x88&lt;not a tag&gt; &amp; </body>"
    "<thread>t1</thread>"
    "<y xmlns='urn:x' xmlns:ns0='urn:x' ns0:a='1' b='&#9;tab&#10;'><z xmlns=''/></y></message>\n"
    "S6:<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>\n"
    "C\n"
    "END\n";

static void test_session_whole(void **state)
{
    xmlstream_status st;
    char *t = transcript(session, sizeof(session) - 1, 0, NULL, "auth", &st);
    assert_int_equal(st, XMLSTREAM_CLOSED);
    assert_string_equal(t, session_expected);
    free(t);
}

static void test_session_every_split(void **state)
{
    size_t len = sizeof(session) - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        recorder r;
        recorder_init(&r, NULL);
        r.stop_on = "auth";
        feed_split(&r, session, len, cut);
        if (strcmp(cstr(&r.log), session_expected) != 0)
            fail_msg("split at %zu:\n%s", cut, cstr(&r.log));
        recorder_free(&r);
    }
}

static void test_session_small_chunks(void **state)
{
    for (size_t step = 1; step <= 17; step++) {
        char *t = transcript(session, sizeof(session) - 1, step, NULL, "auth", NULL);
        if (strcmp(t, session_expected) != 0)
            fail_msg("chunks of %zu:\n%s", step, t);
        free(t);
    }
}

/* ---- a stanza is delivered as soon as its last byte arrives (no reparse deferral) -------------- */

static void test_yield_on_last_byte(void **state)
{
    const char *pieces[] = {
        "<?xml version='1.0'?>" HDR,
        "<message to='romeo@example.net' type='chat' id='abcdefghijklmnopqrstuvwxyz'>"
        "<body>hello there, this is a longer text to make the token big</body></message>",
        "  \n",
        "<presence/>",
        "<iq type='get' id='x'><query xmlns='jabber:iq:roster'/></iq>",
        "\n",
        "</stream:stream>",
    };
    buf in = BUF_INIT;
    size_t expect[8], nexpect = 0;
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        put(&in, pieces[i]);
        if (pieces[i][0] == '<')
            expect[nexpect++] = buf_len(&in) - 1;
    }
    recorder r;
    recorder_init(&r, NULL);
    assert_int_equal(feed_steps(&r, buf_data(&in), buf_len(&in), 1), XMLSTREAM_CLOSED);
    assert_int_equal(r.nevents, nexpect);
    for (size_t i = 0; i < nexpect; i++)
        assert_int_equal(r.event_pos[i], expect[i]);
    recorder_free(&r);
    buf_free(&in);
}

/* ---- restricted XML (RFC 6120 §11.1) ------------------------------------------------------------ */

static void test_restricted_xml(void **state)
{
    expect_str("<!-- hello -->" HDR, NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_str("<?xml version='1.0'?><!-- hello -->" HDR, NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_in_stream("<!-- between -->", NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_in_stream("<message><!-- inside --></message>", NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_str("<?xml version='1.0'?><?xml-stylesheet href='a'?>" HDR, NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_in_stream("<?foo bar?>", NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_in_stream("<message><?foo?></message>", NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_str("<!DOCTYPE stream:stream>" HDR, NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_str("<!DOCTYPE stream:stream SYSTEM 'http://example.com/x.dtd'>" HDR, NULL,
               XMLSTREAM_ERR_RESTRICTED_XML);
    expect_str("<!DOCTYPE s [<!ENTITY x 'boom'>]>" HDR "<message>&x;</message>", NULL,
               XMLSTREAM_ERR_RESTRICTED_XML);
    expect_str("<!DOCTYPE s [<!ENTITY % p SYSTEM 'http://example.com/p'> %p;]>" HDR, NULL,
               XMLSTREAM_ERR_RESTRICTED_XML);
    /* Entity references other than the five predefined ones. */
    expect_in_stream("<message>&x;</message>", NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_in_stream("<message to='&x;'/>", NULL, XMLSTREAM_ERR_RESTRICTED_XML);
    expect_in_stream("<message>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;</message>", NULL, XMLSTREAM_ERR_NONE);
}

/* ---- encodings ----------------------------------------------------------------------------------- */

static void test_encoding(void **state)
{
    expect_str("<?xml version='1.0' encoding='ISO-8859-1'?>" HDR, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    expect_str("<?xml version='1.0' encoding='UTF-16'?>" HDR, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    expect_str("<?xml version='1.0' encoding='UTF-8'?>" HDR, NULL, XMLSTREAM_ERR_NONE);
    expect_str("<?xml version='1.0' encoding='utf-8'?>" HDR, NULL, XMLSTREAM_ERR_NONE);
    expect_str("\xef\xbb\xbf" HDR, NULL, XMLSTREAM_ERR_NONE);
    static const char utf16le[] = "\xff\xfe<\0s\0>\0";
    static const char utf16be[] = "\xfe\xff\0<\0s\0>";
    static const char utf16_nobom[] = "\0<\0s\0>";
    static const char utf16le_nobom[] = "<\0s\0>\0";
    expect_condition(utf16le, sizeof(utf16le) - 1, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    expect_condition(utf16be, sizeof(utf16be) - 1, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    expect_condition(utf16_nobom, sizeof(utf16_nobom) - 1, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    expect_condition(utf16le_nobom, sizeof(utf16le_nobom) - 1, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    /* Decided on the first two bytes together, however they arrive (expat alone would refuse
     * the first byte if it came alone, and read UTF-16 if both came at once). */
    static const char ctrl_nul[] = "C\0";
    expect_condition(ctrl_nul, sizeof(ctrl_nul) - 1, NULL, XMLSTREAM_ERR_UNSUPPORTED_ENCODING);
    static const char ctrl_ok[] = "\x03<";
    expect_condition(ctrl_ok, sizeof(ctrl_ok) - 1, NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
}

/* ---- not-well-formed and friends ---------------------------------------------------------------- */

static void test_not_well_formed(void **state)
{
    const char *bodies[] = {
        "<message></presence>",
        "<message><body>\x80</body></message>",          /* lone continuation byte */
        "<message><body>\xc3\x28</body></message>",      /* truncated sequence */
        "<message><body>\xc0\xaf</body></message>",      /* overlong */
        "<message><body>\xed\xa0\x80</body></message>",  /* UTF-16 surrogate */
        "<message><body>\xf4\x90\x80\x80</body></message>", /* beyond U+10FFFF */
        "<message><body>\xef\xbf\xbe</body></message>",  /* U+FFFE */
        "<message><body>\x01</body></message>",
        "<message><body>&#0;</body></message>",
        "<message><body>&#1;</body></message>",
        "<message><body>&#xD800;</body></message>",
        "<message to='a' to='b'/>",
        "<message xmlns:a='u' xmlns:b='u' a:x='1' b:x='2'/>",
        "<a:b:c xmlns:a='u'/>",
        "<message to='a<b'/>",
        "<message to=a/>",
        "<message xmlns:p=''/>",
        "<message xmlns:xml='urn:other'/>",
        "<message xmlns='http://www.w3.org/XML/1998/namespace'/>",
        "<?xml version='1.0'?>",
        "<message>]]></message>",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_in_stream(bodies[i], NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);

    static const char nul[] = HDR "<message>\0</message>";
    expect_condition(nul, sizeof(nul) - 1, NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
    expect_str("hello" HDR, NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
    expect_str("</stream:stream>", NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
}

static void test_stream_level_errors(void **state)
{
    /* Non-whitespace text between stanzas (RFC 6120 §11.7: whitespace only), malformed or not. */
    expect_in_stream("hello", NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
    expect_in_stream("<presence/> x <presence/>", NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
    expect_in_stream("&#65;", NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
    expect_in_stream("<presence/>   text ]]> more", NULL, XMLSTREAM_ERR_NOT_WELL_FORMED);
    expect_in_stream(" \t\r\n&#32;&#10;<![CDATA[ ]]> ", NULL, XMLSTREAM_ERR_NONE);
    /* The stream element. */
    expect_str("<stream xmlns='jabber:client'>", NULL, XMLSTREAM_ERR_INVALID_NAMESPACE);
    expect_str("<stream:stream xmlns:stream='urn:wrong'>", NULL, XMLSTREAM_ERR_INVALID_NAMESPACE);
    expect_str("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>", NULL,
               XMLSTREAM_ERR_BAD_FORMAT);
    expect_str("<stream xmlns='http://etherx.jabber.org/streams'>", NULL, XMLSTREAM_ERR_NONE);
    /* Undeclared prefixes. */
    expect_str("<stream:stream xmlns='jabber:client'>", NULL, XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX);
    expect_in_stream("<foo:message/>", NULL, XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX);
    expect_in_stream("<message foo:to='x'/>", NULL, XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX);
    expect_in_stream("<message><a:b/></message>", NULL, XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX);
}

static void test_condition_names(void **state)
{
    assert_null(xmlstream_condition_name(XMLSTREAM_ERR_NONE));
    assert_string_equal(xmlstream_condition_name(XMLSTREAM_ERR_BAD_FORMAT), "bad-format");
    assert_string_equal(xmlstream_condition_name(XMLSTREAM_ERR_RESTRICTED_XML), "restricted-xml");
    assert_string_equal(xmlstream_condition_name(XMLSTREAM_ERR_NOT_WELL_FORMED), "not-well-formed");
    assert_string_equal(xmlstream_condition_name(XMLSTREAM_ERR_UNSUPPORTED_VERSION), "unsupported-version");
    for (int c = XMLSTREAM_ERR_BAD_FORMAT; c <= XMLSTREAM_ERR_UNSUPPORTED_VERSION; c++)
        assert_non_null(xmlstream_condition_name((xmlstream_condition)c));
    assert_null(xmlstream_condition_name((xmlstream_condition)(XMLSTREAM_ERR_UNSUPPORTED_VERSION + 1)));
}

/* After an error: no more events, the same error, stanzas before it were delivered. */
static void test_error_is_final(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    const char *in = HDR "\n<presence/>\n\n<message></presence><iq/>";
    size_t used = 0;
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in), &used), XMLSTREAM_FAILED);
    assert_int_equal(r.stanzas, 1);
    const xmlstream_error *e = xmlstream_get_error(r.stream);
    assert_int_equal(e->condition, XMLSTREAM_ERR_NOT_WELL_FORMED);
    assert_int_equal(e->line, 4);
    assert_string_equal(e->text, "mismatched tag");
    assert_int_equal(xmlstream_feed(r.stream, "<presence/>", 11, &used), XMLSTREAM_FAILED);
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(xmlstream_get_error(r.stream)->condition, XMLSTREAM_ERR_NOT_WELL_FORMED);
    /* A reset starts over. */
    xmlstream_reset(r.stream);
    assert_int_equal(xmlstream_get_error(r.stream)->condition, XMLSTREAM_ERR_NONE);
    const char *again = HDR "<presence/>";
    assert_int_equal(xmlstream_feed(r.stream, again, strlen(again), &used), XMLSTREAM_OK);
    assert_int_equal(r.stanzas, 2);
    recorder_free(&r);
}

/* ---- limits: limit - 1 and limit accepted, limit + 1 refused ------------------------------------ */

static void limits_small(xmlstream_limits *l)
{
    xmlstream_limits_default(l);
    l->max_stanza_bytes = 300;
    l->max_attr_bytes = 300;
    l->max_text_bytes = 300;
}

static void test_limit_defaults(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    assert_int_equal(l.max_stanza_bytes, 65536);
    assert_int_equal(l.max_depth, 32);
    assert_int_equal(l.max_attrs, 64);
    assert_int_equal(l.max_attr_bytes, 65536);
    assert_int_equal(l.max_text_bytes, 65536);
    assert_int_equal(l.max_header_bytes, 4096);
    assert_int_equal(l.renew_tag_bytes, 256 * 1024);
}

/* Stanzas of exactly size bytes, made big by text or by one long attribute (a single token). */
static char *stanza_with_text(size_t size)
{
    const char *open = "<message><body>", *close = "</body></message>";
    size_t fill = size - strlen(open) - strlen(close);
    char *text = repeat('a', fill), *s = malloc(size + 1);
    snprintf(s, size + 1, "%s%s%s", open, text, close);
    free(text);
    return s;
}

static char *stanza_with_attr(size_t size)
{
    const char *open = "<message to='", *close = "'/>";
    size_t fill = size - strlen(open) - strlen(close);
    char *value = repeat('b', fill), *s = malloc(size + 1);
    snprintf(s, size + 1, "%s%s%s", open, value, close);
    free(value);
    return s;
}

static void expect_stanza_size(char *(*make)(size_t), size_t size, const xmlstream_limits *l, xmlstream_condition want)
{
    char *stanza = make(size);
    assert_int_equal(strlen(stanza), size);
    size_t n = strlen(stanza) + 64;
    char *body = malloc(n);
    snprintf(body, n, " <presence/>%s\n<presence/>", stanza);
    expect_in_stream(body, l, want);
    free(body);
    free(stanza);
}

static void test_limit_stanza_bytes(void **state)
{
    xmlstream_limits l;
    limits_small(&l);
    for (int i = 0; i < 2; i++) {
        char *(*make)(size_t) = i ? stanza_with_attr : stanza_with_text;
        expect_stanza_size(make, 299, &l, XMLSTREAM_ERR_NONE);
        expect_stanza_size(make, 300, &l, XMLSTREAM_ERR_NONE);
        expect_stanza_size(make, 301, &l, XMLSTREAM_ERR_POLICY_VIOLATION);
    }
    /* A stanza that never ends is refused once more than the limit has arrived, not before. */
    char *big = stanza_with_attr(1000);
    char *s = in_stream(big);
    size_t at_limit = strlen(HDR) + 300;
    assert_int_equal(condition_of(s, at_limit, 0, &l), XMLSTREAM_ERR_NONE);
    assert_int_equal(condition_of(s, at_limit, 1, &l), XMLSTREAM_ERR_NONE);
    assert_int_equal(condition_of(s, at_limit + 1, 0, &l), XMLSTREAM_ERR_POLICY_VIOLATION);
    assert_int_equal(condition_of(s, at_limit + 1, 1, &l), XMLSTREAM_ERR_POLICY_VIOLATION);
    free(s);
    free(big);
    /* Whitespace between stanzas is not part of any stanza, however much of it arrives. */
    char *spaces = repeat(' ', 5000);
    expect_in_stream(spaces, &l, XMLSTREAM_ERR_NONE);
    free(spaces);
}

static char *nested(unsigned depth)
{
    buf b = BUF_INIT;
    for (unsigned i = 0; i < depth; i++)
        put(&b, i ? "<a>" : "<message>");
    for (unsigned i = depth; i > 0; i--)
        put(&b, i > 1 ? "</a>" : "</message>");
    cstr(&b);
    return b.mem;
}

static void test_limit_depth(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    l.max_depth = 5;
    for (unsigned d = 4; d <= 6; d++) {
        char *s = nested(d);
        expect_in_stream(s, &l, d <= 5 ? XMLSTREAM_ERR_NONE : XMLSTREAM_ERR_POLICY_VIOLATION);
        free(s);
    }
    xmlstream_limits_default(&l);
    for (unsigned d = 31; d <= 33; d++) {
        char *s = nested(d);
        expect_in_stream(s, NULL, d <= 32 ? XMLSTREAM_ERR_NONE : XMLSTREAM_ERR_POLICY_VIOLATION);
        free(s);
    }
}

static char *with_attrs(const char *open, unsigned n, const char *close)
{
    buf b = BUF_INIT;
    put(&b, open);
    for (unsigned i = 0; i < n; i++) {
        char a[32];
        snprintf(a, sizeof(a), " a%u='%u'", i, i);
        put(&b, a);
    }
    put(&b, close);
    cstr(&b);
    return b.mem;
}

static void test_limit_attrs(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    l.max_attrs = 4;
    for (unsigned n = 3; n <= 5; n++) {
        xmlstream_condition want = n <= 4 ? XMLSTREAM_ERR_NONE : XMLSTREAM_ERR_POLICY_VIOLATION;
        /* On a stanza, on a nested element, and on the stream header (namespace declarations
         * do not count). */
        char *s = with_attrs("<message", n, "/>");
        expect_in_stream(s, &l, want);
        free(s);
        s = with_attrs("<message><x xmlns='urn:x' xmlns:p='urn:p'", n, "/></message>");
        expect_in_stream(s, &l, want);
        free(s);
        s = with_attrs("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'",
                       n, ">");
        expect_str(s, &l, want);
        free(s);
    }
}

static void test_limit_attr_bytes(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    l.max_attr_bytes = 10;
    expect_in_stream("<message to='123456789'/>", &l, XMLSTREAM_ERR_NONE);
    expect_in_stream("<message to='1234567890'/>", &l, XMLSTREAM_ERR_NONE);
    expect_in_stream("<message to='12345678901'/>", &l, XMLSTREAM_ERR_POLICY_VIOLATION);
    /* Counted decoded. */
    expect_in_stream("<message to='&amp;&amp;&amp;&amp;&amp;&lt;&#x10348;'/>", &l, XMLSTREAM_ERR_NONE);
    expect_in_stream("<message to='&amp;&amp;&amp;&amp;&amp;&lt;&lt;&#x10348;'/>", &l,
                     XMLSTREAM_ERR_POLICY_VIOLATION);
    expect_str("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='12345678901'>", &l,
               XMLSTREAM_ERR_POLICY_VIOLATION);
}

static void test_limit_text_bytes(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    l.max_text_bytes = 10;
    expect_in_stream("<message><body>123456789</body></message>", &l, XMLSTREAM_ERR_NONE);
    expect_in_stream("<message><body>1234567890</body></message>", &l, XMLSTREAM_ERR_NONE);
    expect_in_stream("<message><body>12345678901</body></message>", &l, XMLSTREAM_ERR_POLICY_VIOLATION);
    /* One run of text is what lies between two tags, CDATA and references included. */
    expect_in_stream("<message>1234567890<x/>1234567890</message>", &l, XMLSTREAM_ERR_NONE);
    expect_in_stream("<message>12345<![CDATA[67890]]>&amp;</message>", &l, XMLSTREAM_ERR_POLICY_VIOLATION);
    expect_in_stream("<message>&amp;&amp;&amp;&amp;&amp;&#x10348;&#x10348;</message>", &l,
                     XMLSTREAM_ERR_POLICY_VIOLATION);
    expect_in_stream("<message>&amp;&amp;&#x10348;&#x10348;</message>", &l, XMLSTREAM_ERR_NONE);
}

/* A header of exactly size bytes, XML declaration included. */
static char *header_of(size_t size)
{
    const char *open = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='";
    const char *close = "'>";
    char *fill = repeat('h', size - strlen(open) - strlen(close)), *s = malloc(size + 16);
    snprintf(s, size + 16, "%s%s%s", open, fill, close);
    free(fill);
    return s;
}

static void test_limit_header_bytes(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    for (size_t size = 4095; size <= 4097; size++) {
        char *h = header_of(size);
        assert_int_equal(strlen(h), size);
        expect_str(h, &l, size <= 4096 ? XMLSTREAM_ERR_NONE : XMLSTREAM_ERR_POLICY_VIOLATION);
        free(h);
    }
    /* Incomplete: refused only once more than the limit has arrived. */
    char *h = header_of(5000);
    for (size_t step = 0; step <= 1; step++) {
        assert_int_equal(condition_of(h, 4096, step, &l), XMLSTREAM_ERR_NONE);
        assert_int_equal(condition_of(h, 4097, step, &l), XMLSTREAM_ERR_POLICY_VIOLATION);
    }
    free(h);
    l.max_header_bytes = 100;
    char *spaces = repeat(' ', 101);
    expect_str(spaces, &l, XMLSTREAM_ERR_POLICY_VIOLATION);
    spaces[100] = '\0';
    expect_str(spaces, &l, XMLSTREAM_ERR_NONE);
    free(spaces);
}

/* ---- the stream close ----------------------------------------------------------------------------- */

static void test_close(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    const char *in = HDR "<presence/></stream:stream> <junk/>";
    size_t used = 0, close_end = strlen(HDR "<presence/></stream:stream>");
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in), &used), XMLSTREAM_CLOSED);
    assert_int_equal(used, close_end);
    assert_int_equal(r.nevents, 3);
    assert_int_equal(xmlstream_feed(r.stream, NULL, 0, &used), XMLSTREAM_CLOSED);
    assert_int_equal(used, 0);
    assert_int_equal(xmlstream_feed(r.stream, " ", 1, &used), XMLSTREAM_FAILED);
    assert_int_equal(xmlstream_get_error(r.stream)->condition, XMLSTREAM_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.nevents, 3);
    recorder_free(&r);

    /* An empty stream element opens and closes at once. */
    const char *s1 = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>";
    char *t = transcript(s1, strlen(s1), 0, NULL, NULL, NULL);
    assert_string_equal(t, "H1:<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/> content=\nC\nEND\n");
    free(t);
    /* Other prefixes, or none, for the stream element. */
    const char *s2 = "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><m/></s:stream>";
    t = transcript(s2, strlen(s2), 1, NULL, NULL, NULL);
    assert_string_equal(t, "H1:<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/> content=jabber:client\n"
                           "S1:<m/>\nC\nEND\n");
    free(t);
    const char *s3 = "<stream xmlns='http://etherx.jabber.org/streams' xmlns:c='jabber:client'><c:m/></stream>";
    t = transcript(s3, strlen(s3), 0, NULL, NULL, NULL);
    assert_string_equal(t, "H1:<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/> "
                           "content=http://etherx.jabber.org/streams\n"
                           "S1:<m xmlns='jabber:client'/>\nC\nEND\n");
    free(t);
}

/* ---- restarts ------------------------------------------------------------------------------------- */

static void test_restart_same_chunk(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    r.stop_on = "starttls";
    const char *first = HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    const char *rest = "<?xml version='1.0'?>" HDR "<presence/>";
    char in[512];
    snprintf(in, sizeof(in), "%s%s", first, rest);
    size_t used = 0;
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in), &used), XMLSTREAM_STOPPED);
    assert_int_equal(used, strlen(first));
    assert_int_equal(r.stanzas, 1);
    /* Without a reset the parser takes nothing more. */
    size_t again = 99;
    assert_int_equal(xmlstream_feed(r.stream, in + used, strlen(in) - used, &again), XMLSTREAM_STOPPED);
    assert_int_equal(again, 0);
    assert_int_equal(r.stanzas, 1);
    xmlstream_reset(r.stream);
    assert_int_equal(xmlstream_feed(r.stream, in + used, strlen(in) - used, &again), XMLSTREAM_OK);
    assert_int_equal(again, strlen(rest));
    assert_int_equal(r.stanzas, 2);
    assert_string_equal(cstr(&r.log),
                        "H1:<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/> content=jabber:client\n"
                        "S1:<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n"
                        "H1:<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/> content=jabber:client\n"
                        "S1:<presence/>\n");
    recorder_free(&r);
}

static void test_stop_in_header(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    r.stop_on_header = true;
    const char *in = HDR "<presence/>";
    size_t used = 0;
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in), &used), XMLSTREAM_STOPPED);
    assert_int_equal(used, strlen(HDR));
    assert_int_equal(r.stanzas, 0);
    recorder_free(&r);
}

/* A stop on the non-empty element's end tag, fed one byte at a time: consumed is 1 on the '>'. */
static void test_stop_consumed_one_byte(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    r.stop_on = "auth";
    const char *in = HDR "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</auth>";
    size_t len = strlen(in), used = 0;
    for (size_t i = 0; i + 1 < len; i++)
        assert_int_equal(xmlstream_feed(r.stream, in + i, 1, &used), XMLSTREAM_OK);
    assert_int_equal(xmlstream_feed(r.stream, in + len - 1, 1, &used), XMLSTREAM_STOPPED);
    assert_int_equal(used, 1);
    recorder_free(&r);
}

/* A stream abandoned in the middle of a stanza, then reset: nothing leaks, the new stream works. */
static void test_reset_mid_stanza(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    const char *in = HDR "<message><body>partial";
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in), NULL), XMLSTREAM_OK);
    xmlstream_reset(r.stream);
    const char *again = HDR "<message/>";
    assert_int_equal(xmlstream_feed(r.stream, again, strlen(again), NULL), XMLSTREAM_OK);
    assert_int_equal(r.stanzas, 1);
    recorder_free(&r);
    /* Freed in the middle of a stanza. */
    recorder_init(&r, NULL);
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in), NULL), XMLSTREAM_OK);
    recorder_free(&r);
}

/* ---- shrinking ------------------------------------------------------------------------------------ */

static void test_shrink_when_possible(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    assert_false(xmlstream_shrink(r.stream)); /* nothing fed: nothing to free */
    const char *h = "<?xml version='1.0'?>\n<stream:stream xmlns='jabber:client' xmlns:foo='urn:foo' "
                    "xmlns:stream='http://etherx.jabber.org/streams'>";
    assert_int_equal(xmlstream_feed(r.stream, h, 30, NULL), XMLSTREAM_OK);
    assert_false(xmlstream_shrink(r.stream)); /* inside the header */
    assert_int_equal(xmlstream_feed(r.stream, h + 30, strlen(h) - 30, NULL), XMLSTREAM_OK);
    assert_true(xmlstream_shrink(r.stream));
    assert_false(xmlstream_shrink(r.stream)); /* already */
    const char *a = "\n<message><body>hi</body>";
    assert_int_equal(xmlstream_feed(r.stream, a, strlen(a), NULL), XMLSTREAM_OK);
    assert_false(xmlstream_shrink(r.stream)); /* inside a stanza */
    const char *b = "</message>\r";
    assert_int_equal(xmlstream_feed(r.stream, b, strlen(b), NULL), XMLSTREAM_OK);
    assert_false(xmlstream_shrink(r.stream)); /* expat holds the CR until it sees what follows */
    assert_int_equal(xmlstream_feed(r.stream, "\n <fo", 5, NULL), XMLSTREAM_OK);
    assert_false(xmlstream_shrink(r.stream)); /* a partial tag */
    const char *c = "o:x/>\n\n";
    assert_int_equal(xmlstream_feed(r.stream, c, strlen(c), NULL), XMLSTREAM_OK);
    assert_true(xmlstream_shrink(r.stream));
    /* The declarations of the stream element, the line count and the closing tag survive. */
    const char *d = "<presence/>\n<message></presence>";
    assert_int_equal(xmlstream_feed(r.stream, d, strlen(d), NULL), XMLSTREAM_FAILED);
    assert_int_equal(xmlstream_get_error(r.stream)->line, 7);
    assert_string_equal(cstr(&r.log),
                        "H2:<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/> content=jabber:client\n"
                        "S3:<message><body>hi</body></message>\n"
                        "S4:<x xmlns='urn:foo'/>\n"
                        "S6:<presence/>\n");
    assert_true(xmlstream_shrink(r.stream)); /* a failed stream needs nothing */
    assert_int_equal(xmlstream_feed(r.stream, "<a/>", 4, NULL), XMLSTREAM_FAILED);
    recorder_free(&r);
}

static void test_shrink_close_tag(void **state)
{
    const char *streams[] = {
        HDR "<presence/></stream:stream>",
        "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><m/></s:stream>",
        "<stream xmlns='http://etherx.jabber.org/streams' xmlns:c='jabber:client'><c:m/></stream>",
        "<stream:stream\n xmlns:stream='http://etherx.jabber.org/streams'\txmlns='a&amp;&apos;b'><m/></stream:stream>",
    };
    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        size_t len = strlen(streams[i]);
        char *want = transcript(streams[i], len, 0, NULL, NULL, NULL);
        recorder r;
        recorder_init(&r, NULL);
        r.shrink_always = true;
        feed_steps(&r, streams[i], len, 1);
        assert_string_equal(cstr(&r.log), want);
        recorder_free(&r);
        free(want);
    }
}

static void test_shrink_session(void **state)
{
    size_t len = sizeof(session) - 1;
    for (size_t step = 1; step <= 40; step += 13) {
        recorder r;
        recorder_init(&r, NULL);
        r.stop_on = "auth";
        r.shrink_always = true;
        feed_steps(&r, session, len, step);
        assert_string_equal(cstr(&r.log), session_expected);
        recorder_free(&r);
    }
    /* Shrunk while stopped for a restart: the reset and the rest of the chunk work as usual. */
    recorder r;
    recorder_init(&r, NULL);
    r.stop_on = "auth";
    size_t used = 0;
    assert_int_equal(xmlstream_feed(r.stream, session, len, &used), XMLSTREAM_STOPPED);
    assert_true(xmlstream_shrink(r.stream));
    xmlstream_reset(r.stream);
    r.stop_on = NULL;
    assert_int_equal(xmlstream_feed(r.stream, session + used, len - used, NULL), XMLSTREAM_CLOSED);
    recorder_free(&r);
}

/* ---- renewal: a new expat parser now and then, invisibly ------------------------------------------- */

/* Renewed after every stanza: the same events, lines and ends as without, wherever the chunks
 * are cut (so also when a stanza is split around the renewal), shrunk or not. */
static void test_renewal_every_split(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    l.renew_tag_bytes = 1;
    size_t len = sizeof(session) - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        recorder r;
        recorder_init(&r, &l);
        r.stop_on = "auth";
        r.shrink_always = cut % 2;
        feed_split(&r, session, len, cut);
        if (strcmp(cstr(&r.log), session_expected) != 0)
            fail_msg("split at %zu:\n%s", cut, cstr(&r.log));
        recorder_free(&r);
    }
    for (size_t step = 1; step <= 17; step++) {
        char *t = transcript(session, len, step, &l, "auth", NULL);
        if (strcmp(t, session_expected) != 0)
            fail_msg("chunks of %zu:\n%s", step, t);
        free(t);
    }
}

static size_t expat_bytes(void)
{
    xmlmem_stats st;
    xmlmem_get_stats(&st);
    return st.bytes_in_use;
}

/* One stanza per call, as the SM feeds its parser: the stream stays between stanzas after each,
 * and the parser is replaced (its memory given back) once per renew_tag_bytes of start tags. */
static void test_renewal_one_stanza_per_feed(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    l.renew_tag_bytes = 4096;
    recorder r;
    recorder_init(&r, &l);
    assert_int_equal(xmlstream_feed(r.stream, HDR, strlen(HDR), NULL), XMLSTREAM_OK);
    size_t renewals = 0, tags = strlen(HDR), expected = 0;
    for (int i = 0; i < 1000; i++) {
        char stanza[200];
        int n = snprintf(stanza, sizeof(stanza), "<message id='%d'><unique-%d xmlns='urn:u'/></message>", i, i);
        assert_int_equal(xmlstream_feed(r.stream, stanza, (size_t)n, NULL), XMLSTREAM_OK);
        assert_true(xmlstream_idle(r.stream));
        renewals += expat_bytes() == 0;
        tags += (size_t)n - strlen("</message>");
        if (tags > 4096) {
            expected++;
            tags = strlen(HDR); /* a new parser is fed the header again first */
        }
    }
    assert_int_equal(r.stanzas, 1000);
    assert_int_equal(renewals, expected);
    assert_true(expected > 10);
    /* The stream goes on after the last renewal, with its namespaces. */
    r.keep_last = true;
    const char *last = "<iq type='get' id='z'><ping xmlns='urn:xmpp:ping'/></iq>";
    assert_int_equal(xmlstream_feed(r.stream, last, strlen(last), NULL), XMLSTREAM_OK);
    assert_string_equal(r.last->ns, "jabber:client");
    assert_string_equal(r.last->children->ns, "urn:xmpp:ping");
    recorder_free(&r);
}

/* Writes stanza i: a message with an element of a 200-byte name seen nowhere else. */
static size_t unique_stanza(char *out, size_t size, int i)
{
    char name[201];
    memset(name, 'n', 192);
    snprintf(name + 192, 9, "%08d", i);
    return (size_t)snprintf(out, size, "<message><%s a%d='1'/></message>", name, i);
}

/* Peak bytes held by expat while a stream gets count stanzas of unique names, each feed ending
 * in the middle of the next stanza when split (so the stream is never idle when a feed returns). */
static size_t peak_expat_bytes(const xmlstream_limits *l, int count, bool split)
{
    recorder r;
    recorder_init(&r, l);
    assert_int_equal(xmlstream_feed(r.stream, HDR, strlen(HDR), NULL), XMLSTREAM_OK);
    size_t peak = 0;
    char stanza[600];
    size_t n = unique_stanza(stanza, sizeof(stanza), 0);
    size_t carry = split ? n / 2 : 0; /* bytes of the current stanza already fed */
    if (carry)
        assert_int_equal(xmlstream_feed(r.stream, stanza, carry, NULL), XMLSTREAM_OK);
    for (int i = 0; i < count; i++) {
        char next[600], chunk[1200];
        size_t m = unique_stanza(next, sizeof(next), i + 1), half = split ? m / 2 : 0;
        memcpy(chunk, stanza + carry, n - carry);
        memcpy(chunk + n - carry, next, half);
        assert_int_equal(xmlstream_feed(r.stream, chunk, n - carry + half, NULL), XMLSTREAM_OK);
        assert_true(xmlstream_idle(r.stream) == !split);
        size_t now = expat_bytes();
        if (now > peak)
            peak = now;
        memcpy(stanza, next, m);
        n = m;
        carry = half;
    }
    assert_int_equal(r.stanzas, (size_t)count);
    recorder_free(&r);
    return peak;
}

/* Security issue 12: 2 MB of distinct names on one connection grew the front by 16 MB. With
 * renewal the parser stays under a megabyte, fed whole stanzas or never idle between feeds;
 * without it, it holds more than 4 MB at the end. */
static void test_renewal_bounds_memory(void **state)
{
    xmlstream_limits l;
    xmlstream_limits_default(&l);
    assert_true(peak_expat_bytes(&l, 10000, false) < 1024 * 1024);
    assert_true(peak_expat_bytes(&l, 10000, true) < 1024 * 1024);
    l.renew_tag_bytes = SIZE_MAX;
    assert_true(peak_expat_bytes(&l, 10000, true) > 4 * 1024 * 1024);
}

/* What the handlers are told of input sizes. */
static void test_reported_bytes(void **state)
{
    recorder r;
    recorder_init(&r, NULL);
    const char *in = "<?xml version='1.0'?>\n" HDR "\n <message><body>hi</body></message> <presence/>";
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in) - 12, NULL), XMLSTREAM_OK);
    assert_int_equal(xmlstream_reported_bytes(r.stream), strlen("<message><body>hi</body></message>"));
    assert_int_equal(xmlstream_feed(r.stream, in + strlen(in) - 12, 12, NULL), XMLSTREAM_OK);
    assert_int_equal(xmlstream_reported_bytes(r.stream), strlen("<presence/>"));
    recorder_free(&r);
    recorder_init(&r, NULL);
    size_t header = strlen("<?xml version='1.0'?>\n" HDR);
    assert_int_equal(xmlstream_feed(r.stream, in, header + 3, NULL), XMLSTREAM_OK);
    assert_int_equal(xmlstream_reported_bytes(r.stream), header);
    recorder_free(&r);
}

/* ---- trees and the round trip --------------------------------------------------------------------- */

static void assert_same_tree(const xml_node *a, const xml_node *b)
{
    assert_int_equal(a->kind, b->kind);
    if (a->kind == XML_TEXT) {
        assert_int_equal(a->text_len, b->text_len);
        assert_memory_equal(a->text, b->text, a->text_len);
        return;
    }
    assert_string_equal(a->ns, b->ns);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->nattrs, b->nattrs);
    for (uint32_t i = 0; i < a->nattrs; i++) {
        assert_string_equal(a->attrs[i].ns ? a->attrs[i].ns : "", b->attrs[i].ns ? b->attrs[i].ns : "");
        assert_string_equal(a->attrs[i].name, b->attrs[i].name);
        assert_string_equal(a->attrs[i].value, b->attrs[i].value);
    }
    const xml_node *ca = a->children, *cb = b->children;
    for (; ca && cb; ca = ca->next, cb = cb->next)
        assert_same_tree(ca, cb);
    assert_null(ca);
    assert_null(cb);
}

/* Parses one stanza given inside a jabber:client stream; the caller frees *arena. */
static xml_node *parse_one(const char *stanza, size_t len, xml_arena **arena)
{
    recorder r;
    recorder_init(&r, NULL);
    r.keep_last = true;
    assert_int_equal(xmlstream_feed(r.stream, HDR, strlen(HDR), NULL), XMLSTREAM_OK);
    assert_int_equal(xmlstream_feed(r.stream, stanza, len, NULL), XMLSTREAM_OK);
    assert_int_equal(r.stanzas, 1);
    xml_node *n = r.last;
    *arena = r.last_arena;
    r.last_arena = NULL;
    recorder_free(&r);
    return n;
}

static void test_round_trip(void **state)
{
    static const char tricky[] =
        "<message xmlns:q='urn:q' to='a&amp;b&lt;c&gt;d&apos;e&quot;f' q:t='tab\there&#9;nl\nthere&#10;cr&#13;' "
        "xml:lang='fr' from=\"x'y\">"
        "<body>quotes ' \" amp &amp; lt &lt; gt > &gt; cdata-end ]]&gt; "
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80&#x1F600;&#x10FFFF; crlf a\r\nb lone-cr c\rd ref-cr e&#13;f "
        "&#xD;&#xA;</body>"
        "<q:x q:a='1' b='2' xmlns:r='urn:r' r:c='3'><y xmlns=''/><r:z/></q:x>"
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"
        "<xml:weird/><empty></empty><![CDATA[<&>]]></message>";
    xml_arena *a1, *a2;
    xml_node *t1 = parse_one(tricky, sizeof(tricky) - 1, &a1);

    const xml_node *body = xml_child(t1, "jabber:client", "body");
    assert_non_null(body);
    assert_string_equal(xml_text(a1, body),
                        "quotes ' \" amp & lt < gt > > cdata-end ]]> \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                        "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf crlf a\nb lone-cr c\nd ref-cr e\rf \r\n");
    assert_string_equal(xml_attr_get(t1, "to"), "a&b<c>d'e\"f");
    assert_string_equal(xml_attr_get_ns(t1, "urn:q", "t"), "tab here\tnl there\ncr\r");
    assert_string_equal(xml_attr_get_ns(t1, XML_NS_XML, "lang"), "fr");

    for (int in_stream = 0; in_stream < 2; in_stream++) {
        buf s1 = BUF_INIT, s2 = BUF_INIT;
        xml_write_node(&s1, t1, "jabber:client", in_stream);
        xml_node *t2 = parse_one(buf_data(&s1), buf_len(&s1), &a2);
        assert_same_tree(t1, t2);
        xml_write_node(&s2, t2, "jabber:client", in_stream);
        assert_string_equal(cstr(&s1), cstr(&s2));
        xml_arena_free(a2);
        buf_free(&s1);
        buf_free(&s2);
    }
    xml_arena_free(a1);
}

/* Element and text lines; the line of a header after a restart counts from the new stream. */
static void test_lines(void **state)
{
    const char *in = "\n\n" HDR "\n<message>\n<body>\n\nx</body></message><presence\n/>";
    recorder r;
    recorder_init(&r, NULL);
    r.keep_last = true;
    assert_int_equal(xmlstream_feed(r.stream, in, strlen(in) - 12, NULL), XMLSTREAM_OK);
    xml_node *body = xml_child(r.last, NULL, "body");
    assert_int_equal(r.last->line, 4);
    assert_int_equal(body->line, 5);
    assert_int_equal(body->children->line, 5);
    assert_int_equal(xmlstream_feed(r.stream, in + strlen(in) - 12, 12, NULL), XMLSTREAM_OK);
    assert_int_equal(r.last->line, 7);
    recorder_free(&r);
}

/* ---- memory: nothing leaks however a stream ends (checked by the sanitizer build) -------------- */

static void test_free_in_every_state(void **state)
{
    size_t len = sizeof(session) - 1;
    for (size_t cut = 0; cut <= len; cut += 7) {
        recorder r;
        recorder_init(&r, NULL);
        r.stop_on = "auth";
        xmlstream_feed(r.stream, session, cut, NULL);
        recorder_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_whole),
        cmocka_unit_test(test_session_every_split),
        cmocka_unit_test(test_session_small_chunks),
        cmocka_unit_test(test_yield_on_last_byte),
        cmocka_unit_test(test_restricted_xml),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_stream_level_errors),
        cmocka_unit_test(test_condition_names),
        cmocka_unit_test(test_error_is_final),
        cmocka_unit_test(test_limit_defaults),
        cmocka_unit_test(test_limit_stanza_bytes),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_attrs),
        cmocka_unit_test(test_limit_attr_bytes),
        cmocka_unit_test(test_limit_text_bytes),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_restart_same_chunk),
        cmocka_unit_test(test_stop_in_header),
        cmocka_unit_test(test_stop_consumed_one_byte),
        cmocka_unit_test(test_reset_mid_stanza),
        cmocka_unit_test(test_shrink_when_possible),
        cmocka_unit_test(test_shrink_close_tag),
        cmocka_unit_test(test_shrink_session),
        cmocka_unit_test(test_renewal_every_split),
        cmocka_unit_test(test_renewal_one_stanza_per_feed),
        cmocka_unit_test(test_renewal_bounds_memory),
        cmocka_unit_test(test_reported_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_free_in_every_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
