/* tests/unit/test_jid.c — core/jid: RFC 6122/7622 examples, folding, unicode, limits, the ASCII
 * fast path against libidn's stringprep, copies, comparisons and parsing from many threads. */
#include "core/jid.h"

#include <idna.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#include <cmocka.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static void expect_jid_n(const char *in, size_t len, const char *want)
{
    jid j, again;
    jid_err err = jid_parse(in, len, &j);
    if (err != JID_OK)
        fail_msg("'%s': %s, expected '%s'", in, jid_strerror(err), want);
    assert_string_equal(jid_full(&j), want);
    assert_int_equal(jid_full_len(&j), strlen(want));
    /* The normalised form is a fixed point. */
    assert_int_equal(jid_parse(jid_full(&j), jid_full_len(&j), &again), JID_OK);
    assert_true(jid_equal_full(&j, &again));
    jid_free(&again);
    jid_free(&j);
}

static void expect_jid(const char *in, const char *want)
{
    expect_jid_n(in, strlen(in), want);
}

static void expect_err_n(const char *in, size_t len, jid_err want)
{
    jid j;
    jid_err err = jid_parse(in, len, &j);
    if (err != want)
        fail_msg("'%s': got %s (%s), expected %s", in, jid_strerror(err),
                 err == JID_OK ? jid_full(&j) : "-", jid_strerror(want));
    /* A failed parse leaves the zeroed jid. */
    assert_int_equal(jid_full_len(&j), 0);
    assert_string_equal(jid_full(&j), "");
}

static void expect_err(const char *in, jid_err want)
{
    expect_err_n(in, strlen(in), want);
}

/* Checks the three parts of a successful parse. NULL means absent. */
static void expect_parts(const char *in, const char *node, const char *domain, const char *res)
{
    jid j;
    size_t len;
    const char *p;
    assert_int_equal(jid_parse(in, strlen(in), &j), JID_OK);
    p = jid_node(&j, &len);
    if (node) {
        assert_non_null(p);
        assert_int_equal(len, strlen(node));
        assert_memory_equal(p, node, len);
    } else {
        assert_null(p);
        assert_int_equal(len, 0);
    }
    p = jid_domain(&j, &len);
    assert_non_null(p);
    assert_int_equal(len, strlen(domain));
    assert_memory_equal(p, domain, len);
    p = jid_resource(&j, &len);
    if (res) {
        assert_non_null(p);
        assert_string_equal(p, res);
        assert_int_equal(len, strlen(res));
        assert_false(jid_is_bare(&j));
    } else {
        assert_null(p);
        assert_true(jid_is_bare(&j));
    }
    jid_free(&j);
}

/* head, then unit repeated times times, then tail; malloc'd. */
static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t hlen = strlen(head), ulen = strlen(unit), tlen = strlen(tail);
    char *s = malloc(hlen + ulen * times + tlen + 1);
    assert_non_null(s);
    memcpy(s, head, hlen);
    for (size_t i = 0; i < times; i++)
        memcpy(s + hlen + i * ulen, unit, ulen);
    memcpy(s + hlen + ulen * times, tail, tlen + 1);
    return s;
}

/* ---- RFC 7622 §3.5 examples ------------------------------------------------------------------ */

static void test_rfc7622_valid_examples(void **state)
{
    expect_parts("juliet@example.com", "juliet", "example.com", NULL);
    expect_parts("juliet@example.com/foo", "juliet", "example.com", "foo");
    expect_parts("juliet@example.com/foo bar", "juliet", "example.com", "foo bar");
    expect_parts("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar");
    expect_parts("foo\\20bar@example.com", "foo\\20bar", "example.com", NULL);
    expect_jid("fussball@example.com", "fussball@example.com");
    expect_jid("π@example.com", "π@example.com");
    expect_jid("Σ@example.com", "σ@example.com");
    expect_jid("ς@example.com", "σ@example.com");
    expect_parts("king@example.com/♚", "king", "example.com", "♚");
    expect_parts("example.com", NULL, "example.com", NULL);
    expect_parts("example.com/foobar", NULL, "example.com", "foobar");
    expect_parts("a.example.com/b@example.net", NULL, "a.example.com", "b@example.net");
    /* Table 2 lists "juliet@example.com/ foo" as invalid, but erratum 4560 withdraws it: a
     * leading space in a resource is allowed (by resourceprep too). */
    expect_parts("juliet@example.com/ foo", "juliet", "example.com", " foo");
    /* The resource is everything after the first '/'. */
    expect_parts("server/resource@foo", NULL, "server", "resource@foo");
    expect_parts("server/resource@foo/bar", NULL, "server", "resource@foo/bar");
}

