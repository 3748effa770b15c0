/* tests/unit/test_xml_write.c — the serializer: escaping, namespaces, stream header and
 * errors, standalone output that expat parses back into the same tree, hoisting and the bound on
 * output size (security issue 12), and the bounded writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <expat.h>

#include "core/buf.h"
#include "core/xml.h"
#include "core/xml_write.h"

/* The contents of b as a string: a NUL goes into the reserved space after the data. */
static const char *cstr(buf *b)
{
    *buf_reserve(b, 1) = '\0';
    return buf_data(b);
}

static void clear(buf *b)
{
    buf_consume(b, buf_len(b));
}

static void put(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void test_escape_text(void **state)
{
    static const char in[] = "a&b<c>d'e\"f\tg\nh\ri\x01j\x1f\x7fk]]>\xf0\x9f\x98\x80";
    buf b = BUF_INIT;
    xml_write_text(&b, in, sizeof(in) - 1);
    assert_string_equal(cstr(&b), "a&amp;b&lt;c&gt;d'e\"f\tg\nh&#13;ij\x7fk]]&gt;\xf0\x9f\x98\x80");
    clear(&b);
    static const char nul[] = "x\0y";
    xml_write_text(&b, nul, 3);
    assert_int_equal(buf_len(&b), 2);
    assert_string_equal(cstr(&b), "xy");
    clear(&b);
    xml_write_text(&b, "", 0);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
}

static void test_escape_attr(void **state)
{
    static const char in[] = "a&b<c>d'e\"f\tg\nh\ri\x01j\x7f";
    buf b = BUF_INIT;
    xml_write_attr_value(&b, in, sizeof(in) - 1);
    assert_string_equal(cstr(&b), "a&amp;b&lt;c&gt;d&apos;e&quot;f&#9;g&#10;h&#13;ij\x7f");
    buf_free(&b);
}

/* message (jabber:client) > body, x (urn:x) > y (urn:x), z (no namespace), features (streams) */
static xml_node *sample(xml_arena *a)
{
    xml_node *m = xml_element_new(a, NULL, "jabber:client", "message");
    xml_attr_set(a, m, NULL, "to", "juliet@example.com");
    xml_attr_set(a, m, XML_NS_XML, "lang", "en");
    xml_node *body = xml_element_new(a, m, "jabber:client", "body");
    xml_text_new(a, body, "Hi & <bye>", 10);
    xml_node *x = xml_element_new(a, m, "urn:x", "x");
    xml_attr_set(a, x, "urn:a", "one", "1");
    xml_attr_set(a, x, "", "plain", "p");
    xml_attr_set(a, x, "urn:b", "two", "2");
    xml_attr_set(a, x, "urn:a", "three", "3");
    xml_node *y = xml_element_new(a, x, "urn:x", "y");
    xml_attr_set(a, y, "urn:a", "four", "'4'");
    xml_element_new(a, x, NULL, "z");
    xml_node *f = xml_element_new(a, m, XML_NS_STREAMS, "features");
    xml_element_new(a, f, "urn:ietf:params:xml:ns:xmpp-tls", "starttls");
    xml_element_new(a, f, "jabber:client", "back");
    xml_element_new(a, m, XML_NS_XML, "odd");
    return m;
}

static void test_write_node(void **state)
{
    xml_arena *a = xml_arena_new(0);
    xml_node *m = sample(a);
    buf b = BUF_INIT;
    xml_write_node(&b, m, "jabber:client", true);
    assert_string_equal(cstr(&b),
                        "<message to='juliet@example.com' xml:lang='en'><body>Hi &amp; &lt;bye&gt;</body>"
                        "<x xmlns='urn:x' xmlns:ns0='urn:a' ns0:one='1' plain='p' xmlns:ns2='urn:b' ns2:two='2' "
                        "ns0:three='3'><y xmlns:ns0='urn:a' ns0:four='&apos;4&apos;'/><z xmlns=''/></x>"
                        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><back/></stream:features>"
                        "<xml:odd/></message>");
    /* Outside a stream, with no namespace in scope: everything is declared where it is used. */
    clear(&b);
    xml_write_node(&b, m, NULL, false);
    assert_string_equal(cstr(&b),
                        "<message xmlns='jabber:client' to='juliet@example.com' xml:lang='en'>"
                        "<body>Hi &amp; &lt;bye&gt;</body>"
                        "<x xmlns='urn:x' xmlns:ns0='urn:a' ns0:one='1' plain='p' xmlns:ns2='urn:b' ns2:two='2' "
                        "ns0:three='3'><y xmlns:ns0='urn:a' ns0:four='&apos;4&apos;'/><z xmlns=''/></x>"
                        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><back/></stream:features>"
                        "<xml:odd/></message>");
    /* A subtree written where its own namespace is the default. */
    clear(&b);
    xml_write_node(&b, m->children->next, "urn:x", true);
    assert_string_equal(cstr(&b), "<x xmlns:ns0='urn:a' ns0:one='1' plain='p' xmlns:ns2='urn:b' ns2:two='2' "
                                "ns0:three='3'><y xmlns:ns0='urn:a' ns0:four='&apos;4&apos;'/><z xmlns=''/></x>");
    /* A text node alone, and an element without namespace where none is in scope. */
    clear(&b);
    xml_write_node(&b, m->children->children, "jabber:client", true);
    assert_string_equal(cstr(&b), "Hi &amp; &lt;bye&gt;");
    clear(&b);
    xml_node *bare = xml_element_new(a, NULL, "", "bare");
    xml_write_node(&b, bare, "", false);
    assert_string_equal(cstr(&b), "<bare/>");
    buf_free(&b);
    xml_arena_free(a);
}

/* Output written outside a stream is a document of its own: expat reads it back as the same tree. */
typedef struct {
    xml_builder b;
    XML_Parser x;
} reader;

static void r_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    reader *r = ud;
    xml_builder_start(&r->b, name, atts, (uint32_t)XML_GetCurrentLineNumber(r->x));
}

