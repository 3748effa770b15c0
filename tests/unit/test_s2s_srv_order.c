/* tests/unit/test_s2s_srv_order.c — the pure parts of s2s/resolve.c: RFC 2782 ordering (priority,
 * weighted random measured over many runs with a fixed-seed generator, zero weights), SRV RDATA
 * parsing of hostile input, host name validation, and the merge of the _xmpps-server and
 * _xmpp-server answers ("." records, fallback, failures, bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "s2s/resolve.h"
#include "tests/support/xorshift.h"

/* A fixed seed: the statistics are the same on every run. */
static xorshift seeded = {2463534242u};
static uint32_t fixed_rnd(void) { return (uint32_t)(xorshift_next(&seeded) >> 32); }

static uint32_t zero_rnd(void)
{
    return 0;
}

static uint32_t max_rnd(void)
{
    return UINT32_MAX;
}

static s2s_srv_record rec(uint16_t prio, uint16_t weight, const char *target)
{
    s2s_srv_record r = { .priority = prio, .weight = weight, .port = 5269 };
    snprintf(r.target, sizeof(r.target), "%s", target);
    return r;
}

/* SRV RDATA for target (a dotted name, "" for the root). */
static size_t rdata(uint8_t *out, uint16_t prio, uint16_t weight, uint16_t port, const char *target)
{
    uint8_t *p = out;
    *p++ = prio >> 8, *p++ = prio & 0xff, *p++ = weight >> 8, *p++ = weight & 0xff;
    *p++ = port >> 8, *p++ = port & 0xff;
    while (*target) {
        const char *dot = strchr(target, '.');
        size_t l = dot ? (size_t)(dot - target) : strlen(target);
        *p++ = (uint8_t)l;
        memcpy(p, target, l);
        p += l;
        target += l + (dot ? 1 : 0);
    }
    *p++ = 0;
    return (size_t)(p - out);
}

/* ---- ordering ---------------------------------------------------------------------------- */

static void test_priority_order(void **state)
{
    s2s_srv_record r[5] = { rec(20, 5, "c"), rec(10, 0, "a"), rec(30, 1, "d"), rec(10, 0, "b"),
                            rec(0, 100, "z") };
    s2s_srv_order(r, 5, fixed_rnd);
    assert_int_equal(r[0].priority, 0);
    assert_int_equal(r[1].priority, 10);
    assert_int_equal(r[2].priority, 10);
    assert_int_equal(r[3].priority, 20);
    assert_int_equal(r[4].priority, 30);
    assert_string_equal(r[4].target, "d");
    s2s_srv_order(r, 0, fixed_rnd);    /* nothing to do */
    s2s_srv_order(r, 1, fixed_rnd);
    assert_string_equal(r[0].target, "z");
}

/* Weights 1:3:6 in one priority: each is first in proportion to its weight. */
static void test_weights_statistical(void **state)
{
    const int runs = 30000;
    int first[3] = { 0 };
    for (int i = 0; i < runs; i++) {
        s2s_srv_record r[3] = { rec(5, 10, "w10"), rec(5, 30, "w30"), rec(5, 60, "w60") };
        s2s_srv_order(r, 3, fixed_rnd);
        first[r[0].weight / 30]++;     /* 10 -> 0, 30 -> 1, 60 -> 2 */
    }
    /* Expected 10/100, 30/100, 60/100 (plus 1/101 of slack for the inclusive range). */
    assert_in_range(first[0], runs * 8 / 100, runs * 12 / 100);
    assert_in_range(first[1], runs * 27 / 100, runs * 33 / 100);
    assert_in_range(first[2], runs * 56 / 100, runs * 64 / 100);
}

