/* tests/unit/test_xmpp_framing.c — shard/xmpp_framing: a client's <open/> becomes a stream header
 * with its to, version and xml:lang (and jabber:client as the default namespace), <close/> the
 * closing tag, other messages pass as they are, and <open/> in another namespace or not
 * well-formed is refused; the stream's own output is cut into <open/>, elements
 * (xmlns='jabber:client' added to stanzas without one, xmlns:stream to <stream:features/> and
 * <stream:error/>, quoted '>' in attribute values kept) and <close/>, an element cut short waits
 * for the next call; framing_xmlns_at finds where a stanza from the SM needs its xmlns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shard/xmpp_framing.h"

static void test_in(void **state)
{
    buf s = BUF_INIT;
    const char *open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' "
                       "version='1.0' xml:lang='de'/>";
    assert_int_equal(framing_in(open, strlen(open), &s), FRAMING_IN_OPEN);
    buf_append(&s, "", 1);
    const char *h = buf_data(&s);
    assert_non_null(strstr(h, "<stream:stream"));
    assert_non_null(strstr(h, "xmlns='jabber:client'"));
    assert_non_null(strstr(h, "to='example.org'"));
    assert_non_null(strstr(h, "version='1.0'"));
    assert_non_null(strstr(h, "xml:lang='de'"));
    buf_free(&s);
    const char *close = "  <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
    assert_int_equal(framing_in(close, strlen(close), &s), FRAMING_IN_CLOSE);
    assert_int_equal(buf_len(&s), 16);
    assert_memory_equal(buf_data(&s), "</stream:stream>", 16);
    buf_free(&s);
    const char *msg = "<message xmlns='jabber:client' to='a@b'><body>x</body></message>";
    assert_int_equal(framing_in(msg, strlen(msg), &s), FRAMING_IN_ELEMENT);
    assert_int_equal(buf_len(&s), strlen(msg));
    buf_free(&s);
    /* <opener/> is not <open/>. */
    const char *opener = "<opener/>";
    assert_int_equal(framing_in(opener, strlen(opener), &s), FRAMING_IN_ELEMENT);
    buf_free(&s);
    const char *wrong = "<open xmlns='jabber:client' to='example.org' version='1.0'/>";
    assert_int_equal(framing_in(wrong, strlen(wrong), &s), FRAMING_IN_BAD_NAMESPACE);
    const char *broken = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x'";
    assert_int_equal(framing_in(broken, strlen(broken), &s), FRAMING_IN_NOT_WELL_FORMED);
    assert_int_equal(buf_len(&s), 0);
    /* A DTD before <open/> is not an <open/>: its bytes go to the stream, whose parser refuses
     * any DTD (restricted-xml, core/xmlstream.h). */
    const char *dtd = "<!DOCTYPE open [<!ENTITY a 'b'>]><open xmlns='urn:ietf:params:xml:ns:"
                      "xmpp-framing' to='&a;'/>";
    assert_int_equal(framing_in(dtd, strlen(dtd), &s), FRAMING_IN_ELEMENT);
    buf_free(&s);
}

typedef struct seen {
    int n;
    framing_out_kind kinds[8];
    char text[8][512];
} seen;

static void collect(void *ctx, framing_out_kind kind, const char *data, size_t len)
{
    seen *s = ctx;
    assert_true(s->n < 8 && len < 512);
    s->kinds[s->n] = kind;
    memcpy(s->text[s->n], data, len);
    s->text[s->n][len] = '\0';
    s->n++;
}

static void test_out(void **state)
{
    const char *out =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='example.org' "
        "version='1.0' xml:lang='en'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:"
        "xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        "<iq type='result' id='a&gt;b'><query xmlns='x' attr='1>2'/></iq> "
        "<r xmlns='urn:xmpp:sm:3'/><stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:"
        "xmpp-streams'/></stream:error></stream:stream>";
    seen s = {0};
    assert_int_equal(framing_out(out, strlen(out), collect, &s), strlen(out));
    assert_int_equal(s.n, 6);
    assert_int_equal(s.kinds[0], FRAMING_OUT_OPEN);
    assert_string_equal(s.text[0], "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='abc' "
                                   "from='example.org' version='1.0' xml:lang='en'/>");
    assert_int_equal(s.kinds[1], FRAMING_OUT_ELEMENT);
    assert_true(strncmp(s.text[1], "<stream:features xmlns:stream='http://etherx.jabber.org/"
                                   "streams'><mechanisms", 73) == 0);
    assert_string_equal(s.text[2], "<iq xmlns='jabber:client' type='result' id='a&gt;b'><query "
                                   "xmlns='x' attr='1>2'/></iq>");
    assert_string_equal(s.text[3], "<r xmlns='urn:xmpp:sm:3'/>");
    assert_true(strncmp(s.text[4], "<stream:error xmlns:stream=", 27) == 0);
    assert_int_equal(s.kinds[5], FRAMING_OUT_CLOSE);
    assert_string_equal(s.text[5], "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
}

static void test_out_cut_short(void **state)
{
    const char *out = "<message to='a@b'><body>one</body></message><message to='a@b'><bo";
    seen s = {0};
    size_t used = framing_out(out, strlen(out), collect, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(used, strlen("<message to='a@b'><body>one</body></message>"));
    assert_string_equal(s.text[0], "<message xmlns='jabber:client' to='a@b'><body>one</body>"
                                   "</message>");
}

static void test_xmlns_at(void **state)
{
    const char *plain = "<message to='x'><body/></message>";
    assert_int_equal(framing_xmlns_at(plain, strlen(plain)), 8);
    const char *bare = "<presence/>";
    assert_int_equal(framing_xmlns_at(bare, strlen(bare)), 9);
    const char *has = "<iq type='get' xmlns='jabber:client'/>";
    assert_int_equal(framing_xmlns_at(has, strlen(has)), 0);
    const char *prefixed = "<iq xmlns:x='y' type='get'/>";
    assert_int_equal(framing_xmlns_at(prefixed, strlen(prefixed)), 3);
    assert_int_equal(framing_xmlns_at("text", 4), 0);
    assert_int_equal(framing_xmlns_at("<unclosed", 9), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in),
        cmocka_unit_test(test_out),
        cmocka_unit_test(test_out_cut_short),
        cmocka_unit_test(test_xmlns_at),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