static void r_end(void *ud, const XML_Char *name)
{
    xml_builder_end(&((reader *)ud)->b);
}

static void r_text(void *ud, const XML_Char *s, int len)
{
    reader *r = ud;
    xml_builder_text(&r->b, s, (size_t)len, (uint32_t)XML_GetCurrentLineNumber(r->x));
}

static xml_node *read_back(xml_arena *a, const char *doc, size_t len)
{
    reader r;
    xml_builder_init(&r.b, a);
    r.x = XML_ParserCreateNS("UTF-8", XML_NS_SEP);
    XML_SetUserData(r.x, &r);
    XML_SetElementHandler(r.x, r_start, r_end);
    XML_SetCharacterDataHandler(r.x, r_text);
    if (XML_Parse(r.x, doc, (int)len, XML_TRUE) != XML_STATUS_OK)
        fail_msg("%s at %lu: %.200s", XML_ErrorString(XML_GetErrorCode(r.x)),
                 (unsigned long)XML_GetCurrentByteIndex(r.x), doc);
    XML_ParserFree(r.x);
    xml_builder_free(&r.b);
    return r.b.root;
}

static void assert_same_tree(const xml_node *p, const xml_node *q)
{
    assert_int_equal(p->kind, q->kind);
    if (p->kind == XML_TEXT) {
        assert_int_equal(p->text_len, q->text_len);
        assert_memory_equal(p->text, q->text, p->text_len);
        return;
    }
    assert_string_equal(p->ns, q->ns);
    assert_string_equal(p->name, q->name);
    assert_int_equal(p->nattrs, q->nattrs);
    for (uint32_t i = 0; i < p->nattrs; i++) {
        const char *pns = p->attrs[i].ns && p->attrs[i].ns[0] ? p->attrs[i].ns : "";
        const char *qns = q->attrs[i].ns ? q->attrs[i].ns : "";
        assert_string_equal(pns, qns);
        assert_string_equal(p->attrs[i].name, q->attrs[i].name);
        assert_string_equal(p->attrs[i].value, q->attrs[i].value);
    }
    const xml_node *cp = p->children, *cq = q->children;
    for (; cp && cq; cp = cp->next, cq = cq->next)
        assert_same_tree(cp, cq);
    assert_null(cp);
    assert_null(cq);
}