static void test_zero_weights(void **state)
{
    /* All zero: the order stays as given (each pick takes the first). */
    s2s_srv_record r[3] = { rec(1, 0, "a"), rec(1, 0, "b"), rec(1, 0, "c") };
    s2s_srv_order(r, 3, fixed_rnd);
    assert_string_equal(r[0].target, "a");
    assert_string_equal(r[1].target, "b");
    assert_string_equal(r[2].target, "c");

    /* A zero weight next to a heavy one is chosen first only when the draw is 0. */
    s2s_srv_record z[2] = { rec(1, 100, "heavy"), rec(1, 0, "zero") };
    s2s_srv_order(z, 2, zero_rnd);
    assert_string_equal(z[0].target, "zero");
    s2s_srv_record m[2] = { rec(1, 100, "heavy"), rec(1, 0, "zero") };
    s2s_srv_order(m, 2, max_rnd);
    assert_string_equal(m[0].target, "heavy");
    assert_string_equal(m[1].target, "zero");

    int zero_first = 0;
    for (int i = 0; i < 20000; i++) {
        s2s_srv_record w[2] = { rec(1, 99, "heavy"), rec(1, 0, "zero") };
        s2s_srv_order(w, 2, fixed_rnd);
        zero_first += strcmp(w[0].target, "zero") == 0;
    }
    assert_in_range(zero_first, 100, 350);   /* 1 in 100 */
}

static void test_largest_weights(void **state)
{
    s2s_srv_record r[S2S_SRV_COLLECT_MAX];
    for (size_t i = 0; i < S2S_SRV_COLLECT_MAX; i++)
        r[i] = rec((uint16_t)(i % 3), UINT16_MAX, "x");
    s2s_srv_order(r, S2S_SRV_COLLECT_MAX, max_rnd);
    for (size_t i = 1; i < S2S_SRV_COLLECT_MAX; i++)
        assert_true(r[i - 1].priority <= r[i].priority);
}

/* ---- RDATA ------------------------------------------------------------------------------- */

static void test_rdata_parse(void **state)
{
    uint8_t b[600];
    s2s_srv_record r;
    size_t n = rdata(b, 10, 20, 5269, "xmpp.Example.org");
    assert_int_equal(s2s_srv_rdata_parse(b, n, &r), 0);
    assert_int_equal(r.priority, 10);
    assert_int_equal(r.weight, 20);
    assert_int_equal(r.port, 5269);
    assert_false(r.direct_tls);
    assert_string_equal(r.target, "xmpp.Example.org");

    n = rdata(b, 0, 0, 0, "");
    assert_int_equal(n, 7);
    assert_int_equal(s2s_srv_rdata_parse(b, n, &r), 0);
    assert_string_equal(r.target, ".");

    /* Too short, truncated, trailing bytes, no root label. */
    assert_int_equal(s2s_srv_rdata_parse(b, 6, &r), -1);
    assert_int_equal(s2s_srv_rdata_parse(NULL, 0, &r), -1);
    n = rdata(b, 1, 1, 1, "a.b");
    assert_int_equal(s2s_srv_rdata_parse(b, n - 1, &r), -1);
    assert_int_equal(s2s_srv_rdata_parse(b, n - 2, &r), -1);
    b[n] = 0;
    assert_int_equal(s2s_srv_rdata_parse(b, n + 1, &r), -1);

    /* A compression pointer, an extended label type, a label longer than what is left. */
    uint8_t ptr[] = { 0, 1, 0, 1, 0, 1, 0xc0, 0x0c };
    assert_int_equal(s2s_srv_rdata_parse(ptr, sizeof(ptr), &r), -1);
    uint8_t ext[] = { 0, 1, 0, 1, 0, 1, 0x41, 0 };
    assert_int_equal(s2s_srv_rdata_parse(ext, sizeof(ext), &r), -1);
    uint8_t over[] = { 0, 1, 0, 1, 0, 1, 5, 'a', 'b', 0 };
    assert_int_equal(s2s_srv_rdata_parse(over, sizeof(over), &r), -1);

    /* Characters and hyphens. */
    uint8_t bad[32];
    n = rdata(bad, 1, 1, 1, "a_b.example");
    assert_int_equal(s2s_srv_rdata_parse(bad, n, &r), -1);
    n = rdata(bad, 1, 1, 1, "-a.example");
    assert_int_equal(s2s_srv_rdata_parse(bad, n, &r), -1);
    uint8_t nul[] = { 0, 1, 0, 1, 0, 1, 3, 'a', 0, 'b', 0 };
    assert_int_equal(s2s_srv_rdata_parse(nul, sizeof(nul), &r), -1);
    uint8_t dot[] = { 0, 1, 0, 1, 0, 1, 3, 'a', '.', 'b', 0 };
    assert_int_equal(s2s_srv_rdata_parse(dot, sizeof(dot), &r), -1);
}

