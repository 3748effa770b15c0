/* tests/unit/test_xml_write.c — the serializer: escaping, namespaces, stream header and
 * errors, and standalone output that expat parses back into the same tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    assert_int_equal(XML_Parse(r.x, doc, (int)len, XML_TRUE), XML_STATUS_OK);
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
        cmocka_unit_test(test_stream_open_close),
        cmocka_unit_test(test_stream_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