static void test_standalone_round_trip(void **state)
{
    xml_arena *a = xml_arena_new(0);
    xml_node *m = sample(a);
    static const char text[] = "tab\tnl\ncr\rcrlf\r\nquote'\"amp&lt<gt>]]>\xe2\x82\xac";
    xml_text_new(a, m, text, sizeof(text) - 1);
    xml_attr_set(a, m, NULL, "tricky", text);
    for (int with_default = 0; with_default < 2; with_default++) {
        buf b = BUF_INIT;
        xml_write_node(&b, m, with_default ? "urn:unused" : NULL, false);
        xml_node *back = read_back(a, buf_data(&b), buf_len(&b));
        assert_non_null(back);
        assert_same_tree(m, back);
        buf_free(&b);
    }
    xml_arena_free(a);
}

/* ---- ordinary stanzas: written exactly as always ------------------------------------------------- */

/* Canonical stanzas (declarations where the namespace changes, single quotes, empty elements
 * closed) are written back byte for byte, standalone, and inside a jabber:client stream without
 * the root's declaration. */
static void expect_unchanged(const char *stanza)
{
    xml_arena *a = xml_arena_new(0);
    xml_node *t = read_back(a, stanza, strlen(stanza));
    buf b = BUF_INIT;
    xml_write_node(&b, t, NULL, false);
    assert_string_equal(cstr(&b), stanza);
    clear(&b);
    xml_write_node(&b, t, "jabber:client", true);
    const char *decl = " xmlns='jabber:client'", *at = strstr(stanza, decl);
    assert_non_null(at);
    assert_int_equal(buf_len(&b), strlen(stanza) - strlen(decl));
    assert_memory_equal(buf_data(&b), stanza, (size_t)(at - stanza));
    assert_string_equal(cstr(&b) + (at - stanza), at + strlen(decl));
    buf_free(&b);
    xml_arena_free(a);
}

static void test_ordinary_unchanged(void **state)
{
    expect_unchanged("<message xmlns='jabber:client' to='juliet@example.com' type='chat' id='a1'>"
                     "<body>Hi</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                     "<request xmlns='urn:xmpp:receipts'/><store xmlns='urn:xmpp:hints'/>"
                     "<no-copy xmlns='urn:xmpp:hints'/></message>");
    expect_unchanged("<presence xmlns='jabber:client'><show>away</show><c xmlns='http://jabber.org/protocol/caps' "
                     "hash='sha-1' node='https://conversations.im' ver='QXF5pSe3YDPKCJsdmC3RYkT8fXY='/>"
                     "<x xmlns='vcard-temp:x:update'><photo/></x></presence>");
    /* Namespaces declared again and again, as clients send them, are not hoisted when the elements
     * carry as much: Jingle's rtcp-fb, 40 of them; 50 pubsub items with an Atom entry each. */
    buf in = BUF_INIT;
    put(&in, "<iq xmlns='jabber:client' type='set' id='j'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'>"
             "<content creator='initiator' name='0'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>");
    for (int i = 0; i < 20; i++) {
        char pt[400];
        snprintf(pt, sizeof(pt), "<payload-type id='%d' name='VP8' clockrate='90000'>"
                 "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='ccm'/>"
                 "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/></payload-type>", 96 + i);
        put(&in, pt);
    }
    put(&in, "</description></content></jingle></iq>");
    expect_unchanged(cstr(&in));
    clear(&in);
    put(&in, "<iq xmlns='jabber:client' type='result' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
             "<items node='urn:xmpp:microblog:0'>");
    for (int i = 0; i < 50; i++) {
        char item[300];
        snprintf(item, sizeof(item), "<item id='%d'><entry xmlns='http://www.w3.org/2005/Atom'><title>post %d</title>"
                 "<published>2024-01-01T00:00:00Z</published></entry></item>", i, i);
        put(&in, item);
    }
    put(&in, "</items></pubsub></iq>");
    expect_unchanged(cstr(&in));
    buf_free(&in);
}

/* ---- hoisting --------------------------------------------------------------------------------------- */

/* A URI of n bytes: "urn:" and as many 'u'. */
static char *long_uri(size_t n)
{
    char *u = malloc(n + 1);
    memcpy(u, "urn:", 4);
    memset(u + 4, 'u', n - 4);
    u[n] = '\0';
    return u;
}

/* The rule's edges, written out: a URI declared twice with 210 bytes each (more than 256 bytes of
 * declarations, where its elements own 8 input bytes) is declared once on the root as h1. */