static void test_rdata_lengths(void **state)
{
    uint8_t b[600];
    s2s_srv_record r;
    char name[300];
    /* A 63-byte label passes, 64 does not. */
    memset(name, 'a', 63);
    strcpy(name + 63, ".org");
    size_t n = rdata(b, 1, 1, 1, name);
    assert_int_equal(s2s_srv_rdata_parse(b, n, &r), 0);
    assert_string_equal(r.target, name);
    b[6] = 64;
    assert_int_equal(s2s_srv_rdata_parse(b, n, &r), -1);

    /* 253 characters pass, 255 do not. */
    char *p = name;
    for (int i = 0; i < 4; i++) {
        memset(p, 'b', 62);
        p += 62;
        *p++ = '.';
    }
    memset(p, 'c', 5);
    p[5] = '\0';                          /* 4 * 63 + 5 = 257 characters */
    n = rdata(b, 1, 1, 1, name);
    assert_int_equal(s2s_srv_rdata_parse(b, n, &r), -1);
    p[1] = '\0';                          /* 253 */
    assert_int_equal(strlen(name), 253);
    n = rdata(b, 1, 1, 1, name);
    assert_int_equal(s2s_srv_rdata_parse(b, n, &r), 0);
    assert_string_equal(r.target, name);
    assert_true(s2s_host_valid(name));
    p[1] = 'c';
    p[2] = '\0';
    assert_false(s2s_host_valid(name));
}

static void test_host_valid(void **state)
{
    assert_true(s2s_host_valid("example.org"));
    assert_true(s2s_host_valid("localhost"));
    assert_true(s2s_host_valid("xn--bcher-kva.example"));
    assert_true(s2s_host_valid("a-b.c1"));
    assert_false(s2s_host_valid(""));
    assert_false(s2s_host_valid("."));
    assert_false(s2s_host_valid("example.org."));
    assert_false(s2s_host_valid(".example.org"));
    assert_false(s2s_host_valid("a..b"));
    assert_false(s2s_host_valid("a b.org"));
    assert_false(s2s_host_valid("a-.org"));
    assert_false(s2s_host_valid("_xmpp.org"));
    assert_false(s2s_host_valid("b\xc3\xbc" "cher.org"));
}

/* ---- the merge --------------------------------------------------------------------------- */

typedef struct answer_buf {
    uint8_t bytes[8][300];
    const uint8_t *rdata[8];
    size_t len[8];
    s2s_srv_answer a;
} answer_buf;

static const s2s_srv_answer none = { .kind = S2S_SRV_ANSWER_NONE };
static const s2s_srv_answer failed = { .kind = S2S_SRV_ANSWER_FAILED };

/* An answer of records "PRIO WEIGHT PORT TARGET", target "" for ".". */
static const s2s_srv_answer *records(answer_buf *b, size_t count, ...)
{
    va_list ap;
    va_start(ap, count);
    for (size_t i = 0; i < count; i++) {
        int prio = va_arg(ap, int), weight = va_arg(ap, int), port = va_arg(ap, int);
        const char *target = va_arg(ap, const char *);
        b->len[i] = rdata(b->bytes[i], (uint16_t)prio, (uint16_t)weight, (uint16_t)port, target);
        b->rdata[i] = b->bytes[i];
    }
    va_end(ap);
    b->a = (s2s_srv_answer){ .kind = S2S_SRV_ANSWER_RECORDS, .rdata = b->rdata, .len = b->len,
                             .count = count };
    return &b->a;
}