/* Cases where the stringprep rules (RFC 6122) and PRECIS (RFC 7622) give different answers; we
 * implement RFC 6122, as jabberd2, ejabberd and Prosody do. */
static void test_rfc6122_where_7622_differs(void **state)
{
    /* nodeprep's case folding (table B.2) maps ß to "ss"; PRECIS keeps ß. */
    expect_jid("fußball@example.com", "fussball@example.com");
    /* 7622 Table 2 rejects ROMAN NUMERAL FOUR; nodeprep folds and NFKC-maps it to "iv". */
    expect_jid("henryⅣ@example.com", "henryiv@example.com");
    /* 7622 Table 2 rejects a symbol as localpart; nodeprep does not prohibit symbols. */
    expect_jid("♚@example.com", "♚@example.com");
}

static void test_rfc7622_invalid_examples(void **state)
{
    expect_err("\"juliet\"@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("foo bar@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("@example.com/", JID_ERR_NODE_EMPTY);
    expect_err("juliet@", JID_ERR_DOMAIN_EMPTY);
    expect_err("/foobar", JID_ERR_DOMAIN_EMPTY);
    expect_err("juliet@example.com/", JID_ERR_RESOURCE_EMPTY);
    expect_err("example.com/", JID_ERR_RESOURCE_EMPTY);
    expect_err("", JID_ERR_EMPTY);
    expect_err("node@/server", JID_ERR_DOMAIN_EMPTY);
    expect_err("@server", JID_ERR_NODE_EMPTY);
    expect_err("@server/resource", JID_ERR_NODE_EMPTY);
    expect_err("@/resource", JID_ERR_NODE_EMPTY);
    expect_err("@/", JID_ERR_NODE_EMPTY);
    expect_err("/", JID_ERR_DOMAIN_EMPTY);
    expect_err("@", JID_ERR_NODE_EMPTY);
    expect_err("user@", JID_ERR_DOMAIN_EMPTY);
    expect_err("user@@", JID_ERR_DOMAIN_INVALID);
    expect_err("user@@host", JID_ERR_DOMAIN_INVALID);
    expect_err("user@@host/resource", JID_ERR_DOMAIN_INVALID);
    expect_err("user@@host/", JID_ERR_DOMAIN_INVALID);
    /* Every nodeprep-specific prohibited character, and the ASCII controls. */
    expect_err("a&b@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("a'b@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("a:b@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("a<b@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("a>b@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("a\tb@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("a\x7f@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("example.com/a\nb", JID_ERR_RESOURCE_PROHIBITED);
    expect_err("example.com/\x01", JID_ERR_RESOURCE_PROHIBITED);
}

/* ---- folding and unicode ------------------------------------------------------------------- */

static void test_case_folding(void **state)
{
    expect_jid("JULIET@EXAMPLE.COM", "juliet@example.com");
    expect_jid("JULIET@EXAMPLE.COM/Balcony", "juliet@example.com/Balcony");
    expect_jid("JuLiEt@ExAmPlE.cOm/RESOURCE", "juliet@example.com/RESOURCE");
    expect_jid("EXAMPLE.COM/Foo Bar", "example.com/Foo Bar");
    expect_jid("ΣΑΣ@EXAMPLE.COM/ΣΑΣ", "σασ@example.com/ΣΑΣ");
}

static void test_unicode(void **state)
{
    /* Full-width forms: NFKC makes them ASCII, in every part. */
    expect_jid("ｊｕｌｉｅｔ@ＥＸＡＭＰＬＥ．ｃｏｍ/ｒ", "juliet@example.com/r");
    /* A full-width '@' is not a separator; nameprep makes it an ASCII '@', no LDH character. */
    expect_err("juliet＠example.com", JID_ERR_DOMAIN_INVALID);
    /* NFKC joins an ASCII character with a combining mark: '<' + U+0338 is U+226E, which
     * nodeprep allows. A fast path that rejected '<' before looking further would be wrong. */
    expect_jid("<\u0338@example.com", "\u226e@example.com");
    expect_jid("A\u030a@example.com", "\u00e5@example.com");
    /* Resourceprep normalises (NFKC) but keeps case: ANGSTROM SIGN becomes Å, not å. */
    expect_jid("example.com/\u212b", "example.com/\u00c5");
    /* NO-BREAK SPACE becomes a space: prohibited in a node, allowed in a resource. */
    expect_err("a\u00a0b@example.com", JID_ERR_NODE_PROHIBITED);
    expect_jid("example.com/a\u00a0b", "example.com/a b");
    /* Non-ASCII prohibited characters: private use, non-character, bidi control, line sep. */
    expect_err("\ue000@example.com", JID_ERR_NODE_PROHIBITED);
    expect_err("example.com/a\uffff", JID_ERR_RESOURCE_PROHIBITED);
    expect_err("example.com/a\u200eb", JID_ERR_RESOURCE_PROHIBITED);
    expect_err("example.com/a\u2028b", JID_ERR_RESOURCE_PROHIBITED);
    expect_err("\u00e9\ue000.example", JID_ERR_DOMAIN_PROHIBITED);
    /* Bidi rule: right-to-left alone is fine, mixed with left-to-right is not. */
    expect_jid("\u0627\u0628@example.com", "\u0627\u0628@example.com");
    expect_err("a\u0628@example.com", JID_ERR_NODE_PROHIBITED);
    /* Map-to-nothing (table B.1): soft hyphen and zero-width space vanish. */
    expect_jid("ju\u00adli\u200bet@exa\u00admple.com", "juliet@example.com");
    expect_err("\u00ad@example.com", JID_ERR_NODE_EMPTY);
    expect_err("example.com/\u00ad", JID_ERR_RESOURCE_EMPTY);
    expect_err("\u00ad.example.com", JID_ERR_DOMAIN_INVALID);
    /* Unassigned code points (Unicode 3.2) are allowed, as in queries. */
    expect_jid("\U0001f600@example.com/\U0001f600 phone", "\U0001f600@example.com/\U0001f600 phone");
    /* Internationalised domains, prepared label by label. */
    expect_jid("BÜCHER.example", "bücher.example");
    expect_jid("\u0645\u062b\u0627\u0644.example", "\u0645\u062b\u0627\u0644.example");
    expect_jid("例え。テスト", "例え.テスト");
    expect_jid("例え．テスト｡", "例え.テスト");
    expect_jid("\u212aelvin.example", "kelvin.example");
    expect_err("⒈com", JID_ERR_DOMAIN_INVALID);           /* NFKC makes "1." inside a label */
    expect_err("ü_x.example", JID_ERR_DOMAIN_INVALID);    /* STD3 rules in a U-label */
    expect_err("xn--ü.example", JID_ERR_DOMAIN_INVALID);  /* ACE prefix on a U-label */
    expect_err("ü-.example", JID_ERR_DOMAIN_INVALID);
    expect_err("a\u0628.example", JID_ERR_DOMAIN_PROHIBITED);
    /* The 63-octet label limit applies to the punycode form: 50 "ü" make 56, 60 make 66. */
    char *label = repeat("", "ü", 50, ".example");
    expect_jid(label, label);
    free(label);
    label = repeat("", "ü", 60, ".example");
    expect_err(label, JID_ERR_DOMAIN_INVALID);
    free(label);
}

static void test_utf8_rejected(void **state)
{
    static const char *const bad[] = {
        "\xff@example.com", "a@ex\303ample.com", "example.com/\xc3", "\xc0\xaf@example.com",
        "\xe0\x80\xaf@example.com", "\xed\xa0\x80@example.com", "example.com/\xf4\x90\x80\x80",
        "\xf0\x8f\xbf\xbf@example.com", "\x80@example.com", "example.com/a\xe2\x82",
        "\xf8\x88\x80\x80\x80@example.com", "exa\xe3\x80mple.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_err(bad[i], JID_ERR_UTF8);
    /* The edges of valid UTF-8 pass this layer: U+07FF and U+FFED (NFKC: U+25A0) are allowed,
     * U+10FFFF is well-formed but a non-character, which resourceprep prohibits. */
    expect_jid("example.com/\xdf\xbf\xef\xbf\xad", "example.com/\xdf\xbf\u25a0");
    expect_err("example.com/\xf4\x8f\xbf\xbf", JID_ERR_RESOURCE_PROHIBITED);
    expect_jid("example.com/\xf0\x90\x80\x80", "example.com/\xf0\x90\x80\x80");
    /* A NUL is a control character, not the end of the input: also on the stringprep path. */
    expect_err_n("ju\0liet@example.com", 19, JID_ERR_NODE_PROHIBITED);
    expect_err_n("\xc3\xa9\0@example.com", 15, JID_ERR_NODE_PROHIBITED);
    expect_err_n("juliet@exa\0mple.com", 19, JID_ERR_DOMAIN_INVALID);
    expect_err_n("juliet@\xc3\xa9\0.com", 14, JID_ERR_DOMAIN_PROHIBITED);
    expect_err_n("[::1\0]", 6, JID_ERR_DOMAIN_INVALID);
    expect_err_n("example.com/a\0b", 15, JID_ERR_RESOURCE_PROHIBITED);
    expect_err_n("example.com/\xc3\xa9\0", 15, JID_ERR_RESOURCE_PROHIBITED);
}

/* ---- domain rules --------------------------------------------------------------------------- */

static void test_domain_rules(void **state)
{
    expect_jid("example.com.", "example.com");
    expect_jid("juliet@example.com./r", "juliet@example.com/r");
    expect_err("example.com..", JID_ERR_DOMAIN_INVALID);
    expect_err(".", JID_ERR_DOMAIN_EMPTY);
    expect_err("juliet@.", JID_ERR_DOMAIN_EMPTY);
    expect_err("juliet@。", JID_ERR_DOMAIN_EMPTY);
    expect_err("a..b", JID_ERR_DOMAIN_INVALID);
    expect_err(".a", JID_ERR_DOMAIN_INVALID);
    expect_err("a b.example", JID_ERR_DOMAIN_INVALID);
    expect_err("-a.example", JID_ERR_DOMAIN_INVALID);
    expect_err("a-.example", JID_ERR_DOMAIN_INVALID);
    expect_err("a_b.example", JID_ERR_DOMAIN_INVALID);
    expect_err("a:5222", JID_ERR_DOMAIN_INVALID);
    expect_err("juliet@exa mple.com", JID_ERR_DOMAIN_INVALID);
    expect_jid("a-b.example", "a-b.example");
    expect_jid("xn--bcher-kva.example", "xn--bcher-kva.example");
    expect_jid("localhost", "localhost");

    char label[80];
    memset(label, 'a', 63);
    strcpy(label + 63, ".example");
    expect_jid(label, label);
    memset(label, 'a', 64);
    strcpy(label + 64, ".example");
    expect_err(label, JID_ERR_DOMAIN_INVALID);

    /* IP literals. */
    expect_parts("juliet@[::1]/r", "juliet", "[::1]", "r");
    expect_jid("[2001:DB8::A]", "[2001:db8::a]");
    expect_jid("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]");
    expect_jid("juliet@127.0.0.1", "juliet@127.0.0.1");
    expect_jid("[::1].", "[::1]");
    expect_err("[::1", JID_ERR_DOMAIN_INVALID);
    expect_err("[::1]x", JID_ERR_DOMAIN_INVALID);
    expect_err("[]", JID_ERR_DOMAIN_INVALID);
    expect_err("[foo]", JID_ERR_DOMAIN_INVALID);
    expect_err("[1.2.3.4]", JID_ERR_DOMAIN_INVALID);
    expect_err("[fe80::1%eth0]", JID_ERR_DOMAIN_INVALID);
    expect_err("[1:2:3:4:5:6:7:8:9]", JID_ERR_DOMAIN_INVALID);
}

/* ---- lengths -------------------------------------------------------------------------------- */

static void expect_len(const char *in, jid_err want, size_t full_len)
{
    jid j;
    jid_err err = jid_parse(in, strlen(in), &j);
    assert_int_equal(err, want);
    if (err == JID_OK) {
        assert_int_equal(jid_full_len(&j), full_len);
        assert_int_equal(strlen(jid_full(&j)), full_len);
    }
    jid_free(&j);
}

/* expect_len on head + unit * times + tail. */
static void expect_len_rep(const char *head, const char *unit, size_t times, const char *tail,
                           jid_err want, size_t full_len)
{
    char *s = repeat(head, unit, times, tail);
    expect_len(s, want, full_len);
    free(s);
}

static void test_part_lengths(void **state)
{
    /* ASCII: 1023 bytes pass, 1024 do not, in each part. */
    expect_len_rep("", "a", 1023, "@example.com", JID_OK, 1035);
    expect_len_rep("", "a", 1024, "@example.com", JID_ERR_NODE_TOO_LONG, 0);
    expect_len_rep("example.com/", "r", 1023, "", JID_OK, 1035);
    expect_len_rep("example.com/", "r", 1024, "", JID_ERR_RESOURCE_TOO_LONG, 0);

    /* Non-ASCII, counted in bytes: 511 two-byte characters and one ASCII = 1023. */
    expect_len_rep("", "é", 511, "a@example.com", JID_OK, 1035);
    expect_len_rep("", "é", 512, "@example.com", JID_ERR_NODE_TOO_LONG, 0);
    /* The limit applies after preparation: full-width letters shrink from 3 bytes to 1 ... */
    expect_len_rep("", "ａ", 1023, "@example.com", JID_OK, 1035);
    expect_len_rep("", "ａ", 1024, "@example.com", JID_ERR_NODE_TOO_LONG, 0);
    /* ... and U+FDFA grows from 3 bytes to 33: 31 of them make exactly 1023. */
    char res[200] = "example.com/";
    for (int i = 0; i < 31; i++)
        strcat(res, "\ufdfa");
    expect_len(res, JID_OK, 12 + 1023);
    strcat(res, "\ufdfa");
    expect_len(res, JID_ERR_RESOURCE_TOO_LONG, 0);
    /* Input before preparation is capped at JID_PART_INPUT_MAX bytes. */
    expect_len_rep("", "\u00ad", 2045, "ab@example.com", JID_OK, 14);
    expect_len_rep("", "\u00ad", 2046, "a@example.com", JID_ERR_NODE_TOO_LONG, 0);
    expect_len_rep("", "a", 100000, "@example.com", JID_ERR_NODE_TOO_LONG, 0);

    /* Domain: 16 labels of 63 and 15 dots = 1023; a trailing dot does not count. */
    char dom[1100] = "";
    for (int i = 0; i < 16; i++) {
        if (i)
            strcat(dom, ".");
        memset(dom + strlen(dom), 'a' + i, 63);
        dom[i * 64 + 63] = '\0';
    }
    assert_int_equal(strlen(dom), 1023);
    expect_len(dom, JID_OK, 1023);
    strcat(dom, ".");
    expect_len(dom, JID_OK, 1023);
    dom[1023] = 'z';
    dom[1024] = '\0';
    expect_len(dom, JID_ERR_DOMAIN_TOO_LONG, 0);

    /* The longest JID: three full parts, on the heap. */
    char *full = malloc(JID_MAX_LEN + 1);
    memset(full, 'n', 1023);
    full[1023] = '@';
    dom[1023] = '\0';
    memcpy(full + 1024, dom, 1023);
    full[2047] = '/';
    memset(full + 2048, 'R', 1023);
    full[JID_MAX_LEN] = '\0';
    expect_jid(full, full);
    jid j;
    assert_int_equal(jid_parse(full, JID_MAX_LEN, &j), JID_OK);
    char out[JID_MAX_LEN + 1];
    assert_int_equal(jid_to_string(&j, out, sizeof out), JID_MAX_LEN);
    assert_string_equal(out, full);
    jid_free(&j);
    free(full);
}

/* ---- the ASCII fast path against libidn ----------------------------------------------------- */

/* What libidn says about part (NUL-terminated, ASCII, no NUL inside) and what jid_make says must
 * agree exactly: same verdict, same prepared string. */
static void check_part_against_libidn(int kind, const char *part)
{
    static const Stringprep_profile *const profiles[3] = {
        stringprep_xmpp_nodeprep, stringprep_nameprep, stringprep_xmpp_resourceprep,
    };
    char want[64];
    size_t len = strlen(part);
    jid j;
    jid_err err;
    const char *got;
    size_t got_len;

    if (kind == 1) {
        /* The domain: strip one final dot (RFC 6122 §2.2), nameprep, then IDNA2003 ToASCII
         * with the STD3 rules decides; ToASCII also takes "a." (the root) which we do not. */
        size_t n = len;
        if (n && part[n - 1] == '.')
            n--;
        memcpy(want, part, n);
        want[n] = '\0';
        int rc = stringprep(want, sizeof want, 0, profiles[kind]);
        err = jid_make(NULL, 0, part, len, NULL, 0, &j);
        if (rc != STRINGPREP_OK) {
            assert_int_equal(err, JID_ERR_DOMAIN_PROHIBITED);
            return;
        }
        if (n == 0) {
            assert_int_equal(err, JID_ERR_DOMAIN_EMPTY);
            return;
        }
        char *ace = NULL;
        bool valid = idna_to_ascii_8z(want, &ace, IDNA_USE_STD3_ASCII_RULES | IDNA_ALLOW_UNASSIGNED) ==
                         IDNA_SUCCESS && want[strlen(want) - 1] != '.';
        free(ace);
        if (!valid) {
            if (err != JID_ERR_DOMAIN_INVALID)
                fail_msg("domain '%s': %s, libidn refuses it", part, jid_strerror(err));
            return;
        }
        if (err != JID_OK)
            fail_msg("domain '%s': %s, libidn accepts it", part, jid_strerror(err));
        got = jid_domain(&j, &got_len);
    } else {
        strcpy(want, part);
        int rc = stringprep(want, sizeof want, 0, profiles[kind]);
        if (kind == 0)
            err = jid_make(part, len, "example.com", 11, NULL, 0, &j);
        else
            err = jid_make(NULL, 0, "example.com", 11, part, len, &j);
        if (rc != STRINGPREP_OK) {
            jid_err refused = kind == 0 ? JID_ERR_NODE_PROHIBITED : JID_ERR_RESOURCE_PROHIBITED;
            if (err != refused)
                fail_msg("%s '%s': %s, libidn refuses it", kind ? "resource" : "node", part,
                         jid_strerror(err));
            return;
        }
        if (err != JID_OK)
            fail_msg("%s '%s': %s, libidn accepts it", kind ? "resource" : "node", part,
                     jid_strerror(err));
        got = kind == 0 ? jid_node(&j, &got_len) : jid_resource(&j, &got_len);
    }
    assert_int_equal(got_len, strlen(want));
    assert_memory_equal(got, want, got_len);
    jid_free(&j);
}

static void test_fast_path_matches_stringprep(void **state)
{
    char s[4];
    for (int kind = 0; kind < 3; kind++) {
        /* Every ASCII character except NUL (tested apart: libidn cannot see it) alone, in every
         * position of every two-character string, and in the middle of a three-character one. */
        for (int a = 1; a < 128; a++) {
            s[0] = (char)a, s[1] = '\0';
            check_part_against_libidn(kind, s);
            for (int b = 1; b < 128; b++) {
                s[1] = (char)b, s[2] = '\0';
                check_part_against_libidn(kind, s);
            }
            s[0] = 'Q', s[1] = (char)a, s[2] = 'z', s[3] = '\0';
            check_part_against_libidn(kind, s);
        }
    }
}

/* ---- idempotence over Unicode -------------------------------------------------------------- */

static size_t utf8_encode(unsigned cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
    o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

/* Every code point below U+20000 (the BMP and the plane with the emoji), between an uppercase
 * letter it may combine with and a lowercase one, in each part: whatever is accepted reparses to
 * itself. (Run once over all of Unicode, to U+10FFFF, with the same result; that takes seconds.) */
static void test_every_code_point_is_a_fixed_point(void **state)
{
    static const char *const head[3] = { "A", "example.com/A", "A" };
    static const char *const tail[3] = { "b@example.com", "b", "b.example" };
    long accepted[3] = { 0 };
    for (unsigned cp = 0x80; cp < 0x20000; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        char c[5], in[32];
        c[utf8_encode(cp, c)] = '\0';
        for (int k = 0; k < 3; k++) {
            jid j, again;
            snprintf(in, sizeof in, "%s%s%s", head[k], c, tail[k]);
            if (jid_parse(in, strlen(in), &j) != JID_OK)
                continue;
            accepted[k]++;
            jid_err err = jid_parse(jid_full(&j), jid_full_len(&j), &again);
            if (err != JID_OK || !jid_equal_full(&j, &again))
                fail_msg("U+%04X: '%s' -> '%s' -> %s '%s'", cp, in, jid_full(&j),
                         jid_strerror(err), jid_full(&again));
            jid_free(&j);
            jid_free(&again);
        }
    }
    /* Most code points are allowed in each part (prohibited ones are the exception). */
    for (int k = 0; k < 3; k++)
        assert_true(accepted[k] > 90000);
}

/* ---- values: copies, bare, resources, comparisons, strings ---------------------------------- */

static void test_copy_bare_set_resource(void **state)
{
    jid a, b, c;
    /* 55 bytes stay inside the struct, 56 go to the heap: exercise both and the moves between. */
    const char *inl = "juliet@example.com/0123456789012345678901234567890123a";  /* 54 */
    assert_int_equal(jid_parse(inl, strlen(inl), &a), JID_OK);
    assert_int_equal(jid_set_resource(&a, "0123456789012345678901234567890123ab", 36), JID_OK);
    assert_int_equal(jid_full_len(&a), 55);
    jid_copy(&b, &a);
    assert_true(jid_equal_full(&a, &b));
    assert_ptr_not_equal(jid_full(&a), jid_full(&b));
    assert_int_equal(jid_set_resource(&b, "0123456789012345678901234567890123abc", 37), JID_OK);
    assert_int_equal(jid_full_len(&b), 56);
    assert_false(jid_equal_full(&a, &b));
    assert_true(jid_equal_bare(&a, &b));
    jid_copy(&c, &b);  /* heap copy is independent */
    jid_free(&b);
    assert_string_equal(jid_full(&c), "juliet@example.com/0123456789012345678901234567890123abc");
    jid_bare(&c, &c);  /* heap -> inline, in place */
    assert_string_equal(jid_full(&c), "juliet@example.com");
    assert_true(jid_is_bare(&c));
    assert_int_equal(jid_bare_len(&c), 18);
    jid_free(&c);

    /* Setting a resource normalises it and reports errors without touching the jid. */
    assert_int_equal(jid_set_resource(&a, "Ｈｏｍｅ", strlen("Ｈｏｍｅ")), JID_OK);
    assert_string_equal(jid_full(&a), "juliet@example.com/Home");
    assert_int_equal(jid_set_resource(&a, "", 0), JID_ERR_RESOURCE_EMPTY);
    assert_int_equal(jid_set_resource(&a, "a\x01", 2), JID_ERR_RESOURCE_PROHIBITED);
    assert_int_equal(jid_set_resource(&a, "\xff", 1), JID_ERR_UTF8);
    assert_string_equal(jid_full(&a), "juliet@example.com/Home");
    char *longres = repeat("", "x", 1023, "");
    assert_int_equal(jid_set_resource(&a, longres, 1023), JID_OK);
    assert_int_equal(jid_full_len(&a), 19 + 1023);
    assert_string_equal(jid_resource(&a, NULL), longres);
    free(longres);
    jid_bare(&a, &b);  /* heap -> inline, into another jid */
    assert_string_equal(jid_full(&b), "juliet@example.com");
    assert_int_equal(jid_full_len(&a), 19 + 1023);
    jid_free(&a);
    jid_free(&b);

    /* A zeroed jid is "no JID": empty string, nothing to free, no resource to set. */
    jid z;
    memset(&z, 0, sizeof z);
    assert_string_equal(jid_full(&z), "");
    assert_int_equal(jid_set_resource(&z, "r", 1), JID_ERR_DOMAIN_EMPTY);
    jid_free(&z);

    /* Domain JIDs. */
    assert_int_equal(jid_parse("example.com", 11, &a), JID_OK);
    assert_int_equal(jid_set_resource(&a, "r/s@t", 5), JID_OK);
    expect_parts(jid_full(&a), NULL, "example.com", "r/s@t");
    jid_free(&a);
}

static void test_make(void **state)
{
    jid j;
    assert_int_equal(jid_make("Juliet", 6, "Example.COM.", 12, "Balcony", 7, &j), JID_OK);
    assert_string_equal(jid_full(&j), "juliet@example.com/Balcony");
    jid_free(&j);
    /* Parts are not split: '@' and '/' are ordinary characters in a resource. */
    assert_int_equal(jid_make(NULL, 0, "example.com", 11, "a@b/c", 5, &j), JID_OK);
    expect_parts(jid_full(&j), NULL, "example.com", "a@b/c");
    jid_free(&j);
    assert_int_equal(jid_make("a@b", 3, "example.com", 11, NULL, 0, &j), JID_ERR_NODE_PROHIBITED);
    assert_int_equal(jid_make("a", 1, "b/c", 3, NULL, 0, &j), JID_ERR_DOMAIN_INVALID);
    assert_int_equal(jid_make("", 0, "example.com", 11, NULL, 0, &j), JID_ERR_NODE_EMPTY);
    assert_int_equal(jid_make(NULL, 0, NULL, 0, NULL, 0, &j), JID_ERR_DOMAIN_EMPTY);
    assert_int_equal(jid_make(NULL, 0, "example.com", 11, "", 0, &j), JID_ERR_RESOURCE_EMPTY);
    assert_string_equal(jid_full(&j), "");
}

static void test_compare(void **state)
{
    jid a, b, c, d, e;
    assert_int_equal(jid_parse("JULIET@example.COM/Home", 23, &a), JID_OK);
    assert_int_equal(jid_parse("juliet@EXAMPLE.com./Home", 24, &b), JID_OK);
    assert_int_equal(jid_parse("juliet@example.com/home", 23, &c), JID_OK);
    assert_int_equal(jid_parse("juliet@example.com", 18, &d), JID_OK);
    assert_int_equal(jid_parse("example.com/juliet", 18, &e), JID_OK);
    assert_true(jid_equal_full(&a, &b));
    assert_true(jid_equal_bare(&a, &b));
    assert_false(jid_equal_full(&a, &c));  /* resources keep their case */
    assert_true(jid_equal_bare(&a, &c));
    assert_false(jid_equal_full(&a, &d));
    assert_true(jid_equal_bare(&a, &d));
    assert_true(jid_equal_full(&d, &d));
    assert_false(jid_equal_bare(&d, &e));
    assert_false(jid_equal_full(&d, &e));
    /* Same bytes, different split, are different JIDs. */
    jid f, g;
    assert_int_equal(jid_make("ab", 2, "c.d", 3, NULL, 0, &f), JID_OK);
    assert_int_equal(jid_make("a", 1, "b.c", 3, "d", 1, &g), JID_OK);
    assert_false(jid_equal_bare(&f, &g));
    jid_free(&a), jid_free(&b), jid_free(&c), jid_free(&d), jid_free(&e), jid_free(&f), jid_free(&g);
}

static void test_to_string(void **state)
{
    jid j;
    char buf[64];
    assert_int_equal(jid_parse("juliet@example.com/balcony", 26, &j), JID_OK);
    assert_int_equal(jid_to_string(&j, buf, sizeof buf), 26);
    assert_string_equal(buf, "juliet@example.com/balcony");
    assert_int_equal(jid_bare_to_string(&j, buf, sizeof buf), 18);
    assert_string_equal(buf, "juliet@example.com");
    assert_int_equal(jid_to_string(&j, buf, 7), 26);  /* cut, still terminated */
    assert_string_equal(buf, "juliet");
    buf[0] = 'x';
    assert_int_equal(jid_to_string(&j, buf, 0), 26);  /* nothing written */
    assert_int_equal(buf[0], 'x');
    assert_int_equal(jid_bare_to_string(&j, buf, 19), 18);
    assert_string_equal(buf, "juliet@example.com");
    jid_free(&j);
}

static void test_strerror(void **state)
{
    for (int e = JID_OK; e <= JID_ERR_RESOURCE_PROHIBITED; e++) {
        const char *s = jid_strerror((jid_err)e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown JID error");
        for (int f = JID_OK; f < e; f++)
            assert_string_not_equal(s, jid_strerror((jid_err)f));
    }
}

/* ---- threads -------------------------------------------------------------------------------- */

static const char *const thread_inputs[] = {
    "juliet@example.com/balcony", "ΣΑΣ@ΕΞΑΜΠΛΕ.example/Ω", "ｊｕｌｉｅｔ@ＥＸＡＭＰＬＥ．ｃｏｍ",
    "\u0645\u062b\u0627\u0644@\u0645\u062b\u0627\u0644.example", "fußball@bücher.example/♚",
    "bad@@host", "a\u0628@example.com", "例え。テスト/\U0001f600",
};
#define THREAD_N (sizeof thread_inputs / sizeof thread_inputs[0])

typedef struct {
    char want[THREAD_N][128];
    jid_err want_err[THREAD_N];
    int failures;
} thread_job;

static void *thread_parse(void *arg)
{
    thread_job *job = arg;
    for (int round = 0; round < 300; round++)
        for (size_t i = 0; i < THREAD_N; i++) {
            jid j;
            jid_err err = jid_parse(thread_inputs[i], strlen(thread_inputs[i]), &j);
            if (err != job->want_err[i] || strcmp(jid_full(&j), job->want[i]) != 0)
                job->failures++;
            jid_free(&j);
        }
    return NULL;
}

static void test_threads(void **state)
{
    enum { THREADS = 4 };
    thread_job jobs[THREADS];
    pthread_t tids[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        for (size_t i = 0; i < THREAD_N; i++) {
            jid j;
            jobs[t].want_err[i] = jid_parse(thread_inputs[i], strlen(thread_inputs[i]), &j);
            snprintf(jobs[t].want[i], sizeof jobs[t].want[i], "%s", jid_full(&j));
            jid_free(&j);
        }
    }
    assert_int_equal(jobs[0].want_err[0], JID_OK);
    assert_int_equal(jobs[0].want_err[5], JID_ERR_DOMAIN_INVALID);
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&tids[t], NULL, thread_parse, &jobs[t]), 0);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(tids[t], NULL), 0);
        assert_int_equal(jobs[t].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7622_valid_examples),
        cmocka_unit_test(test_rfc6122_where_7622_differs),
        cmocka_unit_test(test_rfc7622_invalid_examples),
        cmocka_unit_test(test_case_folding),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_utf8_rejected),
        cmocka_unit_test(test_domain_rules),
        cmocka_unit_test(test_part_lengths),
        cmocka_unit_test(test_fast_path_matches_stringprep),
        cmocka_unit_test(test_every_code_point_is_a_fixed_point),
        cmocka_unit_test(test_copy_bare_set_resource),
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_to_string),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