static void test_hoisting_exact(void **state)
{
    char *u = long_uri(200), *v = long_uri(201);
    char doc[4096], want[4096];
    xml_arena *a = xml_arena_new(0);
    buf b = BUF_INIT;

    /* Siblings; a child in the stream's namespace under a prefixed element keeps the default
     * namespace it had, and one in no namespace still says so. */
    snprintf(doc, sizeof(doc), "<iq xmlns='jabber:client'><x xmlns='%s'><y xmlns='jabber:client'/></x>"
             "<x xmlns='%s'><z xmlns=''/><w/></x></iq>", u, u);
    xml_node *t = read_back(a, doc, strlen(doc));
    xml_write_node(&b, t, "jabber:client", true);
    snprintf(want, sizeof(want), "<iq xmlns:h1='%s'><h1:x><y/></h1:x><h1:x><z xmlns=''/><h1:w/></h1:x></iq>", u);
    assert_string_equal(cstr(&b), want);
    clear(&b);
    xml_write_node(&b, t, NULL, false);
    snprintf(want, sizeof(want), "<iq xmlns='jabber:client' xmlns:h1='%s'><h1:x><y/></h1:x>"
             "<h1:x><z xmlns=''/><h1:w/></h1:x></iq>", u);
    assert_string_equal(cstr(&b), want);

    /* Attributes; two URIs numbered in order; a URI used once keeps its declaration. */
    snprintf(doc, sizeof(doc), "<iq xmlns='jabber:client' xmlns:p='%s' xmlns:q='%s'><x q:a='1' p:b='2'/>"
             "<x p:c='3' q:d='4'/><once xmlns='urn:once'/></iq>", u, v);
    t = read_back(a, doc, strlen(doc));
    clear(&b);
    xml_write_node(&b, t, "jabber:client", true);
    snprintf(want, sizeof(want), "<iq xmlns:h1='%s' xmlns:h2='%s'><x h1:a='1' h2:b='2'/><x h2:c='3' h1:d='4'/>"
             "<once xmlns='urn:once'/></iq>", v, u);
    assert_string_equal(cstr(&b), want);

    /* The root's own namespace, when it is hoisted and the default where the root goes, is
     * written without a prefix; deeper, where another default is in scope, with it. */
    snprintf(doc, sizeof(doc), "<r xmlns='%s'><a xmlns='urn:a'><b xmlns='%s'/></a><a xmlns='urn:a'><b xmlns='%s'/></a></r>",
             u, u, u);
    t = read_back(a, doc, strlen(doc));
    clear(&b);
    xml_write_node(&b, t, u, true);
    snprintf(want, sizeof(want), "<r xmlns:h1='%s'><a xmlns='urn:a'><h1:b/></a><a xmlns='urn:a'><h1:b/></a></r>", u);
    assert_string_equal(cstr(&b), want);

    /* The stream namespace: declared on the root when written standalone, nowhere in a stream. */
    strcpy(doc, "<iq xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>");
    for (int i = 0; i < 20; i++)
        strcat(doc, "<s:x/>");
    strcat(doc, "</iq>");
    t = read_back(a, doc, strlen(doc));
    clear(&b);
    xml_write_node(&b, t, NULL, false);
    strcpy(want, "<iq xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    for (int i = 0; i < 20; i++)
        strcat(want, "<stream:x/>");
    strcat(want, "</iq>");
    assert_string_equal(cstr(&b), want);
    clear(&b);
    xml_write_node(&b, t, "jabber:client", true);
    assert_string_equal(cstr(&b) + 3, want + strlen("<iq xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"));
    assert_memory_equal(cstr(&b), "<iq", 3);
    buf_free(&b);
    xml_arena_free(a);
    free(u);
    free(v);
}

/* ---- the bound: security issue 12 ------------------------------------------------------------------ */

/* The attacks of issue 12 and their variants, as a stream header (its namespace declarations
 * count as input) and one stanza. Written standalone or in a stream, each stays within 1.2 times
 * its input (the general bound, xml_write.h, is 16), reads back as the same tree and writes the
 * same bytes again. */
static void expect_small(const char *header_decls, const char *stanza)
{
    char *doc = malloc(strlen(header_decls) + strlen(stanza) + 200);
    sprintf(doc, "<stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'%s>%s</stream>",
            header_decls, stanza);
    size_t input = strlen(header_decls) + strlen(stanza) +
                   strlen(" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'");
    xml_arena *a = xml_arena_new(0);
    xml_node *t = read_back(a, doc, strlen(doc))->children;
    for (int in_stream = 0; in_stream < 2; in_stream++) {
        buf out = BUF_INIT, again = BUF_INIT, wrapped = BUF_INIT;
        const char *def = in_stream ? "jabber:client" : NULL;
        xml_write_node(&out, t, def, in_stream);
        if (buf_len(&out) * 10 > input * 12)
            fail_msg("%zu bytes out of %zu:\n%.300s", buf_len(&out), input, cstr(&out));
        put(&wrapped, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
        buf_append(&wrapped, buf_data(&out), buf_len(&out));
        put(&wrapped, "</stream:stream>");
        xml_node *back = read_back(a, buf_data(&wrapped), buf_len(&wrapped))->children;
        assert_same_tree(t, back);
        xml_write_node(&again, back, def, in_stream);
        assert_string_equal(cstr(&again), cstr(&out));
        buf_free(&out);
        buf_free(&again);
        buf_free(&wrapped);
    }
    xml_arena_free(a);
    free(doc);
}

static char *repeated(const char *piece, int n, const char *open, const char *close)
{
    char *s = malloc(strlen(open) + strlen(piece) * (size_t)n + strlen(close) + 1);
    strcpy(s, open);
    for (int i = 0; i < n; i++)
        strcat(s, piece);
    return strcat(s, close);
}

static void test_amplification(void **state)
{
    char *u = long_uri(1000), open[2200], decl[1100];
    snprintf(open, sizeof(open), "<iq xmlns:p='%s'>", u);
    snprintf(decl, sizeof(decl), " xmlns:p='%s'", u);

    char *s = repeated("<p:x/>", 1030, open, "</iq>"); /* the attack as reported: 11 KB */
    expect_small("", s);
    free(s);
    s = repeated("<x p:a='v'/>", 1030, open, "</iq>"); /* namespaced attributes */
    expect_small("", s);
    free(s);
    s = repeated("<p:x/>", 1030, "<iq>", "</iq>"); /* a prefix the stream header declared */
    expect_small(decl, s);
    free(s);
    s = repeated("<stream:x/>", 1030, "<iq>", "</iq>"); /* the stream's own namespace */
    expect_small("", s);
    free(s);
    /* Nested rather than siblings, two URIs in turn. */
    snprintf(open, sizeof(open), "<iq xmlns:p='%s' xmlns:q='%sq'>", u, u);
    char *inner = repeated("<p:x><q:x>", 500, open, "");
    s = repeated("</q:x></p:x>", 500, inner, "</iq>");
    expect_small("", s);
    free(inner);
    free(s);
    /* Twenty long URIs used in turn: more URIs than the plan keeps inline. */
    buf many = BUF_INIT;
    put(&many, "<iq");
    for (int i = 0; i < 20; i++) {
        char d[1100];
        snprintf(d, sizeof(d), " xmlns:p%d='%s%d'", i, u, i);
        put(&many, d);
    }
    put(&many, ">");
    for (int i = 0; i < 2000; i++) {
        char e[32];
        snprintf(e, sizeof(e), "<p%d:x/>", i % 20);
        put(&many, e);
    }
    put(&many, "</iq>");
    expect_small("", cstr(&many));
    buf_free(&many);
    free(u);
}

/* ---- the bounded writer --------------------------------------------------------------------------- */

static void test_bounded_writer(void **state)
{
    xml_arena *a = xml_arena_new(0);
    buf b = BUF_INIT;
    put(&b, "before");
    xml_node *m = sample(a);
    buf whole = BUF_INIT;
    xml_write_node(&whole, m, "jabber:client", true);
    /* Exactly enough, and one byte less: all or nothing, what was there stays. */
    assert_false(xml_write_node_max(&b, m, "jabber:client", true, buf_len(&whole) - 1));
    assert_string_equal(cstr(&b), "before");
    assert_true(xml_write_node_max(&b, m, "jabber:client", true, buf_len(&whole)));
    assert_int_equal(buf_len(&b), 6 + buf_len(&whole));
    assert_memory_equal(buf_data(&b) + 6, buf_data(&whole), buf_len(&whole));

    /* A tree whose output is a megabyte: refused without a megabyte of buffer. */
    char *text = malloc(1 << 20);
    memset(text, '<', 1 << 20); /* each written as &lt; */
    xml_node *big = xml_element_new(a, NULL, "jabber:client", "message");
    xml_text_new(a, xml_element_new(a, big, "jabber:client", "body"), text, 1 << 18);
    buf small = BUF_INIT;
    assert_false(xml_write_node_max(&small, big, "jabber:client", true, 4096));
    assert_int_equal(buf_len(&small), 0);
    assert_true(small.cap <= 8192);
    free(text);

    /* A tree that fits only once hoisted: the classic form runs out of room first. */
    char *u = long_uri(1000);
    xml_node *iq = xml_element_new(a, NULL, "jabber:client", "iq");
    for (int i = 0; i < 100; i++)
        xml_element_new(a, iq, u, "x");
    clear(&whole);
    xml_write_node(&whole, iq, "jabber:client", true);
    assert_true(buf_len(&whole) < 2000);
    clear(&b);
    assert_true(xml_write_node_max(&b, iq, "jabber:client", true, buf_len(&whole)));
    assert_string_equal(cstr(&b), cstr(&whole));
    clear(&b);
    assert_false(xml_write_node_max(&b, iq, "jabber:client", true, buf_len(&whole) - 1));
    assert_int_equal(buf_len(&b), 0);
    free(u);
    buf_free(&b);
    buf_free(&small);
    buf_free(&whole);
    xml_arena_free(a);
}

static void test_stream_open_close(void **state)
{
    buf b = BUF_INIT;
    xml_stream_attrs full = {.content_ns = "jabber:client", .from = "example.com", .to = "juliet@example.com",
                             .id = "a'b", .version = "1.0", .lang = "en"};
    xml_write_stream_open(&b, &full);
    assert_string_equal(cstr(&b), "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                                "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' "
                                "to='juliet@example.com' id='a&apos;b' version='1.0' xml:lang='en'>");
    clear(&b);
    xml_stream_attrs bare = {.content_ns = "jabber:component:accept"};
    xml_write_stream_open(&b, &bare);
    xml_write_stream_close(&b);
    assert_string_equal(cstr(&b), "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                                "xmlns:stream='http://etherx.jabber.org/streams'></stream:stream>");
    buf_free(&b);
}

static void test_stream_error(void **state)
{
    buf b = BUF_INIT;
    xml_write_stream_error(&b, "not-well-formed", NULL);
    assert_string_equal(cstr(&b), "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                "</stream:error>");
    clear(&b);
    xml_write_stream_error(&b, "policy-violation", "stanza larger than 65536 bytes <&>");
    assert_string_equal(cstr(&b), "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>"
                                "stanza larger than 65536 bytes &lt;&amp;&gt;</text></stream:error>");
    /* Inside a stream it parses, with the condition and text in the stream-errors namespace. */
    buf doc = BUF_INIT;
    xml_stream_attrs open = {.content_ns = "jabber:client"};
    xml_write_stream_open(&doc, &open);
    buf_append(&doc, buf_data(&b), buf_len(&b));
    xml_write_stream_close(&doc);
    xml_arena *a = xml_arena_new(0);
    xml_node *root = read_back(a, buf_data(&doc), buf_len(&doc));
    xml_node *err = xml_child(root, XML_NS_STREAMS, "error");
    assert_non_null(err);
    assert_non_null(xml_child(err, XML_NS_STREAM_ERRORS, "policy-violation"));
    xml_node *t = xml_child(err, XML_NS_STREAM_ERRORS, "text");
    assert_string_equal(xml_text(a, t), "stanza larger than 65536 bytes <&>");
    assert_string_equal(xml_attr_get_ns(t, XML_NS_XML, "lang"), "en");
    xml_arena_free(a);
    buf_free(&doc);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_text),
        cmocka_unit_test(test_escape_attr),
        cmocka_unit_test(test_write_node),
        cmocka_unit_test(test_standalone_round_trip),
        cmocka_unit_test(test_ordinary_unchanged),
        cmocka_unit_test(test_hoisting_exact),
        cmocka_unit_test(test_amplification),
        cmocka_unit_test(test_bounded_writer),
        cmocka_unit_test(test_stream_open_close),
        cmocka_unit_test(test_stream_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