static void test_merge(void **state)
{
    answer_buf b1, b2;
    s2s_target t[S2S_TARGETS_MAX];
    size_t n;

    /* Both services: one set, by priority; xmpps marked direct TLS. */
    int st = s2s_srv_merge(records(&b1, 1, 5, 0, 5223, "tls.example.org"),
                           records(&b2, 2, 10, 0, 5269, "b.example.org", 1, 0, 5270,
                                   "a.example.org"),
                           "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(t[0].host, "a.example.org");
    assert_int_equal(t[0].port, 5270);
    assert_false(t[0].direct_tls);
    assert_string_equal(t[1].host, "tls.example.org");
    assert_true(t[1].direct_tls);
    assert_string_equal(t[2].host, "b.example.org");

    /* No records at all: the fallback. */
    st = s2s_srv_merge(&none, &none, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].host, "example.org");
    assert_int_equal(t[0].port, 5269);
    assert_false(t[0].direct_tls);

    /* "." on both, or "." and nothing: no service. */
    st = s2s_srv_merge(records(&b1, 1, 0, 0, 0, ""), records(&b2, 1, 0, 0, 0, ""), "example.org",
                       fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_NO_SERVICE);
    assert_int_equal(n, 0);
    st = s2s_srv_merge(&none, records(&b2, 1, 0, 0, 0, ""), "example.org", fixed_rnd, t,
                       S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_NO_SERVICE);
    st = s2s_srv_merge(records(&b1, 1, 0, 0, 0, ""), &none, "example.org", fixed_rnd, t,
                       S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_NO_SERVICE);

    /* "." on xmpps only: the xmpp-server targets. */
    st = s2s_srv_merge(records(&b1, 1, 0, 0, 0, ""), records(&b2, 1, 0, 0, 5269, "s.example.org"),
                       "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].host, "s.example.org");

    /* "." among other records is skipped, not a verdict. */
    st = s2s_srv_merge(&none, records(&b2, 2, 0, 0, 0, "", 1, 0, 5269, "s.example.org"),
                       "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_OK);
    assert_int_equal(n, 1);

    /* Failures: with targets from the other service, those; otherwise failed, never fallback. */
    st = s2s_srv_merge(&failed, records(&b2, 1, 0, 0, 5269, "s.example.org"), "example.org",
                       fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_OK);
    assert_int_equal(n, 1);
    st = s2s_srv_merge(&failed, &none, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_FAILED);
    assert_int_equal(n, 0);
    st = s2s_srv_merge(&none, &failed, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_FAILED);
    st = s2s_srv_merge(&failed, records(&b2, 1, 0, 0, 0, ""), "example.org", fixed_rnd, t,
                       S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_FAILED);

    /* Records that are all unusable count as a failure. */
    records(&b2, 1, 0, 0, 5269, "bad_name.example.org");
    st = s2s_srv_merge(&none, &b2.a, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_FAILED);
    b2.len[0] = 3;
    st = s2s_srv_merge(&none, &b2.a, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_FAILED);

    /* An invalid domain gets no fallback. */
    st = s2s_srv_merge(&none, &none, "bad domain", fixed_rnd, t, S2S_TARGETS_MAX, &n);
    assert_int_equal(st, S2S_RESOLVE_FAILED);
}

static void test_merge_bounds(void **state)
{
    static uint8_t bytes[200][40];
    const uint8_t *ptrs[200];
    size_t lens[200];
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "h%d.example.org", i);
        lens[i] = rdata(bytes[i], (uint16_t)(200 - i), 1, 5269, name);
        ptrs[i] = bytes[i];
    }
    s2s_srv_answer a = { .kind = S2S_SRV_ANSWER_RECORDS, .rdata = ptrs, .len = lens,
                         .count = 200 };
    s2s_target t[S2S_TARGETS_MAX];
    size_t n;
    assert_int_equal(s2s_srv_merge(&none, &a, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n),
                     S2S_RESOLVE_OK);
    assert_int_equal(n, S2S_TARGETS_MAX);
    /* The first S2S_SRV_COLLECT_MAX records were considered (priorities 200 down to 73), and the
     * best of them kept, in order. */
    assert_string_equal(t[0].host, "h127.example.org");
    assert_string_equal(t[S2S_TARGETS_MAX - 1].host, "h96.example.org");
    /* A smaller room is respected. */
    assert_int_equal(s2s_srv_merge(&none, &a, "example.org", fixed_rnd, t, 3, &n), S2S_RESOLVE_OK);
    assert_int_equal(n, 3);
    /* xmpps gets at most half of the room. */
    s2s_srv_answer b = a;
    assert_int_equal(s2s_srv_merge(&a, &b, "example.org", fixed_rnd, t, S2S_TARGETS_MAX, &n),
                     S2S_RESOLVE_OK);
    assert_int_equal(n, S2S_TARGETS_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_weights_statistical),
        cmocka_unit_test(test_zero_weights),
        cmocka_unit_test(test_largest_weights),
        cmocka_unit_test(test_rdata_parse),
        cmocka_unit_test(test_rdata_lengths),
        cmocka_unit_test(test_host_valid),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
